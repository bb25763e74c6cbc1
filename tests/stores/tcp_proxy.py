"""
A TCP proxy for tests that need the network to fail between a client and a server.

Point the client at the proxy instead of the server, then break and heal the link::

    async with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
        ...                      # the client works through the proxy
        await proxy.cut()        # server "down": live connections reset, new ones refused
        ...
        await proxy.stall()      # silent partition: connections stay open, bytes are held
        ...
        await proxy.restore()    # back to normal, on the same port

`cut` is a crashed server or a closed firewall (errors come at once); `stall` is a lost
route (nothing comes back until a timeout fires). Both end with `restore`. Everything the
proxy opened is closed by `aclose` (or at the end of ``async with``).
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

__all__ = ["TcpProxy"]

_CHUNK = 65_536


class TcpProxy:
    """
    Forward connections from ``host:port`` (a free port by default) to ``target``.

    Args:
        target_host: Where connections are forwarded.
        target_port: The target's port.
        host: The address the proxy listens on.
    """

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._host = host
        self._port = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._transports: set[asyncio.WriteTransport] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    def __repr__(self) -> str:
        state = "stalled" if not self._flowing.is_set() else "listening" if self._server else "cut"
        return (
            f"<TcpProxy {self._host}:{self._port} -> {self._target[0]}:{self._target[1]} "
            f"{state}, {len(self._handlers)} connection(s)>"
        )

    @property
    def host(self) -> str:
        """
        The address clients connect to.
        """
        return self._host

    @property
    def port(self) -> int:
        """
        The port clients connect to; fixed by the first `start` and kept by `restore`.
        """
        if not self._port:
            msg = "The proxy has no port yet; await start() first."
            raise RuntimeError(msg)
        return self._port

    @property
    def connection_count(self) -> int:
        """
        How many client connections are open through the proxy.
        """
        return len(self._handlers)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """
        Start listening (on a free port the first time, then on the same port).
        """
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """
        Stop listening and reset every live connection: clients see errors at once.
        """
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        await self._drop_connections()

    async def stall(self) -> None:
        """
        Hold every byte in both directions: connections stay open but nothing arrives.

        New connections are still accepted (and held too); clients only notice through
        their own timeouts. `restore` delivers what was held.
        """
        self._flowing.clear()

    async def restore(self) -> None:
        """
        Undo `cut` or `stall`: listen on the same port again and let bytes flow.
        """
        self._flowing.set()
        await self.start()

    async def aclose(self) -> None:
        """
        Stop listening and close every connection; closing twice is harmless.
        """
        self._flowing.set()
        await self.cut()

    async def _drop_connections(self) -> None:
        for transport in list(self._transports):
            transport.abort()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _handle(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None  # always inside the server's task
        self._handlers.add(task)
        self._transports.add(client_out.transport)
        try:
            await self._forward(client_in, client_out)
        except asyncio.CancelledError:
            # Only cut() and aclose() cancel this task; ending normally keeps asyncio's
            # stream callback from logging the cancellation as an error.
            pass
        finally:
            self._transports.discard(client_out.transport)
            client_out.transport.abort()
            self._handlers.discard(task)

    async def _forward(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            server_in, server_out = await asyncio.open_connection(*self._target)
        except OSError:
            return  # the target is down: the client sees its connection reset
        self._transports.add(server_out.transport)
        try:
            await asyncio.gather(
                self._pipe(client_in, server_out), self._pipe(server_in, client_out)
            )
        finally:
            self._transports.discard(server_out.transport)
            server_out.transport.abort()

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(_CHUNK):
                await self._flowing.wait()
                sink.write(data)
                await sink.drain()
        # One side closed: close the other so that each peer sees the end.
        sink.transport.abort()
