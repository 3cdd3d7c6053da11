"""The `tierflow` command: run, resume, show and draw graphs registered in langgraph.json."""

from __future__ import annotations

import dataclasses
import json
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from tierflow.errors import TierflowError
from tierflow.protocol import InterruptKind, RunStatus, StreamEvent
from tierflow.registry import graph_names, load_builder

if TYPE_CHECKING:
    from tierflow.config import TierConfig
    from tierflow.runner import Runner, RunResult
    from tierflow.runtime import TierPolicy

# Importing this module must stay cheap (`tierflow --help` loads only typer and rich): the
# engine, langchain and langgraph are imported inside the commands that use them.

__all__ = ["app"]

PLUGIN_GROUP = "tierflow.commands"
# Help lines of the commands this package mounts; a plugin's own help shows once it is loaded.
_PLUGIN_HELP = {
    "eval": "Run an eval suite for one or more tier policies.",
    "calibrate": "Calibrate a benchmark graph's start tier, cascade and router.",
    "local": "Start/stop/inspect the local llama.cpp tier servers.",
    "cache": "Export or import the response cache (benchmark responses kept as a file).",
}


def _plugins() -> dict[str, EntryPoint]:
    """Commands declared by installed packages (ours: ``eval``, ``calibrate``, ``local``), first one wins."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=PLUGIN_GROUP):
        found.setdefault(ep.name, ep)
    return found


_PLUGINS = _plugins()


class _LazyCommand(TyperCommand):
    """Stands in for a plugin command in listings; ``load`` imports the real one."""

    def __init__(self, entry_point: EntryPoint) -> None:
        help_text = _PLUGIN_HELP.get(entry_point.name, f"(from {entry_point.value})")
        super().__init__(entry_point.name, help=help_text)
        self.entry_point = entry_point

    def load(self) -> Any:  # a click command of typer's (its click types are private)
        """The real command, mounted as `tierflow.cli` mounted it before it was lazy."""
        name = self.entry_point.name
        try:
            target = self.entry_point.load()
        except ImportError as exc:
            _fail(TierflowError(f"command '{name}' is unavailable ({exc})"))
        help_text = _PLUGIN_HELP.get(name)  # None: the command's own help (docstring)
        holder = typer.Typer(add_completion=False)
        if not isinstance(target, typer.Typer):
            holder.command(name, help=help_text)(target)
        elif help_text is None:  # add_typer takes an explicit None as "no help"
            holder.add_typer(target, name=name)
        else:
            holder.add_typer(target, name=name, help=help_text)
        return typer.main.get_group(holder).commands[name]


class _PluginGroup(TyperGroup):
    """The top-level group: built-in commands, then plugins, each imported only when it runs.

    Listing a command (``--help``, completion of names) needs only its name and help line, so
    plugins are listed by stand-ins; click resolves a command only to run it (or complete its
    options), which is where the stand-in is swapped for the imported command.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, ep in _PLUGINS.items():
            self.commands.setdefault(name, _LazyCommand(ep))  # built-in names win

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        """Click's resolution, with a plugin stand-in replaced by the real command."""
        name, cmd, rest = super().resolve_command(ctx, args)
        if isinstance(cmd, _LazyCommand):
            cmd = cmd.load()
        return name, cmd, rest


app = typer.Typer(
    cls=_PluginGroup,
    help="Route agent work from a flagship model to cheap tiers, with budgets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Wide enough for the cost tables when output is piped (rich would fall back to 80 columns).
console = Console(width=None if sys.stdout.isatty() else 160)

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


# Exit codes of `run` and `resume`, so scripts can tell outcomes apart (bad input is 2).
EXIT_FAILED = 1  # the run ended failed or stopped
EXIT_WAITING = 3  # the run waits for a human: answer with `tierflow resume`
EXIT_UNVERIFIED = 4  # an answer exists but its claims could not be checked against the source


def _exit_code(result: RunResult) -> int:
    status = str(result.values.get("status") or "")
    if result.interrupts:
        return EXIT_WAITING
    if status in (RunStatus.FAILED, RunStatus.STOPPED, RunStatus.REJECTED):
        return EXIT_FAILED
    return EXIT_UNVERIFIED if status == RunStatus.UNVERIFIED else 0


def _fail(exc: Exception) -> NoReturn:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(2)


def _input_key_for_list(graph: str) -> str:
    schema = load_builder(graph).input_schema
    hints = getattr(schema, "__annotations__", {})
    lists = [k for k, v in hints.items() if "list" in str(v).lower()]
    if len(lists) != 1:
        raise TierflowError(
            f"graph '{graph}' does not take a list input; pass a JSON object instead"
        )
    return lists[0]


def _read_json_file(path: Path) -> Any:
    """A .json or .jsonl file's data; a malformed line is named by file and line number."""
    raw = path.read_text()
    if path.suffix != ".jsonl":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TierflowError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    items = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise TierflowError(
                f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); each line "
                "of a .jsonl file is one JSON object"
            ) from None
    return items


