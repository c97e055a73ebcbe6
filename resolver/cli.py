"""The command line: ``rootwalk serve | lab | query | check-config``.

Only this module calls ``sys.exit`` (through ``main``'s return value); errors in settings
exit with status 2 and a message naming the file, line and key. The parser, subcommands and
flags are :mod:`resolver.command_line`; here, what each subcommand does.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import ipaddress
import json
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from resolver.command_line import flag_values, parse_arguments
from resolver.config import (
    ConfigError,
    Endpoint,
    Settings,
    build_layered_settings,
    build_settings,
    settings_toml,
)
from resolver.core.hints import HintsError
from resolver.lab.description import LabDescriptionError
from resolver.paths import lab_description, lab_root_hints, lab_trust_anchor
from resolver.stub import EXIT_FAILED, StubError, exit_status, run_query

LAB_LISTEN_PORT = 5300


GC_THRESHOLDS = (50_000, 20, 100)
"""The cyclic garbage collector's thresholds for a running server. With Python's default
(700 allocations) the young generation was collected every few queries: 20% of the CPU
time of resolving never-seen names (`benchmarks/cache_benchmark.py`, 2,156 against 1,801
names per CPU-second in one run). Cycles are still collected, just in larger batches."""


def tune_garbage_collector() -> None:
    """Freeze what start-up allocated (it lives as long as the process) and collect young
    objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed (faster sockets), else on asyncio's loop."""
    tune_garbage_collector()
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


def _settings(args: argparse.Namespace, base: Settings | None = None) -> Settings:
    return build_settings(
        base=base, config_file=args.config, environ=os.environ, flags=flag_values(args)
    )


def _lab_base(lab_port: int) -> Settings:
    """The lab's defaults: its hints, its port, loopback only, listening on :5300."""
    return Settings(
        listen=(Endpoint("127.0.0.1", LAB_LISTEN_PORT), Endpoint("::1", LAB_LISTEN_PORT)),
        root_hints=lab_root_hints(),
        trust_anchors=(lab_trust_anchor(),),
        outbound_allow=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")),
        outbound_port=lab_port,
    )


def _print_lab_banner(settings: Settings) -> None:
    endpoint = settings.listen[0]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(endpoint.host, endpoint.host)
    at = f"@{host} -p {endpoint.port}"
    names = [
        "www.example.lab A",
        "www.example.lab AAAA",
        "alias.example.lab A",
        "chain.example.lab A",
        "nx.example.lab A",
        "www.example.lab MX",
        "big.example.lab TXT",
        "www.glueless.lab A",
        "www.v6only.lab A",
        "anything.wild.example.lab A",
        "www.deadns.lab A",
        "www.lame.lab A",
        "loop.example.lab A",
    ]
    print(f"rootwalk lab: resolver on {', '.join(map(str, settings.listen))}; try:", flush=True)
    for name in names:
        print(f"  dig {at} {name}", flush=True)


def _command_serve(args: argparse.Namespace, argv: list[str]) -> int:
    from resolver.server import serve  # noqa: PLC0415
    from resolver.supervisor import Supervisor, worker_command, worker_settings  # noqa: PLC0415

    settings = _settings(args)
    _setup_logging(settings.log_level, settings.log_format)
    index = args.worker
    if index is not None:
        _run(
            serve(
                worker_settings(settings, index),
                reload=lambda: worker_settings(_settings(args), index),
                worker=True,
            )
        )
    elif settings.workers > 1:
        supervisor = Supervisor(settings, lambda i: worker_command(argv, i))
        _run(supervisor.run(reload=lambda: _settings(args)))
    else:
        _run(serve(settings, reload=lambda: _settings(args)))
    return 0


def _command_lab(args: argparse.Namespace) -> int:
    from resolver.lab.server import Lab  # noqa: PLC0415
    from resolver.server import serve_lab  # noqa: PLC0415

    if not 1 <= args.lab_port <= 65535:
        raise ConfigError(f"--lab-port: port out of range: {args.lab_port}")
    settings = _settings(args, _lab_base(args.lab_port))
    settings = dataclasses.replace(settings, outbound_port=args.lab_port)
    _setup_logging(settings.log_level, settings.log_format)
    lab = Lab.from_file(lab_description(), args.lab_port)

    def reload() -> Settings:
        fresh = _settings(args, _lab_base(args.lab_port))
        return dataclasses.replace(fresh, outbound_port=args.lab_port)

    _run(serve_lab(settings, lab, lambda: _print_lab_banner(settings), reload))
    return 0


