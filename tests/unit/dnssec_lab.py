"""Keys, signatures and NSEC/NSEC3 chains made in-test for the DNSSEC unit tests.

Everything is generated with dnspython and ``cryptography`` at a pinned time; nothing is
fetched. ECDSA P-256 is the default key: fast to make and to verify.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataset
import dns.rdatatype
import dns.rrset
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.RRSIG import RRSIG

NOW = 1_800_000_000
"""The pinned wall-clock time of every test (2027-01-15)."""

ZONE = dns.name.from_text("example.")


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def rrset(owner: str, rdtype: str, *rdatas: str, ttl: int = 300) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(owner, ttl, "IN", rdtype, list(rdatas))


@dataclass
class Key:
    """A private key and its DNSKEY record."""

    private: Any
    dnskey: DNSKEY

    @property
    def tag(self) -> int:
        return dns.dnssec.key_id(self.dnskey)

    def sign(
        self,
        data: dns.rrset.RRset,
        signer: dns.name.Name = ZONE,
        *,
        inception: int = NOW - 3600,
        expiration: int = NOW + 86400,
    ) -> RRSIG:
        return dns.dnssec.sign(
            data,
            self.private,
            signer,
            self.dnskey,
            inception=inception,
            expiration=expiration,
            policy=dns.dnssec.allow_all_policy,
        )

    def ds(self, zone: dns.name.Name = ZONE, digest: str = "SHA256") -> DS:
        return dns.dnssec.make_ds(zone, self.dnskey, digest, policy=dns.dnssec.allow_all_policy)


def make_key(algorithm: int = 13, flags: int = 257) -> Key:
    """A new key of ``algorithm`` (5, 7, 8, 10: RSA; 13, 14: ECDSA; 15, 16: EdDSA)."""
    private: Any
    if algorithm in (5, 7, 8, 10):
        private = rsa.generate_private_key(65537, 2048)
    elif algorithm == 13:
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == 14:
        private = ec.generate_private_key(ec.SECP384R1())
    elif algorithm == 15:
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        private = ed448.Ed448PrivateKey.generate()
    dnskey = dns.dnssec.make_dnskey(private.public_key(), algorithm, flags=flags)
    return Key(private, cast(DNSKEY, dnskey))


def dnskey_rrset(*keys: DNSKEY, zone: dns.name.Name = ZONE) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(zone, 3600, list(keys))


def colliding_keys(count: int, tag: int, algorithm: int = 13) -> list[DNSKEY]:
    """``count`` distinct DNSKEYs (not real public keys) that all have key tag ``tag``: the
    last 16 bits of each key are solved for the RFC 4034 Appendix B checksum."""
    keys: list[DNSKEY] = []
    for index in range(count):
        body = (257).to_bytes(2, "big") + bytes([3, algorithm, index % 256, index // 256])
        body += bytes(58)
        base = sum(b << 8 if i % 2 == 0 else b for i, b in enumerate(body))
        low = next(w for w in range(65536) if ((base + w) + ((base + w) >> 16)) & 0xFFFF == tag)
        key = body[4:] + low.to_bytes(2, "big")
        text = f"257 3 {algorithm} {base64.b64encode(key).decode()}"
        keys.append(cast(DNSKEY, dns.rdata.from_text("IN", "DNSKEY", text)))
    assert all(dns.dnssec.key_id(key) == tag for key in keys)
    return keys


def nsec_chain(zone: dns.name.Name, names: dict[str, str]) -> list[dns.rrset.RRset]:
    """The NSEC chain of a zone whose names (relative text) hold the types given as text;
    each record lists its types plus RRSIG and NSEC (RFC 4034 §4.1.2)."""
    owners = sorted(dns.name.from_text(owner, zone) for owner in names)
    texts = {dns.name.from_text(owner, zone): types for owner, types in names.items()}
    chain = []
    for index, owner in enumerate(owners):
        nxt = owners[(index + 1) % len(owners)]
        chain.append(rrset(owner.to_text(), "NSEC", f"{nxt} {texts[owner]} RRSIG NSEC"))
    return chain


def nsec3_chain(
    zone: dns.name.Name,
    names: dict[str, str],
    *,
    iterations: int = 0,
    salt: str = "-",
    opt_out: bool = False,
    algorithm: int = 1,
) -> list[dns.rrset.RRset]:
    """The NSEC3 chain (RFC 5155 §7.1) of a zone whose names hold the given types (empty
    text for an empty non-terminal)."""
    salt_bytes = b"" if salt == "-" else bytes.fromhex(salt)
    hashed = sorted(
        (dns.dnssec.nsec3_hash(dns.name.from_text(owner, zone), salt_bytes, iterations, 1), types)
        for owner, types in names.items()
    )
    flags = 1 if opt_out else 0
    chain = []
    for index, (digest, types) in enumerate(hashed):
        nxt = hashed[(index + 1) % len(hashed)][0]
        signed = f"{types} RRSIG" if types and types != "NS" else types
        text = f"{algorithm} {flags} {iterations} {salt} {nxt} {signed}".rstrip()
        chain.append(rrset(f"{digest}.{zone}", "NSEC3", text))
    return chain


def without(chain: Iterable[dns.rrset.RRset], covering: dns.name.Name) -> list[dns.rrset.RRset]:
    """The chain minus the record owned by ``covering``."""
    return [r for r in chain if r.name != covering]


def rdataset_of(*rdatas: dns.rdata.Rdata) -> dns.rdataset.Rdataset:
    return dns.rdataset.from_rdata_list(300, list(rdatas))
