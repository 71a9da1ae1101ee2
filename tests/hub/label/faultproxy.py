"""A real HTTP fault-injection proxy for tests (stdlib only, loopback only, stops by itself).

It listens on 127.0.0.1 and forwards each request to an upstream server on 127.0.0.1, except that on a
seeded random fraction of requests it answers 429 (with Retry-After: 0) or 500, stalls past the client's
timeout, or drops the connection in the middle of the request; with `outage_after=N` the upstream
"goes down" after N forwarded requests (500 for everything after). One request per connection
(`Connection: close`), so every request is a fresh, independent draw.

    with FaultProxy(upstream_port, fault_rate=0.3, seed=0, delay=5.0) as proxy:
        url = proxy.url  # http://127.0.0.1:<port>
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from collections import Counter

FAULTS = ("429", "500", "delay", "drop")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class FaultProxy:
    """Forward HTTP/1.1 requests to 127.0.0.1:`upstream_port`, injecting faults on a seeded fraction."""

    def __init__(self, upstream_port: int, *, fault_rate: float = 0.3, seed: int = 0, delay: float = 5.0,
                 faults: tuple[str, ...] = FAULTS, upstream_host: str = "127.0.0.1",
                 outage_after: int | None = None, lifetime: float = 900.0) -> None:
        if upstream_host not in _LOOPBACK:
            raise ValueError(f"fault proxy forwards to loopback only, not {upstream_host!r}")
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        self.upstream = (upstream_host, upstream_port)
        self.fault_rate = fault_rate
        self.delay = delay
        self.faults = faults
        self.outage_after = outage_after  # after this many forwarded requests, answer 500 to everything
        self.lifetime = lifetime  # the proxy shuts itself down after this many seconds
        self.counts: Counter[str] = Counter()  # "ok" and each fault, per request
        self.forwarded: list[tuple[str, bytes]] = []  # (request line, body) of each forwarded request
        self.port = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="faultproxy", daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the proxy."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        """Start serving in a background thread; returns once the port is bound."""
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._loop is not None and self._stopped is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------------
    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.lifetime)
            server.close()

    def _draw(self) -> str:
        """The fate of the next request: "ok" or one of the faults (seeded, thread-safe)."""
        with self._lock:
            if self.outage_after is not None and self.counts["ok"] >= self.outage_after:
                self.counts["outage"] += 1
                return "500"
            fate = self._rng.choice(self.faults) if self._rng.random() < self.fault_rate else "ok"
            self.counts[fate] += 1
            return fate

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handle_one(reader, writer)
        except asyncio.CancelledError:  # the proxy is stopping: hang up on whatever is in flight
            writer.transport.abort()

    async def _handle_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                ConnectionError):
            writer.close()
            return
        fate = self._draw()
        try:
            if fate == "drop":  # headers read, body not: cut the connection mid-request
                writer.transport.abort()
                return
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            if fate == "delay":  # stall past the client's timeout, then hang up without answering
                await asyncio.sleep(self.delay)
                writer.transport.abort()
                return
            if fate in ("429", "500"):
                await self._reply(writer, int(fate))
                return
            await self._forward(lines, body, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.transport.abort()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, status: int) -> None:
        reason = {429: "Too Many Requests", 500: "Internal Server Error"}[status]
        payload = json.dumps({"error": {"message": f"injected {status} by the fault proxy", "type": "fault"}}
                             ).encode()
        extra = "Retry-After: 0\r\n" if status == 429 else ""
        writer.write((f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{extra}"
                      f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n").encode() + payload)
        await writer.drain()
        writer.close()

    async def _forward(self, lines: list[str], body: bytes, writer: asyncio.StreamWriter) -> None:
        """Send the request upstream with `Connection: close` and relay the whole answer back."""
        self.forwarded.append((lines[0], body))
        headers = [line for line in lines[1:] if line and line.split(":", 1)[0].strip().lower()
                   not in ("connection", "keep-alive", "host")]
        host, port = self.upstream
        request = "\r\n".join([lines[0], f"Host: {host}:{port}", *headers, "Connection: close", "", ""])
        up_reader, up_writer = await asyncio.open_connection(host, port)
        try:
            up_writer.write(request.encode("latin-1") + body)
            await up_writer.drain()
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()
        writer.close()
