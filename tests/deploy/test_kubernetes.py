"""deploy/kubernetes/ stays valid and true to the image and the resolver.

Every manifest is checked against the Kubernetes API's own schemas by ``kubernetes-validate``
(from PyPI; it ships the schemas of every Kubernetes version inside the package, so the check
runs offline), strictly: an unknown field (a misspelt ``readOnlyRootFileSystem``) fails as
a wrong type does. The ConfigMap's TOML goes through the real ``rootwalk check-config`` with
the Deployment's environment, and the settings it prints must agree with the Deployment's
ports, probes and volumes, the Service, and the Dockerfile's user and config path.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted(p for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")
# An old release still in the cloud providers' extended support, and the newest the validator
# ships.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())


def _resources(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _one(kind: str) -> dict[str, Any]:
    found = [r for p in MANIFESTS for r in _resources(p) if r["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _validate(resource: dict[str, Any], version: str) -> None:
    """Raises on anything the schema rejects, and also on a kind it has no schema for (the
    validator's own command line only warns about those)."""
    kubernetes_validate.validate(resource, version, strict=True)


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _configmap_toml() -> str:
    text = _one("ConfigMap")["data"]["rootwalk.toml"]
    assert isinstance(text, str)
    return text


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFESTS]
    assert {r["kind"] for p in MANIFESTS for r in _resources(p)} >= {
        "ConfigMap",
        "Deployment",
        "Service",
    }


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_against_the_kubernetes_schema(path: Path, version: str) -> None:
    resources = _resources(path)
    assert resources, f"{path.name} holds no resource"
    for resource in resources:
        _validate(resource, version)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda c: c["securityContext"].update(readOnlyRootFileSystem=True), "unexpected"),
        (lambda c: c["ports"][0].update(containerPort="53"), "is not of type 'integer'"),
        (lambda c: c.pop("name"), "'name' is a required property"),
    ],
    ids=["misspelt-field", "port-as-string", "no-container-name"],
)
def test_validator_rejects_a_planted_bad_deployment(change: Any, complaint: str) -> None:
    """The check can fail: the Deployment, spoilt one way at a time, is rejected."""
    bad = copy.deepcopy(_one("Deployment"))
    change(_container(bad))
    with pytest.raises(kubernetes_validate.ValidationError, match=re.escape(complaint)):
        _validate(bad, KUBERNETES_VERSIONS[-1])


def _check_config(toml_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``rootwalk check-config`` on the text, with the Deployment's environment variables."""
    config = tmp_path / "rootwalk.toml"
    config.write_text(toml_text)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ROOTWALK_")}
    environ.update({e["name"]: e["value"] for e in _container(_one("Deployment"))["env"]})
    return subprocess.run(
        [sys.executable, "-m", "resolver", "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


def test_check_config_rejects_a_planted_bad_setting(tmp_path: Path) -> None:
    done = _check_config(_configmap_toml() + 'listn = ["0.0.0.0:53"]\n', tmp_path)
    assert done.returncode != 0
    assert "unknown setting" in done.stderr


def test_configmap_settings_agree_with_deployment_service_and_image(tmp_path: Path) -> None:
    done = _check_config(_configmap_toml(), tmp_path)
    assert done.returncode == 0, done.stderr
    settings = tomllib.loads(done.stdout)  # check-config prints the settings in force as TOML
    deployment = _one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    dockerfile = (ROOT / "Dockerfile").read_text()

    # Every listen address on one port; the container's DNS ports are that port.
    listen_ports = {int(a.rsplit(":", 1)[1]) for a in settings["listen"]}
    assert len(listen_ports) == 1
    (dns_port,) = listen_ports
    ports = {p["name"]: p for p in container["ports"]}
    assert (ports["dns-udp"]["containerPort"], ports["dns-udp"]["protocol"]) == (dns_port, "UDP")
    assert (ports["dns-tcp"]["containerPort"], ports["dns-tcp"]["protocol"]) == (dns_port, "TCP")
    metrics_port = int(settings["metrics"].rsplit(":", 1)[1])
    assert not settings["metrics"].startswith("127."), "Prometheus scrapes the pod's address"
    assert ports["metrics"]["containerPort"] == metrics_port
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(metrics_port)
    assert annotations["prometheus.io/scrape"] == "true"
    # A port below 1024 needs the one capability the image's interpreter carries.
    if dns_port < 1024:
        assert container["securityContext"]["capabilities"]["add"] == ["NET_BIND_SERVICE"]
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]

    # The probes ask the resolver's own port for the locally answered name.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[:3] == ["rootwalk", "query", "localhost."]
        assert command[command.index("--server") + 1] == f"127.0.0.1:{dns_port}"

    # The Service: 53 over UDP and TCP to the container's named ports, and the metrics port.
    service = _one("Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    by_name = {p["name"]: p for p in service["spec"]["ports"]}
    for name in ("dns-udp", "dns-tcp", "metrics"):
        assert by_name[name]["targetPort"] == name
        assert by_name[name]["protocol"] == ports[name]["protocol"]
    assert by_name["dns-udp"]["port"] == by_name["dns-tcp"]["port"] == 53

    # The config file: the ConfigMap mounted where the image's CMD (and the args) read it.
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd is not None
    config_path = Path(yaml.safe_load(cmd.group(1))[2])
    assert container["args"] == ["serve", "--config", str(config_path)]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    configmap = _one("ConfigMap")
    config_volume = volumes[mounts[str(config_path.parent)]["name"]]
    assert config_volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert config_path.name in configmap["data"]

    # What the resolver writes (the cache file and its .tmp) lies on an emptyDir; nothing else
    # is writable (tests/container/run.sh runs the image read-only the same way).
    cache_dir = str(Path(settings["cache_file"]).parent)
    assert "emptyDir" in volumes[mounts[cache_dir]["name"]]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False

    # The image's user.
    uid = re.search(r"useradd [^\n]*--uid (\d+)", dockerfile)
    assert uid is not None
    assert pod["securityContext"]["runAsUser"] == int(uid.group(1))
    assert pod["securityContext"]["runAsNonRoot"] is True

    # The graceful stop fits in the pod's grace period, with room to save the cache file.
    assert settings["shutdown_grace_s"] + 5 <= pod["terminationGracePeriodSeconds"]


def test_container_stage_mounts_the_configmap_text() -> None:
    """tests/container/run.sh cuts the TOML out of configmap.yaml with awk (the CI machine's
    system Python need not have PyYAML); its cut is the text YAML reads."""
    script = (ROOT / "tests" / "container" / "run.sh").read_text()
    program = re.search(r"^CONFIGMAP_TOML_AWK='([^']*)'$", script, re.MULTILINE)
    assert program is not None
    cut = subprocess.run(
        ["awk", program.group(1), str(KUBE / "configmap.yaml")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert cut == _configmap_toml()
