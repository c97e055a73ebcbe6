"""Named work budgets. Each bounds one kind of work per client query and says why.

Exhausting any of them ends the resolution with SERVFAIL, never with a hang. The numbers are
close to what Unbound and Knot Resolver chose, rounded to what our lab and tests need.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_REFERRALS = 30
"""Referrals followed for one client query. Unbound's MAX_REFERRAL_COUNT is 130, Knot's
iteration limit 100; a real name needs fewer than 10, so 30 leaves room for CNAME chains
that cross several zones while a referral loop ends fast."""

MAX_CNAME_HOPS = 11
"""CNAME records followed. Unbound's ``max-query-restarts`` default is 11; Knot uses 13."""

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
