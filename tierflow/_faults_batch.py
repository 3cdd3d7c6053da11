"""The stand-in's Files and Batch endpoints: a loopback OpenAI Batch API (see tierflow.faults).

``POST /v1/files`` (multipart, ``purpose=batch``) keeps a JSONL input file; ``POST /v1/batches``
creates a batch over it (``validating``); each ``GET /v1/batches/{id}`` moves it on
(``in_progress`` for ``polls`` polls, then it ends); at its end every line is answered as the
stand-in answers ``POST /v1/chat/completions``, into an output file (and an error file for
failed lines) read with ``GET /v1/files/{id}/content``. Faults, for error handling tests:
``fail_lines`` lines (the first ones seen) answer 500 in the error file; ``expire`` batches
(the first ones) expire with half their lines done, the rest ``batch_expired``. A file whose
lines name two models, or repeat a custom_id, fails validation, as at OpenAI.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from email import policy
from email.parser import BytesParser
from typing import Any

__all__ = ["BatchDesk"]

Answer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


class BatchDesk:
    """The Files and Batch endpoints of one stand-in; counts what it was sent.

    Attributes:
        created: batches created.
        lines: custom_id -> how many batches carried it.
    """

    def __init__(self, answer: Answer, polls: int = 1, fail_lines: int = 0, expire: int = 0):
        self.answer, self.polls = answer, polls
        self.fail_lines, self.expire = fail_lines, expire
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.lines: dict[str, int] = {}
        self.created = 0
        self._lock = threading.RLock()

    def post(self, path: str, content_type: str, raw: bytes) -> tuple[int, Any]:
        """Status and JSON reply of a POST to ``path``."""
        if path.rstrip("/") == "/v1/files":
            return self._upload(content_type, raw)
        if path.rstrip("/") == "/v1/batches":
            return self._create(json.loads(raw or b"{}"))
        if path.startswith("/v1/batches/") and path.endswith("/cancel"):
            batch = self.batches.get(path.split("/")[3])
            if batch is None:
                return 404, {"error": {"message": "no such batch"}}
            batch["status"] = "cancelled"
            return 200, batch
        return 404, {"error": {"message": f"no endpoint {path}"}}

    def get(self, path: str) -> tuple[int, Any]:
        """Status and reply (JSON, or bytes for file content) of a GET of ``path``."""
        parts = path.split("?")[0].strip("/").split("/")
        if parts[:2] == ["v1", "batches"] and len(parts) == 3 and parts[2] in self.batches:
            return 200, self._advance(self.batches[parts[2]])
        if parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[2] in self.files:
            return 200, self.files[parts[2]]
        if parts[:2] == ["v1", "files"] and len(parts) == 3 and parts[2] in self.files:
            return 200, self._file_object(parts[2], "batch")
        return 404, {"error": {"message": f"nothing at {path}"}}

    def _file_object(self, file_id: str, purpose: str) -> dict[str, Any]:
        return {"id": file_id, "object": "file", "bytes": len(self.files[file_id]),
                "created_at": int(time.time()), "filename": f"{file_id}.jsonl",
                "purpose": purpose, "status": "processed"}  # fmt: skip

    def _store(self, data: bytes, purpose: str) -> dict[str, Any]:
        with self._lock:
            file_id = f"file-{len(self.files) + 1:06d}"
            self.files[file_id] = data
        return self._file_object(file_id, purpose)

    def _upload(self, content_type: str, raw: bytes) -> tuple[int, Any]:
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = BytesParser(policy=policy.HTTP).parsebytes(head + raw)
        fields: dict[str, bytes] = {}
        for part in message.iter_parts():  # type: ignore[attr-defined]
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            fields[str(name)] = payload if isinstance(payload, bytes) else b""
        if "file" not in fields:
            return 400, {"error": {"message": "multipart upload without a 'file' part"}}
        return 200, self._store(fields["file"], fields.get("purpose", b"batch").decode())

    def _create(self, request: Mapping[str, Any]) -> tuple[int, Any]:
        if request.get("input_file_id") not in self.files:
            return 400, {"error": {"message": f"no file {request.get('input_file_id')}"}}
        if (
            request.get("endpoint") != "/v1/chat/completions"
            or request.get("completion_window") != "24h"
        ):
            return 400, {"error": {"message": "endpoint /v1/chat/completions, window 24h only"}}
        with self._lock:
            self.created += 1
            batch_id = f"batch_{self.created:06d}"
        now = int(time.time())
        batch = {"id": batch_id, "object": "batch", "endpoint": request["endpoint"],
                 "input_file_id": request["input_file_id"], "completion_window": "24h",
                 "status": "validating", "created_at": now, "output_file_id": None,
                 "error_file_id": None, "errors": None, "metadata": request.get("metadata"),
                 "request_counts": {"total": 0, "completed": 0, "failed": 0},
                 "_polls": self.polls}  # fmt: skip
        self.batches[batch_id] = batch
        return 200, _public(batch)

    def _advance(self, batch: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if batch["status"] in ("validating", "in_progress"):
                if batch["_polls"] > 0:
                    batch["_polls"] -= 1
                    batch["status"] = "in_progress"
                else:
                    self._finish(batch)
        return _public(batch)

    def _finish(self, batch: dict[str, Any]) -> None:
        lines = [
            json.loads(t) for t in self.files[batch["input_file_id"]].splitlines() if t.strip()
        ]
        ids = [line["custom_id"] for line in lines]
        models = {line["body"].get("model") for line in lines}
        if len(models) > 1 or len(set(ids)) != len(ids):
            why = "lines name two models" if len(models) > 1 else "a custom_id repeats"
            batch.update(status="failed", errors={"object": "list", "data": [
                {"code": "invalid_file", "message": why, "line": None, "param": None}]})  # fmt: skip
            return
        expires = self.expire > 0
        self.expire -= expires
        done: list[bytes] = []
        failed: list[bytes] = []
        for n, line in enumerate(lines):
            self.lines[line["custom_id"]] = self.lines.get(line["custom_id"], 0) + 1
            if expires and n >= len(lines) // 2:
                failed.append(_line(line, None, {"code": "batch_expired",
                                                 "message": "expired before it ran"}))  # fmt: skip
            elif self.fail_lines > 0:
                self.fail_lines -= 1
                body = {"error": {"message": "stand-in line failure", "type": "server_error"}}
                failed.append(_line(line, (500, body), None))
            else:
                status, reply = self._answered(line["body"])
                (done if status == 200 else failed).append(_line(line, (status, reply), None))
        out = self._store(b"".join(done), "batch_output")["id"] if done else None
        err = self._store(b"".join(failed), "batch_output")["id"] if failed else None
        batch.update(status="expired" if expires else "completed", output_file_id=out,
                     error_file_id=err, request_counts={"total": len(lines),
                     "completed": len(done), "failed": len(failed)})  # fmt: skip

    def _answered(self, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            return self.answer(body)
        except Exception as exc:  # noqa: BLE001 - a responder's bug fails its line, not the batch
            return 500, {"error": {"message": f"{type(exc).__name__}: {exc}"[:500]}}


def _line(line: Mapping[str, Any], answered: tuple[int, Any] | None, error: Any) -> bytes:
    response = None
    if answered is not None:
        response = {"status_code": answered[0], "request_id": f"req-{line['custom_id']}",
                    "body": answered[1]}  # fmt: skip
    row = {"id": f"batch_req_{line['custom_id']}", "custom_id": line["custom_id"],
           "response": response, "error": error}  # fmt: skip
    return (json.dumps(row) + "\n").encode()


def _public(batch: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}
