"""Sign the lab's zones: ``python -m resolver.lab.sign`` (issue 12 item 7).

Reads the unsigned sources of ``zones/lab/lab.toml``'s ``[zones]``, signs those listed in
``[signed]`` by :data:`POLICIES` (children first, so each parent carries its children's DS)
and writes the signed files, the keys (``zones/lab/keys/``, PEM) and the lab's trust anchor
(``zones/lab/trust-anchor.ds``, the DS of the root's KSK). The private keys are committed on
purpose: this is a lab, its keys protect nothing. Existing keys are reused, so re-running
keeps the DS records and the trust anchor; the signatures are deterministic (RFC 6979 for
ECDSA) and valid from :data:`INCEPTION` to :data:`EXPIRATION`.

Signed files are committed rather than made at each lab start: the test suite starts labs
many times and signing (RSA keys, 151 NSEC3 iterations, the KeyTrap zone) would cost each
start far more than parsing. The NSEC and NSEC3 chains are built here, not by
``dns.dnssec.sign_zone`` (dnspython 2.9 builds NSEC only), and each RRset is signed with
``dns.dnssec.sign``; the broken zones are broken after signing, as :data:`POLICIES` says.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import dns.dnssec
import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone
from dns.dnssectypes import Algorithm
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.RRSIG import RRSIG

from resolver.lab.chains import add_nsec3_chain, add_nsec_chain, authoritative_names
from resolver.lab.corners import (
    SignedKey,
    break_labels,
    corner_keys,
    ksk_flags,
    stored_key,
)
from resolver.lab.description import LabDescription, load_lab_description

INCEPTION = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
EXPIRATION = datetime.datetime(2036, 1, 1, tzinfo=datetime.UTC)
EXPIRED = (
    datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
    datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC),
)
NOT_YET = (
    datetime.datetime(2035, 1, 1, tzinfo=datetime.UTC),
    datetime.datetime(2036, 1, 1, tzinfo=datetime.UTC),
)
UNSUPPORTED_ALGORITHM = 200
"""An unassigned DNSSEC algorithm number: a validator must treat the zone as insecure
(RFC 6840 §5.2)."""
KEYTRAP_KEYS = 32
"""keytrap.lab.'s DNSKEY set: this many keys with one key tag (one real, the others its
public key with bytes moved so the tag stays), and as many RRSIGs with that tag over www A
(none valid): a validator that tries every key with every signature does 32 x 32 = 1024
verifications for one RRset (CVE-2023-50387)."""
TTL_DNSKEY = 3600
TTL_DS = 3600


@dataclass(frozen=True, slots=True)
class Policy:
    """How one zone is signed: algorithm, KSK+ZSK or one CSK, NSEC or NSEC3, and breakage."""

    algorithm: Algorithm = Algorithm.ECDSAP256SHA256
    split: bool = False
    nsec3: bool = False
    opt_out: bool = False
    iterations: int = 0
    broken: str = ""
    ds_digest: str = field(default="SHA256", repr=False)
    """The digest of the DS the parent publishes (RFC 4509 SHA-256; RFC 6605 SHA-384). Left
    out of the repr that heads each signed file, so adding it changed no existing file."""


POLICIES: dict[str, Policy] = {
    ".": Policy(Algorithm.RSASHA256, split=True),
    "lab.": Policy(Algorithm.ECDSAP256SHA256),
    "secure.lab.": Policy(Algorithm.ECDSAP256SHA256, split=True),
    "nsec3.lab.": Policy(Algorithm.ECDSAP256SHA256, nsec3=True),
    "optout.lab.": Policy(Algorithm.ECDSAP256SHA256, nsec3=True, opt_out=True),
    "alg8.lab.": Policy(Algorithm.RSASHA256),
    "alg10.lab.": Policy(Algorithm.RSASHA512),
    "alg13.lab.": Policy(Algorithm.ECDSAP256SHA256),
    "alg14.lab.": Policy(Algorithm.ECDSAP384SHA384),
    "alg15.lab.": Policy(Algorithm.ED25519),
    "alg16.lab.": Policy(Algorithm.ED448),
    "badsig.lab.": Policy(broken="badsig"),
    "expired.lab.": Policy(broken="expired"),
    "future.lab.": Policy(broken="future"),
    "nosig.lab.": Policy(broken="nosig"),
    "dsmismatch.lab.": Policy(broken="dsmismatch"),
    "nodnskey.lab.": Policy(broken="nodnskey"),
    "unsupported.lab.": Policy(Algorithm.ED25519, broken="unsupported"),
    "nsec3iter.lab.": Policy(nsec3=True, iterations=151),
    "forge.lab.": Policy(Algorithm.ED25519),
    "keytrap.lab.": Policy(Algorithm.ED25519, broken="keytrap"),
    "mixed.lab.": Policy(Algorithm.ECDSAP256SHA256),
    "hop.lab.": Policy(Algorithm.ED25519),
    "ds384.lab.": Policy(Algorithm.ECDSAP256SHA256, ds_digest="SHA384"),
    "maxname.lab.": Policy(Algorithm.ECDSAP256SHA256, nsec3=True),
    "ds1.lab.": Policy(Algorithm.ECDSAP256SHA256, ds_digest="SHA1"),
    "dsdowngrade.lab.": Policy(Algorithm.ECDSAP256SHA256, ds_digest="SHA1", broken="dsdowngrade"),
    "dsunknown.lab.": Policy(Algorithm.ECDSAP256SHA256, broken="dsunknown"),
    # DNSSEC corner cases: see resolver/lab/corners.py
    "revoked.lab.": Policy(Algorithm.ECDSAP256SHA256, broken="revoked"),
    "nozonebit.lab.": Policy(Algorithm.ECDSAP256SHA256, broken="nozonebit"),
    "rollover.lab.": Policy(Algorithm.ECDSAP256SHA256, split=True, broken="rollover"),
    "algmix.lab.": Policy(Algorithm.ECDSAP256SHA256, broken="algmix"),
    "labels.lab.": Policy(Algorithm.ECDSAP256SHA256, broken="labels"),
    "bigkeys.lab.": Policy(Algorithm.RSASHA256, split=True, broken="bigkeys"),
}


@dataclass(slots=True)
class ZoneKeys:
    """The zone's KSK and ZSK (one CSK: the same pair twice), every key it publishes, the keys
    that sign its DNSKEY set and those the parent's DS records point at."""

    ksk: SignedKey
    zsk: SignedKey
    published: list[DNSKEY]
    dnskey_signers: list[SignedKey] = field(default_factory=list)
    ds_keys: list[DNSKEY] = field(default_factory=list)


