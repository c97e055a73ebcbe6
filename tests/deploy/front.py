"""dnsdist running ``deploy/dnsdist/dnsdist.conf`` in front of ``rootwalk serve`` backends.

dnsdist reads a small wrapper file that sets the committed configuration's knobs (the
``rootwalk`` Lua table: ports, policy, check interval) and then ``dofile``s it, so the
tests run the very file an operator installs. Readiness is read from dnsdist's own log, as
for Rootwalk (``tests/process.py``): with ``--supervised`` it prints ``Marking downstream
NAME (ADDR) as 'up'`` once a backend passed its first health check, and ``... as 'down'``
once a check failed; nothing is polled on a timer.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.ports import free_port
from tests.process import REPO, RootwalkProcess, WatchedProcess

DNSDIST = shutil.which("dnsdist") or (
    "/usr/sbin/dnsdist" if Path("/usr/sbin/dnsdist").exists() else None
)
CONFIG = REPO / "deploy" / "dnsdist" / "dnsdist.conf"
CHECK_INTERVAL_S = 1
CHECK_TIMEOUT_MS = 1000


def lua_list(items: list[str]) -> str:
    return "{" + ", ".join(f'"{item}"' for item in items) + "}"


@dataclass
class Backend:
    """One ``rootwalk serve`` process on the lab, with its DNS and metrics ports."""

    lab_port: int
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: RootwalkProcess | None = None
    env: dict[str, str] = field(default_factory=dict)
    """Settings for this backend (``ROOTWALK_*`` variables)."""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Backend:
        self.process = RootwalkProcess(
            "serve", "--listen", self.address, "--metrics", f"127.0.0.1:{self.metrics_port}",
            "--control", "off", "--root-hints", str(REPO / "zones/lab/root.hints"),
            "--trust-anchors", str(REPO / "zones/lab/trust-anchor.ds"),
            "--outbound-allow", "127.0.0.0/8", "--outbound-port", str(self.lab_port),
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )  # fmt: skip
        self.process.wait_listening(self.address)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def metric(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples with ``labels``, scraped from the backend now."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )


def wrapper_text(
    listen: str, backends: list[str], policy: str = "chashed", *, proxy_protocol: bool = False
) -> str:
    """The Lua file dnsdist reads: this run's knobs (the ``rootwalk`` table), then the
    committed configuration. Security polling (a TXT query to the internet about dnsdist's
    version) is turned off."""
    return (
        'setSecurityPollSuffix("")\n'
        f"rootwalk = {{ listen = {lua_list([listen])}, backends = {lua_list(backends)},\n"
        f'  policy = "{policy}", check_interval_s = {CHECK_INTERVAL_S},\n'
        f"  check_timeout_ms = {CHECK_TIMEOUT_MS},\n"
        f"  proxy_protocol = {'true' if proxy_protocol else 'false'} }}\n"
        f'dofile("{CONFIG}")\n'
    )


class Dnsdist(WatchedProcess):
    """dnsdist in the foreground (``--supervised``), its log on stdout."""

    def __init__(
        self,
        folder: Path,
        backends: list[str],
        policy: str = "chashed",
        *,
        proxy_protocol: bool = False,
    ) -> None:
        assert DNSDIST is not None
        self.port = free_port()
        self.wrapper = folder / "dnsdist.conf"
        listen = f"127.0.0.1:{self.port}"
        self.wrapper.write_text(
            wrapper_text(listen, backends, policy, proxy_protocol=proxy_protocol)
        )
        super().__init__([DNSDIST, "--supervised", "--disable-syslog", "-C", str(self.wrapper)])

    def wait_marked(self, address: str, state: str, count: int = 1, timeout: float = 30) -> None:
        """Until dnsdist logged ``count`` times that the backend at ``address`` is ``state``
        (``up`` or ``down``)."""
        self.wait_for(f"({address}) as '{state}'", stream="stdout", count=count, timeout=timeout)