def parse_input(graph: str, text: str, root: Path | None, budget: float | None) -> dict[str, Any]:
    """INPUT is a JSON object, a .json/.jsonl file, or plain text (the request)."""
    path = Path(text)
    if len(text) < 4096 and path.suffix in (".json", ".jsonl") and path.is_file():
        data: Any = _read_json_file(path)
    elif not text.strip():
        raise TierflowError("INPUT is empty: give the question or request to run")
    elif text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TierflowError(f"INPUT looks like JSON but is not valid: {exc}") from exc
    else:
        data = {"request": text}
    if isinstance(data, list):
        data = {_input_key_for_list(graph): data}
    if not isinstance(data, dict):
        raise TierflowError("INPUT must be a JSON object, a list of items, or plain text")
    schema_keys = getattr(load_builder(graph).input_schema, "__annotations__", {})
    request = data.get("request")
    if isinstance(request, str):
        from tierflow.config import Settings

        limit = Settings().max_request_chars
        if not request.strip():
            raise TierflowError("the request is empty: give the question or request to run")
        if len(request) > limit:
            raise TierflowError(
                f"the request is {len(request):,} characters, over the limit of {limit:,}: "
                "shorten it (put long material in files under --root), or raise "
                "TIERFLOW_MAX_REQUEST_CHARS"
            )
    if "env" in schema_keys and "env" not in data:
        base = (root or Path.cwd()).expanduser()
        if not base.is_dir():
            problem = "does not exist" if not base.exists() else "is not a folder"
            raise TierflowError(
                f"--root {str(root)!r} {problem}: pass the source tree to ask about"
            )
        data["env"] = {"root": str(base.resolve())}
    if budget is not None:
        if budget <= 0:
            raise TierflowError("--budget-usd must be positive")
        data["budget_usd"] = budget
    return data


def _on_event(event: dict[str, Any]) -> None:
    kind = event.get("event")
    if kind == StreamEvent.MODEL_CALL:
        who = event.get("subagent") or event.get("node")
        console.print(
            f"  [cyan]{who:<10}[/cyan] [magenta]{event['tier']:<8}[/magenta] {event['model']:<28} "
            f"{event['latency_s']:6.2f}s {event['tokens']:6d} tok  ${event['cost_usd']:.6f}  "
            f"(spent ${event['spent_usd']:.6f}{_of_budget(event)})"
        )
    elif kind == StreamEvent.MODEL_ERROR:
        where = escape(f"{event.get('node')} [{event.get('tier')}]")
        console.print(f"  [yellow]retry[/yellow] {where}: {escape(str(event.get('error')))}")


def _of_budget(event: dict[str, Any]) -> str:
    budget = event.get("budget_usd")
    if not budget:
        return ""
    return f" of ${budget:.4f}, {min(1.0, event['spent_usd'] / budget):.0%}"


def _config_for(profile: str | None) -> TierConfig:
    from tierflow.config import load_config

    return load_config(profile, require_keys=False)


def _ensure_local(cfg: TierConfig) -> None:
    # A no-op for profiles without local tiers; names the missing extra when llama_cpp is absent.
    from tierflow.local import ensure_running

    message = ensure_running(cfg)
    if message:
        console.print(f"[dim]{message}[/dim]")


_RESUME_EXAMPLES = {
    InterruptKind.BUDGET: (
        '{"action": "raise", "budget_usd": 1.0}',
        "raise (with budget_usd), cheaper, stop",
    ),
}
_REVIEW_EXAMPLE = ('{"action": "approve"}', "approve, edit (with value), reject")


