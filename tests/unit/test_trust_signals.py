"""Trust signals from token log-probabilities: the local server's logprobs, trust.py, the verifier.

The server side (``tierflow.local._logprobs``) wraps a stand-in ``Llama`` that samples from
fixed logits rows, so the recorded log-probabilities and their OpenAI shape are checked
without a model; the span confidences run on hand-built payloads; the last test sends a real
``ChatOpenAI(logprobs=True)`` request over HTTP to the recording stub and reads its answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from tests.chat_stub import Reply, completion, recording_chat_server
from tierflow.checks import CheckSite, verdict_event
from tierflow.errors import InputError, SpecError
from tierflow.local._logprobs import (
    TokenRecorder,
    completion_logprobs,
    logprob_chat_completion,
    logprob_completion,
    recorded_sample,
)
from tierflow.nodes.verifier import Verifier
from tierflow.trust import (
    LOGPROBS,
    call_confidence,
    field_confidence,
    letter_confidence,
    logprob_params,
    number_confidence,
    rates,
    threshold_for_fpr,
    token_logprobs,
)

VOCAB = ["A", "B", "C", " A", "4", "2", "<eos>"]  # a stand-in tokenizer: id -> text


def _log_softmax(row: Any) -> np.ndarray:
    x = np.asarray(row, dtype=np.float64)
    return x - (x.max() + np.log(np.exp(x - x.max()).sum()))


# --- the server side: recording during sampling ----------------------------------------------
def test_recorder_keeps_the_sampled_tokens_logprob_and_the_top_k() -> None:
    rec = TokenRecorder(top=2)
    row = np.array([2.0, 1.0, 0.0, 1.5, -1.0, -2.0, -3.0], dtype=np.float32)
    rec.record(row, token=1)
    (step,) = rec.steps
    want = _log_softmax(row)
    assert step.token == 1 and step.logprob == pytest.approx(want[1], abs=1e-6)
    assert [i for i, _ in step.top] == [0, 3]  # most likely first, whatever was sampled
    assert [lp for _, lp in step.top] == pytest.approx([want[0], want[3]], abs=1e-6)
    assert math.isclose(sum(math.exp(v) for v in want), 1.0)


def test_recorder_without_top_keeps_only_the_chosen_token() -> None:
    rec = TokenRecorder(top=0)
    rec.record(np.zeros(5, dtype=np.float32), token=4)
    assert rec.steps[0].top == () and rec.steps[0].logprob == pytest.approx(math.log(1 / 5))


class StandInLlama:
    """Samples the argmax of a fixed logits row per step, as ``Llama.sample`` with temp 0."""

    _logits_all = False

    def __init__(self, rows: Sequence[Sequence[float]]) -> None:
        self.rows = [np.asarray(r, dtype=np.float32) for r in rows]
        self.step = 0
        self.seen: dict[str, Any] = {}

    def sample(self, idx: int | None = None) -> int:
        return int(np.argmax(self.rows[self.step]))

    def detokenize(self, tokens: list[int], prev_tokens: list[int] | None = None) -> bytes:
        return "".join("" if VOCAB[t] == "<eos>" else VOCAB[t] for t in tokens).encode()

    def create_completion(self, prompt: str = "", **kwargs: Any) -> Any:
        self.seen = dict(kwargs)
        if kwargs.get("stream"):
            return self._chunks()
        out: list[int] = []
        for step in range(len(self.rows)):
            self.step = step
            out.append(type(self).sample(self, idx=None))
            if VOCAB[out[-1]] == "<eos>":
                break
        text = self.detokenize(out).decode()[: kwargs.get("cut", 99)]
        return {"choices": [{"text": text, "logprobs": None}]}

    def _chunks(self) -> Iterator[dict[str, Any]]:
        """One chunk per sampled token, computed when asked for, as llama-cpp-python streams."""
        for step in range(len(self.rows)):
            self.step = step
            token = type(self).sample(self, idx=None)
            text = "" if VOCAB[token] == "<eos>" else VOCAB[token]
            yield {"choices": [{"text": text, "logprobs": None}]}

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        return type(self).create_completion(self, prompt="p", logprobs=kwargs.get("top_logprobs"))


def _patched(rows: Sequence[Sequence[float]]) -> StandInLlama:
    class Patched(StandInLlama):
        pass

    Patched.sample = recorded_sample(  # type: ignore[method-assign]
        StandInLlama.sample, logits_of=lambda llama, idx: llama.rows[llama.step]
    )
    Patched.create_completion = logprob_completion(StandInLlama.create_completion)  # type: ignore[method-assign]
    Patched.create_chat_completion = logprob_chat_completion(  # type: ignore[method-assign]
        StandInLlama.create_chat_completion
    )
    return Patched(rows)


ROWS = [[0, 0, 0, 0, 3.0, 1.0, 0], [0, 0, 0, 0, 1.0, 2.0, 0], [0, 0, 0, 0, 0, 0, 5.0]]


def test_completion_gets_logprobs_in_the_completion_shape_without_logits_all() -> None:
    llama = _patched(ROWS)
    done = llama.create_completion(prompt="Q:", logprobs=1)
    lp = done["choices"][0]["logprobs"]
    assert done["choices"][0]["text"] == "42"
    assert llama.seen["logprobs"] is None  # llama-cpp-python's own check never sees it
    assert lp["tokens"] == ["4", "2"]  # the end-of-stream token wrote no text: not listed
    assert lp["text_offset"] == [2, 3]  # after the prompt, as llama-cpp-python counts
    assert lp["token_logprobs"] == pytest.approx(
        [_log_softmax(ROWS[0])[4], _log_softmax(ROWS[1])[5]], abs=1e-6
    )
    assert lp["top_logprobs"][0] == {"4": pytest.approx(_log_softmax(ROWS[0])[4], abs=1e-6)}


def test_tokens_past_a_stop_sequence_are_dropped() -> None:
    llama = _patched(ROWS)
    done = llama.create_completion(prompt="", logprobs=0, cut=1)  # text "4": "2" was the stop
    assert done["choices"][0]["logprobs"]["tokens"] == ["4"]


def test_a_streamed_completion_carries_each_chunks_logprobs() -> None:
    llama = _patched(ROWS)
    chunks = list(llama.create_completion(prompt="Q:", logprobs=0, stream=True))
    assert [c["choices"][0]["logprobs"]["tokens"] for c in chunks[:2]] == [["4"], ["2"]]
    assert chunks[1]["choices"][0]["logprobs"]["text_offset"] == [3]
    assert chunks[2]["choices"][0]["logprobs"] is None  # end of stream: no text, no token


def test_requests_without_logprobs_are_unchanged() -> None:
    llama = _patched(ROWS)
    done = llama.create_completion(prompt="", max_tokens=3)
    assert done["choices"][0]["logprobs"] is None and "logprobs" not in llama.seen


def test_chat_logprobs_true_alone_records_and_converts_to_openai_shape() -> None:
    from llama_cpp.llama_chat_format import _convert_text_completion_logprobs_to_chat

    llama = _patched(ROWS)
    done = llama.create_chat_completion(messages=[], logprobs=True)  # no top_logprobs
    chat = _convert_text_completion_logprobs_to_chat(done["choices"][0]["logprobs"])
    content = chat["content"] if chat else None
    assert content is not None and [c["token"] for c in content] == ["4", "2"]
    assert content[1]["top_logprobs"][0]["token"] == "2"
    toks = token_logprobs(chat)
    assert toks is not None and toks[1].start == 1


def test_completion_logprobs_trims_to_the_text_bytes() -> None:
    rec = TokenRecorder(top=1)
    for token in (4, 5, 6):
        rec.record(np.arange(7, dtype=np.float32), token)
    lp = completion_logprobs(rec.steps, "42", lambda t, _: VOCAB[t].encode(), 1)
    assert lp["tokens"] == ["4", "2"] and list(lp["top_logprobs"][0]) == ["<eos>", "4"]


# --- trust.py: span confidences on hand-built payloads -----------------------------------------
def _content(*tokens: tuple[str, float, Sequence[tuple[str, float]]]) -> dict[str, Any]:
    return {"content": [
        {"token": t, "logprob": lp, "bytes": list(t.encode()),
         "top_logprobs": [{"token": a, "logprob": b, "bytes": None} for a, b in top]}
        for t, lp, top in tokens
    ], "refusal": None}  # fmt: skip


def test_a_confident_letter() -> None:
    lp = _content(("C", math.log(0.8), [("C", math.log(0.8)), (" C", math.log(0.1)),
                                        ("B", math.log(0.05))]))  # fmt: skip
    assert letter_confidence(lp, "C", variants=False) == pytest.approx(0.8)
    assert letter_confidence(lp, "C") == pytest.approx(0.9)
    assert letter_confidence(lp, "C", share=True) == pytest.approx(0.9 / 0.95)
    assert letter_confidence(lp, "A") is None  # not the letter the reply gave
    assert field_confidence(_content(('{"answer": "', 0.0, []), ("C", -0.3, []),
                                     ('"}', 0.0, [])), "answer") == pytest.approx(math.exp(-0.3))  # fmt: skip


def test_a_hesitant_number() -> None:
    lp = _content(("3 + 4 = ", 0.0, []), ("7", math.log(0.99), []), (". So the answer is ", 0.0, []),
                  ("1", math.log(0.9), []), ("2", math.log(0.4), []), (".", 0.0, []))  # fmt: skip
    assert number_confidence(lp, "min") == pytest.approx(0.4)  # the final number, not the 7
    assert number_confidence(lp, "mean") == pytest.approx(0.65)
    assert number_confidence(lp, "geo") == pytest.approx(math.sqrt(0.36))
    assert number_confidence(_content(("no number", 0.0, []))) is None


def test_a_bfcl_call_counts_the_name_and_argument_values_only() -> None:
    lp = _content(('{"calls": [{"name": "', math.log(0.2), []), ("get", math.log(0.9), []),
                  ("_weather", 0.0, []), ('", "arguments": {"city": "', math.log(0.1), []),
                  ("Paris", math.log(0.7), []), ('", "days": ', 0.0, []), ("3", math.log(0.5), []),
                  ("}}]}", math.log(0.3), []))  # fmt: skip
    # the structural tokens (0.1, 0.2, 0.3) do not count: grammar-forced or not, they are syntax
    assert call_confidence(lp, "min") == pytest.approx(0.5)
    assert call_confidence(lp, "mean") == pytest.approx((0.9 + 1 + 0.7 + 0.5) / 4)
    forced = _content(('{"city": "', 0.0, []), ("Rome", math.log(0.6), []), ('"}', 0.0, []))
    assert call_confidence(forced) == pytest.approx(0.6)  # a forced call: its arguments


def test_no_logprobs_gives_none() -> None:
    from langchain_core.messages import AIMessage

    for source in (AIMessage("C"), {"content": None}, {}, None):
        assert letter_confidence(source) is None and number_confidence(source) is None
        assert call_confidence(source) is None


def test_thresholds_by_calibration() -> None:
    scores, right = [0.95, 0.9, 0.7, 0.6, 0.2, None], [True, True, True, False, False, False]
    t = threshold_for_fpr(scores, right, max_fpr=0.0)
    assert t == 0.7 and rates(scores, right, t) == (1.0, 0.0)
    assert threshold_for_fpr(scores, right, max_fpr=0.34) == 0.6
    above = threshold_for_fpr([0.5], [False], 0.0)  # no threshold meets it: keep nothing
    assert above > 0.5 and rates([0.5], [False], above) == (0.0, 0.0)
    with pytest.raises(InputError):
        threshold_for_fpr(scores, right, 2.0)


def test_logprobs_are_asked_only_of_endpoints_that_give_them() -> None:
    from tierflow.config import load_config

    cfg = load_config("local", require_keys=False)
    local = [cfg.tier(n) for n in cfg.ladder if cfg.tier(n).local_model]
    assert local and all(
        logprob_params(s, 3) == {"logprobs": True, "top_logprobs": 3} for s in local
    )
    reasoning = type("S", (), {"local_model": None, "base_url": "https://api.openai.com/v1",
                               "reasoning_effort": "low"})()  # fmt: skip
    assert logprob_params(reasoning) == {}


# --- the verifier ------------------------------------------------------------------------------
def test_confidence_verifier_accepts_and_rejects_by_threshold_with_no_request() -> None:
    v = Verifier("confidence", signal=lambda lp, out: letter_confidence(lp, out["answer"]),
                 threshold=0.7)  # fmt: skip
    sure = _content(("B", math.log(0.9), []))
    unsure = _content(("B", math.log(0.5), []))
    ok = v.settle({}, {"answer": "B"}, {LOGPROBS: sure})
    assert ok is not None and ok.ok and ok.confidence == pytest.approx(0.9)
    no = v.settle({}, {"answer": "B"}, {LOGPROBS: unsure})
    assert no is not None and not no.ok and "below 0.700" in (no.reason or "")
    blind = v.settle({}, {"answer": "B"}, {})
    assert blind is not None and not blind.ok  # no logprobs: climb, never trust blind
    note = verdict_event(CheckSite.CASCADE, ok, cost_usd=0.0, requests=0, subagent="solve")
    assert note["requests"] == 0 and note["confidence"] == pytest.approx(0.9)


def test_confidence_verifier_runs_the_deterministic_check_first() -> None:
    v = Verifier("confidence", check=lambda t, o: "not a number", signal=lambda lp, o: 1.0,
                 threshold=0.1)  # fmt: skip
    verdict = v.settle({}, {"answer": "x"}, {LOGPROBS: _content(("1", 0.0, []))})
    assert verdict is not None and verdict.reason == "not a number"
    with pytest.raises(SpecError):
        Verifier("confidence")
    with pytest.raises(SpecError):
        Verifier("confidence", signal=lambda lp, o: 1.0, threshold=1.5)


def test_benchmark_variants_use_the_suite_signals() -> None:
    from tierflow.graphs.benchmarks.specs import SIGNALS, confidence_verifier

    lp = _content(("So the answer is ", 0.0, []), ("1", math.log(0.8), []), ("8", 0.0, []))
    v = confidence_verifier("gsm8k", "number_min", 0.75)
    assert v.settle({}, {"answer": 18.0}, {LOGPROBS: lp}).ok  # type: ignore[union-attr]
    assert not v.settle({}, {"answer": math.inf}, {LOGPROBS: lp}).ok  # type: ignore[union-attr]
    assert set(SIGNALS) == {"gsm8k", "mmlu", "bfcl"}
    with pytest.raises(SpecError):
        confidence_verifier("mmlu", "number_min", 0.5)


# --- over HTTP: ChatOpenAI(logprobs=True) against the stub, read by trust.py -------------------
def test_chat_openai_logprobs_over_http_reach_trust() -> None:
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    lp = _content(("A", math.log(0.6), [("A", math.log(0.6)), (" A", math.log(0.2)),
                                        ("B", math.log(0.1))]))  # fmt: skip

    def reply(body: dict[str, Any]) -> Reply:
        answer = completion({"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}, "A")
        answer["choices"][0]["logprobs"] = lp
        return 200, answer

    with recording_chat_server(reply) as rec:
        llm = ChatOpenAI(
            model="m", base_url=rec.url, api_key=SecretStr("x"), timeout=10, max_retries=0
        )
        message = llm.bind(logprobs=True, top_logprobs=3).invoke("Which letter?")
    assert rec.bodies[0]["logprobs"] is True and rec.bodies[0]["top_logprobs"] == 3
    assert letter_confidence(message, "A", variants=False) == pytest.approx(0.6)
    assert letter_confidence(message, "A") == pytest.approx(0.8)
