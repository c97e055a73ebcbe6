"""One RRSIG checked against one DNSKEY (RFC 4035 §5.3.3): the one place Rootwalk verifies a
signature, through dnspython's ``dns.dnssecalgs`` key classes over the ``cryptography``
package. No cryptography of our own.

Why not ``dns.dnssec.validate_rrsig`` on every call: it loads the public key from the DNSKEY
each time (a ``cryptography`` key object: ~17 µs for ECDSA P-256, more for RSA), recomputes
the key tag of every key it is given and repeats checks :mod:`.verify` has made (type,
validity window, key tag, algorithm, zone and revoke flags). Here each distinct DNSKEY is
loaded once and its key tag computed once (small memos, :mod:`resolver.memo`), and the data
that was signed (RFC 4034 §3.1.8.1, the RRset in canonical form, §6) is built by dnspython's
``dns.dnssec._make_rrsig_signature_data``.

That function is private to dnspython: a risk. pyproject.toml pins dnspython to the range
this was checked against, ``tests/unit/test_dnssec_signature.py`` fails loudly when the
function moves or its verdicts differ from ``validate_rrsig``'s, and if it is missing at run
time :func:`verifies` falls back to ``validate_rrsig`` (correct, only slower).
"""

from __future__ import annotations

from collections.abc import Callable

import dns.dnssec
import dns.dnssecalgs
import dns.name
import dns.rdataset
import dns.rrset
from cryptography.exceptions import InvalidSignature
from dns.dnssecalgs.base import GenericPublicKey
from dns.exception import UnsupportedAlgorithm, ValidationFailure
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.RRSIG import RRSIG

from resolver.memo import remember

KEY_MEMO_ENTRIES = 10_000
"""Distinct DNSKEYs whose public key object and key tag are kept (as many as the key cache
keeps zones); the memo starts over when full."""

SignatureData = Callable[[dns.rrset.RRset, RRSIG], bytes]

signature_data: SignatureData | None = getattr(dns.dnssec, "_make_rrsig_signature_data", None)
"""dnspython's builder of the signed data (private; None: not in this dnspython)."""

_ANY = dns.dnssec.allow_all_policy  # what is supported is decided by .verify, not dnspython
_public_keys: dict[tuple[int, bytes], GenericPublicKey | None] = {}
_key_tags: dict[tuple[int, int, int, bytes], int] = {}


def key_tag(key: DNSKEY) -> int:
    """The key tag of ``key`` (RFC 4034 Appendix B), computed once per distinct key."""
    memo_key = (key.flags, key.protocol, key.algorithm, key.key)
    found = _key_tags.get(memo_key)
    if found is None:
        found = remember(_key_tags, memo_key, dns.dnssec.key_id(key), KEY_MEMO_ENTRIES)
    return found


def public_key(key: DNSKEY) -> GenericPublicKey | None:
    """The public key object of ``key``, loaded once per distinct key; None when its
    algorithm is unknown to dnspython or its key material is malformed."""
    memo_key = (int(key.algorithm), key.key)
    if memo_key in _public_keys:
        return _public_keys[memo_key]
    try:
        algorithm = dns.dnssecalgs.get_algorithm_cls_from_dnskey(key)
        loaded: GenericPublicKey | None = algorithm.public_cls.from_dnskey(key)
    except (UnsupportedAlgorithm, ValidationFailure, ValueError):
        loaded = None
    return remember(_public_keys, memo_key, loaded, KEY_MEMO_ENTRIES)


def verifies(
    rrset: dns.rrset.RRset, sig: RRSIG, key: DNSKEY, zone: dns.name.Name, now: float
) -> bool:
    """Whether ``sig`` over ``rrset`` is ``key``'s signature. The caller has checked the
    rest of RFC 4035 §5.3.1 (covered type, signer, labels, validity window at ``now``, key
    tag, algorithm and flags); ``zone`` and ``now`` serve the fallback only."""
    build = signature_data
    if build is None:  # dnspython moved its private builder: the public way, slower
        keyset = dns.rdataset.from_rdata_list(0, [key])
        try:
            dns.dnssec.validate_rrsig(rrset, sig, {zone: keyset}, None, now, _ANY)
        except (ValidationFailure, UnsupportedAlgorithm):
            return False
        return True
    public = public_key(key)
    if public is None:
        return False
    try:
        public.verify(sig.signature, build(rrset, sig))
    except (InvalidSignature, ValidationFailure, ValueError):
        return False
    return True
