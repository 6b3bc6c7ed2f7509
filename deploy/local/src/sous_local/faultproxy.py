"""A TCP proxy that can cut, delay and restore the connections it carries.

Tests and the chaos soak point a service at the proxy instead of at PostgreSQL or the broker, then
call `cut()` to make the network fail on demand: every live connection is closed and new ones are
refused until `restore()`. `latency(seconds)` delays every chunk forwarded in either direction.

Two ways to run it:
- in the test's own event loop: `await FaultProxy(host, port).start()`;
- in a background thread (for synchronous code, e.g. a soak driving subprocesses):
  `ThreadedFaultProxy(host, port).start()`; its `cut()`/`restore()` are thread-safe.
`python -m sous_local.faultproxy TARGET_HOST TARGET_PORT [--port N]` runs one in its own process
(SIGUSR1 cuts, SIGUSR2 restores).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import threading
from collections.abc import Coroutine
from typing import Any

_CHUNK = 64 * 1024


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._cut = False
        self._latency = 0.0
        self.accepted = 0
        self.refused = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._cut

    async def start(self) -> FaultProxy:
        # Keep the listening port across cut/restore so clients reconnect to the same address.
        self._server = await asyncio.start_server(self._accept, self.host, self._requested_port)
        self._requested_port = self.port
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._close_all()
        if self._pipes:
            # A pipe may be asleep in a long latency: stopping must not wait for it to wake up.
            for pipe in self._pipes:
                pipe.cancel()
            await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    def cut(self) -> None:
        """Close every live connection; refuse new ones until `restore()`."""
        self._cut = True
        self._close_all()

    def restore(self) -> None:
        self._cut = False

    def latency(self, seconds: float) -> None:
        """Delay every forwarded chunk by `seconds` (0 turns it off)."""
        self._latency = max(0.0, seconds)

    @property
    def live_connections(self) -> int:
        return len(self._writers) // 2

    def _close_all(self) -> None:
        for writer in list(self._writers):
            _abort(writer)
        self._writers.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        # A refused connection is closed at once (a reset, as if the server were gone) rather than held:
        # clients then see the failure quickly and their own retry logic is what gets exercised.
        if self._cut:
            self.refused += 1
            _abort(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            self.refused += 1
            _abort(client_writer)
            return
        if self._cut:
            self.refused += 1
            _abort(client_writer)
            _abort(upstream_writer)
            return
        self.accepted += 1
        self._writers.update((client_writer, upstream_writer))
        pair = (client_writer, upstream_writer)
        tasks = [
            asyncio.ensure_future(self._pipe(client_reader, upstream_writer, pair)),
            asyncio.ensure_future(self._pipe(upstream_reader, client_writer, pair)),
        ]
        self._pipes.update(tasks)
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._pipes.difference_update(tasks)
            for writer in pair:
                self._writers.discard(writer)
                _abort(writer)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                if self._latency:
                    await asyncio.sleep(self._latency)
                if self._cut:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # One side ending ends the connection: a half-open pair would hide the failure from the client.
            for other in pair:
                _abort(other)


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        with contextlib.suppress(Exception):
            transport.abort()


class ThreadedFaultProxy:
    """A `FaultProxy` running in its own thread and event loop, driven from synchronous code."""

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.proxy = FaultProxy(target_host, target_port, host=host, port=port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)

    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def address(self) -> str:
        return self.proxy.address

    def start(self) -> ThreadedFaultProxy:
        self._thread.start()
        self._call(self.proxy.start())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self.proxy.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def cut(self) -> None:
        self._loop.call_soon_threadsafe(self.proxy.cut)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(self.proxy.restore)

    def latency(self, seconds: float) -> None:
        self._loop.call_soon_threadsafe(self.proxy.latency, seconds)

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)


async def _serve(target_host: str, target_port: int, port: int) -> None:
    proxy = await FaultProxy(target_host, target_port, port=port).start()
    print(proxy.port, flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, proxy.cut)
    loop.add_signal_handler(signal.SIGUSR2, proxy.restore)
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    await done.wait()
    await proxy.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="TCP proxy; SIGUSR1 cuts every connection, SIGUSR2 restores")
    parser.add_argument("target_host")
    parser.add_argument("target_port", type=int)
    parser.add_argument("--port", type=int, default=0, help="listening port (0: a free one, printed on stdout)")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.target_host, args.target_port, args.port))


if __name__ == "__main__":
    main()
