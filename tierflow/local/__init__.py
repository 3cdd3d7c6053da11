"""Real small models on this machine: verified GGUF weights and one llama.cpp server per tier.

Example:
    >>> from tierflow.config import load_config
    >>> from tierflow.local import ensure_running
    >>> print(ensure_running(load_config("local")))  # doctest: +SKIP
    started local servers in 9.8 s: flagship (port 8731, pid 4242), ...
"""

from tierflow.local.servers import (
    LocalServers,
    ServerOptions,
    ServerRecord,
    TierStatus,
    ensure_running,
)
from tierflow.local.weights import MODELS, LocalModel, LocalServerError, ensure_model

__all__ = [
    "MODELS",
    "LocalModel",
    "LocalServerError",
    "LocalServers",
    "ServerOptions",
    "ServerRecord",
    "TierStatus",
    "ensure_model",
    "ensure_running",
]
