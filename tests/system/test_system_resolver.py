"""The system's own stub resolver pointed at Rootwalk: inside a private network and mount
namespace, resolv.conf names 127.0.0.1 with search example.lab, and glibc (getent, Python's
getaddrinfo) resolves lab names through `rootwalk lab` on port 53 (RECIPES.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
set -eu
ip link set lo up
mount --bind "$RESOLV" /etc/resolv.conf
banner="$(mktemp -u)"
mkfifo "$banner"
ROOTWALK_METRICS=off ROOTWALK_CONTROL=off "$PYTHON" -m resolver lab --listen 127.0.0.1:53 --lab-port 10053 >"$banner" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true; rm -f "$banner"' EXIT
exec 3<"$banner"
# ready when its banner says so; the 30 s only guards a hang
line=""
while IFS= read -r -t 30 line <&3; do
    [[ $line == "rootwalk lab: resolver on"* ]] && break
done
[[ $line == "rootwalk lab: resolver on"* ]] || { echo "the lab never said it was ready" >&2; exit 1; }
echo "hosts: $(getent hosts www)"
"$PYTHON" -c 'import socket; print("getaddrinfo:", " ".join(sorted({a[4][0] for a in socket.getaddrinfo("www", 80, proto=socket.IPPROTO_TCP)})))'
"$PYTHON" -c 'import socket; print("alias:", socket.gethostbyname("alias"))'
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"
)
def test_glibc_resolves_lab_names_through_rootwalk(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        "nameserver 127.0.0.1\nsearch example.lab\noptions ndots:1 timeout:2 attempts:1\n"
    )
    env = {**os.environ, "RESOLV": str(resolv), "PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        ["unshare", "--net", "--mount", "bash", "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    # getent hosts asks AAAA first; the search list turns www into www.example.lab.
    assert lines["hosts"].split() == ["2001:db8::10", "www.example.lab"]
    assert lines["getaddrinfo"].split() == ["192.0.2.10", "2001:db8::10"]
    assert lines["alias"] == "192.0.2.20"  # alias.example.lab. -> CNAME -> www.other.example.
