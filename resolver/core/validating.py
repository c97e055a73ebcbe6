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

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import cast

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS

from resolver.core.dnssec import denial
from resolver.core.dnssec.keys import KeyEntry
from resolver.core.dnssec.security import INDETERMINATE, SECURE, Verdict, bogus, insecure
from resolver.core.dnssec.verify import signatures, verify_dnskeys, verify_rrset
from resolver.core.events import Action, StartSubquery
from resolver.core.progress import Progress
from resolver.core.state import WaitingKeys
from resolver.model import ExtendedError, Question, Result, Security, servfail
from resolver.names import NameKey, is_at_or_below
from resolver.records import Reply, WireRRset

_RRSIG, _NSEC, _NSEC3, _SOA = 46, 47, 50, 6
_DNSKEY, _DS, _CNAME, _DNAME = 48, 43, 5, 39
_NEGATIVE_KEY_TTL = 300
"""Seconds an insecure verdict is kept when its proof carries no TTL of its own."""


@dataclass(frozen=True, slots=True)
class Segment:
    """Records one reply contributed to the answer, with the DNSSEC records behind them."""

    rrsets: tuple[WireRRset, ...]
    proof: tuple[WireRRset, ...]
    zone: dns.name.Name
    qname: dns.name.Name
    qtype: int
    rcode: int
    negative: bool


def dnssec_records(
    reply: Reply, zone_key: NameKey, rrsets: Sequence[WireRRset], *, negative: bool
) -> tuple[WireRRset, ...]:
    """The RRSIGs of ``rrsets`` from the reply's answer section and the authority's NSEC
    and NSEC3 records in the zone's bailiwick (the proof of a negative answer, or that a
    wildcard answer's exact name does not exist) with the RRSIGs of them and, for a
    negative answer, of the SOA (RFC 4035 §3.1.1-3.1.3)."""
    owners = {rrset.owner_key for rrset in rrsets}
    found = [r for r in reply.answer if r.rdtype == _RRSIG and r.owner_key in owners]
    if negative or any(r.rdtype in (_NSEC, _NSEC3) for r in reply.authority):
        denials = [
            r
            for r in reply.authority
            if r.rdtype in (_NSEC, _NSEC3) and is_at_or_below(r.owner_key, zone_key)
        ]
        signed = {r.owner_key for r in denials}
        if negative:
            signed |= {r.owner_key for r in reply.authority if r.rdtype == _SOA}
        found.extend(denials)
        found.extend(r for r in reply.authority if r.rdtype == _RRSIG and r.owner_key in signed)
    return tuple(found)


def _sigs_at(proof: Sequence[WireRRset], owner_key: NameKey, covered: int) -> list[object]:
    sigs: list[object] = []
    for rrset in proof:
        if rrset.rdtype == _RRSIG and rrset.owner_key == owner_key:
            sigs.extend(signatures(rrset, covered))
    return sigs


