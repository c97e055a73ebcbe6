"""Named work budgets. Each bounds one kind of work per client query and says why.

Exhausting any of them ends the resolution with SERVFAIL, never with a hang. The numbers are
close to what Unbound and Knot Resolver chose, rounded to what our lab and tests need.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_REFERRALS = 30
"""Referrals followed for one client query. Unbound's MAX_REFERRAL_COUNT is 130, Knot's
iteration limit 100; a real name needs fewer than 10, so 30 leaves room for CNAME chains
that cross several zones while a referral loop ends fast."""

MAX_CNAME_HOPS = 12
"""CNAMEs in one answer's chain (RFC 1034 §3.6.2 asks resolvers to follow chains but bound
them), a DNAME's synthesised CNAME included (RFC 6672 §3.2); a 13th is SERVFAIL (EDE 0,
"CNAME chain longer than 12"). Every link counts, whether it came in one reply with others,
in a reply of its own, or from the cache, so the verdict is the same cold and warm. Knot
Resolver counts links the same way and allows 12 (``KR_CNAME_CHAIN_LIMIT`` 13, counted from
1). Unbound counts restarts instead (``MAX_RESTART_COUNT``, ``max-query-restarts`` 11: each
reply that is a CNAME to ask again, and each CNAME taken from its RRset cache; a whole answer
from its message cache costs none), so its verdict on a chain of 12 depends on how the
server packed the links and on what it has cached (tests/peer/allowed_differences.toml,
``x1.mixed.lab.``); 12 agrees with it on every chain of the lab in at least one of its
cache states, 11 would refuse the in-zone ``c12.mixed.lab.`` it always answers."""

MAX_UPSTREAM_QUERIES = 64
"""Queries sent upstream for one client query, sub-queries included. Unbound's
``max-sent-count`` is 32 per query plus 32 per target fetch; 64 covers a glueless delegation
whose own name servers are glueless, and bounds amplification (NXNS, CVE-2020-12662)."""

MAX_SUBQUERIES = 12
"""Sub-resolutions (addresses of glueless name servers) started for one client query.
Unbound's ``MAX_TARGET_COUNT`` is 64 with a fetch policy of depth "3 2 1 0 0"; our lab needs 1."""

MAX_SUBQUERY_DEPTH = 4
"""Nesting of sub-resolutions (a glueless server whose zone is glueless...). Unbound's target
fetch policy allows depth 4 (``"3 2 1 0 0"``)."""

MAX_MINIMISE_COUNT = 10
"""QNAME minimisation (RFC 9156 §2.3): most minimised queries sent for one name. Below a zone
cut a name of more labels than this gets several labels added at a time, so a name of 30
labels cannot cost 30 queries. RFC 9156 §2.3 recommends 10; Unbound's ``MAX_MINIMISE_COUNT``
is 10 too."""

MINIMISE_ONE_LAB = 4
"""QNAME minimisation (RFC 9156 §2.3): the first minimised queries that add one label each;
later ones may add several (the rest of the labels spread over the remaining
``MAX_MINIMISE_COUNT - MINIMISE_ONE_LAB`` queries). The first labels below a TLD are where
administrative boundaries (and privacy) usually are. RFC 9156 and Unbound both use 4."""

MAX_MINIMISE_TIMEOUTS = 3
"""Timeouts to one minimised question (at different servers) before the resolution falls
back to the full name: a timeout is more often a dead server than one that drops minimised
questions. Unbound's ``MAX_MINIMISE_TIMEOUT_COUNT`` is 3; we also fall back at once when no
untried server is left."""

MAX_CNAME_IN_ZONE = 8
"""In-zone CNAME chasing by the lab's authoritative servers (RFC 1034 §4.3.2 step 3a loop)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The budgets as one value, so tests can shrink them."""

    max_referrals: int = MAX_REFERRALS
    max_cname_hops: int = MAX_CNAME_HOPS
    max_upstream_queries: int = MAX_UPSTREAM_QUERIES
    max_subqueries: int = MAX_SUBQUERIES
    max_subquery_depth: int = MAX_SUBQUERY_DEPTH


@dataclass(slots=True)
class Budget:
    """What one client query has spent so far; shared with its sub-resolutions."""

    limits: Limits
    upstream_queries: int = 0
    subqueries: int = 0
    work: ValidationWork = field(default_factory=lambda: ValidationWork())  # noqa: PLW0108 (defined below)
    """The DNSSEC work of this client query, shared as the rest (KeyTrap)."""

    def spend_upstream_query(self) -> bool:
        """Count one upstream query; False when the budget is already spent."""
        if self.upstream_queries >= self.limits.max_upstream_queries:
            return False
        self.upstream_queries += 1
        return True

    def spend_subquery(self) -> bool:
        """Count one sub-resolution; False when the budget is already spent."""
        if self.subqueries >= self.limits.max_subqueries:
            return False
        self.subqueries += 1
        return True


