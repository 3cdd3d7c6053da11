"""The routed, verified cascade: tier choice per policy, verifier verdicts, calibration loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import BaseModel

from tierflow.calibration import (
    BUCKETS,
    EXTRA,
    Calibration,
    RouterModel,
    SubagentCalibration,
    VerifierSettings,
    load_calibration,
    save_calibration,
    train_router,
)
from tierflow.errors import ConfigError, SpecError
from tierflow.evals._runner import _escalations
from tierflow.nodes.cascade import Cascade, build_cascade
from tierflow.nodes.subagent import Subagent, build_subagent, subagent_input
from tierflow.nodes.verifier import (
    CheckSite,
    Verdict,
    Verifier,
    as_check,
    schema_problems,
    verdict_event,
)
from tierflow.runtime import RunContext
from tierflow.testing import ScriptedChatModel, text_reply, tool_reply
from tierflow.tiers import POLICIES, TierPolicy

NO_RETRY = None


@pytest.fixture(autouse=True)
def _no_default_calibration(tmp_path, monkeypatch):
    """Run where no .tierflow/calibration/<graph>.json of this checkout is found."""
    monkeypatch.chdir(tmp_path)


class Q(BaseModel):
    question: str


class A(BaseModel):
    answer: float


def _read(text: str) -> A | None:
    try:
        return A(answer=float(text.strip().split()[-1]))
    except ValueError:
        return None


SPEC = Cascade(
    name="toy",
    subagent=Subagent(name="solve", description="math", tier="mini", task_schema=Q,
                      output_schema=A, prompt="Answer with a number.", human_fallback=False,
                      read_reply=_read, render_task=lambda t: f"Question: {t.question}"),  # type: ignore[attr-defined]
    verifier=Verifier("agreement", samples=2, agree_on=lambda o: o["answer"]),
    route_text=lambda task: task["question"],
)  # fmt: skip


def _models(**scripts: list) -> dict[str, ScriptedChatModel]:
    return {
        t: ScriptedChatModel(label=t, script=scripts.get(t, []))
        for t in ("nano", "mini", "flagship")
    }


async def _run(models, policy, calibration: str | None = None, task_id: str = "q1", spec=SPEC):
    graph = build_cascade(spec).compile(checkpointer=InMemorySaver())
    ctx = RunContext(profile="openai", models=models, policy=policy, calibration=calibration)
    cfg = {"configurable": {"thread_id": task_id}}
    return await graph.ainvoke({"task": {"question": "2+2?"}, "task_id": task_id}, cfg, context=ctx)


def _calibration(tmp_path: Path, **sub) -> str:
    cal = Calibration(suite="toy", profile="openai", target_quality=0.95, items=10,
                      subagents={"solve": SubagentCalibration(**sub)})  # fmt: skip
    path = tmp_path / "toy.json"
    save_calibration(cal, path)
    return str(path)


async def test_agreeing_sample_keeps_the_cheap_answer_and_is_recorded_as_verify():
    models = _models(nano=[text_reply("4"), text_reply("4")])
    out = await _run(models, "cascade")
    assert out["answer"] == {"answer": 4.0} and out["tier"] == "nano" and out["verified"]
    assert [(u["node"], u["tier"]) for u in out["usage"]] == [("solve", "nano"), ("verify", "nano")]
    # The sample asks exactly what the task asked, at the verifier's temperature.
    first, sample = models["nano"].requests
    assert [m.content for m in first.messages] == [m.content for m in sample.messages]
    assert (first.temperature, sample.temperature) == (None, 0.7)
    for m in models.values():
        m.assert_complete()


async def test_disagreement_climbs_with_the_same_request_and_skips_tiers_left_out(tmp_path):
    # The calibration's ladder leaves mini out: nano -> flagship.
    cal = _calibration(tmp_path, start_tier="mini", ladder=["nano", "flagship"])
    models = _models(nano=[text_reply("4"), text_reply("5")], flagship=[text_reply("4")])
    out = await _run(models, "cascade", cal)
    assert out["tier"] == "flagship" and out["answer"] == {"answer": 4.0}
    assert out["attempts"] == [
        {"tier": "nano", "ok": False, "reason": "samples disagree: 4.0 vs 5.0"}
    ]
    assert [m.content for m in models["flagship"].requests[0].messages] == [
        m.content for m in models["nano"].requests[0].messages
    ]
    flagship_record = [u for u in out["usage"] if u["tier"] == "flagship"][0]
    assert flagship_record["escalation_reason"] == "verifier_rejected"
    assert out["calibration"].startswith("toy@")
    for m in models.values():
        m.assert_complete()


async def test_policies_without_escalation_never_verify():
    models = _models(nano=[text_reply("7")])
    out = await _run(models, "all-nano")
    assert out["tier"] == "nano" and not out["verified"]
    assert [u["node"] for u in out["usage"]] == ["solve"]


async def test_static_starts_on_the_calibrated_tier(tmp_path):
    no_cal = await _run(_models(mini=[text_reply("1")]), "static")
    assert no_cal["tier"] == "mini"  # the declared tier
    cal = _calibration(tmp_path, start_tier="flagship")
    with_cal = await _run(_models(flagship=[text_reply("1")]), "static", cal)
    assert with_cal["tier"] == "flagship" and with_cal["route"]["tier"] == "flagship"


def _router(bias: float, threshold: float = 0.5) -> RouterModel:
    return RouterModel(weights=[0.0] * (BUCKETS + len(EXTRA)), bias=bias, threshold=threshold,
                       cheap_tier="nano", strong_tier="flagship")  # fmt: skip


async def test_router_policy_follows_the_calibrated_router(tmp_path):
    cheap = _calibration(tmp_path, start_tier="mini", router=_router(bias=3.0))
    out = await _run(_models(nano=[text_reply("1")]), "router", cheap)
    assert out["tier"] == "nano" and out["route"]["p_cheap"] > 0.9
    (tmp_path / "toy.json").unlink()
    strong = _calibration(tmp_path, start_tier="mini", router=_router(bias=-3.0))
    out = await _run(_models(flagship=[text_reply("1")]), "router", strong)
    assert out["tier"] == "flagship" and out["route"]["p_cheap"] < 0.1


async def test_router_policy_without_a_calibration_keeps_the_declared_tier():
    out = await _run(_models(mini=[text_reply("1")]), "router", None)
    assert out["tier"] == "mini" and out["route"]["p_cheap"] is None


async def test_random_routing_is_a_seeded_coin_per_task():
    mix = TierPolicy("random", start="random", mix=(("nano", 0.5), ("flagship", 0.5)),
                     escalate=False, human=False)  # fmt: skip
    tiers = []
    for i in range(12):
        models = {
            t: ScriptedChatModel(label=t, script=[text_reply("1")] * 2)
            for t in ("nano", "mini", "flagship")
        }
        tiers.append((await _run(models, mix, task_id=f"t{i}"))["tier"])
    again = (
        await _run(
            {
                t: ScriptedChatModel(label=t, script=[text_reply("1")])
                for t in ("nano", "mini", "flagship")
            },
            mix,
            task_id="t0",
        )
    )["tier"]
    assert set(tiers) == {"nano", "flagship"} and again == tiers[0]


async def test_an_unreadable_reply_is_repaired_then_escalated():
    models = _models(nano=[text_reply("no idea"), text_reply("still none")], mini=[text_reply("3")],
                     flagship=[text_reply("3")])  # fmt: skip
    out = await _run(models, "cascade")
    # nano's two unreadable replies climb inside the subagent (schema validation) to mini,
    # whose answer the verifier then checks against a sample that is not given: mini's second
    # request has no script left, so the sample fails and the cascade moves to flagship.
    assert out["tier"] == "flagship" and out["answer"] == {"answer": 3.0}
    reasons = [u["escalation_reason"] for u in out["usage"] if u["tier"] == "mini"]
    assert "schema_validation" in reasons


# The answer must be 4 (a check that needs no model call, like a unit test); one repair.
REPAIRING = Cascade(
    name="toy",
    subagent=SPEC.subagent,
    verifier=Verifier(
        "tests", check=lambda t, o: None if o["answer"] == 4 else f"got {o['answer']}", repairs=1
    ),
)


async def test_a_rejected_answer_goes_back_to_its_tier_with_the_reason_and_is_fixed_there():
    models = _models(nano=[text_reply("5"), text_reply("4")])
    out = await _run(models, "cascade", spec=REPAIRING)
    assert out["answer"] == {"answer": 4.0} and out["tier"] == "nano" and out["verified"]
    assert out["attempts"] == [
        {"tier": "nano", "ok": False, "reason": "got 5.0", "repair": True},
        {"tier": "nano", "ok": True, "reason": None},
    ]
    first, repair = models["nano"].requests
    # The same request, then the rejected answer and why, so the tier fixes it.
    assert [m.content for m in repair.messages[:2]] == [m.content for m in first.messages]
    assert [m.type for m in repair.messages[2:]] == ["ai", "human"]
    assert repair.messages[2].content == '{"answer": 5.0}'  # not text: its JSON
    assert "rejected: got 5.0" in str(repair.messages[3].content)
    assert [u.get("task_id") for u in out["usage"]] == ["q1@nano", "q1@nano~1"]  # both paid, kept
    assert _escalations(out) == 0  # a repair is no climb
    for m in models.values():
        m.assert_complete()


async def test_a_repair_that_is_rejected_too_climbs_with_the_original_request(tmp_path):
    cal = _calibration(tmp_path, start_tier="nano", ladder=["nano", "flagship"])
    models = _models(nano=[text_reply("5"), text_reply("6")], flagship=[text_reply("4")])
    out = await _run(models, "cascade", cal, spec=REPAIRING)
    assert out["tier"] == "flagship" and out["answer"] == {"answer": 4.0}
    assert [(a["tier"], a["ok"], a.get("repair", False)) for a in out["attempts"]] == [
        ("nano", False, True), ("nano", False, False)
    ]  # fmt: skip
    # The stronger tier answers the task as it would on its own: no feedback meant for nano.
    assert [m.content for m in models["flagship"].requests[0].messages] == [
        m.content for m in models["nano"].requests[0].messages
    ]
    assert _escalations(out) == 1
    for m in models.values():
        m.assert_complete()


async def test_the_calibration_says_how_many_repairs_a_run_makes(tmp_path):
    none = VerifierSettings(kind="tests", repairs=0)
    cal = _calibration(tmp_path, start_tier="nano", ladder=["nano", "flagship"], verifier=none)
    models = _models(nano=[text_reply("5")], flagship=[text_reply("4")])
    out = await _run(models, "cascade", cal, spec=REPAIRING)
    assert out["tier"] == "flagship" and len(models["nano"].requests) == 1  # climbed at once
    assert out["attempts"] == [{"tier": "nano", "ok": False, "reason": "got 5.0"}]
    # A file that does not say (written before the setting existed) keeps the declared repair.
    unsaid = _calibration(tmp_path, start_tier="nano", verifier=VerifierSettings(kind="tests"))
    models = _models(nano=[text_reply("5"), text_reply("4")])
    assert (await _run(models, "cascade", unsaid, spec=REPAIRING))["tier"] == "nano"


def test_a_named_calibration_that_is_missing_or_for_another_suite_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="run `tierflow calibrate`"):
        load_calibration(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_calibration(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text(json.dumps({"format": 0}))
    with pytest.raises(ConfigError, match="format 0"):
        load_calibration(tmp_path / "old.json")
    path = _calibration(tmp_path, start_tier="nano")
    with pytest.raises(ConfigError, match="calibrates 'toy', not 'gsm8k'"):
        load_calibration(path, suite="gsm8k")


def test_calibration_version_follows_its_content(tmp_path):
    a = load_calibration(_calibration(tmp_path, start_tier="nano"))
    b = load_calibration(_calibration(tmp_path, start_tier="nano"))
    c = load_calibration(_calibration(tmp_path, start_tier="flagship"))
    assert a.version == b.version != c.version and len(a.version) == 12


def test_trained_router_ranks_easy_texts_above_hard_ones():
    easy = [f"what is {i} plus {i}" for i in range(20)]
    hard = [f"a train leaves the station at {i} and a second train with cargo" for i in range(20)]
    w, b = train_router(easy + hard, [True] * 20 + [False] * 20)
    model = RouterModel(weights=w, bias=b, threshold=0.5, cheap_tier="nano", strong_tier="flagship")
    assert (
        model.p_cheap("what is 3 plus 3") > 0.5 > model.p_cheap("a train leaves the station at 9")
    )
    assert model.pick("what is 3 plus 3") == "nano"


def test_schema_verifier_names_what_is_wrong():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"type": "integer"}, "u": {"enum": ["c", "f"]}},
        "required": ["x"]}}}]  # fmt: skip
    assert schema_problems([{"name": "f", "arguments": {"x": 1, "u": "c"}}], tools) is None
    assert "missing required argument 'x'" in schema_problems(
        [{"name": "f", "arguments": {}}], tools
    )
    assert "unknown argument 'y'" in schema_problems(
        [{"name": "f", "arguments": {"x": 1, "y": 2}}], tools
    )
    assert "not of type integer" in schema_problems(
        [{"name": "f", "arguments": {"x": True}}], tools
    )
    assert "no function named 'g'" in schema_problems([{"name": "g", "arguments": {}}], tools)


def test_bad_policy_and_verifier_declarations_are_refused():
    with pytest.raises(ValueError, match="needs mix"):
        TierPolicy("r", start="random")
    with pytest.raises(ValueError):
        TierPolicy("r", start="sometimes")
    with pytest.raises(ValueError, match="agree_on"):
        Verifier("agreement")
    with pytest.raises(ValueError, match="repairs=-1"):
        Verifier("tests", repairs=-1)
    assert POLICIES["router+cascade"].escalate and POLICIES["router"].start == "router"
    assert VerifierSettings(kind="agreement").samples == 2


# --- the one check contract ------------------------------------------------------------------


def test_every_check_declaration_gives_one_verdict():
    said_reason = as_check(lambda task, out, env: "empty" if not out else None)
    said_verdict = as_check(lambda task, out, env: Verdict.reject("no", confidence=0.2))
    assert said_reason({}, {}, {}) == Verdict(False, "empty")
    assert said_reason({}, {"a": 1}, {}) == Verdict.accept()
    assert as_check(lambda task, out, env: "")({}, {}, {}).ok  # an empty reason accepts, as before
    assert said_verdict({}, {}, {}) == Verdict(False, "no", 0.2)
    # A cascade verifier's (task, output) check goes through the same contract.
    fmt = Verifier("format", check=lambda task, out: None if out.get("answer") else "empty")
    assert fmt.settle({}, {"answer": ""}) == Verdict.reject("empty")
    assert fmt.settle({}, {"answer": "4"}) == Verdict.accept()
    assert fmt.settle({}, None) == Verdict.reject("no valid answer")
    with pytest.raises(SpecError, match="from 0 to 1"):
        Verdict(True, confidence=1.5)


def test_a_verdict_is_recorded_in_one_shape():
    note = verdict_event(CheckSite.CASCADE, Verdict.reject("got 5"), cost_usd=0.002, requests=1,
                         subagent="solve", tier="nano")  # fmt: skip
    assert {k: note[k] for k in ("kind", "check", "ok", "reason", "confidence", "cost_usd",
                                 "requests", "subagent", "tier")} == {  # fmt: skip
        "kind": "verified", "check": "cascade", "ok": False, "reason": "got 5",
        "confidence": None, "cost_usd": 0.002, "requests": 1, "subagent": "solve", "tier": "nano",
    }  # fmt: skip


async def test_the_cascade_records_what_its_samples_cost():
    models = _models(nano=[text_reply("4", usage=(100, 5)), text_reply("4", usage=(100, 5))])
    out = await _run(models, "cascade")
    (note,) = [e for e in out["events"] if e["kind"] == "verified"]
    sampled = [u for u in out["usage"] if u["node"] == "verify"]
    assert (note["check"], note["ok"], note["tier"], note["requests"]) == (
        "cascade",
        True,
        "nano",
        1,
    )
    assert note["cost_usd"] == pytest.approx(sum(u["cost_usd"] for u in sampled)) and sampled
    assert out["attempts"] == [{"tier": "nano", "ok": True, "reason": None}]


class Word(BaseModel):
    text: str


class Label(BaseModel):
    label: str


async def test_subagent_and_answer_checks_are_recorded_as_verdicts(scripted, make_ctx, thread):
    # An old-style verifier (a reason) and a new-style one (a Verdict) behave the same.
    def by_reason(task: BaseModel, out: BaseModel, env) -> str | None:
        return None if getattr(out, "label", "") == "ok" else "say ok"

    def by_verdict(task: BaseModel, out: BaseModel, env) -> Verdict:
        return as_check(by_reason)(task, out, env)

    for verifier in (by_reason, by_verdict):
        sub = Subagent(name="label", description="label", tier="nano", task_schema=Word,
                       output_schema=Label, prompt="Label it.", verifier=verifier,
                       human_fallback=False)  # fmt: skip
        nano = scripted("nano", [tool_reply("finish", {"label": "no"})])
        mini = scripted("mini", [tool_reply("finish", {"label": "ok"})])
        graph = build_subagent(sub).compile(checkpointer=InMemorySaver())
        out = await graph.ainvoke(subagent_input("t1", Word(text="x"), {}), thread(),
                                  context=make_ctx({"nano": nano, "mini": mini}))  # fmt: skip
        notes = [(e["check"], e["ok"], e["reason"], e["task_id"])
                 for e in out["events"] if e["kind"] == "verified"]  # fmt: skip
        assert notes == [("subagent", False, "say ok", "t1"), ("subagent", True, None, "t1")]
        (step,) = out["results"]["t1"]["escalations"]
        assert (step["reason"], step["detail"]) == ("verifier_rejected", "say ok")
