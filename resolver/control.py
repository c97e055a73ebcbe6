"""The control endpoint: a loopback-only TCP port taking one JSON request per line.

``rootwalk cache flush NAME [--subtree]`` and ``rootwalk cache stats`` talk to it. Requests
run on the resolver's event loop, so they see and change the caches without locks.

    {"command": "flush", "name": "example.lab.", "subtree": true}  ->  {"ok": true, "removed": 12}
    {"command": "flush"}                                            ->  everything
    {"command": "stats"}                                            ->  {"ok": true, "stats": {...}}
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import dns.exception
import dns.name

from resolver.names import InvalidNameError, parse_name

log = logging.getLogger(__name__)

MAX_REQUEST = 4096


def is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


class ControlServer:
    """Answers control requests with ``flush`` and ``stats`` callbacks."""

    def __init__(
        self,
        flush: Callable[[dns.name.Name | None, bool], int | Awaitable[int]],
        stats: Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]],
    ) -> None:
        self._flush = flush
        self._stats = stats
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        if not is_loopback(host):
            raise OSError(f"the control endpoint listens on loopback only, not {host}")
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_REQUEST)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("control endpoint on %s:%d", host, self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            reply = await self.handle(line)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError) as exc:
            log.debug("control connection dropped: %s", exc)
        finally:
            writer.close()

    async def handle(self, line: bytes) -> dict[str, Any]:
        """One request line -> one reply; errors are replies, never exceptions."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("expected a JSON object")
            command = request.get("command")
            if command == "flush":
                name_text = request.get("name")
                name = parse_name(name_text) if isinstance(name_text, str) else None
                removed = await _settle(self._flush(name, bool(request.get("subtree", False))))
                log.info("flushed %d entries for %s", removed, name or "everything")
                return {"ok": True, "removed": removed}
            if command == "stats":
                return {"ok": True, "stats": await _settle(self._stats())}
            return {"ok": False, "error": f"unknown command {command!r}: flush or stats"}
        except (ValueError, InvalidNameError, dns.exception.DNSException) as exc:
            return {"ok": False, "error": str(exc)}

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


async def _settle(value: Any) -> Any:
    """A callback's result, awaited when it is awaitable (the supervisor's are)."""
    return await value if inspect.isawaitable(value) else value


async def request(
    host: str, port: int, payload: dict[str, Any], timeout_s: float = 5.0
) -> dict[str, Any]:
    """Send one control request and return the reply (the client side)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    try:
        writer.write(json.dumps(payload).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout_s)
    finally:
        writer.close()
    reply: dict[str, Any] = json.loads(line)
    return reply
