"""The response cache as a file: export, import into another cache, refuse damaged files."""

from __future__ import annotations

import gzip
import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from typer.testing import CliRunner

from tierflow.cache import CacheFileError, ResponseCache, request_key
from tierflow.cli import app


def _key(text: str) -> tuple[str, str]:
    return request_key("nano-model", [HumanMessage(text)], [], None, {"max_tokens": 16})


@pytest.fixture
def filled(tmp_path):
    cache = ResponseCache(tmp_path / "a.sqlite")
    cache.put(_key("2+2?"), AIMessage("4", usage_metadata={"input_tokens": 5, "output_tokens": 1,
                                                          "total_tokens": 6}), latency_s=0.25)  # fmt: skip
    cache.put(_key("3+3?"), AIMessage("6"), latency_s=1.5)
    return cache


def test_export_then_load_answers_the_same_requests_elsewhere(filled, tmp_path):
    out = tmp_path / "responses.jsonl.gz"
    assert filled.export(out) == 2
    other = ResponseCache(tmp_path / "b.sqlite")
    assert other.load(out) == 2
    message, latency = other.get(_key("2+2?"))
    assert message.content == "4" and latency == 0.25
    assert message.usage_metadata["output_tokens"] == 1  # what the report costs it from
    assert other.get(_key("3+3?"))[1] == 1.5
    assert other.load(out) == 0  # nothing new the second time


def test_export_is_byte_identical_for_the_same_responses(filled, tmp_path):
    filled.export(tmp_path / "one.gz")
    copy = ResponseCache(tmp_path / "copy.sqlite")
    copy.load(tmp_path / "one.gz")
    copy.export(tmp_path / "two.gz")
    assert (tmp_path / "one.gz").read_bytes() == (tmp_path / "two.gz").read_bytes()


def test_load_keeps_what_the_cache_already_holds(filled, tmp_path):
    out = tmp_path / "r.gz"
    filled.export(out)
    other = ResponseCache(tmp_path / "b.sqlite")
    other.put(_key("2+2?"), AIMessage("four"), latency_s=9.0)
    assert other.load(out) == 1
    assert other.get(_key("2+2?"))[0].content == "four"


def test_a_damaged_file_adds_nothing_and_names_the_line(filled, tmp_path):
    good = tmp_path / "good.gz"
    filled.export(good)
    lines = gzip.open(good, "rt").read().splitlines()
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wt") as f:
        f.write(lines[0] + "\n" + json.dumps({"prompt": "p", "llm": "l"}) + "\n")
    other = ResponseCache(tmp_path / "b.sqlite")
    with pytest.raises(CacheFileError, match=r"bad.gz:2: not a cached response .*value"):
        other.load(bad)
    assert len(other) == 0  # the good first line was not written either
    (tmp_path / "plain.gz").write_text("not gzip")
    with pytest.raises(CacheFileError, match="not a gzipped JSON-lines"):
        other.load(tmp_path / "plain.gz")
    with pytest.raises(CacheFileError, match="no such response file"):
        other.load(tmp_path / "missing.gz")


def test_a_human_message_is_not_a_response(tmp_path):
    bad = tmp_path / "human.gz"
    row = {"prompt": "p", "llm": "l", "value": {"type": "human", "data": {"content": "hi"}}}
    with gzip.open(bad, "wt") as f:
        f.write(json.dumps(row) + "\n")
    with pytest.raises(CacheFileError, match="human message, not an AI message"):
        ResponseCache(tmp_path / "c.sqlite").load(bad)


def test_cli_exports_and_imports(filled, tmp_path):
    out = tmp_path / "r.jsonl.gz"
    runner = CliRunner()
    res = runner.invoke(app, ["cache", "export", str(out), "--cache", str(filled.path)])
    assert res.exit_code == 0, res.output
    assert "2 responses" in res.output
    target = tmp_path / "new.sqlite"
    res = runner.invoke(app, ["cache", "import", str(out), "--cache", str(target)])
    assert res.exit_code == 0, res.output
    assert "2 new responses" in res.output
    assert ResponseCache(target).get(_key("3+3?"))[0].content == "6"
    res = runner.invoke(app, ["cache", "import", str(tmp_path / "nope.gz"), "--cache", str(target)])
    assert res.exit_code == 2 and "no such response file" in res.output
