"""Plain tools the subagents call; sandboxed, no model calls inside."""

from tierflow.tools.fs import Sandbox, SandboxError, fs_tools

__all__ = ["Sandbox", "SandboxError", "fs_tools"]
