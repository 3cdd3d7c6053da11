"""Why a request attempt failed, read from the exception's types, and whether it may be billed.

A provider bills the work it did. A request that never reached it (refused connection, DNS or
TLS failure, connect timeout) and one it answered with an error status (429, 5xx, 4xx) cost
nothing; a request that timed out after it was sent, or whose connection dropped before the
reply was read, may have been processed and is charged at its reservation.

The exception types come from httpx (and httpx2, the fork recent openai releases use) and
openai, looked up only when loaded: an exception of a module cannot exist before the module
does, and the CLI must stay cheap to import.
"""

from __future__ import annotations

import socket
import ssl
import sys
from collections.abc import Iterator, Sequence
from urllib.parse import urlparse

from tierflow.protocol import FailureCause

__all__ = [
    "BILLED_CAUSES",
    "failure_cause",
    "unreachable_fix",
    "never_sent_detail",
    "unreached_endpoints",
]

# The causes of failed attempts that are charged at their reservation (billing "estimated").
BILLED_CAUSES = frozenset(
    {
        FailureCause.POSSIBLY_PROCESSED,
        FailureCause.CANCELLED_AFTER_SEND,
        FailureCause.DIED_AFTER_SEND,
    }
)

_HTTP_MODULES = ("httpx", "httpx2")
# Raised before any byte of the request left: no connection, or none from the pool.
_NEVER_SENT_HTTP = ("ConnectError", "ConnectTimeout", "PoolTimeout", "UnsupportedProtocol")
_NEVER_SENT_BUILTIN = (ConnectionRefusedError, socket.gaierror, ssl.SSLCertVerificationError)
# Raised after the request may have reached the server: a timeout other than the connect
# phase's, or a connection lost while the request or its reply was in transit.
_MAYBE_PROCESSED_HTTP = ("TimeoutException", "NetworkError", "RemoteProtocolError")
_MAYBE_PROCESSED_BUILTIN = (TimeoutError, ConnectionError)


def _chain(exc: BaseException, hidden: bool = False) -> Iterator[BaseException]:
    """``exc`` and what caused it, outermost first (langchain-openai wraps openai wraps httpx).

    ``hidden`` also follows a context raised ``from None`` (httpcore hides the OS error of a
    refused connection that way): worth showing, not worth deciding on.
    """
    seen: set[int] = set()
    at: BaseException | None = exc
    while at is not None and id(at) not in seen and len(seen) < 32:
        seen.add(id(at))
        yield at
        shown = hidden or not at.__suppress_context__
        at = at.__cause__ or (at.__context__ if shown else None)


def _http_types(names: Sequence[str]) -> tuple[type[BaseException], ...]:
    found = []
    for module in filter(None, (sys.modules.get(m) for m in _HTTP_MODULES)):
        found += [getattr(module, n) for n in names if isinstance(getattr(module, n, None), type)]
    return tuple(found)


def _openai_types(*names: str) -> tuple[type[BaseException], ...]:
    module = sys.modules.get("openai")
    return tuple(getattr(module, n) for n in names) if module is not None else ()


def failure_cause(exc: BaseException) -> FailureCause:
    """What the failed attempt that raised ``exc`` did at the provider.

    The outermost error that tells decides: openai's connection and timeout errors wrap the
    httpx error that says in which phase the request failed (a connect timeout was never
    sent); alone, they count as possibly processed.

    Example:
        >>> failure_cause(ConnectionRefusedError(111, "Connection refused")).value
        'never sent'
        >>> failure_cause(TimeoutError()).value
        'possibly processed'
    """
    status = (*_openai_types("APIStatusError"), *_http_types(("HTTPStatusError",)))
    never = (*_http_types(_NEVER_SENT_HTTP), *_NEVER_SENT_BUILTIN)
    maybe = (*_http_types(_MAYBE_PROCESSED_HTTP), *_MAYBE_PROCESSED_BUILTIN)
    wrapper = _openai_types("APIConnectionError")  # APITimeoutError is one too
    wrapped = False
    for link in _chain(exc):
        if isinstance(link, status):
            return FailureCause.ERROR_STATUS
        if isinstance(link, never):
            return FailureCause.NEVER_SENT
        if isinstance(link, maybe):
            return FailureCause.POSSIBLY_PROCESSED
        wrapped = wrapped or isinstance(link, wrapper)
    return FailureCause.POSSIBLY_PROCESSED if wrapped else FailureCause.OTHER


def _loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def unreachable_fix(tier: str, url: str) -> str:
    """What to do about an endpoint that could not be reached (no connection was made)."""
    if _loopback(url):
        return "start the local servers with `tierflow local up`"
    return f"check tiers.{tier}.base_url in the profile, and the network"


def never_sent_detail(exc: BaseException, tier: str, url: str) -> str:
    """Which endpoint refused, why (the innermost error), and the fix; ``url`` is public."""
    root = list(_chain(exc, hidden=True))[-1]
    why = f"{type(root).__name__}: {root}" if str(root) else type(root).__name__
    return (
        f"never sent: {url} (tier {tier}) could not be reached ({why}); "
        f"{unreachable_fix(tier, url)}"
    )


def unreached_endpoints(records: Sequence[dict]) -> dict[str, list[str]] | None:
    """Endpoint -> tiers when every request of ``records`` was never sent, else None.

    None also when there are no records: a run that made no request is not "unreachable".
    """
    if not records or any(r.get("cause") != FailureCause.NEVER_SENT for r in records):
        return None
    out: dict[str, list[str]] = {}
    for rec in records:
        tiers = out.setdefault(str(rec.get("endpoint")), [])
        if rec.get("tier") not in tiers:
            tiers.append(str(rec.get("tier")))
    return out
