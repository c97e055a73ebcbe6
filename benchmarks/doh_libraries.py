#!/usr/bin/env python3
"""Which HTTP library DoH uses: server CPU per request of ``h2`` on our own asyncio protocol
(Rootwalk's :class:`~resolver.transport.doh.DohConnection`), ``hypercorn`` (ASGI, itself on
``h2``) and ``aiohttp`` (HTTP/1.1 only: its server has no HTTP/2), each answering the same
fixed DNS reply to ``POST /dns-query`` over TLS on loopback.

    pip install hypercorn aiohttp      # the two candidates not in Rootwalk's dependencies
    python3 benchmarks/doh_libraries.py [--seconds 5] [--window 64]

Each server runs in a process of its own (pinned to CPU 1 when there are two); one client
connection keeps ``--window`` requests outstanding (HTTP/2 streams; for aiohttp, HTTP/1.1
pipelining) and the server's CPU-seconds come from /proc. The DNS work is left out on
purpose (the reply is fixed): this is the HTTP stack's own cost per request. A library that
is not installed is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dns.message
from cache_benchmark import cpu_seconds
from encrypted import NAME, client_context, doh_client, keep_window, pin, query_wire

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.tls import make_certificate  # noqa: E402

SERVER = "127.0.0.1"
PORT = 5410
REPLY = dns.message.make_response(dns.message.from_wire(query_wire(0))).to_wire()


def server_context(cert: str, key: str, alpn: list[str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(alpn)
    return context


async def serve_h2(cert: str, key: str) -> None:
    from resolver.model import Transport  # noqa: PLC0415
    from resolver.transport.doh import DohConnection  # noqa: PLC0415
    from resolver.transport.listeners import (  # noqa: PLC0415
        ListenerCounters,
        TcpLimits,
        TcpServerState,
    )

    state = TcpServerState(lambda *_: REPLY, TcpLimits(), ListenerCounters())
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: DohConnection(state, Transport.DOH),
        SERVER,
        PORT,
        ssl=server_context(cert, key, ["h2"]),
    )
    await server.serve_forever()


async def serve_hypercorn(cert: str, key: str) -> None:
    import hypercorn.asyncio  # noqa: PLC0415
    import hypercorn.config  # noqa: PLC0415

    async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/dns-message")],
            }
        )
        await send({"type": "http.response.body", "body": REPLY})

    config = hypercorn.config.Config()
    config.bind = [f"{SERVER}:{PORT}"]
    config.certfile, config.keyfile = cert, key
    config.alpn_protocols = ["h2"]
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_max_requests = 2**31  # its default closes a connection after 1,000
    await hypercorn.asyncio.serve(app, config)  # type: ignore[arg-type]


def serve_aiohttp(cert: str, key: str) -> None:
    from aiohttp import web  # noqa: PLC0415

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=REPLY, content_type="application/dns-message")

    app = web.Application()
    app.router.add_post("/dns-query", answer)
    context = server_context(cert, key, ["http/1.1"])
    web.run_app(app, host=SERVER, port=PORT, ssl_context=context, access_log=None, print=None)


async def http1_client(tls: ssl.SSLContext, seconds: float, window: int) -> int:
    """HTTP/1.1 keep-alive with ``window`` requests pipelined on one connection."""
    reader, writer = await asyncio.open_connection(SERVER, PORT, ssl=tls, server_hostname=NAME)
    body = query_wire(0)
    request = (
        b"POST /dns-query HTTP/1.1\r\nHost: " + NAME.encode() + b"\r\n"
        b"Content-Type: application/dns-message\r\nAccept: application/dns-message\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )

    def complete(buffer: bytearray) -> int:
        done = 0
        while (head_end := buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(buffer[:head_end]).lower()
            length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
            if len(buffer) < head_end + 4 + length:
                break
            del buffer[: head_end + 4 + length]
            done += 1
        return done

    return await keep_window(
        reader, writer, seconds, window, lambda _, count: request * count, complete
    )


def wait_listening() -> None:
    import socket  # noqa: PLC0415

    for _ in range(100):
        try:
            socket.create_connection((SERVER, PORT), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)  # a benchmark: waiting for the server process to come up
    raise RuntimeError("the server did not come up")


def compare(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="rootwalk-doh-libraries-"))
    cert, key = make_certificate(folder, NAME)
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    print(f"{'library':<10} {'HTTP':<8} {'requests/s':>10} {'CPU us/request':>15}")
    for library in ("h2", "hypercorn", "aiohttp"):
        try:
            __import__(library)
        except ImportError:
            print(f"{library:<10} not installed: skipped")
            continue
        command = [*pin(1), sys.executable, __file__, "--serve", library, str(cert), str(key)]
        server = subprocess.Popen(command, cwd=REPO)
        try:
            wait_listening()
            before, started = cpu_seconds(server.pid), time.monotonic()
            if library == "aiohttp":
                client = http1_client(client_context(cert, ["http/1.1"]), args.seconds, args.window)
                version = "1.1"
            else:
                client = doh_client(PORT, client_context(cert, ["h2"]), args.seconds, args.window)
                version = "2"
            answered = asyncio.run(client)
            cpu, elapsed = cpu_seconds(server.pid) - before, time.monotonic() - started
        finally:
            server.terminate()
            server.wait(10)
        print(
            f"{library:<10} {version:<8} {answered / elapsed:>10,.0f} {cpu / answered * 1e6:>15.1f}"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument(
        "--serve", nargs=3, metavar=("LIBRARY", "CERT", "KEY"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve is None:
        return compare(args)
    library, cert, key = args.serve
    if library == "h2":
        asyncio.run(serve_h2(cert, key))
    elif library == "hypercorn":
        asyncio.run(serve_hypercorn(cert, key))
    else:
        serve_aiohttp(cert, key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
