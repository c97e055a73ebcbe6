"""The lab's description file (``zones/lab/lab.toml``): zones, servers and their faults."""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import dns.rcode
import dns.rdata

from resolver.names import InvalidNameError, parse_name


class LabDescriptionError(ValueError):
    """The lab description names a bad key or value; the message names file and key."""


@dataclass(frozen=True, slots=True)
class Faults:
    """What a lab server does wrong, on purpose."""

    drop: float = 0.0
    delay_s: float = 0.0
    rcode: dns.rcode.Rcode | None = None
    formerr_edns: bool = False
    truncate: bool = False
    wrong_id: bool = False
    garbage: bool = False
    tcp: bool = True
    poison: bool = False
    """Lie: add out-of-zone records to every answer (an A record for a name in another TLD,
    NS records for the parent zone, glue for a TLD server) pointing at a wrong address."""
    dname_cname_target: bool = False
    """Lie beside a DNAME: the CNAME synthesised for a name below it points to the same
    labels under ``wrong.<zone>`` instead of the DNAME's target (RFC 6672 §3.4 says to
    ignore such a CNAME), and the lie is chased in the zone."""
    dname_cname_ttl0: bool = False
    """The old DNAME behaviour (RFC 2672 §4.1): the synthesised CNAME has TTL 0, not the
    DNAME's TTL (RFC 6672 §3.1)."""
    nxdomain_for_ent: bool = False
    """Broken: NXDOMAIN for an empty non-terminal (RFC 8020 §2 says such names exist), as
    some servers do; a QNAME-minimising resolver must fall back to the full name."""
    on_nodata: str = ""
    """Broken: instead of a NODATA answer (empty non-terminals included), answer this rcode
    (``REFUSED``, ``SERVFAIL``, ``FORMERR``...) or ``drop`` the question, as some servers do
    for the minimised questions of RFC 9156 §2.4."""
    spray: int = 0
    """Forge: for each query, send this many answers with random IDs (and a few IDs that
    follow the IDs seen before) carrying a wrong address, from the server's own socket, to
    the resolver's recently seen ports and random ports. The forgery test uses it."""
    no_aa: bool = False
    """Broken: answer for its own zones with AA=0 (RFC 1035 §4.1.1: an answer from the
    zone's authority sets AA), as some misconfigured servers and middleboxes do."""
    swap_case: bool = False
    """Echo the question name with every letter's case swapped (``WwW.eXaMpLe.``): names
    compare case-insensitively (RFC 4343 §3), but a resolver that uses 0x20 randomisation
    (draft-vixie-dnsext-dns0x20) must not take such a reply as its own."""
    wrong_question: bool = False
    """Broken: put another name (``wrong.`` before the one asked) in the reply's question
    section; RFC 5452 §9.1 says a resolver must not take such a reply as the answer."""
    delay_names: tuple[tuple[dns.name.Name, float], ...] = ()
    forge: tuple[tuple[dns.name.Name, str], ...] = ()
    """Lie in a signed zone: answer these names (for the record's type, or ANY) with this
    record (``"A 192.0.2.66"``), unsigned, in place of the zone's answer; a validator must
    find it bogus (issue 12)."""
    """Answer these names (exactly, any type) this many seconds late, the rest at once: a
    server fast for most names and slow for some (a backend lookup, an on-line signer)."""


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: dns.name.Name
    address: str
    zones: tuple[dns.name.Name, ...]
    faults: Faults = field(default_factory=Faults)


@dataclass(frozen=True, slots=True)
class LabDescription:
    zone_files: dict[dns.name.Name, Path]
    servers: tuple[ServerSpec, ...]
    signed_files: dict[dns.name.Name, Path] = field(default_factory=dict)
    """The signed file of each signed zone (``[signed]``; python -m resolver.lab.sign writes
    them from ``zone_files``, the unsigned sources): the servers serve these."""

    def serving_files(self) -> dict[dns.name.Name, Path]:
        """The file each zone is served from: the signed one where there is one."""
        return {zone: self.signed_files.get(zone, path) for zone, path in self.zone_files.items()}

    def server(self, address: str) -> ServerSpec:
        """The server listening on ``address``."""
        for spec in self.servers:
            if spec.address == address:
                return spec
        raise KeyError(f"no lab server at {address}")

    def with_faults(self, *addresses: str, **changes: Any) -> LabDescription:
        """A new description in which the servers at ``addresses`` also inject ``changes``
        (``Faults`` field names: ``drop=1.0``, ``spray=48``...) on top of their own faults.

        Tests build faulty variants of the lab this way instead of editing its TOML text;
        an unknown address raises ``KeyError``, an unknown fault ``TypeError``.
        """
        for address in addresses:
            self.server(address)
        servers = tuple(
            dataclasses.replace(spec, faults=dataclasses.replace(spec.faults, **changes))
            if spec.address in addresses
            else spec
            for spec in self.servers
        )
        return dataclasses.replace(self, servers=servers)

    def with_zone_file(self, zone: dns.name.Name | str, path: Path) -> LabDescription:
        """A new description that serves ``zone`` from ``path`` (a zone it already has)."""
        name = parse_name(zone) if isinstance(zone, str) else zone
        if name not in self.zone_files:
            raise KeyError(f"no lab zone {name}")
        return dataclasses.replace(self, zone_files={**self.zone_files, name: path})


