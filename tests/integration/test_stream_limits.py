"""Stream listeners (TCP, DoT) against clients that misbehave, over real loopback sockets:
what the server holds for them (memory, sockets, places under ``max_tcp_connections``)
stays bounded whatever they do."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import typing
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from resolver.model import Transport
from resolver.transport.encrypted import EncryptedListeners
from resolver.transport.listeners import Address, Listeners, NoReply, ReplyTo, TcpLimits
from tests.tls import make_certificate

REPLY = b"\x00" * 500
"""Each query's reply: 36 times the 14-octet framed query, as a large cached answer is."""
QUERY = struct.pack("!H", 12) + b"\x12\x34" + b"\x00" * 10
BOUND = 2 * 1024 * 1024
"""What the server may hold unsent for one connection (asyncio's high-water mark is 64 KiB;
one read's worth of replies may come on top)."""
T = TypeVar("T")
Pem = tuple[Path, Path] | None
"""A certificate and key to listen for DoT with, or None for plain TCP."""


def answer(
    wire: bytes, client: str, transport: Transport, reply_to: ReplyTo, address: Address
) -> bytes | NoReply:
    del wire, client, transport, reply_to, address
    return REPLY


async def listening(pem: Pem, limits: TcpLimits) -> tuple[Listeners, int]:
    """Listeners answering every query with :data:`REPLY`, on TCP or (with ``pem``) DoT as
    the service starts them; and the port."""
    listeners = Listeners(answer, limits)
    if pem is None:
        return listeners, await listeners.listen_tcp("127.0.0.1", 0)
    encrypted = EncryptedListeners(listeners, *pem, reuse_port=False)
    return listeners, await encrypted.listen(Transport.DOT, "127.0.0.1", 0)


async def connect_without_reading(pem: Pem, port: int) -> asyncio.StreamWriter:
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ssl._create_unverified_context() if pem else None
    )
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    typing.cast(asyncio.Transport, writer.transport).pause_reading()  # never read a reply
    return writer


LOOPS = ["asyncio", "uvloop"]
"""Each test runs on both: ``rootwalk serve`` runs on uvloop when it is installed, whose
transports differ (it starts reading once ``connection_made`` returns, paused or not)."""


def run(coroutine: Coroutine[Any, Any, T], loop: str) -> T:
    if loop == "asyncio":
        return asyncio.run(coroutine)
    uvloop = pytest.importorskip("uvloop")
    return typing.cast(T, uvloop.run(coroutine))


def certificate(encrypted: bool, folder: Path) -> Pem:
    return make_certificate(folder) if encrypted else None


async def flood_without_reading(pem: Pem) -> int:
    """Send queries for a while and never read a reply; the most the server held unsent."""
    listeners, port = await listening(pem, TcpLimits())
    writer = await connect_without_reading(pem, port)
    loop = asyncio.get_running_loop()
    most = 0
    deadline = loop.time() + 1.5
    while loop.time() < deadline:
        if writer.transport.get_write_buffer_size() < 64 * 1024:
            writer.write(QUERY * 1000)
        await asyncio.sleep(0.005)
        held = (c._transport for c in listeners.tcp.open if c._transport is not None)
        most = max(most, sum(transport.get_write_buffer_size() for transport in held))
    writer.transport.abort()
    await listeners.close()
    return most


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("encrypted", [False, True], ids=["tcp", "dot"])
def test_a_client_that_never_reads_cannot_grow_the_servers_buffer(
    encrypted: bool, loop: str, tmp_path: Path
) -> None:
    """RFC 7766 §6.2.1 lets a client pipeline; a client that sends queries but never reads
    the replies must not make the server buffer them without end (the server stops reading
    its queries until it reads)."""
    most = run(flood_without_reading(certificate(encrypted, tmp_path)), loop)
    assert most < BOUND, f"the server held {most} unsent octets for one connection"


async def idle_with_unread_replies(pem: Pem) -> int:
    """Fill the server's buffer with replies the client never reads, then idle: how many
    connections the server still holds a while after its idle timeout."""
    listeners, port = await listening(pem, TcpLimits(idle_timeout_s=0.3))
    writer = await connect_without_reading(pem, port)
    for _ in range(100):
        writer.write(QUERY * 1000)
        await asyncio.sleep(0.005)
    await asyncio.sleep(1.5)
    held = listeners.tcp.connections
    writer.transport.abort()
    await listeners.close()
    return held


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("encrypted", [False, True], ids=["tcp", "dot"])
def test_an_idle_connection_whose_client_reads_nothing_is_closed(
    encrypted: bool, loop: str, tmp_path: Path
) -> None:
    """RFC 7766 §6.2.3: an idle connection is closed. A close waits for the unsent replies,
    which a client that reads nothing never takes: the connection (and its place under
    max_tcp_connections) would be held for as long as the client likes."""
    assert run(idle_with_unread_replies(certificate(encrypted, tmp_path)), loop) == 0


async def stalled_handshakes(pem: Pem, count: int) -> tuple[int, bool]:
    """Open ``count`` TCP connections to a DoT listener allowing 2 and never start TLS:
    how many the server keeps open after a moment; and whether a real client is then
    served once they are gone."""
    listeners, port = await listening(pem, TcpLimits(idle_timeout_s=5.0, max_connections=2))
    stalled = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    await asyncio.sleep(0.5)
    open_ = sum(1 for reader, _ in stalled if not reader.at_eof())
    for _, writer in stalled:
        writer.transport.abort()
    await asyncio.sleep(0.2)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ssl._create_unverified_context()
    )
    writer.write(QUERY)
    served = (await asyncio.wait_for(reader.readexactly(2 + len(REPLY)), 5.0))[2:] == REPLY
    writer.close()
    await listeners.close()
    return open_, served


@pytest.mark.parametrize("loop", LOOPS)
def test_tls_handshakes_count_under_the_connection_limit(loop: str, tmp_path: Path) -> None:
    """A connection waiting for its TLS handshake holds a socket as an open one does: past
    max_tcp_connections it is refused at once (asyncio's TLS server counted a connection
    only after its handshake, so stalled ones could take every file descriptor)."""
    open_, served = run(stalled_handshakes(make_certificate(tmp_path), 20), loop)
    assert open_ == 2
    assert served


def ask_over_tls(port: int, count: int) -> int:
    """``count`` DoT clients one after another, each sending its hello at once (blocking
    sockets, in a thread): how many got their reply."""
    context = ssl._create_unverified_context()
    served = 0
    for _ in range(count):
        with (
            socket.create_connection(("127.0.0.1", port), timeout=3) as raw,
            context.wrap_socket(raw) as tls,
        ):
            tls.sendall(QUERY)
            received = b""
            while len(received) < 2 + len(REPLY):
                received += tls.recv(4096)
            served += received[2:] == REPLY
    return served


async def clients_served(pem: Pem, count: int) -> int:
    listeners, port = await listening(pem, TcpLimits())
    served = await asyncio.to_thread(ask_over_tls, port, count)
    await listeners.close()
    return served


@pytest.mark.parametrize("loop", LOOPS)
def test_every_tls_client_is_served_whenever_its_hello_comes(loop: str, tmp_path: Path) -> None:
    """A hello read before the handshake starts is TLS's (uvloop reads a new connection at
    once): left with the accepting protocol, half the handshakes stalled to their timeout."""
    assert run(clients_served(make_certificate(tmp_path), 20), loop) == 20