# --- DNSSEC validation work (KeyTrap, CVE-2023-50387; NSEC3 hashing, CVE-2023-50868) ------

MAX_VERIFICATIONS_PER_RRSET = 8
"""Signature verifications tried for one RRset (each RRSIG against each candidate key) before
it is bogus. RFC 4035 §5.3.1 asks a validator to try every key and signature; KeyTrap
(CVE-2023-50387) turns that into hours of CPU with colliding keys and many RRSIGs. Unbound
1.19.1 chose ``MAX_VALIDATE_RRSIGS`` 8 (validator/val_sigcrypt.c, commit 882903f2) and
dnsjava's port the same 8 (``dnsjava.dnssec.max_validate_rrsigs``)."""

MAX_VERIFICATIONS = 32
"""Signature verifications for one client query, its DS/DNSKEY sub-questions included.
Knot Resolver 5.7.1 keeps a per-request crypto budget (``vld_limit_crypto``, default
``KR_VLD_LIMIT_CRYPTO_DEFAULT`` 32, commit cc5051b4); Unbound bounds 8 at once and suspends
at most 16 times (``MAX_VALIDATE_AT_ONCE`` 8, ``MAX_VALIDATION_SUSPENDS`` 16). A chain root ->
TLD -> zone with a signed negative answer needs about 8; 32 leaves room for CNAMEs that
cross signed zones."""

MAX_KEY_TAG_COLLISIONS = 4
"""DNSKEYs with one key tag and algorithm tried for one RRSIG or one DS record (RFC 4034
Appendix B: tags collide by chance, rarely more than two keys in a real set). Unbound 1.19.1's
``MAX_DS_MATCH_FAILURES`` is 4 (validator/val_utils.c); beyond it the record is bogus."""

MAX_NSEC3_HASHES = 64
"""NSEC3 hash computations (RFC 5155 §5) for one client query. A closest-encloser proof
hashes each ancestor of the name (RFC 5155 §8.3); CVE-2023-50868 makes a name of many labels
and a reply of many NSEC3 records cost seconds. Unbound 1.19.1 allows
``MAX_NSEC3_CALCULATIONS`` 8 per pass and suspends (at most 16 times, val_nsec3.c, commit
92f2a1ca); Knot Resolver 5.7.1 prices each hash by iterations and salt
(``kr_nsec3_price``) and refuses answers of more than 8 NSEC3 records. 64 hashes of at most
:data:`MAX_NSEC3_ITERATIONS` iterations are about 10,000 SHA-1 blocks: milliseconds."""

MAX_NSEC3_ITERATIONS = 150
"""NSEC3 iterations above which a proof makes the answer insecure instead of costing CPU
(RFC 9276 §3.2). Unbound's ``val-nsec3-keysize-iterations`` default is 150 for every key
size; Knot Resolver used ``KR_NSEC3_MAX_ITERATIONS`` 150 and lowered it to 50 in 5.7.1."""


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    """The DNSSEC work budgets as one value, so tests can shrink them."""

    max_verifications: int = MAX_VERIFICATIONS
    max_verifications_per_rrset: int = MAX_VERIFICATIONS_PER_RRSET
    max_key_tag_collisions: int = MAX_KEY_TAG_COLLISIONS
    max_nsec3_hashes: int = MAX_NSEC3_HASHES
    max_nsec3_iterations: int = MAX_NSEC3_ITERATIONS


@dataclass(slots=True)
class ValidationWork:
    """The DNSSEC work one client query has done; shared with its DS/DNSKEY sub-questions.

    The validator charges it before each costly step and gives a bogus verdict when a
    charge is refused, so no reply can buy more CPU than these limits (KeyTrap)."""

    limits: ValidationLimits = ValidationLimits()
    verifications: int = 0
    nsec3_hashes: int = 0

    def spend_verification(self) -> bool:
        """Count one signature verification; False when the budget is already spent."""
        if self.verifications >= self.limits.max_verifications:
            return False
        self.verifications += 1
        return True

    def spend_nsec3_hash(self) -> bool:
        """Count one NSEC3 hash; False when the budget is already spent."""
        if self.nsec3_hashes >= self.limits.max_nsec3_hashes:
            return False
        self.nsec3_hashes += 1
        return True