def zone_keys(keys_dir: Path, zone: dns.name.Name, policy: Policy) -> ZoneKeys:
    """The zone's keys: a KSK (flags 257) and a ZSK (256), or one CSK (257), and the extra
    keys of a corner case (:func:`resolver.lab.corners.corner_keys`)."""
    stem = zone.to_text().rstrip(".") or "root"
    ksk_path = keys_dir / f"{stem}.{'ksk' if policy.split else 'csk'}.pem"
    ksk_key = stored_key(ksk_path, policy.algorithm)
    flags = ksk_flags(policy.broken)
    ksk = (ksk_key, dns.dnssec.make_dnskey(ksk_key.public_key(), policy.algorithm, flags=flags))
    zsk = ksk
    if policy.split:
        zsk_key = stored_key(keys_dir / f"{stem}.zsk.pem", policy.algorithm)
        zsk = (zsk_key, dns.dnssec.make_dnskey(zsk_key.public_key(), policy.algorithm, flags=256))
    published = [ksk[1]] if zsk is ksk else [ksk[1], zsk[1]]
    extra, dnskey_signers, ds_keys = corner_keys(keys_dir, stem, policy.broken, policy.algorithm)
    published += [k[1] for k in extra]
    if policy.broken == "rollover":  # the DS is for the new KSK only
        return ZoneKeys(ksk, zsk, published, [ksk, *dnskey_signers], [k[1] for k in ds_keys])
    return ZoneKeys(ksk, zsk, published, [ksk, *dnskey_signers], [ksk[1], *(k[1] for k in ds_keys)])


