"""The deploy files stay true: the sample settings load, the dashboard asks for metrics that
exist, the systemd unit runs the command the CLI has."""

from __future__ import annotations

import json
import re
from pathlib import Path

from resolver.config import build_settings

ROOT = Path(__file__).resolve().parents[2]


def test_sample_settings_load() -> None:
    settings = build_settings(config_file=ROOT / "deploy" / "rootwalk.toml")
    assert settings.metrics is not None and settings.metrics.port == 9153
    assert settings.cache_file == Path("/var/lib/rootwalk/cache.json")


def test_dashboard_uses_only_exported_metrics() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {
        re.sub(r"_(total|bucket|count|sum)$", "", m)
        for e in exprs
        for m in re.findall(r"rootwalk_[a-z_]+", e)
    }
    exported = set(
        re.findall(r'"(rootwalk_[a-z_]+)"', (ROOT / "resolver" / "metrics.py").read_text())
    )
    assert used, "the dashboard has no queries"
    assert used <= exported, used - exported


def test_unit_runs_serve_with_the_config_and_reloads_with_sighup() -> None:
    unit = (ROOT / "deploy" / "rootwalk.service").read_text()
    assert "ExecStart=/opt/rootwalk/bin/rootwalk serve --config /etc/rootwalk/rootwalk.toml" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
