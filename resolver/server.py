"""Startup, signals and graceful shutdown of the resolver (and of the lab beside it)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import random
import signal
import time
from collections.abc import Callable
from typing import Any

import dns.name

from resolver.access import LOOPBACK_RULES, AccessList
from resolver.binding import bind_error, listen_encrypted
from resolver.cache.answer import AnswerCache
from resolver.cache.rrset import TtlBounds
from resolver.cache.view import Caches
from resolver.config import Endpoint, Settings
from resolver.control import ControlServer
from resolver.core.dnssec.keys import Validator
from resolver.driver import Driver
from resolver.files import load_caches, load_root_hints, save_caches
from resolver.frontend import Frontend
from resolver.lab.server import Lab
from resolver.limits import Limits
from resolver.mesh import Mesh
from resolver.metrics import MetricsExporter
from resolver.model import ZoneCut
from resolver.reload import (
    LIVE_SETTINGS,
    judges_alike,
    needs_restart,
    rate_limiter_for,
    validator_for,
)
from resolver.transport.encrypted import EncryptedListeners
from resolver.transport.listeners import Listeners, TcpLimits
from resolver.transport.proxied import ProxiedListeners
from resolver.transport.upstream import Upstream

log = logging.getLogger(__name__)

WORKER_READY = "rootwalk-worker-ready"
"""The line a worker prints once it listens and takes SIGHUP (read by the supervisor)."""
RESOLVER_READY = "resolver ready"
"""Logged (INFO) by ``serve`` once the resolver answers and takes signals."""

STALE_WINDOW_S = 86400.0
"""RFC 8767 §5: serve data at most one day past its expiry."""


class ResolverService:
    """The resolver's parts, built from Settings at start (never in config)."""

    def __init__(
        self,
        settings: Settings,
        *,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        insecure_upstream_for_tests: bool = False,
        reuse_port: bool = False,
    ) -> None:
        self.settings = settings
        self.limits = limits or Limits()
        self.clock = clock
        self.rng = rng or random.Random()
        self._insecure_upstream = insecure_upstream_for_tests
        self._reuse_port = reuse_port
        """Several worker processes share the listening ports (SO_REUSEPORT)."""
        self.root: ZoneCut | None = None
        self.upstream: Upstream | None = None
        self.driver: Driver | None = None
        self.frontend: Frontend | None = None
        self.listeners: Listeners | None = None
        self.encrypted: EncryptedListeners | None = None
        self.answers = AnswerCache(
            settings.answer_cache_bytes,
            stale_s=STALE_WINDOW_S if settings.serve_stale else 0.0,
        )
        self.caches = Caches.sized(
            settings.rrset_cache_bytes,
            TtlBounds(settings.min_ttl, settings.max_ttl),
            max_negative_ttl=settings.max_negative_ttl,
        )
        self.mesh: Mesh | None = None
        self.metrics: MetricsExporter | None = None
        self.control: ControlServer | None = None
        self.validator: Validator | None = None
        self.flushed = False
        """Whether the last :meth:`apply` flushed the caches (the DNSSEC settings changed)."""

    async def start(self) -> None:
        settings = self.settings
        self.root = load_root_hints(settings.root_hints)
        self.validator = validator_for(settings)
        if settings.cache_file is not None:
            loaded = load_caches(
                settings.cache_file, self.answers, self.caches.rrsets, self.clock()
            )
            log.info("loaded %d cache entries from %s", loaded, settings.cache_file)
        self.upstream = Upstream(
            port=settings.outbound_port,
            allow=settings.outbound_allow,
            use_0x20=settings.use_0x20,
            insecure_for_tests=self._insecure_upstream,
        )
        self.mesh = Mesh(
            root=self.root,
            caches=self.caches,
            limits=self.limits,
            rng=self.rng,
            default_timeout_s=settings.upstream_timeout_s,
            harden_glue=settings.harden_glue,
            qname_minimisation=settings.qname_minimisation,
            client_deadline_s=settings.client_deadline_s,
            serve_stale_client_timeout_s=settings.serve_stale_client_timeout_s,
            validator=self.validator,
        )
        self.driver = Driver(self.mesh, self.upstream, clock=self.clock)
        access = AccessList([*LOOPBACK_RULES, *settings.allow_clients])
        self.frontend = Frontend(
            self.driver,
            access,
            self.answers,
            self.clock,
            query_log=settings.query_log,
            rate_limiter=rate_limiter_for(settings),
            refuse_over_limit=settings.rate_limit_action == "refuse",
            max_pending=settings.max_pending_queries,
        )
        tcp_limits = TcpLimits(settings.tcp_idle_timeout_s, settings.max_tcp_connections)
        self.listeners = (
            ProxiedListeners(
                self.frontend.on_query,
                tcp_limits,
                trusted=settings.proxy_protocol_from,
                rejected=self.frontend.rejected,
            )
            if settings.proxy_protocol_from
            else Listeners(self.frontend.on_query, tcp_limits)
        )
        for endpoint in settings.listen:
            await self._listen(endpoint)
        self.encrypted = await listen_encrypted(self.listeners, settings, self._reuse_port)
        if not self.listeners.bound:
            raise OSError(errno.EADDRNOTAVAIL, "could not listen on any address")
        if settings.control is not None:
            self.control = ControlServer(
                lambda name, subtree: self.flush(name, subtree=subtree), self.stats
            )
            try:
                await self.control.start(settings.control.host, settings.control.port)
            except OSError as exc:
                raise bind_error("control", settings.control, exc, can_be_off=True) from exc
        if settings.metrics is not None:
            self.metrics = MetricsExporter(self, settings.metrics.host, settings.metrics.port)
            try:
                self.metrics.start()
            except OSError as exc:
                raise bind_error("metrics", settings.metrics, exc, can_be_off=True) from exc

    async def _listen(self, endpoint: Endpoint) -> None:
        assert self.listeners is not None
        try:
            await self.listeners.listen_udp(
                endpoint.host, endpoint.port, reuse_port=self._reuse_port
            )
            await self.listeners.listen_tcp(
                endpoint.host, endpoint.port, reuse_port=self._reuse_port
            )
        except OSError as exc:
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) and ":" in endpoint.host:
                log.warning("not listening on %s: %s", endpoint, exc.strerror)
                return
            raise bind_error("listen", endpoint, exc, can_be_off=False) from exc
        log.info("listening on %s (UDP and TCP)", endpoint)

    def flush(self, name: dns.name.Name | None = None, *, subtree: bool = False) -> int:
        """Forget cached data for ``name`` (and below it with ``subtree``), or everything;
        returns how many entries went. The control commands call this."""
        removed = self.answers.flush(name, subtree=subtree)
        removed += self.caches.rrsets.flush(name, subtree=subtree)
        removed += self.caches.negative.flush(name, subtree=subtree)
        removed += self.caches.nsec.flush(name, subtree=subtree)
        removed += self.caches.failures.flush()
        if name is None:
            self.caches.infra.clear()
        return removed

    def stats(self) -> dict[str, Any]:
        """Sizes and counters of the caches, for ``rootwalk cache stats``."""
        answers = self.answers
        rrsets, negative = self.caches.rrsets, self.caches.negative
        return {
            "answer": {
                "entries": len(answers),
                "bytes": answers.bytes_used,
                "evictions": answers.evictions,
                **dataclasses.asdict(answers.counters),
            },
            "rrset": {
                "entries": len(rrsets),
                "bytes": rrsets.bytes_used,
                "evictions": rrsets.evictions,
            },
            "negative": {
                "entries": len(negative),
                "bytes": negative.bytes_used,
                "evictions": negative.evictions,
            },
            "failures": {"entries": len(self.caches.failures)},
            "servers": {"entries": len(self.caches.infra)},
            "inflight": len(self.mesh) if self.mesh is not None else 0,
        }

    def apply(self, settings: Settings) -> list[str]:
        """Take a reloaded configuration; returns the settings that need a restart to change
        (listen addresses, endpoints, cache sizes). The trust anchor files are read again
        first: a bad one raises ValueError (file, line) before anything changes.

        The caches are kept, unless the DNSSEC judgement changes (``dnssec``, the anchors'
        records, ``negative_trust_anchors``): then :meth:`forget_validated`, so nothing
        judged under the old settings is served as judged under the new ones."""
        old = self.settings
        assert self.frontend is not None and self.upstream is not None
        assert self.mesh is not None and self.driver is not None and self.listeners is not None
        validator = validator_for(settings)
        self.flushed = not judges_alike(self.validator, validator)
        if self.flushed:
            self.forget_validated(validator)
        elif self.validator is not None and self.validator.enabled:
            self.validator.bogus_ttl_s = settings.val_bogus_ttl_s
            self.validator.aggressive_nsec = settings.aggressive_nsec
        access = AccessList([*LOOPBACK_RULES, *settings.allow_clients])
        self.frontend.set_access(access)
        self.upstream.set_allow(settings.outbound_allow)
        self.mesh.default_timeout_s = settings.upstream_timeout_s
        self.mesh.qname_minimisation = settings.qname_minimisation
        self.mesh.client_deadline_s = settings.client_deadline_s
        self.mesh.serve_stale_client_timeout_s = settings.serve_stale_client_timeout_s
        self.listeners.tcp.limits = TcpLimits(
            settings.tcp_idle_timeout_s, settings.max_tcp_connections
        )
        self.answers.stale_s = STALE_WINDOW_S if settings.serve_stale else 0.0
        self.frontend.query_log = settings.query_log
        self.frontend.rate_limiter = rate_limiter_for(settings)
        self.frontend.refuse_over_limit = settings.rate_limit_action == "refuse"
        self.frontend.max_pending = settings.max_pending_queries
        logging.getLogger().setLevel(settings.log_level)
        live = {name: getattr(settings, name) for name in LIVE_SETTINGS}
        if self.encrypted is not None and not (
            settings.tls_cert
            and settings.tls_key
            and self.encrypted.reload(settings.tls_cert, settings.tls_key)  # a bad pair: logged
        ):  # the old pair serves on: the running settings name its files, not the new ones
            live["tls_cert"], live["tls_key"] = old.tls_cert, old.tls_key
        self.settings = dataclasses.replace(old, **live)
        return needs_restart(old, settings)

    def forget_validated(self, validator: Validator) -> None:
        """Judge from now on with ``validator`` (not ``enabled``: validation off), forgetting
        every verdict of the old one: the resolutions in flight end with SERVFAIL (as
        Unbound's reload drops its queries), the answer, RRset, negative, NSEC and failure
        caches go with the key cache (a new validator starts empty; its counters carry on).
        The infra cache (RTT, EDNS, lameness: server facts) stays. Everything else, not only
        names under a changed anchor: an answer elsewhere may hold a CNAME into it."""
        assert self.mesh is not None and self.driver is not None
        old = self.validator
        if old is not None:
            validator.verdicts, validator.bogus_reasons = old.verdicts, old.bogus_reasons
            validator.synthesised = old.synthesised
        self.driver.abandon("the DNSSEC settings were reloaded")
        self.validator = self.mesh.validator = validator
        self.answers.flush()
        for cache in (self.caches.rrsets, self.caches.negative, self.caches.nsec):
            cache.flush()
        self.caches.failures.flush()

    async def drain(self, grace_s: float) -> None:
        """Stop taking queries and give those in flight up to ``grace_s`` seconds to be
        answered (``shutdown_grace_s``); the sockets stay open to send their replies."""
        if self.listeners is None or self.frontend is None:
            return
        self.listeners.stop_accepting()
        pending = self.frontend.pending
        if pending and grace_s > 0:
            log.info("waiting up to %g s for %d queries in flight", grace_s, pending)
            try:
                await asyncio.wait_for(self.frontend.wait_idle(), grace_s)
            except TimeoutError:
                log.warning("%d queries still unanswered at shutdown", self.frontend.pending)
        for _ in range(2):  # UDP replies go out at the end of a turn of the loop
            await asyncio.sleep(0)

    async def close(self) -> None:
        if self.control is not None:
            await self.control.close()
        if self.metrics is not None:
            self.metrics.close()
        if self.listeners is not None:
            await self.listeners.close()
        if self.settings.cache_file is not None and self.root is not None:
            try:
                saved = save_caches(
                    self.settings.cache_file, self.answers, self.caches.rrsets, self.clock()
                )
                log.info("saved %d cache entries to %s", saved, self.settings.cache_file)
            except OSError as exc:
                log.error("could not save the cache to %s: %s", self.settings.cache_file, exc)
        if self.driver is not None:
            await self.driver.close()


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)