def _sign(
    rrset: dns.rrset.RRset,
    key: SignedKey,
    signer: dns.name.Name,
    window: tuple[datetime.datetime, datetime.datetime],
) -> RRSIG:
    return dns.dnssec.sign(rrset, key[0], signer, key[1], inception=window[0], expiration=window[1])


def sign_rrsets(zone: dns.zone.Zone, keys: ZoneKeys, policy: Policy) -> None:
    """An RRSIG over every authoritative RRset (the DNSKEY set by the KSK, the rest by the
    ZSK; at a cut only DS), in the policy's window."""
    origin = zone.origin
    assert origin is not None
    window = (INCEPTION, EXPIRATION)
    if policy.broken == "expired":
        window = EXPIRED
    elif policy.broken == "future":
        window = NOT_YET
    for name, cut in list(authoritative_names(zone)):
        node = zone.nodes[name]
        for rdataset in list(node.rdatasets):
            if rdataset.rdtype == dns.rdatatype.RRSIG or (
                cut and rdataset.rdtype not in (dns.rdatatype.DS, dns.rdatatype.NSEC)
            ):
                continue
            rrset = dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))
            if rdataset.rdtype == dns.rdatatype.DNSKEY:
                rrsigs = [
                    _sign(rrset, k, origin, (INCEPTION, EXPIRATION)) for k in keys.dnskey_signers
                ]
            else:
                rrsigs = [_sign(rrset, keys.zsk, origin, window)]
            sigs = node.find_rdataset(
                dns.rdataclass.IN, dns.rdatatype.RRSIG, rdataset.rdtype, create=True
            )
            for rrsig in rrsigs:
                sigs.add(rrsig, rdataset.ttl)


def _signatures(
    zone: dns.zone.Zone, name: str, covers: dns.rdatatype.RdataType
) -> dns.rdataset.Rdataset:
    node = zone.nodes[dns.name.from_text(name, zone.origin)]
    rdataset = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, covers)
    assert rdataset is not None
    return rdataset


def _collide(dnskey: DNSKEY, count: int) -> list[DNSKEY]:
    """``count`` keys with ``dnskey``'s key tag (RFC 4034 Appendix B): its public key with
    ``d`` more at one even offset and ``d`` less at the next, so the sum stays."""
    tag = dns.dnssec.key_id(dnskey)
    key = bytes(dnskey.key)
    seen = {key}
    keys: list[DNSKEY] = []
    for delta in range(1, 256):
        for i in range(0, len(key) - 2, 2):
            if len(keys) == count:
                return keys
            if key[i] + delta > 255 or key[i + 2] < delta:
                continue
            changed = bytearray(key)
            changed[i] += delta
            changed[i + 2] -= delta
            if bytes(changed) in seen:
                continue
            seen.add(bytes(changed))
            variant = cast(DNSKEY, dnskey.replace(key=bytes(changed)))
            assert dns.dnssec.key_id(variant) == tag, "a colliding key must keep the tag"
            keys.append(variant)
    raise ValueError("not enough colliding keys")


def _garbage_rrsig(rrsig: RRSIG, seed: int) -> RRSIG:
    signature = hashlib.shake_256(rrsig.signature + seed.to_bytes(4, "big")).digest(
        len(rrsig.signature)
    )
    return cast(RRSIG, rrsig.replace(signature=signature))


