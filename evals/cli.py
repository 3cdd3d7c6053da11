"""``tierflow eval``: run a suite under one or more tier policies, print the table, plot, recommend."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

__all__ = ["eval_command", "calibrate_command", "cache_app", "DEFAULT_CACHE"]

DEFAULT_CACHE = Path(".tierflow") / "cache" / "responses.sqlite"
CacheFile = Annotated[
    Path | None,
    typer.Option("--cache", help="response cache file (default .tierflow/cache/responses.sqlite)"),
]
BatchFlag = Annotated[
    bool,
    typer.Option(
        "--batch",
        help="send the requests through the OpenAI Batch API, at batch prices (half, or the "
        "tier's flex_price); waits for the batches, resumes after a crash",
    ),
]


def eval_command(
    suite: Annotated[
        str,
        typer.Argument(help="a graph's suite (gsm8k, mmlu, ...) or a replay (routellm-gsm8k, ...)"),
    ],
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", "-p", help="tier policy (repeatable), or 'all'"),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="first N dataset items only")] = None,
    profile: Annotated[
        str | None, typer.Option(help="tier profile (default: openai or local)")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="PNG path (default .tierflow/evals/<suite>-frontier.png)")
    ] = None,
    tolerance: Annotated[
        float, typer.Option(help="quality tolerance of the recommendation")
    ] = 0.05,
    split: Annotated[
        str | None, typer.Option(help="benchmark split: calib or report (default report)")
    ] = None,
    cache: CacheFile = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="send every request")] = False,
    calibration: Annotated[
        Path | None, typer.Option(help="calibration file the graph loads")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="benchmark report folder (default .tierflow/reports/<suite>)"),
    ] = None,
    calibrate_for: Annotated[
        float | None,
        typer.Option(
            "--calibrate",
            help="first calibrate on the calib split for this target "
            "quality (e.g. 0.95), then report with that calibration (BFCL: its native-tools "
            "graph too)",
        ),
    ] = None,
    calib_limit: Annotated[
        int | None, typer.Option(help="calibration items with --calibrate (default: all)")
    ] = None,
    batch: BatchFlag = False,
) -> None:
    """Evaluate tier policies on a suite: quality, cost at openai prices, latency, escalations."""
    from tierflow.evals._runner import resolve_policies
    from tierflow.evals._suites import SUITES

    # Wide enough for the policy table when output is piped (rich would use 80 columns).
    console = Console(width=None if sys.stdout.isatty() else 160)
    _replay_and_exit(console, suite, profile, report, calibrate_for)  # a replay: no model call
    if suite not in SUITES:
        raise typer.BadParameter(f"unknown suite {suite!r}; choose from {sorted(SUITES)}")
    try:
        policies = resolve_policies(policy or ["tiered"], suite)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--policy") from exc
    _start_local_servers(console, profile)
    cache_file = None if no_cache else str(cache or DEFAULT_CACHE)
    if calibrate_for is not None and SUITES[suite].loader is None:
        raise typer.BadParameter("only benchmark suites are calibrated", param_hint="--calibrate")
    with _batching(console, batch):  # every run of this command, batched or not
        if SUITES[suite].loader is None:
            _suite_eval(console, suite, policies, limit, profile, split, cache_file, plot,
                        tolerance)  # fmt: skip
            return
        if calibrate_for is not None:
            calibration = _calibrate(console, suite, calibrate_for, calibration, calib_limit,
                                     profile, cache_file)  # fmt: skip
        _benchmark_eval(console, suite, policies, limit, profile, split, cache_file,
                        calibration, report)  # fmt: skip


@contextlib.contextmanager
def _batching(console: Console, batch: bool) -> Iterator[None]:
    """``--batch``: batches in ``<data_dir>/batch/<suite>``, their progress printed."""
    from tierflow.batch import BatchError, BatchSettings
    from tierflow.evals._batch_rounds import batching

    def log(line: str) -> None:
        console.print(f"[dim]{line}[/dim]", soft_wrap=True)

    try:
        with batching(BatchSettings(log=log) if batch else None):
            yield
    except BatchError as exc:  # a batch still running, or one that failed: say what to do
        _cache_error(str(exc))


def _calibrate(
    console: Console,
    suite: str,
    target: float,
    calibration: Path | None,
    limit: int | None,
    profile: str | None,
    cache_file: str | None,
) -> Path:
    """Calibrate the suite's graph, then any variant graph's; the calibration file written."""
    from tierflow.calibration import calibration_path
    from tierflow.evals import progress_bar
    from tierflow.evals.calibrate import calibrate_for_report

    calibration = calibration or calibration_path(suite)
    with progress_bar(console) as bar:  # the suite's graph, then any variant graph's
        made = calibrate_for_report(suite, target, out=calibration, limit=limit,
                                    profile=profile, progress=bar,
                                    response_cache=cache_file)  # fmt: skip
    for cal, file in made:
        console.print(f"calibration {cal.label()} ({cal.items} calib items) -> {file}")
    return calibration


def _benchmark_eval(
    console: Console,
    suite: str,
    policies: list[str],
    limit: int | None,
    profile: str | None,
    split: str | None,
    cache_file: str | None,
    calibration: Path | None,
    report: Path | None,
) -> None:
    """A public benchmark: one report (table, headline, curve) from one run of every policy."""
    from tierflow.evals import progress_bar
    from tierflow.evals.benchmark_report import benchmark_report

    with progress_bar(console) as bar:
        bench = benchmark_report(
            suite, policies, limit=limit, profile=profile, split=split, progress=bar,
            response_cache=cache_file, calibration=str(calibration) if calibration else None,
            out_dir=report,
        )  # fmt: skip
    console.print(bench.table())
    console.print(bench.headline(), soft_wrap=True)
    console.print(f"report: {bench.markdown_path}\ncurve: {bench.plot_path}")


def _replay_and_exit(
    console: Console, suite: str, profile: str | None, report: Path | None, target: float | None
) -> None:
    """When ``suite`` replays recorded outcomes (RouteLLM's): its report, then exit 0.

    Every policy, from no model call and no server; ``--calibrate`` sets the target quality.
    """
    from tierflow.evals.replay import REPLAYS, replay_options, replay_report

    if suite not in REPLAYS:
        return
    options = replay_options(suite, profile=profile or "openai", target=target or 0.95)
    if not options.needs_embeddings:
        console.print(f"[dim]{suite}: no committed prompt embeddings; the router reads the "
                      "prompts' structure (and subject) only[/dim]")  # fmt: skip
    replay = replay_report(suite, out_dir=report, options=options)
    console.print(replay.bench.table())
    console.print(replay.bench.headline(), soft_wrap=True)
    console.print(f"report: {replay.bench.markdown_path}\ncurve: {replay.bench.plot_path}")
    raise typer.Exit(0)


def _suite_eval(
    console: Console,
    suite: str,
    policies: list[str],
    limit: int | None,
    profile: str | None,
    split: str | None,
    cache_file: str | None,
    plot: Path | None,
    tolerance: float,
) -> None:
    """A suite of this project's: the policy table, the frontier plot, the recommendation."""
    from tierflow.evals import compare, progress_bar
    from tierflow.evals.report import frontier_plot, recommend, render_table

    with progress_bar(console) as bar:  # examples done, spend, ETA per policy
        results = compare(suite, policies, limit=limit, profile=profile, progress=bar,
                          split=split, response_cache=cache_file)  # fmt: skip
    console.print(render_table(results))
    target = frontier_plot(results, plot or Path(".tierflow") / "evals" / f"{suite}-frontier.png")
    console.print(f"frontier plot: {target}")
    for rec in recommend(results, tolerance=tolerance):
        console.print(rec.evidence, soft_wrap=True)


def _start_local_servers(console: Console, profile: str | None) -> None:
    """Start the llama.cpp tier servers when the profile has local tiers (like `tierflow run`)."""
    from tierflow.config import load_config
    from tierflow.local import ensure_running

    message = ensure_running(load_config(profile, require_keys=False))
    if message:
        console.print(f"[dim]{message}[/dim]")


def _main() -> None:  # pragma: no cover - `python -m tierflow.evals.cli`
    typer.run(eval_command)


if __name__ == "__main__":  # pragma: no cover
    _main()


def calibrate_command(
    suite: Annotated[
        str,
        typer.Argument(
            help="gsm8k, mmlu, mbpp, bfcl or bfcl_native (a cascade), or a graph's suite "
            "(codebase_qa, triage, ...): each subagent's start tier"
        ),
    ],
    target_quality: Annotated[
        float, typer.Option(help="share of all-flagship's quality to keep")
    ] = 0.95,
    limit: Annotated[int | None, typer.Option(help="first N calibration items only")] = None,
    profile: Annotated[
        str | None, typer.Option(help="tier profile (default: openai or local)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="file to write (default .tierflow/calibration/<suite>.json)")
    ] = None,
    cache: CacheFile = None,
    batch: BatchFlag = False,
    confidence: Annotated[
        float,
        typer.Option(
            help="a cascade's router threshold keeps the target with this confidence "
            "(0: on the calibration items only)"
        ),
    ] = 0.9,
) -> None:
    """Calibrate a graph: start tier, ladder and router of a cascade, or each subagent's start."""
    from tierflow.evals import progress_bar
    from tierflow.evals.calibrate import calibrate
    from tierflow.graphs.benchmarks.specs import CASCADES

    console = Console(width=None if sys.stdout.isatty() else 160)
    if not 0 < target_quality <= 1:
        raise typer.BadParameter("give a share in (0, 1], e.g. 0.95", param_hint="--target-quality")
    if confidence and not 0.5 <= confidence < 1:
        raise typer.BadParameter("give a probability in [0.5, 1), or 0", param_hint="--confidence")
    _start_local_servers(console, profile)
    if suite not in CASCADES:
        if batch:
            raise typer.BadParameter("a graph's subagents are calibrated live; drop --batch",
                                     param_hint="--batch")  # fmt: skip
        _calibrate_graph(console, suite, target_quality, limit, profile, out, cache)
        return
    with _batching(console, batch), progress_bar(console) as bar:
        cal = calibrate(suite, target_quality, limit=limit, profile=profile, progress=bar,
                        response_cache=str(cache or DEFAULT_CACHE), out=out,
                        confidence=confidence or None)  # fmt: skip
    sub = next(iter(cal.subagents.values()))
    ev = sub.evidence
    console.print(f"calibration {cal.label()} ({cal.items} items, profile {cal.profile}) -> "
                  f"{out or f'.tierflow/calibration/{suite}.json'}")  # fmt: skip
    for tier, fig in ev.get("tiers", {}).items():
        console.print(
            f"  all-{tier}: quality {fig['quality']:.3f} {fig['ci95']}, ${fig['cost_usd']:.6f}"
        )
    console.print(f"  cascade {sub.ladder}: quality {ev['cascade']['quality']:.3f}, "
                  f"${ev['cascade']['cost_usd']:.6f}")  # fmt: skip
    if sub.router:
        console.print(f"  start tier {sub.start_tier}; router threshold {sub.router.threshold:.3f} "
                      f"(target {cal.target_quality:.0%} of all-flagship = {ev['floor_quality']:.3f})")  # fmt: skip


def _calibrate_graph(
    console: Console, suite: str, target: float, limit: int | None, profile: str | None,
    out: Path | None, cache: Path | None,
) -> None:  # fmt: skip
    """``tierflow calibrate <graph suite>``: each subagent's start tier, printed with its why."""
    from tierflow.calibration import calibration_path
    from tierflow.errors import InputError
    from tierflow.evals import progress_bar
    from tierflow.evals._suites import SUITES
    from tierflow.evals.calibrate_graph import calibrate_graph

    try:
        with progress_bar(console) as bar:
            cal = calibrate_graph(suite, target, limit=limit, profile=profile, progress=bar,
                                  response_cache=str(cache or DEFAULT_CACHE), out=out)  # fmt: skip
    except InputError as exc:  # an unknown suite, or runs that never reached a subagent
        _cache_error(str(exc))
    where = out or calibration_path(SUITES[suite].graph)
    console.print(
        f"calibration {cal.label()} ({cal.items} items, profile {cal.profile}) -> {where}"
    )
    for name, sub in cal.subagents.items():
        low, high = sub.evidence["declared"], sub.evidence["top"]
        console.print(
            f"  {name}: start {sub.start_tier} ({sub.evidence['chosen_because']}); "
            f"{low['start_tier']} start: {low['climbed']}/{low['tasks']} tasks climbed"
        )
        console.print(f"    quality {low['quality']:.3f} {low['ci95']} vs {high['quality']:.3f} "
                      f"{high['ci95']}, ${low['cost_usd']:.6f} vs ${high['cost_usd']:.6f}")  # fmt: skip


cache_app = typer.Typer(
    help="Keep a response cache as a file: export it beside a report, import it elsewhere.",
    no_args_is_help=True,
)


@cache_app.command("export")
def cache_export(
    out: Annotated[Path, typer.Argument(help="file to write, e.g. bench/results/gsm8k.jsonl.gz")],
    cache: CacheFile = None,
) -> None:
    """Write the cached responses to a gzipped JSON-lines file (the same bytes for the same cache)."""
    from tierflow.cache import ResponseCache

    source = cache or DEFAULT_CACHE
    if not source.is_file():
        _cache_error(
            f"{source} does not exist: run `tierflow eval` first, or name the file with --cache"
        )
    count = ResponseCache(source).export(out)
    Console().print(f"{count} responses from {source} -> {out}", soft_wrap=True)


@cache_app.command("import")
def cache_import(
    file: Annotated[Path, typer.Argument(help="a file `tierflow cache export` wrote")],
    cache: CacheFile = None,
) -> None:
    """Add a file's responses to the cache, so `tierflow eval` answers those requests from it."""
    from tierflow.cache import CacheFileError, ResponseCache

    target = ResponseCache(cache or DEFAULT_CACHE)
    try:
        added = target.load(file)
    except CacheFileError as exc:
        _cache_error(str(exc))
    Console().print(f"{added} new responses from {file} -> {target.path} ({len(target)} in all)",
                    soft_wrap=True)  # fmt: skip


def _cache_error(message: str) -> NoReturn:
    Console().print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(2)