def _command_cache(args: argparse.Namespace) -> int:
    from resolver.control import request  # noqa: PLC0415

    endpoint = Endpoint.parse(args.control)
    if args.cache_command == "flush":
        payload: dict[str, Any] = {"command": "flush", "subtree": args.subtree}
        if args.name is not None:
            payload["name"] = args.name
    else:
        payload = {"command": "stats"}
    try:
        reply = asyncio.run(request(endpoint.host, endpoint.port, payload))
    except (OSError, TimeoutError) as exc:
        print(f"rootwalk cache: no resolver on {endpoint}: {exc}", file=sys.stderr)
        return 1
    if not reply.get("ok"):
        print(f"rootwalk cache: {reply.get('error')}", file=sys.stderr)
        return 2
    if args.cache_command == "flush":
        print(f"flushed {reply['removed']} entries")
    else:
        print(json.dumps(reply["stats"], indent=2))
    return 0


def _lab_answers(settings: Settings) -> bool:
    """Whether any of the lab's root servers answers a priming query (RFC 8109) at once."""
    import dns.exception  # noqa: PLC0415
    import dns.message  # noqa: PLC0415
    import dns.query  # noqa: PLC0415

    from resolver.files import load_root_hints  # noqa: PLC0415

    query = dns.message.make_query(".", "NS")
    for address in load_root_hints(settings.root_hints).addresses():
        try:
            dns.query.udp(query, address, port=settings.outbound_port, timeout=0.5)
        except (dns.exception.DNSException, OSError):
            continue
        return True
    return False


def _command_trace(args: argparse.Namespace) -> int:
    import dns.rdatatype  # noqa: PLC0415

    from resolver.model import Question  # noqa: PLC0415
    from resolver.names import parse_name  # noqa: PLC0415
    from resolver.trace import trace  # noqa: PLC0415

    settings = _settings(args, _lab_base(args.lab_port) if args.lab else None)
    if args.lab:
        settings = dataclasses.replace(settings, outbound_port=args.lab_port)
    _setup_logging(settings.log_level if args.log_level else "WARNING")
    question = Question(parse_name(args.name), dns.rdatatype.from_text(args.type))
    if args.lab and not _lab_answers(settings):
        print(
            f"rootwalk trace: no lab answers on port {args.lab_port}; start it first with "
            f"`rootwalk lab` (in another terminal)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    results = []

    async def run() -> None:
        results.append(await trace(settings, question, _print_to_a_reader_that_may_leave))

    _run(run())
    if not results:
        return EXIT_FAILED
    return exit_status(results[0].rcode, question.qtype, [r.rdtype for r in results[0].answer])


def _stdout_to_devnull() -> None:
    """After a closed pipe, point stdout at devnull so later writes and the flush at exit do
    not fail again (Python's advice: library/signal.html, "Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _print_to_a_reader_that_may_leave(line: str) -> None:
    """``print`` for ``trace``, whose lines are written from the event loop's callbacks: a
    reader that stops early (``| head``) ends the output, not the trace, with no traceback."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        _stdout_to_devnull()


def _command_check_config(args: argparse.Namespace) -> int:
    """Print the layered settings as TOML. A reader that stops early (``| head``) is no
    error: the rest is thrown away and the status stays 0."""
    settings, sources = build_layered_settings(
        config_file=args.config, environ=os.environ, flags=flag_values(args)
    )
    try:
        sys.stdout.write(settings_toml(settings, sources))
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
    return 0


def _setup_logging(level: str, log_format: str = "text") -> None:
    from resolver.logs import setup_logging  # noqa: PLC0415

    setup_logging(level, log_format)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_arguments(arguments)
    try:
        match args.command:
            case "serve":
                return _command_serve(args, arguments)
            case "lab":
                return _command_lab(args)
            case "check-config":
                return _command_check_config(args)
            case "cache":
                return _command_cache(args)
            case "trace":
                return _command_trace(args)
            case "query":
                return run_query(args)
    except (ConfigError, HintsError, LabDescriptionError, ValueError) as exc:
        print(f"rootwalk: {exc}", file=sys.stderr)
        return 2
    except StubError as exc:
        print(f"rootwalk query: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # A bind error's text already says which setting and what to do; no "[Errno N]".
        said = exc.strerror if exc.filename is None and exc.strerror else exc
        print(f"rootwalk: {said}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 2
