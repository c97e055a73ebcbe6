"""Real DNSSEC clients against Rootwalk on the signed lab (issue 12, "Done when"): Knot's
``kdig +dnssec`` sees AD and the RRSIGs on a secure answer and SERVFAIL with the Extended DNS
Error (RFC 8914) on a bogus one; BIND's ``delv``, validating on its own from the lab's trust
anchor through Rootwalk, says "fully validated" (RFC 4035 §4.9.3: a security-aware stub may
check the resolver's answer itself). Each test skips when its tool is not installed
(``apt-get install knot-dnsutils bind9-dnsutils``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from resolver.paths import lab_trust_anchor
from tests.integration.conftest import RESOLVER_PORT
from tests.integration.stack import Stack

SERVER = "127.0.0.1"
SECURE = "www.secure.lab."
BOGUS = "www.badsig.lab."
BOGUS_EDE = 6
"""RFC 8914 §4.7 "DNSSEC Bogus": the lab's badsig.lab. carries a signature that does not
verify (Unbound validating gives the same code, tests/peer/signed_lab_unbound.py)."""


def run(args: list[str]) -> str:
    done = subprocess.run(args, check=False, capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def kdig(*args: str) -> str:
    return run(["kdig", f"@{SERVER}", "-p", str(RESOLVER_PORT), "+retry=0", "+timeout=5", *args])


@pytest.mark.skipif(shutil.which("kdig") is None, reason="kdig is not installed (knot-dnsutils)")
def test_kdig_sees_ad_and_rrsigs_on_a_secure_answer(stack: Stack) -> None:
    out = kdig("+dnssec", SECURE, "A")
    assert "status: NOERROR" in out, out
    flags = out.split("Flags:", 1)[1].split(";", 1)[0].split()
    assert "ad" in flags, out
    assert re.search(r"^www\.secure\.lab\.\s+\d+\s+IN\s+RRSIG\s+A 13 ", out, re.M), out


@pytest.mark.skipif(shutil.which("kdig") is None, reason="kdig is not installed (knot-dnsutils)")
def test_kdig_sees_servfail_with_the_extended_error_on_a_bogus_answer(stack: Stack) -> None:
    out = kdig("+dnssec", BOGUS, "A")
    assert "status: SERVFAIL" in out, out
    assert f"EDE: {BOGUS_EDE} (DNSSEC Bogus)" in out, out


def delv_anchor(folder: Path) -> Path:
    """The lab's anchor (a DS in zone-file form) as delv reads it: a ``trust-anchors``
    statement with ``static-ds`` (BIND 9.18's named.conf syntax)."""
    lines = []
    for line in lab_trust_anchor().read_text().splitlines():
        fields = line.split(";", 1)[0].split()
        if not fields:
            continue
        owner, rdata_text = fields[0], " ".join(fields[4:])
        ds = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DS, rdata_text)
        digest = ds.digest.hex()  # type: ignore[attr-defined]
        lines.append(
            f'  "{owner}" static-ds {ds.key_tag} {ds.algorithm} {ds.digest_type} "{digest}";'  # type: ignore[attr-defined]
        )
    path = folder / "lab-anchor.conf"
    path.write_text("trust-anchors {\n" + "\n".join(lines) + "\n};\n")
    return path


@pytest.mark.skipif(shutil.which("delv") is None, reason="delv is not installed (bind9-dnsutils)")
def test_delv_validates_a_secure_answer_through_rootwalk(stack: Stack, tmp_path: Path) -> None:
    anchor = delv_anchor(tmp_path)
    args = ["delv", "-a", str(anchor), "+root=.", f"@{SERVER}", "-p", str(RESOLVER_PORT)]
    out = run([*args, SECURE, "A"])
    assert "; fully validated" in out, out
    bogus = run([*args, BOGUS, "A"])
    assert "fully validated" not in bogus, bogus
