"""The files Rootwalk reads and writes at its edge: the root hints, the trust anchors and
the cache file.

The core and the caches are sans-IO (ARCHITECTURE.md, principle 1): they parse text handed to
them (:func:`resolver.core.hints.root_cut_from_hints`, :func:`resolver.cache.persist.restore_caches`)
and render text (:func:`resolver.cache.persist.dump_caches`). Opening, reading, writing and
renaming files happens here, at server start and shutdown (and in the CLI's ``trace`` and
lab checks), where an ``OSError`` becomes the error message the user sees.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import dns.name

from resolver.cache.answer import AnswerCache
from resolver.cache.persist import CacheFileError, dump_caches, restore_caches
from resolver.cache.rrset import RRsetCache
from resolver.core.dnssec.anchor import AnchorError, TrustAnchor, parse_anchors
from resolver.core.hints import HintsError, root_cut_from_hints
from resolver.model import ZoneCut


def load_root_hints(path: Path) -> ZoneCut:
    """Read and parse the root hints file at ``path``; an unreadable file is a
    :class:`HintsError` that names it and says why (``<path>: No such file or directory``)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise HintsError(f"{path}: {exc.strerror}") from exc
    return root_cut_from_hints(text, str(path))


def load_trust_anchors(paths: Sequence[Path]) -> dict[dns.name.Name, TrustAnchor]:
    """Read and parse the trust anchor files (DS or DNSKEY records, RFC 4033 §3.4); an
    unreadable or malformed file is an :class:`AnchorError` naming the setting, the file and
    the line. Anchors of one zone
    from several files are merged."""
    anchors: dict[dns.name.Name, TrustAnchor] = {}
    for path in paths:
        try:
            text = path.read_text()
        except OSError as exc:
            raise AnchorError(f"key 'trust_anchors': {path}: {exc.strerror}") from exc
        for zone, found in parse_anchors(text, f"key 'trust_anchors': {path}").items():
            known = anchors.get(zone)
            if known is not None:
                found = TrustAnchor(zone, known.ds + found.ds, known.dnskeys + found.dnskeys)  # noqa: PLW2901
            anchors[zone] = found
    return anchors


def load_caches(path: Path, answers: AnswerCache, rrsets: RRsetCache, now: float) -> int:
    """Load what is still live from the cache file at ``path``; returns how many entries came
    back. A missing file loads nothing; an unreadable or damaged one raises ValueError naming
    the file (``<path>: cannot load the cache: ...``)."""
    if not path.exists():
        return 0
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot load the cache: {exc}") from exc
    try:
        return restore_caches(text, answers, rrsets, now)
    except CacheFileError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def save_caches(path: Path, answers: AnswerCache, rrsets: RRsetCache, now: float) -> int:
    """Write every live entry to ``path``; returns how many. The text goes to a temporary name
    first and is renamed into place, so a crash mid-write leaves the old file whole.
    Raises OSError when the file cannot be written."""
    text, count = dump_caches(answers, rrsets, now)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
    return count
