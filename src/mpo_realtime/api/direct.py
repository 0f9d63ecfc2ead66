"""Direct dispatch of the hottest route, past FastAPI's per-request parameter solver.

A poll's own work (token, budget, cached job, a 100-byte answer) takes about 20 µs;
FastAPI 0.16x spends 70-100 µs more around it, walking the dependant tree, reading
each parameter from its multidict and opening two exit stacks. At 200 clients polling
that overhead is what decides the tail latency, so the poll route is answered here.

The route is still declared in FastAPI as usual: the OpenAPI description comes from it,
schemathesis tests it, and ``tests/acceptance/test_direct.py`` checks that the two paths
give the same answers. This middleware only replaces the generic solver: it matches the
route with the route's own pattern, calls the same dependency and endpoint functions the
route does, and maps exceptions with the app's own handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DirectDispatch", "DirectHandler"]

DirectHandler = Callable[[Request], Awaitable[Response]]


class DirectDispatch:
    """Answer requests matching one of ``routes`` with its handler; pass the rest on.

    Sits inside the trace-id and metrics middlewares (the answer gets its trace id,
    rate-limit headers, metrics and access log like any other) and outside FastAPI's
    router. An exception without a handler of the app propagates, to become the same
    500 answer as on the routed path.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[tuple[APIRoute, DirectHandler]]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # HEAD arrives here as GET: EdgeMiddleware, outside, answers it without the body.
        if scope["type"] == "http":
            for route, handler in self.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    scope["route"] = route
                    await self._answer(handler, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(
        self, handler: DirectHandler, scope: Scope, receive: Receive, send: Send
    ) -> None:
        request = Request(scope, receive, send)
        try:
            response = await handler(request)
        except Exception as exc:
            handle = _handler_for(scope, exc)
            if handle is None:
                raise
            response = await handle(request, exc)
        await response(scope, receive, send)


ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


def _handler_for(scope: Scope, exc: Exception) -> ExceptionHandler | None:
    """The app's handler for ``exc``'s class or nearest base, as Starlette looks it up.

    ``Exception`` itself is left out: an unexpected error goes on to the app's 500 path.
    """
    handlers = scope["app"].exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            handler: ExceptionHandler = handlers[cls]
            return handler
    return None