def _faults(raw: dict[str, Any], where: str) -> Faults:
    known = set(Faults.__dataclass_fields__)
    for key in raw:
        if key not in known:
            raise LabDescriptionError(f"{where}.faults.{key}: unknown fault")
    values = dict(raw)
    if "rcode" in values:
        try:
            values["rcode"] = dns.rcode.from_text(str(values["rcode"]))
        except dns.rcode.UnknownRcode as exc:
            raise LabDescriptionError(f"{where}.faults.rcode: unknown rcode") from exc
    if "forge" in values:
        values["forge"] = _forge(values["forge"], where)
    if "delay_names" in values:
        values["delay_names"] = _delay_names(values["delay_names"], where)
    on_nodata = values.get("on_nodata", "")
    if on_nodata not in ("", "drop"):
        try:
            dns.rcode.from_text(str(on_nodata))
        except dns.rcode.UnknownRcode as exc:
            raise LabDescriptionError(f"{where}.faults.on_nodata: an rcode or drop") from exc
    drop = values.get("drop", 0.0)
    if not isinstance(drop, int | float) or not 0.0 <= drop <= 1.0:
        raise LabDescriptionError(f"{where}.faults.drop: a probability from 0 to 1")
    return Faults(**values)


def _delay_names(raw: object, where: str) -> tuple[tuple[dns.name.Name, float], ...]:
    """``{ "slow1.perslow.lab." = 0.35, ... }``: absolute names to seconds of delay."""
    if not isinstance(raw, dict):
        raise LabDescriptionError(f"{where}.faults.delay_names: a table of name = seconds")
    delays = []
    for name_text, delay in raw.items():
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise LabDescriptionError(f"{where}.faults.delay_names.{name_text}: seconds >= 0")
        delays.append((parse_name(name_text), float(delay)))
    return tuple(delays)


def _forge(raw: object, where: str) -> tuple[tuple[dns.name.Name, str], ...]:
    """``{ "www.forge.lab." = "A 192.0.2.66" }``: absolute names to a type and its rdata."""
    if not isinstance(raw, dict):
        raise LabDescriptionError(f'{where}.faults.forge: a table of name = "TYPE rdata"')
    forged = []
    for name_text, record in raw.items():
        try:
            rdtype, rdata = str(record).split(None, 1)
            dns.rdata.from_text("IN", rdtype, rdata)
        except (ValueError, dns.exception.DNSException) as exc:
            raise LabDescriptionError(f"{where}.faults.forge.{name_text}: {exc}") from exc
        forged.append((parse_name(name_text), str(record)))
    return tuple(forged)


def parse_lab_description(text: str, base: Path, source: str = "lab.toml") -> LabDescription:
    """Parse the description; zone file names are relative to ``base``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LabDescriptionError(f"{source}: {exc}") from exc
    try:
        zone_files = {parse_name(zone): base / file for zone, file in data.get("zones", {}).items()}
        signed_files = {parse_name(z): base / f for z, f in data.get("signed", {}).items()}
        for zone in signed_files:
            if zone not in zone_files:
                raise LabDescriptionError(f"{source}: signed.{zone}: no zone file for {zone}")
        servers = []
        for name_text, raw in data.get("servers", {}).items():
            where = f"{source}: servers.{name_text!r}"
            address = str(ipaddress.ip_address(raw["address"]))
            zones = tuple(parse_name(z) for z in raw["zones"])
            for zone in zones:
                if zone not in zone_files:
                    raise LabDescriptionError(f"{where}.zones: no zone file for {zone}")
            faults = _faults(raw.get("faults", {}), where)
            servers.append(ServerSpec(parse_name(name_text), address, zones, faults))
    except (KeyError, ValueError, TypeError, InvalidNameError) as exc:
        if isinstance(exc, LabDescriptionError):
            raise
        raise LabDescriptionError(f"{source}: {exc}") from exc
    return LabDescription(zone_files, tuple(servers), signed_files)


def load_lab_description(path: Path) -> LabDescription:
    return parse_lab_description(path.read_text(), path.parent, str(path))
