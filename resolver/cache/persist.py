"""Saving the caches at shutdown and loading them at start (optional, ``cache_file``).

Entries keep their wall-clock store and expiry times, so TTLs are honoured across the
downtime: an entry that expired while the resolver was stopped is dropped on load. The file
is JSON (byte strings in base64), written to a temporary name and renamed into place.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from resolver.cache.answer import AnswerCache
from resolver.cache.rrset import RRsetCache

FORMAT = "rootwalk-cache-1"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _bytes(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    return base64.b64decode(text, validate=True)


def save_caches(path: Path, answers: AnswerCache, rrsets: RRsetCache, now: float) -> int:
    """Write every live entry; returns how many."""
    answer_rows = [
        {"key": _b64(key), "wire": _b64(wire), "stored_at": stored_at, "expires_at": expires_at}
        for key, wire, stored_at, expires_at in answers.export(now)
    ]
    rrset_rows = [
        {
            "key": _b64(key),
            "rdatas": [_b64(rdata) for rdata in rdatas],
            "stored_at": stored_at,
            "ttl": ttl,
            "rank": rank,
        }
        for key, rdatas, stored_at, ttl, rank in rrsets.export(now)
    ]
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(
        json.dumps(
            {"format": FORMAT, "saved_at": now, "answers": answer_rows, "rrsets": rrset_rows}
        )
    )
    os.replace(temporary, path)
    return len(answer_rows) + len(rrset_rows)


def load_caches(path: Path, answers: AnswerCache, rrsets: RRsetCache, now: float) -> int:
    """Load what is still live; returns how many entries came back. A missing file loads
    nothing; a damaged one raises ValueError naming the file."""
    if not path.exists():
        return 0
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        loaded = 0
        for row in data["answers"]:
            if float(row["expires_at"]) > now:
                answers.restore(
                    _bytes(row["key"]),
                    _bytes(row["wire"]),
                    float(row["stored_at"]),
                    float(row["expires_at"]),
                )
                loaded += 1
        for row in data["rrsets"]:
            if float(row["stored_at"]) + int(row["ttl"]) > now:
                rdatas = [_bytes(d) for d in row["rdatas"]]
                rrsets.restore(
                    _bytes(row["key"]),
                    rdatas,
                    float(row["stored_at"]),
                    int(row["ttl"]),
                    int(row["rank"]),
                )
                loaded += 1
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot load the cache: {exc}") from exc
    return loaded
