"""DNS over HTTPS (RFC 8484) over HTTP/2: the sans-IO ``h2`` state machine on our own asyncio
protocol, so that a query is one :data:`~resolver.transport.listeners.OnQuery` call, exactly
as over UDP and TCP (a cache hit is answered within ``data_received``, no task per query).

Each request is a stream; its reply goes back on it, as each finishes (several streams at
once are RFC 7540 §5's multiplexing). ``GET /dns-query?dns=`` carries the query in base64url
without padding, ``POST /dns-query`` in the body as ``application/dns-message`` (RFC 8484
§4.1). Bad requests get 400, a wrong content type 415, a body past 65535 octets 413; a
stream whose body would pass the connection's budget of buffered bodies is reset with
REFUSED_STREAM (:data:`MAX_BUFFERED_BODIES`). The reply's ``Cache-Control: max-age`` is its
smallest TTL (RFC 8484 §5.1), 0 for a reply with no record. TLS (ALPN ``h2``) is the listener's; connection limits and
idle timeouts are those of every stream transport.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from resolver.model import Transport
from resolver.transport.framing import MAX_TCP_MESSAGE
from resolver.transport.listeners import (
    DROP,
    PENDING,
    Address,
    StreamConnection,
    TcpServerState,
)
from resolver.wire import HEADER_LENGTH, ttl_offsets

log = logging.getLogger(__name__)

PATH = b"/dns-query"
"""RFC 8484 §3 leaves the URI template to the server; this is the one it and clients use."""
ALPN = ("h2",)
"""HTTP/2 only (RFC 8484 §5.2: HTTP/2 is the minimum RECOMMENDED version)."""
MAX_STREAMS = 100
"""Streams a client may have open on one connection (SETTINGS_MAX_CONCURRENT_STREAMS, RFC
7540 §6.5.2): 100 is the floor RFC 7540 recommends and what nginx and h2o announce. A client
that opens more breaks the protocol and loses the connection."""
MAX_HEADER_LIST = 65536
"""The largest header block a client may send (SETTINGS_MAX_HEADER_LIST_SIZE, RFC 9113
§6.5.2; h2's default, which its decoder enforces): a GET's base64url query fits up to about
48 KiB (real queries are a few hundred octets; larger ones can be POSTed)."""
MAX_BODY = MAX_TCP_MESSAGE
"""The largest request body: one DNS message (65535 octets, RFC 8484 §6)."""
MAX_BUFFERED_BODIES = 131072
"""Octets of request bodies one connection may have buffered at once, all its streams
together (a POST's body is held until its stream ends). Without it a client could hold
MAX_STREAMS x MAX_BODY, 6.5 MB, per connection: 1.6 GB over 256 connections; with it, 32 MiB.
128 KiB holds two bodies of the largest DNS message, or a thousand of the 128-octet padded
queries real clients send (RFC 8467 §4.1). A stream whose body would pass it is reset with
REFUSED_STREAM: RFC 9113 §8.7 says the request was not processed and may be retried (once
the other streams end), which is the truth; a 413 (RFC 9110 §15.5.14) would say this
request's own content is too large, which it need not be, and ENHANCE_YOUR_CALM (RFC 9113
§7) calls a client abusive that may only be busy."""
CONTENT_TYPE = b"application/dns-message"

_NO_BODY = b""
_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")
"""RFC 4648 §5's alphabet: Python's decoder would skip other characters, not refuse them."""


def _length(text: bytes) -> int:
    """A Content-Length; a garbled one reads as too long (413)."""
    return int(text) if text.isdigit() else MAX_BODY + 1


@dataclass(slots=True)
class _Request:
    """A stream's request while its body is read (POST) and until its reply is sent."""

    method: bytes
    body: bytearray = field(default_factory=bytearray)
    """The body read so far; emptied once the query is taken or refused (it counts against
    :data:`MAX_BUFFERED_BODIES` until then)."""
    rejected: bool = False
    """Answered already with an HTTP error: the rest of its body is ignored."""


class DohConnection(StreamConnection):
    """One HTTP/2 connection of DoH clients."""

    def __init__(self, server: TcpServerState, kind: Transport = Transport.DOH) -> None:
        super().__init__(server, kind)
        # Our own replies' headers are well-formed (lowercase, fixed): checking them again
        # costs a tenth of a request. The client's headers are still checked (RFC 9113 §8.2).
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self._h2 = h2.connection.H2Connection(config)
        self._requests: dict[int, _Request] = {}
        self._unsent: dict[int, bytes] = {}
        """Reply bodies the flow-control window has not let out yet, by stream."""
        self._buffered = 0
        """Octets in the bodies of ``_requests`` (:data:`MAX_BUFFERED_BODIES`)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._transport is None or self._transport.is_closing():
            return
        self._h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
            },
        )
        self._h2.initiate_connection()
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.debug("HTTP/2 error from %s: %s", self._client, exc)
            self._flush()
            self.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self._on_headers(event)
            elif isinstance(event, h2.events.DataReceived):
                self._on_data(event)
            elif isinstance(event, h2.events.StreamEnded):
                self._on_end(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self._forget(event.stream_id)
                self._unsent.pop(event.stream_id, None)
            elif isinstance(event, h2.events.WindowUpdated):
                self._send_unsent()
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.close()
        self._flush()
        self._arm_idle_timer()

    def _on_headers(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        headers = dict(event.headers or ())  # bytes: header_encoding is None
        method = headers.get(b":method", b"")
        path, _, query = headers.get(b":path", b"").partition(b"?")
        if path != PATH:
            self._error(stream_id, 404)
            return
        if method == b"GET":
            self._requests[stream_id] = _Request(method)
            self._on_get(stream_id, query)
        elif method == b"POST":
            request = _Request(method)
            self._requests[stream_id] = request
            media_type = headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
            if media_type != CONTENT_TYPE:  # RFC 9110 §8.3.1: compared case-insensitively
                self._error(stream_id, 415)
            elif _length(headers.get(b"content-length", b"0")) > MAX_BODY:
                self._error(stream_id, 413)
        else:
            self._error(stream_id, 405)

    def _on_get(self, stream_id: int, query: bytes) -> None:
        """RFC 8484 §4.1: the query is the ``dns`` parameter, base64url without padding."""
        encoded = next(
            (
                value
                for name, _, value in (p.partition(b"=") for p in query.split(b"&"))
                if name == b"dns"
            ),
            None,
        )
        if encoded is None or _BASE64URL.fullmatch(encoded) is None:
            self._error(stream_id, 400)
            return
        try:
            wire = base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):  # a length no encoding has
            self._error(stream_id, 400)
            return
        self._ask(stream_id, wire)

    def _on_data(self, event: h2.events.DataReceived) -> None:
        stream_id = event.stream_id
        self._h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
        request = self._requests.get(stream_id)
        if request is None or request.rejected:
            return
        if request.method != b"POST":
            self._error(stream_id, 400)
            return
        data = event.data or b""
        if self._buffered + len(data) > MAX_BUFFERED_BODIES:
            self._forget(stream_id)
            self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        request.body.extend(data)
        self._buffered += len(data)
        if len(request.body) > MAX_BODY:
            self._error(stream_id, 413)

    def _on_end(self, stream_id: int) -> None:
        request = self._requests.get(stream_id)
        if request is None or request.rejected or request.method != b"POST":
            return
        wire = bytes(request.body)
        self._drop_body(request)
        self._ask(stream_id, wire)

    def _ask(self, stream_id: int, wire: bytes) -> None:
        """Hand the query to ``on_query``, once, and send what it answers now."""
        if len(wire) < HEADER_LENGTH or len(wire) > MAX_BODY:
            self._error(stream_id, 400)
            return
        self._requests[stream_id].rejected = True  # answered: no more body is read
        self._waiting += 1  # before the call: a pending reply may come before it returns
        try:
            reply = self._server.on_query(
                wire, self._client, self._kind, self._reply_to, (stream_id,)
            )
        except Exception:
            self._waiting -= 1
            self._server.counters.handler_errors += 1
            log.exception("handler failed for a DoH query from %s", self._client)
            self._error(stream_id, 500)
            return
        if reply is PENDING:
            return
        self._waiting -= 1
        if reply is DROP:
            self._error(stream_id, 503)  # no DNS answer is coming: HTTP says so at once
        else:
            self._respond(stream_id, reply)

    def _reply_later(self, address: Address, reply: bytes | None) -> None:
        """The reply to a query that was pending (None: nothing to send)."""
        self._waiting -= 1
        if self._transport is None or self._transport.is_closing():
            return
        stream_id = int(address[0])
        if stream_id not in self._requests:
            return  # the client reset the stream meanwhile
        if reply is None:
            self._error(stream_id, 503)
        else:
            self._respond(stream_id, reply)
        self._flush()

    def _respond(self, stream_id: int, reply: bytes) -> None:
        """200 with the DNS message; cacheable for its smallest TTL (RFC 8484 §5.1: the
        freshness lifetime must not pass it). A reply with no record (SERVFAIL, REFUSED, an
        empty one) says ``max-age=0``: with no Cache-Control at all an HTTP cache could give
        it a heuristic lifetime of its own (RFC 9111 §4.2.2)."""
        offsets = ttl_offsets(reply)
        max_age = min(ttl for _, ttl in offsets) if offsets else 0
        headers = [
            (b":status", b"200"),
            (b"content-type", CONTENT_TYPE),
            (b"content-length", str(len(reply)).encode()),
            (b"cache-control", b"max-age=%d" % max_age),
        ]
        self._send(stream_id, headers, reply)

    def _error(self, stream_id: int, status: int) -> None:
        request = self._requests.get(stream_id)
        if request is not None:
            request.rejected = True
            self._drop_body(request)
        self._send(
            stream_id, [(b":status", str(status).encode()), (b"content-length", b"0")], _NO_BODY
        )

    def _send(self, stream_id: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        try:
            self._h2.send_headers(stream_id, headers, end_stream=not body)
        except h2.exceptions.ProtocolError:  # the stream is closed (reset by the client)
            self._forget(stream_id)
            return
        if body:
            self._unsent[stream_id] = body
            self._send_unsent()
        else:
            self._forget(stream_id)

    def _send_unsent(self) -> None:
        """Send what the flow-control windows allow (RFC 7540 §6.9) of each reply body, in
        frames of at most the client's frame size."""
        h2c = self._h2
        for stream_id, whole in list(self._unsent.items()):
            body = whole
            try:
                while body:
                    window = h2c.local_flow_control_window(stream_id)
                    size = min(window, h2c.max_outbound_frame_size, len(body))
                    if size <= 0:
                        break
                    h2c.send_data(stream_id, body[:size], end_stream=size == len(body))
                    body = body[size:]
            except h2.exceptions.ProtocolError:  # reset meanwhile
                body = _NO_BODY
            if body:
                self._unsent[stream_id] = body
            else:
                del self._unsent[stream_id]
                self._forget(stream_id)

    def _drop_body(self, request: _Request) -> None:
        """The body is read or refused: it no longer counts against the budget."""
        self._buffered -= len(request.body)
        request.body.clear()  # frees the buffer; no new object per request

    def _forget(self, stream_id: int) -> None:
        """The stream is over (answered, refused or reset): its request and body go."""
        request = self._requests.pop(stream_id, None)
        if request is not None:
            self._drop_body(request)

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)
