"""The `tierflow` command: run, resume, show and draw graphs registered in langgraph.json.

Its parts: :mod:`tierflow._plugins` (plugin commands, imported when they run),
:mod:`tierflow._cli_input` (INPUT by the graph's input rules, answers, the policy),
:mod:`tierflow._cli_print` (progress, results, exit codes), :mod:`tierflow._cli_runners`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tierflow._cli_input import answers, parse_input, tier_policy
from tierflow._cli_print import console, exit_code, fail, on_event, report
from tierflow._cli_runners import (
    config_for,
    ensure_local,
    local_runner,
    remote_runner,
    thread_runner,
)
from tierflow._plugins import PluginGroup
from tierflow.errors import InputError, TierflowError
from tierflow.registry import graph_names, load_builder

# Importing this module must stay cheap (`tierflow --help` loads only typer and rich): the
# engine, langchain and langgraph are imported inside the commands that use them.

__all__ = ["app"]

app = typer.Typer(
    cls=PluginGroup,
    help="Route agent work from a flagship model to cheap tiers, with budgets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DataDir = Annotated[Path | None, typer.Option(help="where checkpoints live (default from config)")]
CheckpointUrl = Annotated[
    str | None, typer.Option(help="postgresql://... to checkpoint in PostgreSQL")
]
Profile = Annotated[
    str | None, typer.Option(help="tier profile: local, openai, or one in tierflow.toml")
]
Remote = Annotated[
    str | None,
    typer.Option(
        help="URL of a LangGraph API server (langgraph dev, Aegra): run there, through the "
        "official SDK; the server's tierflow.toml sets tiers and checkpoints",
        envvar="TIERFLOW_REMOTE",
    ),
]


@app.command()
def run(
    graph: Annotated[str, typer.Argument(help="graph name from langgraph.json")],
    input: Annotated[str, typer.Argument(help="question text, JSON object, or .json/.jsonl file")],
    budget_usd: Annotated[
        float | None, typer.Option(help="hard spending limit for this run")
    ] = None,
    profile: Profile = None,
    thread: Annotated[str | None, typer.Option(help="thread id (default: a new one)")] = None,
    root: Annotated[Path | None, typer.Option(help="source tree for codebase graphs")] = None,
    policy: Annotated[
        str, typer.Option(help="tier policy: tiered, cascade, all-nano, all-flagship")
    ] = "tiered",
    unattended: Annotated[
        bool,
        typer.Option(
            help="never wait for a human: failed tasks fail, drafts auto-approve, budget stops "
            "follow --on-budget"
        ),
    ] = False,
    on_budget: Annotated[
        str | None,
        typer.Option(
            help="what the budget gate does without asking: stop (run ends budget_exhausted) or "
            "cheaper (step down the ladder while a request fits); default: ask, or stop when "
            "--unattended"
        ),
    ] = None,
    data_dir: DataDir = None,
    checkpoint_url: CheckpointUrl = None,
    remote: Remote = None,
) -> None:
    """Run GRAPH on INPUT with live progress, then print the result and the cost tables.

    Exit code: 0 finished, 1 failed or stopped, 2 bad input, 3 waiting for a human (answer with
    `tierflow resume`), 4 answered but unverified.
    """
    import asyncio

    from tierflow.config import load_config

    try:
        chosen = tier_policy(policy, unattended, on_budget)
        inputs = parse_input(graph, input, root, budget_usd)
        if remote:
            runner, cfg = remote_runner(remote, profile, chosen)
            console.print(f"running [bold]{graph}[/bold] on [bold]{remote}[/bold]")
        else:
            runner, cfg = local_runner(data_dir, checkpoint_url, profile, chosen)
            load_config(cfg.profile)  # fail early on missing keys
            ensure_local(cfg)
            console.print(f"running [bold]{graph}[/bold] on profile [bold]{cfg.profile}[/bold]")
        result = asyncio.run(runner.run(graph, inputs, thread_id=thread, on_event=on_event))
    except TierflowError as exc:
        fail(exc)
    report(result, cfg)
    raise typer.Exit(exit_code(result))


@app.command()
def resume(
    thread: Annotated[str, typer.Argument(help="thread id printed by `tierflow run`")],
    answer: Annotated[
        str | None, typer.Option(help="JSON answer for every pending interrupt")
    ] = None,
    answer_for: Annotated[list[str], typer.Option(help="ID=JSON answer for one interrupt")] = [],  # noqa: B006
    data_dir: DataDir = None,
    checkpoint_url: CheckpointUrl = None,
    remote: Remote = None,
) -> None:
    """Continue THREAD after an interrupt, or after the process died."""
    import asyncio

    try:
        runner, cfg = thread_runner(thread, data_dir, checkpoint_url, remote)
        before = asyncio.run(runner.state(thread))
        given = answers(before, answer, answer_for)
        if before.interrupts and not given:
            raise InputError("the thread is waiting for answers; pass --answer or --answer-for")
        if not remote:
            ensure_local(cfg)
        result = asyncio.run(runner.resume(thread, given or None, on_event=on_event))
    except TierflowError as exc:
        fail(exc)
    report(result, cfg)
    raise typer.Exit(exit_code(result))


@app.command()
def show(
    thread: Annotated[
        str | None, typer.Argument(help="thread id (none with --html: an index of all runs)")
    ] = None,
    data_dir: DataDir = None,
    checkpoint_url: CheckpointUrl = None,
    html: Annotated[
        Path | None, typer.Option(help="also write a self-contained HTML run view")
    ] = None,
    remote: Remote = None,
) -> None:
    """Per-tier and per-node totals (requests, tokens, cost, p50/p95 latency, errors)."""
    import asyncio

    if thread is None:
        if html is None or remote:
            fail(TierflowError("give a THREAD, or --html PATH for an index of every local run"))
        _write_index(data_dir, checkpoint_url, html)
        return
    try:
        runner, cfg = thread_runner(thread, data_dir, checkpoint_url, remote)
        result = asyncio.run(runner.state(thread))
        if html is not None:
            from tierflow.runview import write_html

            write_html(result, cfg, html)
            console.print(f"wrote {html}")
    except TierflowError as exc:
        fail(exc)
    report(result, cfg)


def _write_index(data_dir: Path | None, checkpoint_url: str | None, html: Path) -> None:
    import asyncio

    from tierflow.runner import Runner
    from tierflow.runview import write_index

    async def gather() -> list[Any]:
        base = Runner(data_dir or config_for(None).data_dir, checkpoint_url=checkpoint_url)
        runs = []
        for thread_id, info in await base.threads():
            runner, cfg = local_runner(data_dir, checkpoint_url, info.get("profile"))
            runs.append((await runner.state(thread_id), cfg))
        return runs

    try:
        runs = asyncio.run(gather())
    except TierflowError as exc:
        fail(exc)
    out = write_index(runs, html)
    console.print(f"wrote {out} ({len(runs)} runs, each linked to its run view)")


@app.command("graph")
def draw(
    graph: Annotated[str, typer.Argument(help="graph name from langgraph.json")],
    png: Annotated[
        Path | None, typer.Option(help="write a PNG (needs graphviz + pygraphviz)")
    ] = None,
) -> None:
    """Print the graph as Mermaid text (offline), or write a PNG where graphviz is installed."""
    try:
        compiled = load_builder(graph).compile()
    except TierflowError as exc:
        fail(exc)
    from tierflow.runview import drawable as picture

    drawable = picture(compiled)
    if png is None:
        typer.echo(drawable.draw_mermaid())
        return
    try:
        png.write_bytes(drawable.draw_png())
    except ImportError as exc:
        fail(
            TierflowError(
                f"PNG output needs graphviz and pygraphviz ({exc}); omit --png for Mermaid"
            )
        )
    console.print(f"wrote {png}")


@app.command()
def serve(
    dev: Annotated[
        bool, typer.Option(help="langgraph dev instead: one process, state in memory")
    ] = False,
    replica: Annotated[
        bool, typer.Option(help="start one more replica on the configured database")
    ] = False,
    replicas: Annotated[
        int | None, typer.Option(help="replicas to start (default: \\[server] replicas)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="port of the first replica (default: \\[server] port)")
    ] = None,
) -> None:
    """Serve langgraph.json's graphs over the LangGraph API (the official SDK talks to it).

    Without --dev: Aegra replicas on the database_url (PostgreSQL) and redis_url of the server
    table in tierflow.toml, in a Python >= 3.12 environment made on first use; one budget per
    run across replicas.
    """
    from tierflow.registry import find_registry
    from tierflow.serve import load_server_config, serve_forever, stop_on_sigterm
    from tierflow.serve import replicas as start_replicas

    try:
        registry = find_registry()
        if dev:
            langgraph = Path(sys.executable).with_name("langgraph")
            if not langgraph.is_file():
                raise TierflowError("langgraph dev needs: pip install 'langgraph-cli[inmem]'")
            cmd = [str(langgraph), "dev", "--no-browser", "--config", str(registry)]
            cmd += ["--port", str(port)] if port else []
            raise typer.Exit(_run_foreground(cmd, registry.parent))
        cfg = load_server_config()
        cfg.require_stores()
        count = 1 if replica else (replicas or cfg.replicas)
        stop_on_sigterm()
        console.print(f"starting {count} Aegra replica(s) for {registry} ...")
        with start_replicas(cfg, registry, count, first_port=port) as running:
            for r in running:
                console.print(f"serving at [bold]{r.url}[/bold] (pid {r.pid})")
            console.print("Ctrl-C stops them")
            code = serve_forever(running)
    except TierflowError as exc:
        fail(exc)
    except KeyboardInterrupt:  # stopped while starting: the replicas started were stopped
        code = 0
    raise typer.Exit(code)


def _run_foreground(cmd: list[str], cwd: Path) -> int:
    import subprocess

    proc = subprocess.Popen(cmd, cwd=cwd)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait(timeout=30)


@app.command("graphs")
def list_graphs(
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="check langgraph.json against the GraphSpecs of graphs/*/graph.py: print "
            "each line to add or fix, exit 1 if any",
        ),
    ] = False,
) -> None:
    """List the graphs registered in langgraph.json."""
    if not check:
        for name in graph_names():
            typer.echo(name)
        return
    from tierflow.registry import registry_problems

    try:
        problems = registry_problems()
    except TierflowError as exc:
        fail(exc)
    for problem in problems:
        console.print(problem, soft_wrap=True, markup=False)
    if problems:
        raise typer.Exit(1)
    console.print(f"langgraph.json lists every GraphSpec ({len(graph_names())} graphs)")
