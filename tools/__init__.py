"""Plain tools the subagents call; sandboxed, no model calls inside."""

from tierflow.tools.code_index import CodeIndex, index_tools
from tierflow.tools.fs import Sandbox, SandboxError, ToolSetupError, fs_tools

__all__ = ["Sandbox", "SandboxError", "ToolSetupError", "fs_tools", "CodeIndex", "index_tools"]
