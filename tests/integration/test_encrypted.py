"""DNS over TLS (RFC 7858) and DNS over HTTPS (RFC 8484) with real clients (kdig, dnspython,
httpx over HTTP/2) against a self-signed certificate made for the test, on the lab."""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from resolver.config import Endpoint, Settings
from resolver.transport.doh import MAX_BUFFERED_BODIES, MAX_STREAMS
from resolver.transport.listeners import TcpLimits
from tests.helpers import run_rootwalk
from tests.integration.conftest import LAB_PORT, lab_settings
from tests.integration.stack import Stack
from tests.ports import free_port
from tests.process import RELOADED, RootwalkProcess
from tests.tls import certificate_der, make_certificate

PORT, DOT_PORT, DOH_PORT = free_port(), free_port(), free_port()
SERVER = "127.0.0.1"
NAME = "rootwalk.lab"
"""The certificate's name (it holds 127.0.0.1 too)."""
WWW = "192.0.2.10"
"""www.example.lab.'s address in the lab."""


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"), NAME)


@pytest.fixture(scope="module")
def encrypted(stack: Stack, certificate: tuple[Path, Path]) -> Iterator[Stack]:
    """A resolver with DoT and DoH on the session's lab (``stack`` runs the lab)."""
    del stack
    cert, key = certificate
    settings = lab_settings(
        PORT,
        tls_cert=cert,
        tls_key=key,
        dot_listen=Endpoint(SERVER, DOT_PORT),
        doh_listen=Endpoint(SERVER, DOH_PORT),
        metrics=Endpoint(SERVER, 0),
    )
    running = Stack(settings).start()
    yield running
    running.stop()


def client_context(cert: Path) -> ssl.SSLContext:
    """A client that trusts only the lab's certificate, and checks the name on it."""
    return ssl.create_default_context(cafile=str(cert))


def query(name: str, rdtype: str = "A", message_id: int | None = None) -> dns.message.Message:
    message = dns.message.make_query(name, rdtype)
    if message_id is not None:
        message.id = message_id
    return message


def addresses(reply: dns.message.Message) -> set[str]:
    return {rdata.to_text() for rrset in reply.answer for rdata in rrset}


def hits(running: Stack, transport: str) -> float:
    """Cache hits counted for ``transport`` (rootwalk_client_queries less slow-path replies)."""
    metrics = running.service.metrics
    assert metrics is not None
    with urllib.request.urlopen(f"http://{SERVER}:{metrics.port}/metrics", timeout=5) as page:
        text = page.read().decode()
    answered = sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "rootwalk_client_queries_total"
        and sample.labels.get("transport") == transport
    )
    frontend = running.service.frontend
    assert frontend is not None
    slow = sum(n for (kind, _, _), n in frontend.stats().answered.items() if kind == transport)
    return answered - slow


def test_dot_answers_dnspython(encrypted: Stack, certificate: tuple[Path, Path]) -> None:
    reply = dns.query.tls(
        query("www.example.lab."),
        SERVER,
        port=DOT_PORT,
        timeout=5,
        ssl_context=client_context(certificate[0]),
        server_hostname=NAME,
    )
    assert reply.rcode() == dns.rcode.NOERROR and addresses(reply) == {WWW}


def test_dot_pipelines_on_one_connection_and_answers_as_each_finishes(
    encrypted: Stack, certificate: tuple[Path, Path]
) -> None:
    """RFC 7858 §3.3 and RFC 7766 §6.2.1.1: several queries sent at once on one connection
    are all answered on it, matched by ID; a hit does not wait behind a miss sent before it."""
    dns.query.udp(query("www.example.lab."), SERVER, port=PORT, timeout=5)  # now cached
    names = ["alias.example.lab.", "www.example.lab.", "chain.example.lab.", "nx.example.lab."]
    wires = [query(name, message_id=100 + i).to_wire() for i, name in enumerate(names)]
    context = client_context(certificate[0])
    with (
        socket.create_connection((SERVER, DOT_PORT), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=NAME) as tls,
    ):
        tls.sendall(b"".join(struct.pack("!H", len(w)) + w for w in wires))
        replies = [dns.message.from_wire(read_frame(tls)) for _ in names]
    by_id = {reply.id: reply for reply in replies}
    assert sorted(by_id) == [100, 101, 102, 103]
    assert replies[0].id == 101  # the hit, sent second, came back first
    for i, name in enumerate(names):
        assert by_id[100 + i].question[0].name.to_text() == name
    assert addresses(by_id[101]) == {WWW}
    assert by_id[103].rcode() == dns.rcode.NXDOMAIN


