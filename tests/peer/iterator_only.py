"""Rootwalk with ``dnssec = false`` against Unbound 1.17 with ``module-config: "iterator"``
(validation off) on the signed lab: what a DO client sees.

    .venv/bin/python -m tests.peer.iterator_only --out DIR

re-runs itself under ``unshare --net`` with ``lo`` up, starts ``rootwalk lab --lab-port 53``
with ``ROOTWALK_DNSSEC=false`` (the lab's servers and a Rootwalk that does not validate) and
Debian's ``unbound`` iterator only on the lab's hints, asks each question of
:data:`tests.peer.signed_lab_unbound.EXPECTED` with DO over TCP of both, and writes per
question and resolver the rcode, the AD bit and the record types of each section (and
Rootwalk's again, from its cache) to ``DIR/iterator_only.json``. :mod:`tests.peer.test_iterator_only` compares the two.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from resolver.paths import lab_root_hints
from tests.peer import harness
from tests.peer.signed_lab_unbound import EXPECTED, command_line, lab_and_unbound

UNBOUND_PORT = 5322
ROOTWALK_PORT = 5399


def unbound_config(folder: Path) -> Path:
    """Unbound as :mod:`tests.peer.signed_lab_unbound` runs it, without the validator."""
    path = folder / "unbound-iterator.conf"
    path.write_text(
        "server:\n"
        f"  interface: 127.0.0.1@{UNBOUND_PORT}\n"
        '  module-config: "iterator"\n'
        f"  root-hints: {lab_root_hints()}\n"
        "  do-not-query-localhost: no\n  access-control: 127.0.0.0/8 allow\n"
        '  username: ""\n  chroot: ""\n  pidfile: ""\n'
        f"  directory: {folder}\n  logfile: {folder}/unbound-iterator.log\n"
        "  use-syslog: no\n  verbosity: 1\n  num-threads: 1\n  so-reuseport: no\n"
        '  local-zone: "lab." nodefault\n'
        "remote-control:\n  control-enable: no\n"
    )
    return path


def seen(port: int, name: str, rdtype: str) -> list[object]:
    """rcode, AD, and the sorted record types of the answer and authority sections."""
    query = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=True, payload=1232)
    try:
        reply = dns.query.tcp(query, "127.0.0.1", port=port, timeout=8)
    except (dns.exception.DNSException, OSError) as exc:
        return ["NO REPLY", False, [], [], repr(exc)]
    return [
        dns.rcode.to_text(reply.rcode()),
        bool(reply.flags & dns.flags.AD),
        sorted(dns.rdatatype.to_text(rrset.rdtype) for rrset in reply.answer),
        sorted(dns.rdatatype.to_text(rrset.rdtype) for rrset in reply.authority),
        "",
    ]


def inside(out: Path) -> int:
    with lab_and_unbound(
        ROOTWALK_PORT, UNBOUND_PORT, unbound_config(out), env={"ROOTWALK_DNSSEC": "false"}
    ):
        results = {
            f"{name} {rdtype}": {
                "rootwalk": seen(ROOTWALK_PORT, name, rdtype),
                "unbound": seen(UNBOUND_PORT, name, rdtype),
                "rootwalk_cached": seen(ROOTWALK_PORT, name, rdtype),
            }
            for name, rdtype in EXPECTED
        }
    (out / "iterator_only.json").write_text(json.dumps(results, indent=1))
    return 0


def run_in_namespace(out: Path, timeout_s: float = 90.0) -> tuple[int, str]:
    """:func:`inside` under ``unshare --net`` (only loopback: nothing can leave)."""
    return harness.run_in_namespace(
        out, timeout_s, module="tests.peer.iterator_only", what="the iterator-only comparison"
    )


def main() -> int:
    return command_line(inside, run_in_namespace, "iterator_only.json", __doc__)


if __name__ == "__main__":
    sys.exit(main())