def _resume_hints(result: RunResult) -> list[str]:
    """An example resume command that answers every pending interrupt with a valid option."""
    if not result.interrupts:
        return []
    answers, options = [], {}
    for intr in result.interrupts:
        kind = intr.value.get("kind") if isinstance(intr.value, dict) else None
        example, opts = _RESUME_EXAMPLES.get(str(kind), _REVIEW_EXAMPLE)
        answers.append(f"--answer-for {intr.id}='{example}'")
        options[str(kind)] = opts
    hints = [f"resume with: tierflow resume {result.thread_id} {' '.join(answers)}"]
    hints += [f"  {kind} options: {opts}" for kind, opts in sorted(options.items())]
    return hints


# Interrupt fields kept in the payload for programs but too long to print.
_VERBOSE = ("result_schema", "resume_with")


def _report(result: RunResult, cfg: TierConfig) -> None:
    from tierflow.report import print_usage, result_keys

    values = result.values
    try:
        keys = result_keys(load_builder(result.graph))
    except TierflowError:  # a graph the remote server has and this project does not
        keys = [k for k in values if k not in ("usage", "events", "status", "run_id")]
    for key in keys:
        if values.get(key):
            console.rule(key)
            console.print_json(json.dumps(values[key], default=str))
    if values.get("status"):
        console.print(f"status: [bold]{values['status']}[/bold]")
    if values.get("route"):  # a routed graph: which tier it started on, and by what calibration
        route = values["route"]
        console.print(f"routed to {route.get('tier')} by policy {route.get('policy')} "
                      f"(calibration: {values.get('calibration') or 'none'})")  # fmt: skip
    problems = values.get("answer_problems") or []
    if problems and values.get("status") == RunStatus.ANSWERED:
        # Problems of an earlier attempt: the answer shown was repaired (or a human decided).
        console.print(f"[dim]an earlier answer was sent back: {escape(problems[0])}[/dim]")
    else:
        for problem in problems:
            console.print(f"[yellow]warning:[/yellow] the answer's check failed: {escape(problem)}")
    for intr in result.interrupts:
        console.rule(f"waiting for a human (interrupt {intr.id})")
        shown = (
            {k: v for k, v in intr.value.items() if k not in _VERBOSE}
            if isinstance(intr.value, dict)
            else intr.value
        )
        console.print_json(json.dumps(shown, default=str))
    for hint in _resume_hints(result):
        console.print(escape(hint))
    print_usage(console, values.get("usage") or [], cfg)
    console.print(f"thread: [bold]{result.thread_id}[/bold]")


def _policy(name: str, unattended: bool, on_budget: str | None = None) -> TierPolicy:
    from tierflow.runtime import POLICIES

    if name not in POLICIES:
        raise TierflowError(f"unknown policy '{name}'; use one of {', '.join(POLICIES)}")
    if on_budget not in (None, "stop", "cheaper"):
        raise TierflowError(f"--on-budget {on_budget!r}: use 'stop' or 'cheaper'")
    base = POLICIES[name]
    human = base.human and not unattended
    # Unattended runs never wait at the budget gate: they stop (or step down) as declared.
    declared = on_budget or (None if human else "stop")
    return dataclasses.replace(base, human=human, on_budget=declared)


def _runner(
    data_dir: Path | None, url: str | None, profile: str | None, policy: TierPolicy | None = None
) -> tuple[Runner, TierConfig]:
    from tierflow.runner import Runner
    from tierflow.runtime import RunContext, TierPolicy

    cfg = _config_for(profile)
    ctx = RunContext(profile=cfg.profile, policy=policy or TierPolicy())
    return Runner(data_dir or cfg.data_dir, checkpoint_url=url, context=ctx), cfg


def _remote(url: str, profile: str | None, policy: TierPolicy) -> tuple[Any, TierConfig]:
    """A runner for the server at ``url``; the run's policy travels as the run context."""
    from tierflow.remote import RemoteRunner

    context = {"policy": dataclasses.asdict(policy)}  # RunContext takes a policy as JSON
    # The local config only prices the printed tables; the server's own prices the records.
    return RemoteRunner(url, context=context), _config_for(profile)


