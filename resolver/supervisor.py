"""Several cores: ``rootwalk serve --workers N`` runs N resolver processes that share the
listening ports (SO_REUSEPORT, so the kernel spreads clients by address and port), each with
its own cache, under a supervisor that:

* restarts a worker that dies;
* forwards SIGHUP (after checking the new configuration itself, so a bad file is reported
  once and no worker sees it) and SIGTERM;
* serves one ``/metrics`` endpoint: at each scrape it reads every worker's exposition and
  sums the samples with the same name and labels (counters, gauges and histogram buckets all
  add up across processes). prometheus_client's multiprocess mode was not used: it does not
  take custom collectors, and ours reads plain counters at scrape time;
* runs the control endpoint, sending ``flush`` to every worker and summing ``stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dns.name
from prometheus_client import start_http_server
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from resolver.config import Endpoint, Settings
from resolver.control import ControlServer, request
from resolver.server import WORKER_READY

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 5.0
"""How long a worker may take to exit after SIGTERM beyond its ``shutdown_grace_s``."""


@dataclass(slots=True)
class Worker:
    index: int
    process: asyncio.subprocess.Process
    control_port: int
    metrics_port: int


def merge_expositions(texts: list[str]) -> list[Metric]:
    """Sum samples with the same name and labels across the workers' expositions."""
    families: dict[str, Metric] = {}
    sums: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            merged = families.setdefault(
                family.name, Metric(family.name, family.documentation, family.type)
            )
            totals = sums.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                totals[key] = totals.get(key, 0.0) + sample.value
    for name, merged in families.items():
        for (sample_name, labels), value in sums[name].items():
            merged.add_sample(sample_name, dict(labels), value)
    return list(families.values())


def _sum_stats(values: list[Any]) -> Any:
    """Add numbers leaf by leaf across the workers' stats dictionaries."""
    if all(isinstance(v, dict) for v in values):
        keys = {k for v in values for k in v}
        return {k: _sum_stats([v[k] for v in values if k in v]) for k in sorted(keys)}
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return sum(values)
    return values[0] if values else None


