"""RemoteRunner's errors without a server: each says which server and what to do."""

from __future__ import annotations

import pytest

from tierflow.remote import RemoteError, RemoteRunner
from tierflow.testing import free_port


@pytest.mark.parametrize("call", ["run", "resume", "state"])
async def test_an_unreachable_server_is_a_clear_error(call: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    runner = RemoteRunner(url, timeout_s=5)
    with pytest.raises(RemoteError, match=rf"no LangGraph server answers at {url}.*--remote"):
        if call == "run":
            await runner.run("codebase_qa", {"request": "where?"})
        elif call == "resume":
            await runner.resume("t-1", {"i": "approve"})
        else:
            await runner.state("t-1")