def break_zone(zone: dns.zone.Zone, keys: ZoneKeys, policy: Policy) -> None:
    """Break a signed zone the way its policy says (the DS side is in :func:`ds_for`)."""
    origin = zone.origin
    assert origin is not None
    if policy.broken == "badsig":
        sigs = _signatures(zone, "www", dns.rdatatype.A)
        (rrsig,) = list(sigs)
        flipped = bytes([rrsig.signature[0] ^ 0xFF]) + rrsig.signature[1:]
        _replace(zone, "www", [rrsig.replace(signature=flipped)])
    elif policy.broken == "nosig":
        www = zone.nodes[dns.name.from_text("www", origin)]
        www.delete_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.A)
    elif policy.broken == "unsupported":
        for node in zone.nodes.values():
            for rdataset in list(node.rdatasets):
                if rdataset.rdtype in (dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY):
                    changed = [_unsupported(r) for r in rdataset]
                    node.replace_rdataset(dns.rdataset.from_rdata_list(rdataset.ttl, changed))
    elif policy.broken == "keytrap":
        sigs = _signatures(zone, "www", dns.rdatatype.A)
        (rrsig,) = list(sigs)
        _replace(zone, "www", [_garbage_rrsig(rrsig, seed) for seed in range(KEYTRAP_KEYS)])
    elif policy.broken == "labels":
        break_labels(zone, keys.zsk, (INCEPTION, EXPIRATION))


def _replace(zone: dns.zone.Zone, name: str, rdatas: list[dns.rdata.Rdata]) -> None:
    """Put ``rdatas`` (RRSIGs over one type) in place of the signatures at ``name``."""
    node = zone.nodes[dns.name.from_text(name, zone.origin)]
    node.replace_rdataset(dns.rdataset.from_rdata_list(rdatas_ttl(node, rdatas), rdatas))


def rdatas_ttl(node: dns.node.Node, rdatas: list[dns.rdata.Rdata]) -> int:
    covered = node.get_rdataset(dns.rdataclass.IN, rdatas[0].covers())
    assert covered is not None
    return int(covered.ttl)


def _unsupported(rdata: dns.rdata.Rdata) -> dns.rdata.Rdata:
    """The same record with algorithm 200 (and, for an RRSIG, that key's tag)."""
    if isinstance(rdata, DNSKEY):
        return rdata.replace(algorithm=UNSUPPORTED_ALGORITHM)
    assert isinstance(rdata, RRSIG)
    return rdata.replace(
        algorithm=UNSUPPORTED_ALGORITHM, key_tag=UNSUPPORTED_KEY_TAGS[rdata.key_tag]
    )


UNSUPPORTED_KEY_TAGS: dict[int, int] = {}
"""Key tag of each real key -> the tag of its algorithm-200 twin (filled while signing)."""


DS_UNKNOWN_DIGEST = 250
"""An unassigned DS digest type: a DS set of only such digests leaves the zone insecure
(RFC 4035 §5.2, RFC 6840 §5.2)."""


def ds_for(zone: dns.name.Name, keys: ZoneKeys, policy: Policy) -> list[DS]:
    """The DS set the parent publishes for the zone (the policy's digest), broken as asked:
    ``dsdowngrade`` adds a SHA-256 DS that matches no key beside a right SHA-1 one (RFC 4509
    §3: SHA-1 is then to be ignored), ``dsunknown`` publishes one of an unknown digest type."""
    dnskey = keys.ksk[1]
    if policy.broken == "unsupported":
        dnskey = cast(DNSKEY, dnskey.replace(algorithm=UNSUPPORTED_ALGORITHM))
    allow = dns.dnssec.allow_all_policy  # SHA-1 on purpose: ds1.lab., dsdowngrade.lab.
    ds = dns.dnssec.make_ds(zone, dnskey, policy.ds_digest, policy=allow)
    if policy.broken in ("dsmismatch", "dsdowngrade"):
        sha256 = dns.dnssec.make_ds(zone, dnskey, "SHA256")
        digest = hashlib.sha256(b"no such key" + sha256.digest).digest()
        wrong = cast(DS, sha256.replace(digest=digest))
        return [wrong] if policy.broken == "dsmismatch" else [ds, wrong]
    if policy.broken == "dsunknown":
        return [cast(DS, ds.replace(digest_type=DS_UNKNOWN_DIGEST))]
    if keys.ds_keys != [keys.ksk[1]]:  # a corner case's DS set (resolver/lab/corners.py)
        return [dns.dnssec.make_ds(zone, k, policy.ds_digest, policy=allow) for k in keys.ds_keys]
    return [ds]


