"""The command line's grammar: the ``rootwalk`` parser, its subcommands and flags, and the
settings flags a subcommand was given. What each subcommand does is :mod:`resolver.cli`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LAB_PORT = 10053
"""The lab's default port (``rootwalk lab``, ``rootwalk trace --lab``)."""


def _add_resolver_flags(parser: argparse.ArgumentParser, *, serving: bool = True) -> None:
    """The settings flags; ``serving`` adds those that only a listening resolver uses (its
    sockets, its clients, its endpoints), which ``trace`` does not have."""
    parser.add_argument("--config", type=Path, help="TOML settings file")
    if serving:
        parser.add_argument(
            "--listen",
            action="append",
            metavar="ADDR:PORT",
            help="listen address (repeatable); IPv6 as [::1]:53",
        )
    parser.add_argument("--root-hints", metavar="FILE", help="root hints master file")
    parser.add_argument(
        "--trust-anchors",
        action="append",
        metavar="FILE",
        help="DNSSEC trust anchor file, DS or DNSKEY records (repeatable)",
    )
    if serving:
        parser.add_argument(
            "--allow-clients",
            action="append",
            metavar="CIDR",
            help="clients allowed to query, besides loopback (repeatable)",
        )
    parser.add_argument(
        "--outbound-allow",
        action="append",
        metavar="CIDR",
        help="networks the resolver may send queries to (repeatable)",
    )
    parser.add_argument("--outbound-port", metavar="N", help="port of upstream servers")
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR")
    if serving:
        parser.add_argument(
            "--metrics",
            metavar="ADDR:PORT|off",
            help="Prometheus endpoint (default 127.0.0.1:9153)",
        )
        parser.add_argument(
            "--control",
            metavar="ADDR:PORT|off",
            help="control endpoint, loopback only (default 127.0.0.1:9154)",
        )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("rootwalk")
    except PackageNotFoundError:
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rootwalk", description="A recursive DNS resolver.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the resolver")
    _add_resolver_flags(serve)
    serve.add_argument("--workers", metavar="N", help="processes sharing the ports (default 1)")
    serve.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # set by the supervisor

    lab = commands.add_parser("lab", help="run the lab and a resolver pointed at it")
    _add_resolver_flags(lab)
    lab.add_argument(
        "--lab-port",
        type=int,
        default=LAB_PORT,
        metavar="N",
        help=f"port of the lab's servers (default {LAB_PORT})",
    )

    check = commands.add_parser("check-config", help="print the settings as TOML and exit")
    _add_resolver_flags(check)
    check.add_argument("--workers", metavar="N", help="processes sharing the ports (default 1)")

    trace = commands.add_parser("trace", help="resolve in-process, printing every step")
    _add_resolver_flags(trace, serving=False)
    trace.add_argument("name", help="the name (absolute, or relative to the root)")
    trace.add_argument("type", nargs="?", default="A", help="the type (default A)")
    trace.add_argument(
        "--lab",
        action="store_true",
        help="walk the lab started by `rootwalk lab` (its hints, its port, loopback only)",
    )
    trace.add_argument(
        "--lab-port",
        type=int,
        default=LAB_PORT,
        metavar="N",
        help=f"with --lab: port of the lab's servers (default {LAB_PORT})",
    )

    cache = commands.add_parser("cache", help="flush or inspect a running resolver's caches")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    flush = cache_commands.add_parser("flush", help="forget a name, a subtree, or everything")
    flush.add_argument(
        "name",
        nargs="?",
        help="the name (absolute or relative to the root); omit to flush everything",
    )
    flush.add_argument("--subtree", action="store_true", help="and every name below it")
    stats = cache_commands.add_parser("stats", help="print cache sizes and counters")
    for sub in (flush, stats):
        sub.add_argument(
            "--control",
            default="127.0.0.1:9154",
            metavar="ADDR:PORT",
            help="the resolver's control endpoint",
        )

    query = commands.add_parser("query", help="ask a resolver, applying search list and ndots")
    query.add_argument("name")
    query.add_argument("type", nargs="?", default="A", help="the type (default A)")
    query.add_argument("--server", metavar="ADDR[:PORT]", help="resolver to ask")
    query.add_argument("--search", action="append", metavar="DOMAIN", help="search domain")
    query.add_argument("--ndots", type=int, metavar="N", help="dots before trying as-is first")
    query.add_argument("--tcp", action="store_true", help="ask over TCP")
    query.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="seconds to wait for each reply"
    )
    return parser


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The settings flags this subcommand has (None: not given, or not offered here)."""
    keys = (
        "listen",
        "root_hints",
        "trust_anchors",
        "allow_clients",
        "outbound_allow",
        "outbound_port",
    )
    more = ("log_level", "metrics", "control", "workers")
    return {key: getattr(args, key, None) for key in keys + more}


def parse_arguments(arguments: Sequence[str]) -> argparse.Namespace:
    """The parsed command line; a usage error exits with status 2 (argparse's way)."""
    parser = build_parser()
    # `query NAME --server X AAAA`: the type may follow the options (argparse's intermixed
    # parsing does not work with subcommands, so the one leftover word is taken here).
    args, extra = parser.parse_known_args(arguments)
    if args.command in ("query", "trace") and len(extra) == 1 and not extra[0].startswith("-"):
        if args.type != "A" or "A" in arguments[arguments.index(args.name) + 1 :][:1]:
            parser.error(f"unrecognized arguments: {extra[0]}")
        args.type = extra[0]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args