def _reload_on_sighup(service: ResolverService, reload: Callable[[], Settings]) -> None:
    """SIGHUP re-reads the configuration; a bad one is reported and the old one stays."""

    def on_hangup() -> None:
        try:
            settings = reload()
        except ValueError as exc:
            log.error("reload failed, keeping the running configuration: %s", exc)
            return
        try:
            pending = service.apply(settings)
        except ValueError as exc:  # a trust anchor file
            log.error("reload failed, keeping the running configuration: %s", exc)
            return
        if service.flushed:
            log.info("configuration reloaded; DNSSEC settings changed, caches flushed")
        else:
            log.info("configuration reloaded; caches kept")
        if pending:
            log.warning("these settings change only on restart: %s", ", ".join(pending))

    with contextlib.suppress(NotImplementedError, RuntimeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_hangup)


async def serve(
    settings: Settings,
    reload: Callable[[], Settings] | None = None,
    *,
    worker: bool = False,
) -> None:
    """Run the resolver until SIGTERM or SIGINT, then shut down gracefully; SIGHUP reloads
    the configuration with ``reload`` when given. A ``worker`` shares its listening ports with
    its siblings and tells its supervisor where its control and metrics endpoints are."""
    stop = asyncio.Event()
    _stop_on_signals(stop)
    service = ResolverService(settings, reuse_port=worker)
    await service.start()
    if reload is not None:
        _reload_on_sighup(service, reload)
    # Said once queries, control, metrics and SIGHUP are all handled (the "listening on"
    # lines come before the SIGHUP handler is in place): supervisors and tests wait for it.
    log.info(RESOLVER_READY)
    if worker:
        assert service.control is not None and service.metrics is not None
        print(
            f"{WORKER_READY} control={service.control.port} metrics={service.metrics.port}",
            flush=True,
        )
    try:
        await stop.wait()
        log.info("shutting down")
        await service.drain(service.settings.shutdown_grace_s)
    finally:
        await service.close()


async def serve_lab(
    settings: Settings,
    lab: Lab,
    on_ready: Callable[[], None],
    reload: Callable[[], Settings] | None = None,
) -> None:
    """Run the lab's servers and the resolver pointed at them until SIGTERM or SIGINT;
    SIGHUP reloads the resolver's configuration as ``serve`` does."""
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        await lab.start()
    except OSError as exc:
        await lab.close()
        if exc.errno != errno.EADDRINUSE:
            raise
        raise OSError(
            exc.errno,
            f"the lab's servers cannot listen on port {lab.port}: address already in use "
            "(is another `rootwalk lab` running?); use --lab-port N",
        ) from exc
    service = ResolverService(settings)
    try:
        await service.start()
        if reload is not None:
            _reload_on_sighup(service, reload)
        on_ready()
        await stop.wait()
        log.info("shutting down")
        await service.drain(service.settings.shutdown_grace_s)  # the lab still answers meanwhile
    finally:
        await service.close()
        await lab.close()
