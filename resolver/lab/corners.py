"""The signed lab's DNSSEC corner cases (issue 12): key sets and signatures that a careful
signer never makes but a validator meets, each in a zone of its own (``Policy.broken``).

- ``revoked``: the zone's only key has the REVOKE bit (flags 385); the DS in lab. is that
  key's: a revoked key must not validate anything (RFC 5011 §2.1).
- ``nozonebit``: the only key has the SEP bit but not the Zone Key bit (flags 1); the DS is
  that key's: such a key must not be used to verify RRSIGs (RFC 4034 §2.1.1).
- ``rollover``: a KSK rollover caught in the middle: two KSKs, the DS for the new one only,
  the DNSKEY set signed by both, and a pre-published second ZSK that signs nothing.
- ``algmix``: an algorithm rollover: an ECDSAP256SHA256 key and an RSASHA256 key, DS for
  both, the DNSKEY set signed by both, all else by ECDSA only; a validator must accept any
  one supported algorithm's signature (RFC 6840 §5.11).
- ``labels``: www A's RRSIG says one label more than its owner has (RFC 4035 §5.3.1: not
  valid), and low A is signed as the expansion of ``*.<zone>`` where no wildcard exists
  and no denial proves the expansion (RFC 4035 §5.3.4).
- ``bigkeys``: RSASHA256 with four pre-published 2048-bit ZSKs: the DNSKEY answer is larger
  than 1232 octets, so a validator fetches it over TCP (RFC 7766).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import cast

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from dns.dnssecalgs import get_algorithm_cls_from_dnskey
from dns.dnssectypes import Algorithm
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.RRSIG import RRSIG

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
SignedKey = tuple[PrivateKey, DNSKEY]

ZONE_KEY = 0x0100
REVOKE = 0x0080
SEP = 0x0001
BIG_KEYS_EXTRA_ZSKS = 4


def _generate(algorithm: Algorithm) -> PrivateKey:
    if algorithm in (Algorithm.RSASHA256, Algorithm.RSASHA512):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == Algorithm.ECDSAP256SHA256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == Algorithm.ECDSAP384SHA384:
        return ec.generate_private_key(ec.SECP384R1())
    if algorithm == Algorithm.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == Algorithm.ED448:
        return ed448.Ed448PrivateKey.generate()
    raise ValueError(f"no key generation for {algorithm}")


def stored_key(path: Path, algorithm: Algorithm) -> PrivateKey:
    """The key stored at ``path``, made and stored first when missing."""
    if not path.exists():
        key = _generate(algorithm)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(
        loaded,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    )
    return loaded


def ksk_flags(broken: str) -> int:
    """The flags of the zone's KSK (or CSK): 257, or the corner's odd flags."""
    if broken == "revoked":
        return ZONE_KEY | REVOKE | SEP
    if broken == "nozonebit":
        return SEP
    return ZONE_KEY | SEP


def _made(path: Path, algorithm: Algorithm, flags: int) -> SignedKey:
    key = stored_key(path, algorithm)
    return key, dns.dnssec.make_dnskey(key.public_key(), algorithm, flags=flags)


def corner_keys(
    keys_dir: Path, stem: str, broken: str, algorithm: Algorithm
) -> tuple[list[SignedKey], list[SignedKey], list[SignedKey]]:
    """The corner's extra keys: (published only, also signing the DNSKEY set, also having a
    DS in the parent). Each list is empty outside its corner."""
    if broken == "rollover":
        new_ksk = _made(keys_dir / f"{stem}.ksk2.pem", algorithm, ZONE_KEY | SEP)
        next_zsk = _made(keys_dir / f"{stem}.zsk2.pem", algorithm, ZONE_KEY)
        return [new_ksk, next_zsk], [new_ksk], [new_ksk]
    if broken == "algmix":
        rsa_key = _made(keys_dir / f"{stem}.alg8.pem", Algorithm.RSASHA256, ZONE_KEY | SEP)
        return [rsa_key], [rsa_key], [rsa_key]
    if broken == "bigkeys":
        zsks = [
            _made(keys_dir / f"{stem}.zsk{n}.pem", algorithm, ZONE_KEY)
            for n in range(2, 2 + BIG_KEYS_EXTRA_ZSKS)
        ]
        return zsks, [], []
    return [], [], []


def _resigned(rrset: dns.rrset.RRset, rrsig: RRSIG, key: SignedKey, labels: int) -> RRSIG:
    """``rrsig`` with its labels field set to ``labels`` and signed again (the labels field
    is part of the signed data, RFC 4034 §3.1.8.1), the owner name left as it is."""
    data = bytearray(dns.dnssec._make_rrsig_signature_data(rrset, rrsig))
    data[3] = labels  # the RRSIG RDATA: type covered (2 octets), algorithm (1), labels (1)
    signer = get_algorithm_cls_from_dnskey(key[1])(key=key[0])
    signed = rrsig.replace(labels=labels, signature=signer.sign(bytes(data), False, True))
    return cast(RRSIG, signed)


def break_labels(
    zone: dns.zone.Zone, key: SignedKey, window: tuple[datetime.datetime, datetime.datetime]
) -> None:
    """The ``labels`` corner: www A's RRSIG claims one label too many; low A's RRSIG is a
    valid signature of ``*.<zone> A`` (a wildcard expansion nothing proves)."""
    origin = zone.origin
    assert origin is not None
    www_name = dns.name.from_text("www", origin)
    www = zone.nodes[www_name]
    rdataset = www.get_rdataset(dns.rdataclass.IN, dns.rdatatype.A)
    sigs = www.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.A)
    assert rdataset is not None and sigs is not None
    rrset = dns.rrset.from_rdata_list(www_name, rdataset.ttl, list(rdataset))
    (rrsig,) = list(sigs)
    wrong = _resigned(rrset, rrsig, key, rrsig.labels + 1)
    www.replace_rdataset(dns.rdataset.from_rdata_list(rdataset.ttl, [wrong]))
    low_name = dns.name.from_text("low", origin)
    low = zone.nodes[low_name]
    low_a = low.get_rdataset(dns.rdataclass.IN, dns.rdatatype.A)
    assert low_a is not None
    as_wildcard = dns.rrset.from_rdata_list(dns.name.from_text("*", origin), low_a.ttl, list(low_a))
    expansion = dns.dnssec.sign(
        as_wildcard, key[0], origin, key[1], inception=window[0], expiration=window[1]
    )
    low.replace_rdataset(dns.rdataset.from_rdata_list(low_a.ttl, [expansion]))
