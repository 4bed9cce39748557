"""Who is asking, from where: set by RequestContextMiddleware, read by `record_event`."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    source_ip: str | None = None


_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "ketaclinic_request_context",
    default=RequestContext(),  # noqa: B039 (frozen dataclass, immutable)
)


def current() -> RequestContext:
    return _current.get()


def bind(ctx: RequestContext) -> contextvars.Token[RequestContext]:
    return _current.set(ctx)


def reset(token: contextvars.Token[RequestContext]) -> None:
    _current.reset(token)
