"""The caches as text, for saving at shutdown and loading at start (optional, ``cache_file``).

Entries keep their wall-clock store and expiry times, so TTLs are honoured across the
downtime: an entry that expired while the resolver was stopped is dropped on load. The text
is JSON (byte strings in base64). This module is sans-IO: it turns caches into text and text
back into caches; opening, writing and renaming the file is the edge's work
(``resolver/files.py``).
"""

from __future__ import annotations

import base64
import json
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


class CacheFileError(ValueError):
    """Text that is not a cache file this version wrote; the message says what is wrong
    (the edge puts the file's name in front)."""


def dump_caches(answers: AnswerCache, rrsets: RRsetCache, now: float) -> tuple[str, int]:
    """Every live entry as JSON text, and how many entries it holds."""
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
    text = json.dumps(
        {"format": FORMAT, "saved_at": now, "answers": answer_rows, "rrsets": rrset_rows}
    )
    return text, len(answer_rows) + len(rrset_rows)


def restore_caches(text: str | bytes, answers: AnswerCache, rrsets: RRsetCache, now: float) -> int:
    """Load the entries of ``text`` (as :func:`dump_caches` wrote it) that are still live at
    ``now``; returns how many came back. Damaged text raises :class:`CacheFileError`."""
    try:
        data = json.loads(text)
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
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CacheFileError(f"cannot load the cache: {exc}") from exc
    return loaded
