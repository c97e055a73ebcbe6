"""QUERY_RESP: what a resolution does with a reply (RFC 1034 §5.3.3 step 4).

The reply is classified (:mod:`resolver.core.classify`), what it teaches is cached at its
rank (RFC 2181 §5.4.1), and the machine moves on: it finishes with an answer or a negative
answer, restarts at a CNAME or DNAME target, goes down a referral, retries without EDNS, or
marks the server lame and asks another. A reply to a minimised question (RFC 9156) goes
through :func:`~resolver.core.qmin.after_minimised` first.
"""

from __future__ import annotations

import typing

import dns.rcode
import dns.rdatatype

from resolver.cache.rrset import Rank
from resolver.core.classify import ClassifiedReply, ReplyKind, classify_reply
from resolver.core.dname import cacheable, synthesised_cname
from resolver.core.dnssec.segment import referral_ds
from resolver.core.events import Action, SendQuery
from resolver.core.qmin import MinimisedStep, after_minimised
from resolver.core.state import INIT, QUERY_TARGETS, ReplyArrived
from resolver.core.validating import Validating
from resolver.model import Result, servfail
from resolver.names import name_wire
from resolver.records import WireRRset


class ResponseHandling(Validating):
    """The QUERY_RESP state's handler and the ways on from a classified reply."""

    def _query_response(self, state: ReplyArrived) -> list[Action]:
        """QUERY_RESP: classify the reply to ``state.query``, cache it, follow it."""
        query, event = state.query, state.reply
        self._settled(query.server)
        self._caches.infra.record_rtt(query.server, event.rtt_s, self._now)
        reply = classify_reply(
            event.reply,
            query.zone,
            query.qname,
            query.qtype,
            used_edns=query.use_edns,
            harden_glue=self._harden_glue,
            zone_key=query.zone_key,
            qname_key=query.qname_key,
        )
        outcome = reply.kind.value
        if reply.kind is ReplyKind.SERVER_ERROR:
            outcome = f"rcode {reply.detail}"  # e.g. "rcode REFUSED": a bounded set of names
        self._count_upstream(outcome)
        self._remember(query, reply)
        self._last_reply = event.reply
        if self._qmin_name is not None:
            return self._on_minimised_reply(query, reply)
        return self._on_classified(query, reply)

    def _remember(self, query: SendQuery, reply: ClassifiedReply) -> None:
        """Cache what the reply teaches, at its rank (RFC 2181 §5.4.1)."""
        now = self._now
        rrsets = self._caches.rrsets
        answer_rank = Rank.AUTH_ANSWER if reply.authoritative else Rank.ANSWER
        for rrset in cacheable(reply.chain):  # a DNAME's CNAMEs are made again from it
            rrsets.put(rrset, answer_rank, now)
        for rrset in reply.referral_rrsets:
            rank = Rank.AUTHORITY if rrset.rdtype == dns.rdatatype.NS else Rank.ADDITIONAL
            rrsets.put(rrset, rank, now)
        if reply.kind in (ReplyKind.NXDOMAIN, ReplyKind.NODATA) and reply.soa is not None:
            assert reply.next_qname is not None and reply.next_key is not None
            rcode = dns.rcode.NXDOMAIN if reply.kind is ReplyKind.NXDOMAIN else dns.rcode.NOERROR
            self._caches.negative.put(
                reply.next_qname, query.qtype, rcode, reply.soa, now, key=reply.next_key
            )

    def _note(self, query: SendQuery, reply: ClassifiedReply, rcode: int, negative: bool) -> None:
        """Keep this reply's part of the answer and its DNSSEC records (DO was sent)."""
        if self._validator is not None and self._last_reply is not None:
            qname = reply.next_qname if reply.next_qname is not None else query.qname
            self._note_segment(
                self._last_reply,
                query.zone,
                query.zone_key,
                reply.chain,
                qname,
                rcode=rcode,
                negative=negative,
            )

    def _on_classified(self, query: SendQuery, reply: ClassifiedReply) -> list[Action]:
        match reply.kind:
            case ReplyKind.ANSWER:
                self._note(query, reply, dns.rcode.NOERROR, False)
                if (failed := self._end_reply_chain(reply)) is not None:
                    return failed
                return self._validate_and_finish(Result(dns.rcode.NOERROR, tuple(self.chain)))
            case ReplyKind.NXDOMAIN | ReplyKind.NODATA:
                rcode = (
                    dns.rcode.NXDOMAIN if reply.kind is ReplyKind.NXDOMAIN else dns.rcode.NOERROR
                )
                self._note(query, reply, rcode, True)
                if (failed := self._end_reply_chain(reply)) is not None:
                    return failed
                authority = (reply.soa,) if reply.soa is not None else ()
                return self._validate_and_finish(Result(rcode, tuple(self.chain), authority))
            case ReplyKind.CNAME | ReplyKind.CNAME_LOOP:
                if reply.kind is ReplyKind.CNAME and reply.chain:
                    self._note(query, reply, dns.rcode.NOERROR, False)
                return self._follow_cname(reply)
            case ReplyKind.REFERRAL:
                return self._follow_referral(query, reply)
            case ReplyKind.YXDOMAIN:
                self._note(query, reply, dns.rcode.YXDOMAIN, False)
                if (failed := self._end_reply_chain(reply)) is not None:
                    return failed
                return self._validate_and_finish(Result(dns.rcode.YXDOMAIN, tuple(self.chain)))
            case ReplyKind.EDNS_UNSUPPORTED:
                # RFC 6891 §7: a FORMERR to a query with OPT means retry without EDNS.
                self._caches.infra.mark_no_edns(query.server, self._now)
                self.state = QUERY_TARGETS
                return self._send(query.server)
            case ReplyKind.SERVER_ERROR:
                self._caches.infra.mark_lame(query.server, query.zone_key, self._now)
                self._server_failed(query.server, f"answered {reply.detail}")
                return self._advance()
            case ReplyKind.LAME:
                self._caches.infra.mark_lame(query.server, query.zone_key, self._now)
                self._server_failed(query.server, "sent a lame reply")
                return self._advance()
            case _:
                typing.assert_never(reply.kind)

    def _end_reply_chain(self, reply: ClassifiedReply) -> list[Action] | None:
        """Add the chain of a reply that ends the walk, its CNAMEs counted and checked as
        every other link is (``_end_chain``); None, or the SERVFAIL's actions."""
        assert reply.next_qname is not None and reply.next_key is not None
        return self._end_chain(reply.chain, reply.next_qname, reply.next_key)

    def _follow_cname(self, reply: ClassifiedReply) -> list[Action]:
        """Restart at the CNAME target (RFC 1034 §5.3.3 step 4c)."""
        assert reply.next_qname is not None and reply.next_key is not None
        if reply.kind is ReplyKind.CNAME_LOOP:
            self.chain.extend(reply.chain)
            return self._finish(servfail(f"CNAME loop at {reply.next_qname}"))
        if self._restart_at(reply.next_qname, reply.next_key, reply.chain):
            self.state = INIT
        return self._advance()

    def _follow_referral(self, query: SendQuery, reply: ClassifiedReply) -> list[Action]:
        """Go down one zone cut (RFC 1034 §5.3.3 step 4b), keeping a signed referral's DS
        for the validation (RFC 4035 §3.1.4) so it is not asked for again."""
        assert reply.referral is not None
        if self._validating and self._last_reply is not None:
            cut = reply.referral
            ds = referral_ds(self._last_reply, cut.zone, cut.zone_key, query.zone)
            if ds is not None:
                self._fetched.setdefault((cut.zone, dns.rdatatype.DS), ds)
        self._referrals += 1
        if self._referrals > self._budget.limits.max_referrals:
            return self._finish(
                servfail(
                    f"more than {self._budget.limits.max_referrals} referrals for {self.question}"
                )
            )
        self._set_cut(reply.referral)
        self.state = QUERY_TARGETS
        return self._advance()

    def _on_minimised_reply(self, query: SendQuery, reply: ClassifiedReply) -> list[Action]:
        """A reply to a minimised question (RFC 9156 §3 step 6), as :func:`after_minimised`
        says: follow it as usual, add labels, or fall back to the full name."""
        step = after_minimised(reply.kind, reply.chain)
        if step is MinimisedStep.NEXT_NAME:
            self._minimise_next()
            self.state = QUERY_TARGETS
            return self._advance()
        if step is not MinimisedStep.AS_USUAL:
            self._minimise_no_more()
        if step is MinimisedStep.FULL_NAME:
            return self._advance()
        return self._on_classified(query, reply)

    # --- DNAME (RFC 6672) ------------------------------------------------------------------

    def _follow_cached_dname(self) -> bool:
        """RFC 6672 §3.2 from the cache: a cached DNAME above the current name stands for a
        CNAME synthesised from it (with the DNAME's TTL), so names below it are answered
        without asking the DNAME's zone again. Checked before a cached CNAME, as Unbound
        does, so the DNAME always wins. False when no DNAME applies; True when one did (the
        machine moved on to the new name, or finished: YXDOMAIN, a loop, the hop limit)."""
        rrsets = self._caches.rrsets
        dname = rrsets.dname_above(self.qname, self._now, key=self.qname_key)
        if dname is None:
            return False
        if self._validator is not None:  # only a DNAME a validation judged (RFC 4035 §4.5)
            found = rrsets.get_validated(
                dname.name, dns.rdatatype.DNAME, self._now, key=dname.owner_key
            )
            if found is None:
                return False
            dname, state, sigs = found
            if self._validating:
                self._take_validated(state, sigs)
            elif sigs is not None:  # CD=1: not judged, but with its RRSIGs (RFC 4035 §3.2.1)
                self._proof.append(sigs)
        cname = synthesised_cname(name_wire(self.qname), dname)
        if cname is None:
            self._finish_yxdomain((dname,))
        elif self.question.qtype == dns.rdatatype.CNAME:
            self.chain.extend((dname, cname))
            self._validate_and_finish(Result(dns.rcode.NOERROR, tuple(self.chain)))
        elif self._restart_at(cname.target(), cname.target_key(), (dname, cname)):
            self.state = INIT
        return True

    def _finish_yxdomain(self, chain: tuple[WireRRset, ...]) -> list[Action]:
        """RFC 6672 §2.2: a DNAME rewrite longer than 255 octets answers YXDOMAIN, with the
        chain up to and including the DNAME."""
        self.chain.extend(chain)
        return self._validate_and_finish(Result(dns.rcode.YXDOMAIN, tuple(self.chain)))
