"""Which runner a `tierflow` command uses: local checkpoints, a remote server, a thread's own."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tierflow._cli_print import console

if TYPE_CHECKING:
    from tierflow.config import TierConfig
    from tierflow.runner import Runner
    from tierflow.runtime import TierPolicy

__all__ = ["config_for", "ensure_local", "local_runner", "remote_runner", "thread_runner"]


def config_for(profile: str | None) -> TierConfig:
    """The profile's tier config, without requiring its API keys (they price the tables)."""
    from tierflow.config import load_config

    return load_config(profile, require_keys=False)


def ensure_local(cfg: TierConfig) -> None:
    """Start the profile's local tier servers (a no-op for profiles without local tiers)."""
    # Names the missing extra when llama_cpp is absent.
    from tierflow.local import ensure_running

    message = ensure_running(cfg)
    if message:
        console.print(f"[dim]{message}[/dim]")


def local_runner(
    data_dir: Path | None, url: str | None, profile: str | None, policy: TierPolicy | None = None
) -> tuple[Runner, TierConfig]:
    """A runner on the local checkpointer (or PostgreSQL at ``url``) for ``profile``."""
    from tierflow.runner import Runner
    from tierflow.runtime import RunContext, TierPolicy

    cfg = config_for(profile)
    ctx = RunContext(profile=cfg.profile, policy=policy or TierPolicy())
    return Runner(data_dir or cfg.data_dir, checkpoint_url=url, context=ctx), cfg


def remote_runner(url: str, profile: str | None, policy: TierPolicy) -> tuple[Any, TierConfig]:
    """A runner for the server at ``url``; the run's policy travels as the run context."""
    from tierflow.remote import RemoteRunner

    context = {"policy": dataclasses.asdict(policy)}  # RunContext takes a policy as JSON
    # The local config only prices the printed tables; the server's own prices the records.
    return RemoteRunner(url, context=context), config_for(profile)


def thread_runner(
    thread: str, data_dir: Path | None, checkpoint_url: str | None, remote: str | None
) -> tuple[Any, TierConfig]:
    """The runner that holds THREAD: the remote server, or the local checkpointer."""
    import asyncio

    from tierflow.runner import Runner

    if remote:
        from tierflow.remote import RemoteRunner

        return RemoteRunner(remote), config_for(None)
    base_cfg = config_for(None)
    probe = Runner(data_dir or base_cfg.data_dir, checkpoint_url=checkpoint_url)
    profile = asyncio.run(probe.thread_info(thread)).get("profile")
    return local_runner(data_dir, checkpoint_url, profile)
