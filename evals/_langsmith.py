"""Run a suite through ``langsmith.evaluate``: uploaded with a LangSmith key, local-only without."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.types import RetryPolicy

from tierflow.config import default_profile, load_config
from tierflow.evals._runner import (
    PRICED_AT,
    compile_suite,
    drive,
    resolve_policies,
    suite_named,
    unattended,
)
from tierflow.evals._suites import load_items
from tierflow.evals._sync import run_sync
from tierflow.runtime import RunContext
from tierflow.usage import reprice

__all__ = ["langsmith_evaluate", "dataset_examples", "LOCAL_API_URL"]

# Nothing listens here: without a key, langsmith's client has somewhere harmless to point at
# (child runs are still POSTed even with upload_runs=False; see /work/shared/OFFLINE.md).
LOCAL_API_URL = "http://127.0.0.1:9"
_NAMESPACE = uuid.UUID("5b1d2c1e-7a57-4e0a-9d55-7e1a5f10e7a1")


@contextlib.contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """Hide the client's connection warnings while it points at the loopback placeholder."""
    logger = logging.getLogger("langsmith")
    level = logger.level
    if enabled:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _examples(suite: str, limit: int | None) -> list[Any]:
    from langsmith.schemas import Example

    spec = suite_named(suite)
    dataset_id = uuid.uuid5(_NAMESPACE, suite)
    return [
        Example(
            id=uuid.uuid5(_NAMESPACE, f"{suite}/{item['id']}"),
            dataset_id=dataset_id,
            inputs=spec.make_input(item),
            outputs=dict(item),
            metadata={"suite": suite, "item_id": item["id"]},
        )
        for item in load_items(suite, limit)
    ]


def dataset_examples(
    client: Any, suite: str, examples: list[Any], name: str | None = None
) -> list[Any]:
    """The suite's examples in the LangSmith dataset ``name`` (default ``tierflow-<suite>``).

    The dataset is created when missing and reused otherwise; examples it lacks (ids are
    stable: the suite and item id) are added, so re-running adds nothing twice. Returns the
    dataset's copies of ``examples``, which the experiment then refers to.
    """
    name = name or f"tierflow-{suite}"
    if client.has_dataset(dataset_name=name):
        dataset = client.read_dataset(dataset_name=name)
    else:
        dataset = client.create_dataset(
            name, description=f"tierflow eval suite {suite} (evals/data/{suite}.jsonl)"
        )
    have = {str(e.id) for e in client.list_examples(dataset_id=dataset.id)}
    new = [e for e in examples if str(e.id) not in have]
    if new:
        client.create_examples(
            dataset_id=dataset.id,
            examples=[
                {"id": e.id, "inputs": e.inputs, "outputs": e.outputs, "metadata": e.metadata}
                for e in new
            ],
        )
    wanted = {str(e.id) for e in examples}
    return [e for e in client.list_examples(dataset_id=dataset.id) if str(e.id) in wanted]


def langsmith_evaluate(
    suite: str,
    policy: str = "tiered",
    limit: int | None = None,
    *,
    profile: str | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    retry: RetryPolicy | None = None,
    dataset_name: str | None = None,
    max_concurrency: int | None = None,
) -> Any:
    """Evaluate a suite with ``langsmith.evaluate`` (scores: quality, each metric, cost_usd).

    With ``LANGSMITH_API_KEY`` set the examples live in a LangSmith dataset (``dataset_name``,
    default ``tierflow-<suite>``, created or reused: :func:`dataset_examples`) and the
    experiment is uploaded; without it, results stay local (``upload_runs=False``, a client
    pointed at a loopback address). ``max_concurrency``: examples run at once (default: one
    after another on a profile with local tiers, which share the CPU, or with test doubles;
    else 4).

    Returns:
        langsmith's ``ExperimentResults``; iterate it for rows with ``evaluation_results``.
    """
    from langsmith import Client, evaluate

    spec = suite_named(suite)
    [policy] = resolve_policies([policy])
    profile = profile or default_profile()
    ctx = RunContext(profile=profile, models=models, retry=retry, policy=unattended(policy))
    prices = load_config(PRICED_AT, require_keys=False)
    graph = compile_suite(spec)

    def target(inputs: dict[str, Any]) -> dict[str, Any]:
        cfg = {
            "configurable": {"thread_id": f"ls-{suite}-{uuid.uuid4().hex}"},
            "recursion_limit": 100,
        }
        run_sync(drive(graph, dict(inputs), cfg, ctx))
        values = dict(graph.get_state(cfg).values)
        values["usage"] = [r.model_dump() for r in reprice(values.get("usage") or [], prices)]
        return values

    def scores(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> dict[str, Any]:
        scored = spec.score(reference_outputs, outputs)
        cost = round(sum(r["cost_usd"] for r in outputs.get("usage") or []), 10)
        rows = [{"key": "quality", "score": scored.quality}, {"key": "cost_usd", "score": cost}]
        rows += [{"key": k, "score": v} for k, v in scored.scores.items()]
        return {"results": rows}

    upload = bool(os.environ.get("LANGSMITH_API_KEY"))
    client = Client() if upload else Client(api_url=LOCAL_API_URL, api_key="x")
    if max_concurrency is None:
        local = any(t.is_local for t in load_config(profile, require_keys=False).tiers.values())
        # 0: sequential in this thread (test doubles, or local tiers sharing the CPU).
        max_concurrency = 0 if local or models is not None else 4
    with _quiet(not upload):
        examples = _examples(suite, limit)
        data = dataset_examples(client, suite, examples, dataset_name) if upload else examples
        results = evaluate(
            target,
            data=data,
            evaluators=[scores],
            experiment_prefix=f"tierflow-{suite}-{policy}",
            metadata={"suite": suite, "policy": policy, "profile": profile},
            max_concurrency=max_concurrency,
            client=client,
            upload_runs=upload,
        )
        if upload:
            client.flush(timeout=30)  # runs and scores are sent before this returns
        return results