class Supervisor:
    def __init__(self, settings: Settings, worker_command: Callable[[int], list[str]]) -> None:
        self.settings = settings
        self.worker_command = worker_command
        self.workers: dict[int, Worker] = {}
        self.restarts = 0
        self._stopping = False
        self._monitors: set[asyncio.Task[None]] = set()
        self._control: ControlServer | None = None
        self._metrics_server: Any = None

    async def _spawn(self, index: int) -> Worker:
        process = await asyncio.create_subprocess_exec(
            *self.worker_command(index), stdout=asyncio.subprocess.PIPE, stderr=None
        )
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30.0)
        text = line.decode().strip()
        if not text.startswith(WORKER_READY):
            await process.wait()
            raise RuntimeError(f"worker {index} did not start (exit status {process.returncode})")
        fields = dict(part.split("=", 1) for part in text.split()[1:])
        worker = Worker(index, process, int(fields["control"]), int(fields["metrics"]))
        self.workers[index] = worker
        monitor = asyncio.get_running_loop().create_task(self._watch(worker))
        self._monitors.add(monitor)
        monitor.add_done_callback(self._monitors.discard)
        log.info("worker %d started (pid %d)", index, process.pid)
        return worker

    async def _watch(self, worker: Worker) -> None:
        status = await worker.process.wait()
        if self._stopping:
            return
        log.error(
            "worker %d (pid %d) exited with status %s; restarting",
            worker.index,
            worker.process.pid,
            status,
        )
        self.restarts += 1
        await asyncio.sleep(RESTART_DELAY_S)
        if not self._stopping:
            await self._spawn(worker.index)

    def _signal_workers(self, signum: int) -> None:
        for worker in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signum)

    async def _flush(self, name: dns.name.Name | None, subtree: bool) -> int:
        payload: dict[str, Any] = {"command": "flush", "subtree": subtree}
        if name is not None:
            payload["name"] = name.to_text()
        replies = await asyncio.gather(
            *(request("127.0.0.1", w.control_port, payload) for w in self.workers.values()),
            return_exceptions=True,
        )
        return sum(int(r.get("removed", 0)) for r in replies if isinstance(r, dict))

    async def _stats(self) -> dict[str, Any]:
        replies = await asyncio.gather(
            *(
                request("127.0.0.1", w.control_port, {"command": "stats"})
                for w in self.workers.values()
            ),
            return_exceptions=True,
        )
        workers = list(self.workers.values())
        per_worker = [r["stats"] if isinstance(r, dict) and r.get("ok") else None for r in replies]
        summed: dict[str, Any] = _sum_stats([s for s in per_worker if s]) if any(per_worker) else {}
        summed["workers"] = sorted(
            (
                {
                    "index": w.index,
                    "pid": w.process.pid,
                    "answer_lookups": (s["answer"]["hits"] + s["answer"]["misses"]) if s else None,
                }
                for w, s in zip(workers, per_worker, strict=True)
            ),
            key=lambda entry: int(entry["index"]),
        )
        summed["worker_restarts"] = self.restarts
        return summed

    def collect_workers(self) -> Iterator[Metric]:
        """The metrics collector: every worker's exposition, summed."""
        texts = []
        for worker in list(self.workers.values()):
            url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    texts.append(response.read().decode())
            except OSError as exc:
                log.warning("could not scrape worker %d: %s", worker.index, exc)
        yield from merge_expositions(texts)
        yield GaugeMetricFamily(
            "rootwalk_workers", "Worker processes running.", value=len(self.workers)
        )
        yield Metric(
            "rootwalk_worker_restarts", "Workers restarted after dying.", "counter"
        )  # filled below

    async def run(self, reload: Callable[[], Settings]) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)

        def on_hangup() -> None:
            try:
                reload()
            except ValueError as exc:
                log.error("reload failed, keeping the running configuration: %s", exc)
                return
            self._signal_workers(signal.SIGHUP)

        loop.add_signal_handler(signal.SIGHUP, on_hangup)
        try:
            for index in range(self.settings.workers):
                await self._spawn(index)
            if self.settings.control is not None:
                self._control = ControlServer(self._flush, self._stats)
                await self._control.start(self.settings.control.host, self.settings.control.port)
            if self.settings.metrics is not None:
                registry = CollectorRegistry(auto_describe=False)
                registry.register(_SupervisorCollector(self))
                self._metrics_server, _ = start_http_server(
                    self.settings.metrics.port, self.settings.metrics.host, registry=registry
                )
            log.info("%d workers running", len(self.workers))
            await stop.wait()
        finally:
            self._stopping = True
            if self._metrics_server is not None:
                self._metrics_server.shutdown()
            if self._control is not None:
                await self._control.close()
            self._signal_workers(signal.SIGTERM)
            for worker in list(self.workers.values()):
                try:
                    await asyncio.wait_for(
                        worker.process.wait(), self.settings.shutdown_grace_s + STOP_TIMEOUT_S
                    )
                except TimeoutError:
                    worker.process.kill()
                    await worker.process.wait()
            for monitor in list(self._monitors):
                monitor.cancel()


class _SupervisorCollector(Collector):
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        for family in self.supervisor.collect_workers():
            if family.name == "rootwalk_worker_restarts":
                family.add_sample("rootwalk_worker_restarts_total", {}, self.supervisor.restarts)
            yield family


def worker_command(argv: list[str], index: int) -> list[str]:
    """The command line of worker ``index``: the same arguments, as a worker."""
    return [sys.executable, "-m", "resolver", *argv, "--worker", str(index)]


def worker_settings(settings: Settings, index: int) -> Settings:
    """Worker ``index``'s own settings: one process, endpoints on ephemeral loopback ports, a
    cache file of its own."""
    return dataclasses.replace(
        settings,
        workers=1,
        metrics=Endpoint("127.0.0.1", 0),
        control=Endpoint("127.0.0.1", 0),
        cache_file=(
            None
            if settings.cache_file is None
            else settings.cache_file.with_name(f"{settings.cache_file.name}.{index}")
        ),
    )
