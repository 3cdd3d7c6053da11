"""langsmith_evaluate with LangSmith configured: a named dataset is created once and reused.

A local stand-in for LangSmith's API keeps datasets, examples, experiments (sessions) and
feedback in memory; the real ``langsmith`` client talks to it over HTTP.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from langgraph.types import RetryPolicy

from tests.unit.test_langsmith_trace import Recorder, _Handler, serve_langsmith
from tierflow.evals import langsmith_evaluate
from tierflow.evals.scripted import models_for

FAST = RetryPolicy(initial_interval=0.0, jitter=False, max_attempts=2)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class LangSmithStandIn(Recorder):
    """The recorder (runs) plus datasets, examples, sessions and feedback."""

    def __init__(self) -> None:
        super().__init__()
        self.RequestHandlerClass = _DatasetHandler
        self.datasets: dict[str, dict[str, Any]] = {}
        self.examples: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.feedback: list[dict[str, Any]] = []


class _DatasetHandler(_Handler):
    server: LangSmithStandIn

    def _query(self) -> tuple[str, dict[str, list[str]]]:
        url = urlparse(self.path)
        return url.path.rstrip("/"), parse_qs(url.query)

    def do_GET(self) -> None:  # noqa: N802
        path, q = self._query()
        s = self.server
        self.server.paths.append(f"GET {path}")
        if path.endswith("/datasets"):
            found = [d for d in s.datasets.values() if d["name"] in q.get("name", [d["name"]])]
            return self._reply(200, found[: int(q.get("limit", ["100"])[0])])
        if "/datasets/" in path:
            return self._reply(200, s.datasets[path.rsplit("/", 1)[-1]])
        if path.endswith("/examples"):
            wanted = set(q.get("dataset", []))
            rows = [e for e in s.examples.values() if not wanted or e["dataset_id"] in wanted]
            offset = int(q.get("offset", ["0"])[0])
            return self._reply(200, rows[offset : offset + int(q.get("limit", ["100"])[0])])
        if path.endswith("/sessions"):
            names = q.get("name", [])
            found = [x for x in s.sessions.values() if not names or x["name"] in names]
            return self._reply(200, found)
        if "/sessions/" in path:
            return self._reply(200, s.sessions[path.rsplit("/", 1)[-1]])
        return super().do_GET()

    def do_POST(self) -> None:  # noqa: N802
        path, _ = self._query()
        s = self.server
        if path.endswith("/datasets"):
            body = json.loads(self._body())
            ds = {"id": str(uuid.uuid4()), "created_at": _now(), "modified_at": _now(),
                  "data_type": "kv", **body}  # fmt: skip
            s.datasets[ds["id"]] = ds
            s.paths.append(f"POST {path}")
            return self._reply(200, ds)
        if path.endswith("/examples/bulk"):
            created = []
            for row in json.loads(self._body()):
                example = {"created_at": _now(), "modified_at": _now(), **row}
                example.setdefault("id", str(uuid.uuid4()))
                s.examples[str(example["id"])] = example
                created.append(example)
            s.paths.append(f"POST {path}")
            return self._reply(200, created)
        if path.endswith("/sessions"):
            body = json.loads(self._body())
            session = {"id": str(uuid.uuid4()), "start_time": _now(), "tenant_id": str(uuid.uuid4()),
                       **body}  # fmt: skip
            s.sessions[session["id"]] = session
            s.paths.append(f"POST {path}")
            return self._reply(200, session)
        if path.endswith("/feedback"):
            s.feedback.append(json.loads(self._body()))
            s.paths.append(f"POST {path}")
            return self._reply(200, {"id": str(uuid.uuid4())})
        return super().do_POST()

    def _multipart(self, body: bytes) -> None:
        """Runs as the recorder keeps them, and ``feedback.<id>`` parts (the scores)."""
        super()._multipart(body)
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition") or ""
            if name.startswith("feedback."):
                self.server.feedback.append(json.loads(part.get_payload(decode=True) or b"{}"))

    def do_PATCH(self) -> None:  # noqa: N802
        path, _ = self._query()
        if "/sessions/" in path:
            self._body()
            self.server.paths.append(f"PATCH {path}")
            return self._reply(200, self.server.sessions.get(path.rsplit("/", 1)[-1], {}))
        return super().do_PATCH()


@pytest.fixture
def langsmith_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[LangSmithStandIn]:
    yield from serve_langsmith(LangSmithStandIn(), monkeypatch, tracing=False)


def test_a_named_dataset_is_created_then_reused(langsmith_api: LangSmithStandIn) -> None:
    kwargs: dict[str, Any] = {"profile": "openai", "models": models_for("triage"), "retry": FAST}
    first = list(langsmith_evaluate("triage", "tiered", 2, **kwargs))
    assert [d["name"] for d in langsmith_api.datasets.values()] == ["tierflow-triage"]
    assert len(langsmith_api.examples) == 2
    rows = [{r.key: r.score for r in row["evaluation_results"]["results"]} for row in first]
    assert [row["quality"] for row in rows] == [1.0, 1.0]

    second = list(langsmith_evaluate("triage", "all-nano", 3, **kwargs))  # one more item
    assert len(langsmith_api.datasets) == 1  # reused, not created again
    assert len(langsmith_api.examples) == 3  # only the missing example was added
    assert len(second) == 3
    assert langsmith_api.paths.count("POST /datasets") == 1
    # Both experiments were recorded against the dataset, with their scores as feedback.
    assert len(langsmith_api.sessions) == 2
    keys = {f.get("key") for f in langsmith_api.feedback}
    assert {"quality", "cost_usd"} <= keys