def sign_one(
    zone: dns.zone.Zone,
    keys: ZoneKeys,
    policy: Policy,
    children: dict[dns.name.Name, list[DS]],
) -> None:
    """Add the children's DS, the DNSKEY set and the denial chain, sign, then break."""
    origin = zone.origin
    assert origin is not None
    for child, ds_set in children.items():
        for ds in ds_set:
            zone.find_rdataset(child, dns.rdatatype.DS, create=True).add(ds, TTL_DS)
    if policy.broken == "unsupported":
        for _, dnskey in (keys.ksk, keys.zsk):
            twin = cast(DNSKEY, dnskey.replace(algorithm=UNSUPPORTED_ALGORITHM))
            UNSUPPORTED_KEY_TAGS[dns.dnssec.key_id(dnskey)] = dns.dnssec.key_id(twin)
    if policy.broken != "nodnskey":
        dnskeys = zone.find_rdataset(origin, dns.rdatatype.DNSKEY, create=True)
        for dnskey in keys.published:
            dnskeys.add(dnskey, TTL_DNSKEY)
        if policy.broken == "keytrap":
            for variant in _collide(keys.ksk[1], KEYTRAP_KEYS - 1):
                dnskeys.add(variant, TTL_DNSKEY)
    if policy.nsec3:
        add_nsec3_chain(zone, policy.iterations, policy.opt_out)
    else:
        add_nsec_chain(zone)
    sign_rrsets(zone, keys, policy)
    break_zone(zone, keys, policy)


def _order(names: list[dns.name.Name]) -> list[dns.name.Name]:
    """Deepest first: each child is signed before its parent needs its DS."""
    return sorted(names, key=lambda n: (-len(n), n))


def sign_lab(description: LabDescription, keys_dir: Path, anchor: Path) -> list[Path]:
    """Sign every zone of ``description.signed_files``; returns the files written."""
    written = []
    ds_records: dict[dns.name.Name, list[DS]] = {}
    for name in _order(list(description.signed_files)):
        policy = POLICIES[name.to_text()]
        zone = dns.zone.from_file(str(description.zone_files[name]), origin=name, relativize=False)
        keys = zone_keys(keys_dir, name, policy)
        children = {c: ds for c, ds in ds_records.items() if c.parent() == name}
        sign_one(zone, keys, policy, children)
        ds_records[name] = ds_for(name, keys, policy)
        path = description.signed_files[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            f"; {name} signed by `python -m resolver.lab.sign` from {description.zone_files[name].name}"
            f" (policy: {policy}).\n; Do not edit: edit the source and sign again.\n"
        )
        path.write_text(header + zone.to_text(sorted=True, relativize=False))
        written.append(path)
    (root,) = ds_records[dns.name.root]
    anchor.write_text(
        "; The lab's trust anchor: the DS of the lab root's KSK (python -m resolver.lab.sign).\n"
        f". {TTL_DS} IN DS {root.to_text()}\n"
    )
    written.append(anchor)
    return written


def main() -> None:
    lab_dir = Path(__file__).resolve().parents[2] / "zones" / "lab"
    description = load_lab_description(lab_dir / "lab.toml")
    for path in sign_lab(description, lab_dir / "keys", lab_dir / "trust-anchor.ds"):
        print(path)


if __name__ == "__main__":
    main()