def read_frame(tls: ssl.SSLSocket) -> bytes:
    def exactly(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = tls.recv(size - len(data))
            assert chunk, "the server closed the connection"
            data += chunk
        return data

    (length,) = struct.unpack("!H", exactly(2))
    return exactly(length)


@pytest.mark.parametrize("post", [True, False], ids=["POST", "GET"])
def test_doh_answers_dnspython_over_http2(
    encrypted: Stack, certificate: tuple[Path, Path], post: bool
) -> None:
    reply = dns.query.https(
        query("www.example.lab.", message_id=0),  # RFC 8484 §4.1: ID 0, for HTTP caches
        SERVER,
        port=DOH_PORT,
        path="/dns-query",
        post=post,
        timeout=5,
        verify=client_context(certificate[0]),
        http_version=dns.query.HTTPVersion.H2,
    )
    assert reply.rcode() == dns.rcode.NOERROR and addresses(reply) == {WWW}


def test_hits_over_dot_and_doh_are_counted_per_transport(
    encrypted: Stack, certificate: tuple[Path, Path]
) -> None:
    """A cached answer asked over DoT and DoH goes through the hit path and is counted as a
    hit of that transport (rootwalk_client_queries_total{transport="dot"|"doh"})."""
    dns.query.udp(query("www.example.lab.", "AAAA"), SERVER, port=PORT, timeout=5)
    before = {kind: hits(encrypted, kind) for kind in ("dot", "doh")}
    context = client_context(certificate[0])
    for _ in range(2):
        dns.query.tls(
            query("www.example.lab.", "AAAA"),
            SERVER,
            port=DOT_PORT,
            timeout=5,
            ssl_context=context,
            server_hostname=NAME,
        )
    for _ in range(3):
        dns.query.https(
            query("www.example.lab.", "AAAA", message_id=0),
            SERVER,
            port=DOH_PORT,
            timeout=5,
            verify=client_context(certificate[0]),
            http_version=dns.query.HTTPVersion.H2,
        )
    assert hits(encrypted, "dot") - before["dot"] == 2
    assert hits(encrypted, "doh") - before["doh"] == 3


def doh_url(path: str = "/dns-query") -> str:
    return f"https://{SERVER}:{DOH_PORT}{path}"


def test_doh_bad_requests_get_their_http_codes(
    encrypted: Stack, certificate: tuple[Path, Path]
) -> None:
    wire = query("www.example.lab.", message_id=0).to_wire()
    message = {"content-type": "application/dns-message"}
    with httpx2.Client(
        http2=True, http1=False, verify=client_context(certificate[0]), timeout=5
    ) as client:
        good = client.post(doh_url(), content=wire, headers=message)
        assert good.http_version == "HTTP/2" and good.status_code == 200
        assert good.headers["content-type"] == "application/dns-message"
        assert dns.message.from_wire(good.content).rcode() == dns.rcode.NOERROR
        assert client.get(doh_url()).status_code == 400  # no dns= parameter
        assert client.get(doh_url(), params={"dns": "!!not base64!!"}).status_code == 400
        assert client.get(doh_url(), params={"dns": "AAAA"}).status_code == 400  # too short
        text = {"content-type": "text/plain"}
        assert client.post(doh_url(), content=wire, headers=text).status_code == 415
        huge = client.post(doh_url(), content=b"\0" * 70_000, headers=message)
        assert huge.status_code == 413
        assert client.post(doh_url("/other"), content=wire, headers=message).status_code == 404
        assert client.put(doh_url(), content=wire, headers=message).status_code == 405
        again = client.post(doh_url(), content=wire, headers=message)  # the connection lives
        assert again.status_code == 200


def test_doh_answers_may_be_cached_for_their_smallest_ttl(
    encrypted: Stack, certificate: tuple[Path, Path]
) -> None:
    """RFC 8484 §5.1: the freshness lifetime is at most the smallest TTL of the answer."""
    wire = query("www.example.lab.", message_id=0).to_wire()
    encoded = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
    with httpx2.Client(
        http2=True, http1=False, verify=client_context(certificate[0]), timeout=5
    ) as client:
        reply = client.get(doh_url(), params={"dns": encoded})
    assert reply.status_code == 200
    message = dns.message.from_wire(reply.content)
    smallest = min(rrset.ttl for rrset in message.answer)
    assert reply.headers["cache-control"] == f"max-age={smallest}"


def test_doh_replies_without_records_may_not_be_cached(
    encrypted: Stack, certificate: tuple[Path, Path]
) -> None:
    """A reply with no record has no TTL to bound its freshness (RFC 8484 §5.1): it says
    ``max-age=0``, or an HTTP cache could keep it for a heuristic lifetime of its own."""
    message = {"content-type": "application/dns-message"}
    no_recursion = query("www.example.lab.", message_id=0)
    no_recursion.flags &= ~dns.flags.RD  # REFUSED: this resolver only recurses
    notify = query("www.example.lab.", message_id=0)
    notify.set_opcode(dns.opcode.NOTIFY)  # NOTIMP
    with httpx2.Client(
        http2=True, http1=False, verify=client_context(certificate[0]), timeout=5
    ) as client:
        for wire, rcode in (
            (no_recursion.to_wire(), dns.rcode.REFUSED),
            (notify.to_wire(), dns.rcode.NOTIMP),
        ):
            reply = client.post(doh_url(), content=wire, headers=message)
            assert reply.status_code == 200
            assert dns.message.from_wire(reply.content).rcode() == rcode
            assert reply.headers.get("cache-control") == "max-age=0"


KDIG = shutil.which("kdig")


def kdig(*args: str) -> str:
    assert KDIG is not None
    done = subprocess.run(
        [KDIG, f"@{SERVER}", *args], capture_output=True, text=True, timeout=15, check=False
    )
    return done.stdout + done.stderr


@pytest.mark.skipif(KDIG is None, reason="kdig (knot-dnsutils) is not installed")
@pytest.mark.parametrize(
    "how", [("+tls",), ("+https",), ("+https-get",)], ids=["tls", "https", "https-get"]
)
def test_kdig_over_tls_and_https(
    encrypted: Stack, certificate: tuple[Path, Path], how: tuple[str, ...]
) -> None:
    """kdig (GnuTLS, nghttp2) checks the certificate against the lab's own CA file."""
    port = DOT_PORT if how == ("+tls",) else DOH_PORT
    output = kdig(
        "-p", str(port), *how, f"+tls-ca={certificate[0]}", f"+tls-hostname={NAME}",
        "www.example.lab", "A",
    )  # fmt: skip
    if "+https" in how[0] and "unsupported" in output.lower():
        pytest.skip(f"this kdig has no DoH: {output.strip()}")
    assert "status: NOERROR" in output and WWW in output, output
    if "+https" in how[0]:
        assert "HTTP/2" in output, output


def served_certificate(port: int) -> bytes:
    """The certificate (DER) a new TLS connection to ``port`` is shown (not checked)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((SERVER, port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_sighup_rereads_the_certificate_and_a_bad_one_keeps_the_old(
    stack: Stack, tmp_path: Path
) -> None:
    """``rootwalk serve``: after SIGHUP new DoT and DoH connections see the new pair; an
    unreadable pair is reported with the file's name and the running one keeps serving."""
    del stack  # the lab
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    old_cert, old_key = make_certificate(first, NAME)
    new_cert, new_key = make_certificate(second, NAME)
    cert, key = tmp_path / "served.crt", tmp_path / "served.key"
    cert.write_bytes(old_cert.read_bytes())
    key.write_bytes(old_key.read_bytes())
    port, dot_port, doh_port = free_port(), free_port(), free_port()
    repo = Path(__file__).parents[2]
    config = tmp_path / "rootwalk.toml"
    config.write_text(
        f'listen = ["127.0.0.1:{port}"]\n'
        f'root_hints = "{repo}/zones/lab/root.hints"\n'
        f'trust_anchors = ["{repo}/zones/lab/trust-anchor.ds"]\n'
        f'outbound_allow = ["127.0.0.0/8"]\noutbound_port = {LAB_PORT}\n'
        'metrics = "off"\ncontrol = "off"\n'
        f'tls_cert = "served.crt"\ntls_key = "served.key"\n'
        f'dot_listen = "127.0.0.1:{dot_port}"\ndoh_listen = "127.0.0.1:{doh_port}"\n'
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = RootwalkProcess("serve", "--config", str(config), env=env)
    try:
        process.wait_listening(f"127.0.0.1:{port}")
        for listener in (dot_port, doh_port):
            assert served_certificate(listener) == certificate_der(old_cert)
        cert.write_bytes(new_cert.read_bytes())
        key.write_bytes(new_key.read_bytes())
        process.send_signal(signal.SIGHUP)
        process.wait_for(RELOADED)
        assert f"certificate reloaded from {cert}" in process.output()
        for listener in (dot_port, doh_port):
            assert served_certificate(listener) == certificate_der(new_cert)
        key.write_text("not a key\n")
        process.send_signal(signal.SIGHUP)
        process.wait_for("reload failed, keeping the running certificate")
        assert f"tls_key = {key}: no PEM private key in it" in process.output()
        for listener in (dot_port, doh_port):
            assert served_certificate(listener) == certificate_der(new_cert)
        reply = dns.query.tls(
            query("www.example.lab."),
            SERVER,
            port=dot_port,
            timeout=5,
            ssl_context=client_context(new_cert),
            server_hostname=NAME,
        )
        assert addresses(reply) == {WWW}
    finally:
        process.stop()


def test_a_pair_that_fails_to_reload_leaves_the_running_paths_in_the_settings(
    encrypted: Stack, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    """A reload whose pair does not load keeps the old pair serving, and the running
    settings name the old pair's files (not the new paths, as if they served); a pair that
    loads is recorded with its paths."""
    service = encrypted.service
    running = service.settings
    cert, key = certificate
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("not a key\n")
    copy_cert, copy_key = tmp_path / "copy.crt", tmp_path / "copy.key"
    copy_cert.write_bytes(cert.read_bytes())  # the same pair: the other tests see no change
    copy_key.write_bytes(key.read_bytes())

    async def apply(settings: Settings) -> list[str]:
        return service.apply(settings)

    try:
        assert encrypted.run(apply(dataclasses.replace(running, tls_key=bad_key))) == []
        assert (service.settings.tls_cert, service.settings.tls_key) == (cert, key)
        assert served_certificate(DOT_PORT) == certificate_der(cert)
        encrypted.run(apply(dataclasses.replace(running, tls_cert=copy_cert, tls_key=copy_key)))
        assert (service.settings.tls_cert, service.settings.tls_key) == (copy_cert, copy_key)
    finally:
        encrypted.run(apply(running))
    assert (service.settings.tls_cert, service.settings.tls_key) == (cert, key)


def test_serve_with_a_bad_pair_says_which_file(tmp_path: Path) -> None:
    """At start a missing file, a file without the PEM block, or a key that is not the
    certificate's is an error naming the setting and the file (exit status 2)."""
    cert, key = make_certificate(tmp_path, NAME)
    _, other_key = make_certificate(tmp_path, "other.lab")
    env = {**os.environ, "ROOTWALK_METRICS": "off", "ROOTWALK_CONTROL": "off"}
    port = free_port()
    for tls_cert, tls_key, error in (
        (cert, tmp_path / "missing.key", f"tls_key = {tmp_path}/missing.key: cannot read"),
        (key, key, f"tls_cert = {key}: no PEM certificate in it"),
        (cert, other_key, "or the key is not the certificate's"),
    ):
        done = run_rootwalk(
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            env={
                **env,
                "ROOTWALK_TLS_CERT": str(tls_cert),
                "ROOTWALK_TLS_KEY": str(tls_key),
                "ROOTWALK_DOT_LISTEN": f"127.0.0.1:{free_port()}",
            },
        )
        assert done.returncode == 2 and error in done.stderr, done.stderr


@pytest.mark.parametrize("port", [DOT_PORT, DOH_PORT], ids=["dot", "doh"])
def test_idle_encrypted_connections_close_as_tcp_ones_do(
    encrypted: Stack, certificate: tuple[Path, Path], port: int
) -> None:
    """``tcp_idle_timeout_s`` closes an idle DoT or DoH connection (RFC 7766 §6.2.3, RFC 7858
    §3.4): the stream transports share TCP's idle timer."""
    listeners = encrypted.service.listeners
    assert listeners is not None
    kept = listeners.tcp.limits
    listeners.tcp.limits = TcpLimits(idle_timeout_s=0.2, max_connections=kept.max_connections)
    context = client_context(certificate[0])
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((SERVER, port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=NAME) as tls,
        ):
            while True:  # DoH's server sends its SETTINGS first; then the end comes
                try:
                    if not tls.recv(4096):
                        break
                except ssl.SSLEOFError:
                    break
    finally:
        listeners.tcp.limits = kept


def test_a_doh_client_past_its_streams_loses_the_connection(
    encrypted: Stack, certificate: tuple[Path, Path]
) -> None:
    """At most ``MAX_STREAMS`` requests at once on one connection (SETTINGS_MAX_CONCURRENT_
    STREAMS, RFC 9113 §5.1.2): one more is a protocol error, answered with GOAWAY."""
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    client.initiate_connection()
    for _ in range(MAX_STREAMS + 1):  # sent before the server's SETTINGS are read
        client.send_headers(
            client.get_next_available_stream_id(), DOH_POST_HEADERS
        )  # bodies to come
    context = client_context(certificate[0])
    context.set_alpn_protocols(["h2"])
    events: list[h2.events.Event] = []
    with (
        socket.create_connection((SERVER, DOH_PORT), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=NAME) as tls,
    ):
        tls.sendall(client.data_to_send())
        while not any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
            data = tls.recv(65536)
            assert data, "closed without GOAWAY"
            events += client.receive_data(data)
    (goaway,) = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaway.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR


DOH_POST_HEADERS = [
    (b":method", b"POST"),
    (b":scheme", b"https"),
    (b":authority", NAME.encode()),
    (b":path", b"/dns-query"),
    (b"content-type", b"application/dns-message"),
]


class H2Client:
    """A bare HTTP/2 client over TLS to the DoH listener, driven frame by frame."""

    def __init__(self, tls: ssl.SSLSocket) -> None:
        self.tls = tls
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.h2.initiate_connection()
        self.events: list[h2.events.Event] = []
        self.flush()

    def flush(self) -> None:
        self.tls.sendall(self.h2.data_to_send())

    def read(self) -> None:
        data = self.tls.recv(65536)
        assert data, "the server closed the connection"
        self.events += self.h2.receive_data(data)
        self.flush()  # the acknowledgements h2 owes

    def post(self, body: bytes, *, end: bool) -> int:
        """A POST on a new stream with ``body`` (waiting for flow-control window as needed),
        its stream ended or left open for more."""
        stream_id = self.h2.get_next_available_stream_id()
        self.h2.send_headers(stream_id, DOH_POST_HEADERS)
        self.send(stream_id, body, end=end)
        return stream_id

    def send(self, stream_id: int, body: bytes, *, end: bool) -> None:
        while body:
            window = self.h2.local_flow_control_window(stream_id)
            size = min(window, self.h2.max_outbound_frame_size, len(body))
            if size <= 0:
                self.flush()
                self.read()
                continue
            self.h2.send_data(stream_id, body[:size], end_stream=end and size == len(body))
            body = body[size:]
        self.flush()

    def sync(self) -> None:
        """Wait until the server has read everything sent so far (a PING is answered in
        order, after the frames before it)."""
        self.h2.ping(b"rootwalk")
        self.flush()
        while not any(isinstance(e, h2.events.PingAckReceived) for e in self.events):
            self.read()
        self.events = [e for e in self.events if not isinstance(e, h2.events.PingAckReceived)]

    def status(self, stream_id: int) -> bytes:
        """The status of the response on ``stream_id``, once it has come."""
        while True:
            for event in self.events:
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                    return dict(event.headers or ())[b":status"]
                assert not (
                    isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id
                )
            self.read()


def test_a_doh_connection_buffers_at_most_its_budget_of_request_bodies(
    encrypted: Stack, certificate: tuple[Path, Path]
) -> None:
    """POST bodies held at once on one connection are bounded (``MAX_BUFFERED_BODIES``, not
    ``MAX_STREAMS`` x 64 KiB): a stream whose body would pass the budget is reset with
    REFUSED_STREAM (RFC 9113 §8.7: not processed, may be retried), the others are answered,
    and once they are the budget is free again for new streams on the same connection."""
    large = query("www.example.lab.", message_id=0)
    large.use_edns(0, pad=MAX_BUFFERED_BODIES // 2 - 4096)
    large_wire = large.to_wire(max_size=MAX_BUFFERED_BODIES // 2)
    assert MAX_BUFFERED_BODIES // 2 - 4096 <= len(large_wire) < MAX_BUFFERED_BODIES // 2
    small = query("www.example.lab.", message_id=0)
    small.use_edns(0, pad=16384)
    small_wire = small.to_wire(max_size=MAX_BUFFERED_BODIES // 2)
    context = client_context(certificate[0])
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((SERVER, DOH_PORT), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=NAME) as tls,
    ):
        client = H2Client(tls)
        held = [client.post(large_wire[:-1], end=False) for _ in range(2)]
        refused = client.post(small_wire, end=False)  # more than the budget has left
        client.sync()
        resets = [e for e in client.events if isinstance(e, h2.events.StreamReset)]
        assert [(e.stream_id, e.error_code) for e in resets] == [
            (refused, h2.errors.ErrorCodes.REFUSED_STREAM)
        ]
        for stream_id in held:
            client.send(stream_id, large_wire[-1:], end=True)
        assert [client.status(stream_id) for stream_id in held] == [b"200", b"200"]
        after = client.post(small_wire, end=True)
        assert client.status(after) == b"200"
