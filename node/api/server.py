"""Serving the API: hypercorn's trio worker under a connection-limited listener.

`hypercorn.trio.serve` binds and accepts by itself and has no cap on concurrent
connections, so this module runs the same trio worker pieces (`TCPServer`, one per
connection, over the app wrapped by hypercorn) behind its own accept loop:

* the listening socket is bound here (port 0 works: `task_status.started` reports
  the real ``host:port``);
* at most `max_connections` connections are served at once; the accept loop stops
  accepting while at the cap, so further clients wait in the kernel's backlog
  (the `[api] max_connections` semantics) instead of being refused;
* a connection's failure is logged and ends that connection only;
* idle keep-alive connections close after `keep_alive_s`; a request whose body
  trickles in is cut off by the app (`body_timeout_s`, 408).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import structlog
import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import wrap_app
from starlette.types import ASGIApp

from .app import create_app, create_metrics_app
from .contract import NodeAPI

log = structlog.get_logger("ekklesia.api")

KEEP_ALIVE_S = 5.0
TaskStatus = Any  # trio.TaskStatus[str]: reports the bound "host:port" (trio-typing's stubs lack the name)


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` -> (host, port). Raises ValueError."""
    from node.config import host_port_problem

    problem = host_port_problem(listen)
    if problem is not None:
        raise ValueError(problem)
    host, _, port = listen.rpartition(":")
    if host.startswith("["):
        host = host[1:-1]
    return host, int(port)


def format_address(sockname: Any) -> str:
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class LimitedListener(trio.abc.Listener[trio.SocketStream]):
    """Accepts only while fewer than the semaphore's initial value of connections
    are open; the handler releases a slot when its connection ends."""

    def __init__(self, inner: trio.SocketListener, slots: trio.Semaphore) -> None:
        self.inner = inner
        self.slots = slots

    async def accept(self) -> trio.SocketStream:
        await self.slots.acquire()
        try:
            return await self.inner.accept()
        except BaseException:
            self.slots.release()
            raise

    async def aclose(self) -> None:
        await self.inner.aclose()


# hypercorn >= 0.15 hands the ASGI lifespan state to each connection; older ones do not.
_TAKES_STATE = "state" in inspect.signature(TCPServer.__init__).parameters


def _tcp_server(app: Any, config: HyperConfig, context: WorkerContext, stream: trio.SocketStream) -> TCPServer:
    if _TAKES_STATE:
        return TCPServer(app, config, context, {}, stream)  # type: ignore[arg-type]
    return TCPServer(app, config, context, stream)  # type: ignore[call-arg, arg-type]


def _hyper_config(keep_alive_s: float) -> HyperConfig:
    config = HyperConfig()
    config.keep_alive_timeout = keep_alive_s
    config.graceful_timeout = 1.0
    config.accesslog = None
    config.errorlog = logging.getLogger("ekklesia.api.hypercorn")
    config.include_server_header = False
    return config


async def serve_asgi(
    app: ASGIApp,
    listen: str,
    *,
    max_connections: int,
    keep_alive_s: float = KEEP_ALIVE_S,
    task_status: TaskStatus = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `listen` until cancelled. Reports the bound ``host:port``."""
    if max_connections < 1:
        raise ValueError("max_connections must be at least 1")
    host, port = split_listen(listen)
    config = _hyper_config(keep_alive_s)
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")  # type: ignore[arg-type]
    context = WorkerContext(None)
    listeners = await trio.open_tcp_listeners(port, host=host)
    slots = trio.Semaphore(max_connections)
    limited = [LimitedListener(lst, slots) for lst in listeners]
    bound = format_address(listeners[0].socket.getsockname())

    async def handle(stream: trio.SocketStream) -> None:
        try:
            await _tcp_server(wrapped, config, context, stream).run()
        except Exception as exc:  # one connection's failure must not stop the server
            log.error("api.connection_failed", error=repr(exc)[:500], exc_info=exc)
        finally:
            slots.release()

    try:
        async with trio.open_nursery() as nursery:
            log.info("api.listening", address=bound, max_connections=max_connections)
            task_status.started(bound)
            await trio.serve_listeners(handle, limited, handler_nursery=nursery)
    finally:
        for lst in listeners:
            with trio.CancelScope(shield=True):
                await lst.aclose()


async def serve_api(
    node: NodeAPI,
    listen: str,
    *,
    max_body_bytes: int,
    max_connections: int,
    admin_enabled: bool,
    serve_metrics: bool = True,
    task_status: TaskStatus = trio.TASK_STATUS_IGNORED,
    **app_options: Any,
) -> None:
    """The node's HTTP API on `listen` (``host:port``; port 0 picks a free port).
    `task_status.started` receives the bound ``host:port`` once it accepts.
    `app_options` go to `create_app` (max_wait_s, body_timeout_s, sse_heartbeat_s)."""
    app = create_app(
        node, max_body_bytes=max_body_bytes, admin_enabled=admin_enabled, serve_metrics=serve_metrics, **app_options
    )
    await serve_asgi(app, listen, max_connections=max_connections, task_status=task_status)


async def serve_metrics(
    node: NodeAPI,
    listen: str,
    *,
    max_connections: int = 16,
    task_status: TaskStatus = trio.TASK_STATUS_IGNORED,
) -> None:
    """Only `GET /metrics`, on a listener of its own (`[metrics] listen`)."""
    await serve_asgi(create_metrics_app(node), listen, max_connections=max_connections, task_status=task_status)
