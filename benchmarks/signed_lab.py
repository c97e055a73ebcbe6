"""The signed variant of ``cache_benchmark.py`` (issue 12, "Measure"): the same lab (a root,
a TLD ``bench.`` delegating N zones ``zI.bench.``, the zones), every zone signed.

Signing (RFC 4034/4035): ECDSAP256SHA256 (algorithm 13; fast to sign and to verify, the
algorithm most signed zones use today), one combined signing key (CSK, flags 257) for the
root, one for ``bench.``, and ONE key shared by the N leaf zones (each still publishes its own
DNSKEY RRset and has its own DS and signatures, so a resolver fetches and verifies per zone
exactly as with a key per zone; sharing only saves generating N keys). NSEC chains in every
zone, DS records in the parent, signatures valid from an hour ago to 30 days ahead (wall
clock: both resolvers check the window against their clock). RRSIGs are made by dnspython's
``dns.dnssec.sign`` with the ``cryptography`` package, in one process per CPU (the lab is
signed before any server runs). The trust anchor (the DS of the root's key) goes to
``trust-anchor.ds``, which Unbound reads as ``trust-anchor-file:`` and Rootwalk as
``--trust-anchors``.

A leaf zone's file (canonical order ``zI`` < ``ns.zI`` < ``www.zI``):

    SOA, NS ns, DNSKEY, NSEC -> ns       at the apex
    A 127.54.2.1, NSEC -> www            at ns
    A 192.0.2.80, NSEC -> apex           at www

eight RRsets, eight RRSIGs; ``bench.`` adds per zone an NS, its glue (unsigned), a DS and an
NSEC (two RRSIGs). So a lab of N zones costs about 10 N signatures.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dns.dnssectypes import Algorithm
from dns.rdtypes.ANY.DNSKEY import DNSKEY

ALGORITHM = Algorithm.ECDSAP256SHA256
NEGATIVE_TTL = 300  # the SOA minimum: the NSEC TTL (RFC 4035 §2.3)
_leaf_key: tuple[ec.EllipticCurvePrivateKey, DNSKEY] | None = None  # set per signing process
_window: tuple[int, int] = (0, 0)


def _new_key() -> tuple[ec.EllipticCurvePrivateKey, DNSKEY]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, dns.dnssec.make_dnskey(key.public_key(), ALGORITHM, flags=257)


def _signed(
    owner: dns.name.Name,
    ttl: int,
    rdtype: str,
    rdatas: Iterable[str],
    zone: dns.name.Name,
    key: tuple[ec.EllipticCurvePrivateKey, DNSKEY],
) -> str:
    """Presentation lines of one RRset and its RRSIG (signer ``zone``)."""
    rrset = dns.rrset.from_text_list(owner, ttl, dns.rdataclass.IN, rdtype, list(rdatas))
    rrsig = dns.dnssec.sign(
        rrset, key[0], zone, key[1], inception=_window[0], expiration=_window[1]
    )
    return rrset.to_text() + f"\n{owner} {ttl} IN RRSIG {rrsig.to_text()}\n"


def _leaf_zone(index: int) -> str:
    """The signed text of ``zI.bench.``."""
    assert _leaf_key is not None
    key = _leaf_key
    apex = dns.name.from_text(f"z{index}.bench.")
    ns = dns.name.Name((b"ns", *apex.labels))
    www = dns.name.Name((b"www", *apex.labels))
    soa = f"{ns} hostmaster.{apex} 1 3600 900 604800 {NEGATIVE_TTL}"
    return "".join(
        [
            _signed(apex, 3600, "SOA", [soa], apex, key),
            _signed(apex, 3600, "NS", [str(ns)], apex, key),
            _signed(apex, 3600, "DNSKEY", [key[1].to_text()], apex, key),
            _signed(apex, NEGATIVE_TTL, "NSEC", [f"{ns} NS SOA RRSIG NSEC DNSKEY"], apex, key),
            _signed(ns, 3600, "A", ["127.54.2.1"], apex, key),
            _signed(ns, NEGATIVE_TTL, "NSEC", [f"{www} A RRSIG NSEC"], apex, key),
            _signed(www, 3600, "A", ["192.0.2.80"], apex, key),
            _signed(www, NEGATIVE_TTL, "NSEC", [f"{apex} A RRSIG NSEC"], apex, key),
        ]
    )


def _sign_chunk(job: tuple[Path, list[tuple[int, str]], bytes, bytes, tuple[int, int]]) -> str:
    """Write the leaf zones of one chunk; return their part of ``bench.`` (NS, glue, DS,
    NSEC and the RRSIGs). ``job`` is (folder, [(index, next name in bench.'s NSEC chain)],
    the leaf key's PEM, bench.'s key's PEM, the validity window)."""
    global _leaf_key, _window  # noqa: PLW0603 - per signing process, set once per chunk
    folder, items, leaf_pem, tld_pem, _window = job
    leaf = serialization.load_pem_private_key(leaf_pem, password=None)
    tld_private = serialization.load_pem_private_key(tld_pem, password=None)
    assert isinstance(leaf, ec.EllipticCurvePrivateKey)
    assert isinstance(tld_private, ec.EllipticCurvePrivateKey)
    leaf_dnskey = dns.dnssec.make_dnskey(leaf.public_key(), ALGORITHM, flags=257)
    _leaf_key = (leaf, leaf_dnskey)
    tld = (tld_private, dns.dnssec.make_dnskey(tld_private.public_key(), ALGORITHM, flags=257))
    bench = dns.name.from_text("bench.")
    lines: list[str] = []
    for index, next_name in items:
        (folder / "signed" / f"z{index}.zone").write_text(_leaf_zone(index))
        apex = dns.name.from_text(f"z{index}.bench.")
        ds = dns.dnssec.make_ds(apex, leaf_dnskey, "SHA256")
        lines.append(f"{apex} 86400 IN NS ns.{apex}\nns.{apex} 86400 IN A 127.54.2.1\n")
        lines.append(_signed(apex, 86400, "DS", [ds.to_text()], bench, tld))
        lines.append(
            _signed(apex, NEGATIVE_TTL, "NSEC", [f"{next_name} NS DS RRSIG NSEC"], bench, tld)
        )
    return "".join(lines)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_signed_zones(folder: Path, zones: int, processes: int | None = None) -> float:
    """Write ``root-signed.zone``, ``bench-signed.zone``, ``signed/zI.zone`` and
    ``trust-anchor.ds``; returns the seconds it took. A lab of as many zones signed earlier in
    ``folder`` (``--out``) whose signatures last another day is reused: 0 seconds."""
    global _window  # noqa: PLW0603 - this process signs the root and bench.'s apex too
    started = time.monotonic()
    now = int(time.time())
    marker = folder / "signed-lab.txt"  # "ZONES EXPIRATION", written last
    kept = marker.read_text().split() if marker.exists() else []
    if len(kept) == 2 and kept[0] == str(zones) and int(kept[1]) > now + 86400:
        return 0.0
    marker.unlink(missing_ok=True)
    _window = (now - 3600, now + 30 * 86400)
    (folder / "signed").mkdir(exist_ok=True)
    root_key, tld_key, leaf_key = _new_key(), _new_key(), _new_key()
    root, bench = dns.name.root, dns.name.from_text("bench.")
    # bench.'s NSEC chain: the apex, a.root, ns.tld, then the delegations in canonical order
    # (one label below bench.: plain byte order of the label; glue below a cut is not in it).
    order = sorted(range(zones), key=lambda i: f"z{i}")
    chain = [f"z{i}.bench." for i in order] + ["bench."]
    items = [(index, chain[n + 1]) for n, index in enumerate(order)]
    processes = processes or os.cpu_count() or 1
    size = max(1, min(2000, len(items) // (processes * 4) + 1))
    jobs = [
        (folder, items[at : at + size], _pem(leaf_key[0]), _pem(tld_key[0]), _window)
        for at in range(0, len(items), size)
    ]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        delegations = pool.map(_sign_chunk, jobs)
    first = chain[0] if zones else "bench."
    with (folder / "bench-signed.zone").open("w") as tld:
        tld.write("$ORIGIN bench.\n")
        soa = f"ns.tld.bench. hostmaster.tld.bench. 1 3600 900 604800 {NEGATIVE_TTL}"
        tld.write(_signed(bench, 3600, "SOA", [soa], bench, tld_key))
        tld.write(_signed(bench, 86400, "NS", ["ns.tld.bench."], bench, tld_key))
        tld.write(_signed(bench, 3600, "DNSKEY", [tld_key[1].to_text()], bench, tld_key))
        apex_nsec = "a.root.bench. NS SOA RRSIG NSEC DNSKEY"
        tld.write(_signed(bench, NEGATIVE_TTL, "NSEC", [apex_nsec], bench, tld_key))
        for owner, address, after in [
            ("a.root.bench.", "127.54.0.1", "ns.tld.bench."),
            ("ns.tld.bench.", "127.54.1.1", first),
        ]:
            name = dns.name.from_text(owner)
            tld.write(_signed(name, 86400, "A", [address], bench, tld_key))
            tld.write(
                _signed(name, NEGATIVE_TTL, "NSEC", [f"{after} A RRSIG NSEC"], bench, tld_key)
            )
        tld.writelines(delegations)
    bench_ds = dns.dnssec.make_ds(bench, tld_key[1], "SHA256")
    (folder / "root-signed.zone").write_text(
        "$ORIGIN .\n"
        + _signed(
            root,
            3600,
            "SOA",
            [f"a.root.bench. hostmaster.root.bench. 1 3600 900 604800 {NEGATIVE_TTL}"],
            root,
            root_key,
        )
        + _signed(root, 86400, "NS", ["a.root.bench."], root, root_key)
        + _signed(root, 3600, "DNSKEY", [root_key[1].to_text()], root, root_key)
        + _signed(root, NEGATIVE_TTL, "NSEC", ["bench. NS SOA RRSIG NSEC DNSKEY"], root, root_key)
        + "bench. 172800 IN NS ns.tld.bench.\nns.tld.bench. 172800 IN A 127.54.1.1\n"
        + "a.root.bench. 172800 IN A 127.54.0.1\n"
        + _signed(bench, 86400, "DS", [bench_ds.to_text()], root, root_key)
        + _signed(bench, NEGATIVE_TTL, "NSEC", [". NS DS RRSIG NSEC"], root, root_key)
    )
    anchor = dns.dnssec.make_ds(root, root_key[1], "SHA256")
    (folder / "trust-anchor.ds").write_text(
        f"; the benchmark root's anchor: the DS of its key\n. 3600 IN DS {anchor.to_text()}\n"
    )
    marker.write_text(f"{zones} {_window[1]}\n")
    return time.monotonic() - started


def nsd_zones_config(folder: Path, zones: int) -> str:
    """The ``zone:`` clauses of the leaf zones' NSD, one signed file each."""
    return "".join(
        f'zone:\n  name: z{i}.bench.\n  zonefile: "{folder}/signed/z{i}.zone"\n'
        for i in range(zones)
    )


def _dig(server: str, port: int, name: str) -> str:
    return subprocess.run(
        ["dig", f"@{server}", "-p", str(port), name, "A", "+dnssec", "+time=5", "+tries=2"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout


def wait_served(zones: int, seconds: float = 900) -> None:
    """Wait until the leaf zones' NSD serves the last zone signed (it reads N files first)."""
    name = f"www.z{zones - 1}.bench."
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if "RRSIG\tA" in _dig("127.54.2.1", 53, name).replace(" ", "\t"):
            return
        time.sleep(0.5)  # a benchmark waiting for NSD to load its zones, not a test
    raise SystemExit(f"NSD does not serve {name} signed after {seconds:.0f} s: no figures")


def require_ad(server: str, port: int, name: str, log: Path) -> None:
    """Abort the benchmark unless ``name`` comes back NOERROR with AD (validated: RFC 4035
    §3.2.3) from the resolver on ``port``: figures of a resolver that fails validation (or
    does not validate) would measure something else."""
    out = _dig(server, port, name)
    flags = re.search(r";; flags:([^;]*);", out)
    if "status: NOERROR" in out and flags and " ad" in flags.group(1):
        return
    raise SystemExit(
        f"validation check failed: {name} from {server}#{port} has no AD (or is not NOERROR), "
        f"so the benchmark stops without figures. The resolver's log: {log}\n{out}"
    )


def signal_verifications(pid: int, file: Path) -> tuple[int, float]:
    """Rootwalk's signature verifications so far and their seconds (``count_verify.py``)."""
    file.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    for _ in range(100):
        if file.exists() and file.read_text().endswith("\n"):
            count, seconds = file.read_text().split()
            return int(count), float(seconds)
        time.sleep(0.05)  # the handler runs at the event loop's next turn
    return 0, float("nan")
