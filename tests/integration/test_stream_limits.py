"""Stream listeners (TCP, DoT) against clients that misbehave, over real loopback sockets:
what the server holds for them (memory, sockets, places under ``max_tcp_connections``)
stays bounded whatever they do."""

from __future__ import annotations

import asyncio
import ssl
import struct
from pathlib import Path

from resolver.model import Transport
from resolver.transport.encrypted import EncryptedListeners
from resolver.transport.listeners import Address, Listeners, NoReply, ReplyTo, TcpLimits
from tests.tls import make_certificate

REPLY = b"\x00" * 500
"""Each query's reply: 36 times the 14-octet framed query, as a large cached answer is."""
QUERY = struct.pack("!H", 12) + b"\x12\x34" + b"\x00" * 10
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


def test_tls_handshakes_count_under_the_connection_limit(tmp_path: Path) -> None:
    """A connection waiting for its TLS handshake holds a socket as an open one does: past
    max_tcp_connections it is refused at once (asyncio's TLS server counted a connection
    only after its handshake, so stalled ones could take every file descriptor)."""
    open_, served = asyncio.run(stalled_handshakes(make_certificate(tmp_path), 20))
    assert open_ == 2
    assert served
