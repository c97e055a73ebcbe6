"""The edge reads and writes files; the core and caches only parse and render text.

``resolver/files.py`` opens the root hints and the cache file and turns an ``OSError`` into
the message a user sees; ``core/hints.py`` and ``cache/persist.py`` never touch a file.
"""

from __future__ import annotations

import re
from pathlib import Path

import dns.message
import dns.rrset
import pytest

from resolver.cache.answer import AnswerCache
from resolver.cache.persist import CacheFileError, dump_caches, restore_caches
from resolver.cache.rrset import Rank, RRsetCache
from resolver.core.hints import HintsError
from resolver.files import load_caches, load_root_hints, save_caches
from resolver.records import WireRRset
from resolver.wire import read_fast_query

NOW = 1_000_000.0


def store_answer(answers: AnswerCache, qname: str, ttl: int, stored_at: float) -> None:
    query = dns.message.make_query(qname, "A")
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text(qname, ttl, "IN", "A", "127.0.0.1"))
    fast = read_fast_query(query.to_wire())
    assert fast is not None
    assert answers.store(fast.key, reply.to_wire(), fast.question_end, stored_at)


def filled_caches() -> tuple[AnswerCache, RRsetCache]:
    answers = AnswerCache(1 << 20)
    store_answer(answers, "live.example.lab.", 60, NOW - 10)
    store_answer(answers, "expired.example.lab.", 5, NOW - 100)
    rrsets = RRsetCache(1 << 20)
    a = dns.rrset.from_text("ns1.lab.", 300, "IN", "A", "127.53.1.1")
    rrsets.put(WireRRset.from_rrset(a), Rank.ANSWER, NOW - 5)
    return answers, rrsets


def test_caches_round_trip_through_text_without_a_file() -> None:
    answers, rrsets = filled_caches()
    text, count = dump_caches(answers, rrsets, NOW)
    assert count == 2  # the expired answer is not written
    fresh_answers, fresh_rrsets = AnswerCache(1 << 20), RRsetCache(1 << 20)
    assert restore_caches(text, fresh_answers, fresh_rrsets, NOW) == 2
    assert fresh_answers.export(NOW) == answers.export(NOW)
    assert fresh_rrsets.export(NOW) == rrsets.export(NOW)
    # Entries that expired while the resolver was stopped are dropped on load.
    assert restore_caches(text, AnswerCache(1 << 20), RRsetCache(1 << 20), NOW + 400) == 0


@pytest.mark.parametrize(
    "text", ["{not json", "[]", '{"format": "other"}', '{"format": "rootwalk-cache-1"}', "\xff"]
)
def test_damaged_cache_text_is_a_cache_file_error(text: str) -> None:
    with pytest.raises(CacheFileError, match=r"^cannot load the cache: "):
        restore_caches(text, AnswerCache(1 << 20), RRsetCache(1 << 20), NOW)


def test_the_cache_file_is_saved_and_loaded_at_the_edge(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    answers, rrsets = filled_caches()
    assert save_caches(path, answers, rrsets, NOW) == 2
    assert not path.with_name("cache.json.tmp").exists()
    fresh_answers, fresh_rrsets = AnswerCache(1 << 20), RRsetCache(1 << 20)
    assert load_caches(path, fresh_answers, fresh_rrsets, NOW) == 2
    assert fresh_rrsets.export(NOW) == rrsets.export(NOW)


def test_a_missing_cache_file_loads_nothing_and_a_damaged_one_names_itself(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cache.json"
    assert load_caches(path, AnswerCache(1 << 20), RRsetCache(1 << 20), NOW) == 0
    path.write_text("{not json")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: cannot load the cache: "):
        load_caches(path, AnswerCache(1 << 20), RRsetCache(1 << 20), NOW)
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(ValueError, match=rf"^{re.escape(str(directory))}: cannot load the cache: "):
        load_caches(directory, AnswerCache(1 << 20), RRsetCache(1 << 20), NOW)


def test_an_unreadable_hints_file_is_a_hints_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "root.hints"
    with pytest.raises(
        HintsError, match=rf"^{re.escape(str(missing))}: No such file or directory$"
    ):
        load_root_hints(missing)
    missing.write_text(". 3600 NS a.root.lab.\n")
    with pytest.raises(
        HintsError, match=rf"^{re.escape(str(missing))}: no addresses for any root server$"
    ):
        load_root_hints(missing)
