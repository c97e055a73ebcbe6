"""VALIDATING: a resolution checks its own final answer (RFC 4035 §5), sans-IO.

Each reply that gave part of the answer (a CNAME on the way, the final RRsets, or a
negative answer) is kept as a :class:`Segment` with its DNSSEC records and the zone that
signed it. Before finishing, the resolution makes sure it holds a verdict for each such
zone's keys (:class:`~resolver.core.dnssec.keys.Validator`'s key cache), fetching what is
missing as sub-questions through the mesh, each with ``checking_disabled`` so the fetch
itself does not validate: the zone's DNSKEY RRset, and its DS RRset from the parent side,
whose signer (the parent) needs keys in turn, up to a trust anchor (RFC 4035 §5.1-5.2).
An insecure zone is one the parent proves has no DS (NSEC or NSEC3, opt-out included) or
whose DS name only unsupported algorithms or digests (RFC 6840 §5.2, RFC 4509 §3); the
verdict of a parent that is insecure or bogus passes down. Then every RRset is verified
with its zone's keys and every negative answer's NSEC/NSEC3 proof checked (:mod:`.dnssec`),
each verification charged to the client query's :class:`~resolver.limits.ValidationWork`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import cast

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS

from resolver.core.dnssec.aggressive import keep_nsecs, sig_expiration, synthesise
from resolver.core.dnssec.keys import KeyEntry
from resolver.core.dnssec.security import INDETERMINATE, SECURE, Verdict, bogus, insecure
from resolver.core.dnssec.segment import (
    Segment,
    check_denial,
    check_segment,
    dnssec_records,
    parent_zone,
    rrset_of,
    signer_of,
    sigs_at,
)
from resolver.core.dnssec.verify import verify_dnskeys, verify_rrset
from resolver.core.events import Action, Finished, StartSubquery
from resolver.core.progress import Progress
from resolver.core.state import WaitingKeys
from resolver.model import ExtendedError, Question, Result, Security, servfail
from resolver.names import NameKey
from resolver.records import Reply, WireRRset

_RRSIG, _NSEC, _NSEC3, _SOA = 46, 47, 50, 6
_DNSKEY, _DS, _CNAME, _DNAME = 48, 43, 5, 39
_NEGATIVE_KEY_TTL = 300
"""Seconds an insecure verdict is kept when its proof carries no TTL of its own."""


class Validating(Progress):
    """The VALIDATING step of a resolution."""

    @property
    def _validating(self) -> bool:
        return self._validator is not None and not self.question.checking_disabled

    def _note_segment(
        self,
        reply: Reply,
        zone: dns.name.Name,
        zone_key: NameKey,
        rrsets: tuple[WireRRset, ...],
        qname: dns.name.Name,
        *,
        rcode: int,
        negative: bool,
    ) -> None:
        """Keep what one reply added to the answer, with its DNSSEC records."""
        proof = dnssec_records(reply, zone_key, rrsets, negative=negative)
        self._proof.extend(proof)
        owner = rrsets[0].name if rrsets else qname
        signer = signer_of(proof, owner) or zone
        self._segments.append(
            Segment(rrsets, proof, signer, qname, self.question.qtype, rcode, negative)
        )

    def _from_validated_cache(self) -> list[Action] | None:
        """INIT for a validating resolution: a cached RRset that a validation judged (with
        its state and RRSIGs) answers, or a cached validated CNAME is followed; None when
        the cache holds neither, [] after following a CNAME, else the actions."""
        rrsets, now, key = self._caches.rrsets, self._now, self.qname_key
        qtype = self.question.qtype
        found = rrsets.get_validated(self.qname, qtype, now, key=key)
        if found is not None:
            rrset, state, sigs = found
            self._take_validated(state, sigs)
            self.chain.append(rrset)
            return self._validate_and_finish(Result(dns.rcode.NOERROR, tuple(self.chain)))
        if qtype == dns.rdatatype.CNAME:
            return None
        found = rrsets.get_validated(self.qname, dns.rdatatype.CNAME, now, key=key)
        if found is None:
            return None
        cname, state, sigs = found
        self._take_validated(state, sigs)
        if not self._restart_at(cname.target(), cname.target_key(), (cname,)):
            assert self.result is not None
            return [Finished(self.result)]
        return []

    def _validated_for_cd(self) -> WireRRset | None:
        """A CD=1 question under validation is answered from the cache only by an RRset a
        validation judged, whose RRSIGs are kept beside it, so a DO client gets them (RFC
        4035 §3.2.1); one cached unvalidated (from a referral, the priming) is asked again,
        with DO. Its state is not given (CD: the client validates)."""
        rrsets, key = self._caches.rrsets, self.qname_key
        found = rrsets.get_validated(self.qname, self.question.qtype, self._now, key=key)
        if found is None:
            return None
        rrset, _, sigs = found
        if sigs is not None:
            self._proof.append(sigs)
        return rrset

    def _take_validated(self, state: Security, sigs: WireRRset | None) -> None:
        self._cached_states.append(state)
        if sigs is not None:
            self._proof.append(sigs)

    def _negative_from_validated_cache(self) -> bool:
        """INIT for a validating resolution, when no validated RRset answers: a negative
        answer a validation judged (with its state and proof), a secure NXDOMAIN above the
        name (RFC 8020), or, with ``aggressive_nsec``, one synthesised from cached secure
        NSECs that cover the name (RFC 8198). True when it finished the resolution."""
        validator, qtype, now = self._validator, self.question.qtype, self._now
        assert validator is not None
        caches = self._caches
        found = caches.negative.get(self.qname, qtype, now, key=self.qname_key, validated=True)
        if found is not None:
            rcode, soa, proof, state = found.rcode, found.soa, found.proof, found.state
        elif validator.aggressive_nsec and validator.is_covered(self.qname):
            made = synthesise(caches.nsec, self.qname, qtype, now, self._budget.work)
            if made is None:
                return False
            rcode, soa, proof, state = made.rcode, made.soa, made.proof, Security.SECURE
            validator.count_synthesised(rcode)
        else:
            return False
        if state is not Security.SECURE or Security.INSECURE in self._cached_states:
            state = Security.INSECURE
        validator.count(SECURE if state is Security.SECURE else insecure())
        self._proof.extend(proof)
        result = Result(rcode, tuple(self.chain), (soa,), security=state)
        self._finish(replace(result, proof=tuple(self._proof)))
        return True

    def _keep_negative(self, segment: Segment, state: Security) -> None:
        """Keep a validated negative answer with its state and proof (and, when secure,
        its NSECs for aggressive use, RFC 8198), each no longer than its signatures."""
        pending = self._pending
        assert pending is not None
        soa = next((r for r in pending.authority if r.rdtype == _SOA), None)
        if soa is None:
            return
        sigs = tuple(w for r in segment.proof if r.rdtype == _RRSIG for w in r.rdatas)
        rcode = dns.rcode.Rcode(segment.rcode)
        self._caches.negative.put(
            segment.qname,
            segment.qtype,
            rcode,
            soa,
            self._now,
            state=state,
            proof=segment.proof,
            expires_at=sig_expiration(sigs),
        )
        if state is Security.SECURE:
            limit = self._budget.work.limits.max_nsec3_iterations
            keep_nsecs(
                self._caches.nsec,
                segment.zone,
                soa,
                segment.proof,
                self._now,
                max_nsec3_iterations=limit,
            )

    def _mark_validated(self, segment: Segment, state: Security) -> None:
        """Keep the segment's state with its cached RRsets, and their RRSIGs beside them,
        so the next validated question for them is a cache lookup."""
        has_dname = any(r.rdtype == _DNAME for r in segment.rrsets)
        rrsets, now = self._caches.rrsets, self._now
        for rrset in segment.rrsets:
            if (has_dname and rrset.rdtype == _CNAME) or rrset.rdtype == _RRSIG:
                continue  # synthesised from the DNAME, or an ANY answer's signatures
            rrsigs: tuple[bytes, ...] = ()
            high, low = rrset.rdtype >> 8, rrset.rdtype & 0xFF
            for proof in segment.proof:
                if proof.rdtype == _RRSIG and proof.owner_key == rrset.owner_key:
                    rrsigs += tuple(
                        wire for wire in proof.rdatas if wire[0] == high and wire[1] == low
                    )
            rrsets.mark_validated(rrset, state, rrsigs, now, sig_expiration(rrsigs))

    def _validate_and_finish(self, result: Result) -> list[Action]:
        """Finish with ``result`` once it is validated (or at once when not validating)."""
        if not self._validating or result.is_failure:
            actions = self._finish(replace(result, proof=tuple(self._proof)))
        else:
            self._pending = result
            self._listening = {}
            actions = self._validation_step()
        self._pending_actions = actions
        return actions

    def _take_pending_actions(self) -> list[Action]:
        """The actions of the last :meth:`_validate_and_finish`, for a caller (INIT) whose
        own return value was a flag."""
        actions, self._pending_actions = self._pending_actions, []
        return actions

    def _on_keys_fetched(self, state: WaitingKeys, result: Result) -> list[Action]:
        self._fetched[(state.zone, state.qtype)] = result
        return self._validation_step()

    def _validation_step(self) -> list[Action]:
        validator = self._validator
        assert validator is not None
        while True:
            if self._need:
                zone = self._need[-1]
                if validator.keys_of(zone, self._now) is not None:
                    self._need.pop()
                    continue
                actions = self._establish(zone)
                if actions is not None:
                    return actions
                continue
            for segment in self._segments:
                zone = segment.zone
                if validator.is_covered(zone) and validator.keys_of(zone, self._now) is None:
                    self._need.append(zone)
                    break
            else:
                return self._conclude()

    def _fetch(self, zone: dns.name.Name, qtype: int) -> list[Action]:
        ref = self._new_ref()
        self.state = WaitingKeys(ref, zone, qtype)
        question = Question(zone, dns.rdatatype.RdataType(qtype), checking_disabled=True)
        return [StartSubquery(ref, question)]

    def _remember_keys(
        self, zone: dns.name.Name, verdict: Verdict, keys: tuple[DNSKEY, ...], ttl: float
    ) -> None:
        assert self._validator is not None
        self._validator.remember(zone, verdict, keys, ttl, self._now)

    def _establish(self, zone: dns.name.Name) -> list[Action] | None:
        """One step toward a key verdict for ``zone``: a fetch to start (its actions), or
        None when a verdict was kept or the parent's keys are needed first."""
        validator = self._validator
        assert validator is not None
        now, work = self._now, self._budget.work
        if not validator.is_covered(zone):
            self._remember_keys(zone, INDETERMINATE, (), _NEGATIVE_KEY_TTL)
            return None
        anchor = validator.anchor_at(zone)
        fetched_keys = self._fetched.get((zone, _DNSKEY))
        if anchor is not None:
            if fetched_keys is None:
                return self._fetch(zone, _DNSKEY)
            found = self._dnskeys_or_bogus(zone, fetched_keys, f"for the anchor {zone}")
            if found is not None:
                rrset, sigs, ttl = found
                verdict = anchor.verify(rrset, sigs, now=now, work=work)  # type: ignore[arg-type]
                self._keep_dnskeys(zone, verdict, rrset, ttl)
            return None
        step = self._secure_ds.get(zone) or self._verify_ds(zone)  # a DS verified once
        if not isinstance(step, tuple):
            return step
        ds, ds_ttl = step
        if fetched_keys is None:
            return self._fetch(zone, _DNSKEY)
        found = self._dnskeys_or_bogus(zone, fetched_keys, f"for {zone}, which has DS")
        if found is None:
            return None
        rrset, sigs, ttl = found
        verdict = verify_dnskeys(
            rrset,
            sigs,  # type: ignore[arg-type]
            zone,
            now=now,
            work=work,
            ds=[cast(DS, record) for record in ds],
        )
        self._keep_dnskeys(zone, verdict, rrset, min(ttl, ds_ttl))
        return None

    def _verify_ds(self, zone: dns.name.Name) -> list[Action] | tuple[dns.rrset.RRset, int] | None:
        """The DS RRset of ``zone`` (and its TTL) verified with the parent's keys, kept for
        this resolution so the DNSKEY step does not verify it again; else a fetch to start
        (its actions), or None when a verdict was kept or the parent's keys are needed."""
        validator = self._validator
        assert validator is not None
        now, work = self._now, self._budget.work
        fetched_ds = self._fetched.get((zone, _DS))
        if fetched_ds is None:
            return self._fetch(zone, _DS)
        parent = parent_zone(fetched_ds, zone)
        parent_entry = validator.keys_of(parent, now)
        if parent_entry is None:
            self._need.append(parent)
            return None
        if not parent_entry.verdict.is_secure:
            inherited = parent_entry.verdict
            if inherited.state is not Security.BOGUS:
                inherited = insecure(f"{zone} is below the insecure {parent}")
            self._remember_keys(zone, inherited, (), parent_entry.expires_at - now)
            return None
        if fetched_ds.is_failure:
            text = f"DS of {zone} could not be fetched: {fetched_ds.reason}"
            self._remember_keys(zone, bogus(ExtendedError.DNSSEC_BOGUS, text), (), 0)
            return None
        ds_rrset = rrset_of(fetched_ds, zone, _DS)
        if ds_rrset is None:
            self._no_ds(zone, parent, parent_entry, fetched_ds)
            return None
        ds = ds_rrset.to_rrset()
        sigs = sigs_at(fetched_ds.proof, ds_rrset.owner_key, _DS)
        verdict = verify_rrset(ds, sigs, parent_entry.keys, parent, now=now, work=work)  # type: ignore[arg-type]
        if not verdict.is_secure:
            self._remember_keys(zone, verdict, (), 0)
            return None
        self._secure_ds[zone] = (ds, ds_rrset.ttl)
        return ds, ds_rrset.ttl

    def _dnskeys_or_bogus(
        self, zone: dns.name.Name, fetched: Result, which: str
    ) -> tuple[dns.rrset.RRset, list[object], int] | None:
        """The fetched DNSKEY RRset of ``zone`` with its RRSIGs and TTL; None when the answer
        holds none, after keeping ``zone`` bogus (EDE 9, "no DNSKEY ``which``")."""
        dnskeys = rrset_of(fetched, zone, _DNSKEY)
        if dnskeys is None:
            self._remember_keys(
                zone, bogus(ExtendedError.DNSKEY_MISSING, f"no DNSKEY {which}"), (), 0
            )
            return None
        return dnskeys.to_rrset(), sigs_at(fetched.proof, dnskeys.owner_key, _DNSKEY), dnskeys.ttl

    def _keep_dnskeys(
        self, zone: dns.name.Name, verdict: Verdict, rrset: dns.rrset.RRset, ttl: int
    ) -> None:
        keys = tuple(cast(DNSKEY, key) for key in rrset) if verdict.is_secure else ()
        if verdict.ttl is not None:
            ttl = min(ttl, verdict.ttl)
        self._remember_keys(zone, verdict, keys, ttl)

    def _no_ds(
        self, zone: dns.name.Name, parent: dns.name.Name, entry: KeyEntry, fetched: Result
    ) -> None:
        """The parent answered DS with a negative answer: its NSEC or NSEC3 proof says
        whether ``zone`` is an unsigned delegation (insecure), no zone cut at all (the
        parent's keys sign it), or nothing (bogus, EDE 12)."""
        verdict = check_denial(
            parent,
            entry,
            fetched.proof,
            qname=zone,
            qtype=_DS,
            rcode=dns.rcode.NOERROR,
            now=self._now,
            work=self._budget.work,
        )
        ttl = min((r.ttl for r in fetched.proof), default=_NEGATIVE_KEY_TTL)
        if verdict.is_secure:
            self._remember_keys(zone, entry.verdict, entry.keys, entry.expires_at - self._now)
        else:
            self._remember_keys(zone, verdict, (), ttl)

    def _conclude(self) -> list[Action]:
        """Every zone's keys known: the answer's state is the worst of its segments'."""
        validator = self._validator
        pending = self._pending
        assert validator is not None and pending is not None
        state = Security.SECURE
        if Security.INSECURE in self._cached_states:
            state = Security.INSECURE
        judged: list[tuple[Segment, Security]] = []
        for segment in self._segments:
            if not validator.is_covered(segment.zone):
                state = Security.INSECURE
                judged.append((segment, Security.INSECURE))
                continue
            entry = validator.keys_of(segment.zone, self._now)
            assert entry is not None
            verdict = entry.verdict
            if verdict.is_secure:
                verdict = check_segment(segment, entry, now=self._now, work=self._budget.work)
            if verdict.is_bogus:
                validator.count(verdict)
                validator.remember_bogus(
                    self.question.qname_key, self.question.qtype, verdict, self._now
                )
                return self._finish_bogus(verdict)
            if not verdict.is_secure:
                state = Security.INSECURE
            judged.append((segment, Security.SECURE if verdict.is_secure else Security.INSECURE))
        for segment, segment_state in judged:
            if segment.negative:
                self._keep_negative(segment, segment_state)
            else:
                self._mark_validated(segment, segment_state)
        validator.count(SECURE if state is Security.SECURE else insecure())
        return self._finish(replace(pending, security=state, proof=tuple(self._proof)))

    def _finish_bogus(self, verdict: Verdict) -> list[Action]:
        """SERVFAIL with the verdict's Extended DNS Error and text (RFC 8914), and no
        records: not the bogus RRset's RRSIGs either (as Unbound; KeyTrap's many signatures
        would overflow 1232 octets)."""
        failed = servfail(verdict.text, verdict.code or ExtendedError.DNSSEC_BOGUS)
        return self._finish(replace(failed, security=Security.BOGUS, proof=()))