def _thread_runner(
    thread: str, data_dir: Path | None, checkpoint_url: str | None, remote: str | None
) -> tuple[Any, TierConfig]:
    """The runner that holds THREAD: the remote server, or the local checkpointer."""
    import asyncio

    from tierflow.runner import Runner

    if remote:
        from tierflow.remote import RemoteRunner

        return RemoteRunner(remote), _config_for(None)
    base_cfg = _config_for(None)
    probe = Runner(data_dir or base_cfg.data_dir, checkpoint_url=checkpoint_url)
    profile = asyncio.run(probe.thread_info(thread)).get("profile")
    return _runner(data_dir, checkpoint_url, profile)


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
        chosen = _policy(policy, unattended, on_budget)
        inputs = parse_input(graph, input, root, budget_usd)
        if remote:
            runner, cfg = _remote(remote, profile, chosen)
            console.print(f"running [bold]{graph}[/bold] on [bold]{remote}[/bold]")
        else:
            runner, cfg = _runner(data_dir, checkpoint_url, profile, chosen)
            load_config(cfg.profile)  # fail early on missing keys
            _ensure_local(cfg)
            console.print(f"running [bold]{graph}[/bold] on profile [bold]{cfg.profile}[/bold]")
        result = asyncio.run(runner.run(graph, inputs, thread_id=thread, on_event=_on_event))
    except TierflowError as exc:
        _fail(exc)
    _report(result, cfg)
    raise typer.Exit(_exit_code(result))


def _answers(result: RunResult, answer: str | None, answer_for: list[str]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    if answer is not None:
        value = _json_value(answer)
        answers = {i.id: value for i in result.interrupts}
    for item in answer_for:
        key, _, raw = item.partition("=")
        if key not in {i.id for i in result.interrupts}:
            raise TierflowError(f"no pending interrupt with id '{key}'")
        answers[key] = _json_value(raw)
    if not answers and result.interrupts and sys.stdin.isatty():
        for intr in result.interrupts:
            console.print_json(json.dumps(intr.value, default=str))
            answers[intr.id] = _json_value(typer.prompt('answer (e.g. {"action": "approve"})'))
    return answers


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word such as approve


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
        runner, cfg = _thread_runner(thread, data_dir, checkpoint_url, remote)
        before = asyncio.run(runner.state(thread))
        answers = _answers(before, answer, answer_for)
        if before.interrupts and not answers:
            raise TierflowError("the thread is waiting for answers; pass --answer or --answer-for")
        if not remote:
            _ensure_local(cfg)
        result = asyncio.run(runner.resume(thread, answers or None, on_event=_on_event))
    except TierflowError as exc:
        _fail(exc)
    _report(result, cfg)
    raise typer.Exit(_exit_code(result))


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
            _fail(TierflowError("give a THREAD, or --html PATH for an index of every local run"))
        _write_index(data_dir, checkpoint_url, html)
        return
    try:
        runner, cfg = _thread_runner(thread, data_dir, checkpoint_url, remote)
        result = asyncio.run(runner.state(thread))
        if html is not None:
            from tierflow.runview import write_html

            write_html(result, cfg, html)
            console.print(f"wrote {html}")
    except TierflowError as exc:
        _fail(exc)
    _report(result, cfg)


def _write_index(data_dir: Path | None, checkpoint_url: str | None, html: Path) -> None:
    import asyncio

    from tierflow.runner import Runner
    from tierflow.runview import write_index

    async def gather() -> list[Any]:
        base = Runner(data_dir or _config_for(None).data_dir, checkpoint_url=checkpoint_url)
        runs = []
        for thread_id, info in await base.threads():
            runner, cfg = _runner(data_dir, checkpoint_url, info.get("profile"))
            runs.append((await runner.state(thread_id), cfg))
        return runs

    try:
        runs = asyncio.run(gather())
    except TierflowError as exc:
        _fail(exc)
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
        _fail(exc)
    from tierflow.runview import drawable as picture

    drawable = picture(compiled)
    if png is None:
        typer.echo(drawable.draw_mermaid())
        return
    try:
        png.write_bytes(drawable.draw_png())
    except ImportError as exc:
        _fail(
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
        _fail(exc)
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
def list_graphs() -> None:
    """List the graphs registered in langgraph.json."""
    for name in graph_names():
        typer.echo(name)