def signer_of(proof: Sequence[WireRRset], owner: dns.name.Name) -> dns.name.Name | None:
    """The signer name of the first RRSIG in ``proof`` that may sign ``owner`` (at or above
    it, RFC 4035 §5.3.1): the zone whose keys verify it."""
    for rrset in proof:
        if rrset.rdtype != _RRSIG:
            continue
        for rdata in rrset.rdatas:
            try:
                signer = dns.name.from_wire(rdata, 18)[0]
            except Exception:  # a malformed RRSIG names no zone; it will not verify
                continue
            if owner.is_subdomain(signer):
                return signer
    return None


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

    def _validate_and_finish(self, result: Result) -> list[Action]:
        """Finish with ``result`` once it is validated (or at once when not validating)."""
        if not self._validating or result.is_failure:
            return self._finish(replace(result, proof=tuple(self._proof)))
        self._pending = result
        self._listening = {}
        return self._validation_step()

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
            dnskeys = _rrset_of(fetched_keys, zone, _DNSKEY)
            if dnskeys is None:
                verdict = bogus(ExtendedError.DNSKEY_MISSING, f"no DNSKEY for the anchor {zone}")
                self._remember_keys(zone, verdict, (), 0)
                return None
            rrset = dnskeys.to_rrset()
            sigs = _sigs_at(fetched_keys.proof, dnskeys.owner_key, _DNSKEY)
            verdict = anchor.verify(rrset, sigs, now=now, work=work)  # type: ignore[arg-type]
            self._keep_dnskeys(zone, verdict, rrset, dnskeys.ttl)
            return None
        fetched_ds = self._fetched.get((zone, _DS))
        if fetched_ds is None:
            return self._fetch(zone, _DS)
        parent = _parent_zone(fetched_ds, zone)
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
        ds_rrset = _rrset_of(fetched_ds, zone, _DS)
        if ds_rrset is None:
            self._no_ds(zone, parent, parent_entry, fetched_ds)
            return None
        ds = ds_rrset.to_rrset()
        sigs = _sigs_at(fetched_ds.proof, ds_rrset.owner_key, _DS)
        verdict = verify_rrset(ds, sigs, parent_entry.keys, parent, now=now, work=work)  # type: ignore[arg-type]
        if not verdict.is_secure:
            self._remember_keys(zone, verdict, (), 0)
            return None
        if fetched_keys is None:
            return self._fetch(zone, _DNSKEY)
        dnskeys = _rrset_of(fetched_keys, zone, _DNSKEY)
        if dnskeys is None:
            verdict = bogus(ExtendedError.DNSKEY_MISSING, f"no DNSKEY for {zone}, which has DS")
            self._remember_keys(zone, verdict, (), 0)
            return None
        rrset = dnskeys.to_rrset()
        sigs = _sigs_at(fetched_keys.proof, dnskeys.owner_key, _DNSKEY)
        verdict = verify_dnskeys(
            rrset,
            sigs,  # type: ignore[arg-type]
            zone,
            now=now,
            work=work,
            ds=[cast(DS, record) for record in ds],
        )
        self._keep_dnskeys(zone, verdict, rrset, min(dnskeys.ttl, ds_rrset.ttl))
        return None

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
        verdict = self._check_denial(
            parent, entry, fetched.proof, qname=zone, qtype=_DS, rcode=dns.rcode.NOERROR
        )
        ttl = min((r.ttl for r in fetched.proof), default=_NEGATIVE_KEY_TTL)
        if verdict.is_secure:
            self._remember_keys(zone, entry.verdict, entry.keys, entry.expires_at - self._now)
        else:
            self._remember_keys(zone, verdict, (), ttl)

    def _check_denial(
        self,
        zone: dns.name.Name,
        entry: KeyEntry,
        proof: Sequence[WireRRset],
        *,
        qname: dns.name.Name,
        qtype: int,
        rcode: int,
    ) -> Verdict:
        """Verify the NSEC/NSEC3 records of ``proof`` with ``zone``'s keys, then what they
        prove about ``qname``/``qtype`` (RFC 4035 §5.4, RFC 5155 §8)."""
        now, work = self._now, self._budget.work
        records = [r for r in proof if r.rdtype in (_NSEC, _NSEC3)]
        if not records:
            return bogus(ExtendedError.NSEC_MISSING, f"no NSEC or NSEC3 for {qname} in {zone}")
        built = []
        for record in records:
            rrset = record.to_rrset()
            sigs = _sigs_at(proof, record.owner_key, record.rdtype)
            verdict = verify_rrset(rrset, sigs, entry.keys, zone, now=now, work=work)  # type: ignore[arg-type]
            if not verdict.is_secure:
                return verdict
            built.append(rrset)
        nsec3 = [r for r in built if r.rdtype == _NSEC3]
        if nsec3:
            if rcode == dns.rcode.NXDOMAIN:
                return denial.nsec3_nxdomain(qname, nsec3, zone, work)
            return denial.nsec3_nodata(qname, qtype, nsec3, zone, work)
        if rcode == dns.rcode.NXDOMAIN:
            return denial.nsec_nxdomain(qname, built, zone)
        return denial.nsec_nodata(qname, qtype, built, zone)

    def _check_segment(self, segment: Segment, entry: KeyEntry) -> Verdict:
        """Every RRset of ``segment`` verified with its zone's keys; a wildcard expansion
        or a negative answer also needs its NSEC/NSEC3 proof."""
        now, work, zone = self._now, self._budget.work, segment.zone
        has_dname = any(r.rdtype == _DNAME for r in segment.rrsets)
        for rrset in segment.rrsets:
            if has_dname and rrset.rdtype == _CNAME:
                continue  # synthesised from the DNAME (RFC 6672 §3.2), which is verified
            sigs = _sigs_at(segment.proof, rrset.owner_key, rrset.rdtype)
            built = rrset.to_rrset()
            verdict = verify_rrset(built, sigs, entry.keys, zone, now=now, work=work)  # type: ignore[arg-type]
            if not verdict.is_secure:
                return verdict
            if verdict.wildcard is not None:
                proof = [r for r in segment.proof if r.rdtype in (_NSEC, _NSEC3)]
                wild = self._check_wildcard(segment, entry, rrset.name, verdict.wildcard, proof)
                if not wild.is_secure:
                    return wild
        if segment.negative:
            return self._check_denial(
                zone,
                entry,
                segment.proof,
                qname=segment.qname,
                qtype=segment.qtype,
                rcode=segment.rcode,
            )
        return SECURE

    def _check_wildcard(
        self,
        segment: Segment,
        entry: KeyEntry,
        owner: dns.name.Name,
        wildcard: dns.name.Name,
        proof: Sequence[WireRRset],
    ) -> Verdict:
        """RFC 4035 §5.3.4, RFC 5155 §8.8: the exact name must be proved absent."""
        now, work, zone = self._now, self._budget.work, segment.zone
        built = []
        for record in proof:
            rrset = record.to_rrset()
            sigs = _sigs_at(segment.proof, record.owner_key, record.rdtype)
            verdict = verify_rrset(rrset, sigs, entry.keys, zone, now=now, work=work)  # type: ignore[arg-type]
            if not verdict.is_secure:
                return verdict
            built.append(rrset)
        nsec3 = [r for r in built if r.rdtype == _NSEC3]
        if nsec3:
            return denial.nsec3_wildcard_answer(owner, wildcard, nsec3, zone, work)
        return denial.nsec_wildcard_answer(owner, wildcard, built, zone)

    def _conclude(self) -> list[Action]:
        """Every zone's keys known: the answer's state is the worst of its segments'."""
        validator = self._validator
        pending = self._pending
        assert validator is not None and pending is not None
        state = Security.SECURE
        for segment in self._segments:
            if not validator.is_covered(segment.zone):
                state = Security.INSECURE if state is Security.SECURE else state
                continue
            entry = validator.keys_of(segment.zone, self._now)
            assert entry is not None
            verdict = entry.verdict
            if verdict.is_secure:
                verdict = self._check_segment(segment, entry)
            if verdict.is_bogus:
                validator.count(verdict)
                validator.remember_bogus(
                    self.question.qname_key, self.question.qtype, verdict, self._now
                )
                return self._finish_bogus(verdict)
            if not verdict.is_secure:
                state = Security.INSECURE
        validator.count(SECURE if state is Security.SECURE else insecure())
        return self._finish(replace(pending, security=state, proof=tuple(self._proof)))

    def _finish_bogus(self, verdict: Verdict) -> list[Action]:
        """SERVFAIL with the verdict's Extended DNS Error and text (RFC 8914)."""
        failed = servfail(verdict.text, verdict.code or ExtendedError.DNSSEC_BOGUS)
        return self._finish(replace(failed, security=Security.BOGUS, proof=tuple(self._proof)))


def _rrset_of(result: Result, owner: dns.name.Name, rdtype: int) -> WireRRset | None:
    """The RRset of ``owner`` and ``rdtype`` among the answer of ``result``."""
    for rrset in result.answer:
        if rrset.rdtype == rdtype and rrset.name == owner and len(rrset):
            return rrset
    return None


def _parent_zone(fetched_ds: Result, zone: dns.name.Name) -> dns.name.Name:
    """The zone that answered the DS question: the signer of its records, else the zone
    whose servers replied, else the parent name (RFC 4035 §3.1.4.1: DS lives above)."""
    signer = signer_of(fetched_ds.proof, zone)
    if signer is not None and signer != zone:
        return signer
    answered = fetched_ds.zone
    if answered is not None and zone.is_subdomain(answered) and answered != zone:
        return answered
    return zone.parent()
