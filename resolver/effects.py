"""What the mesh asks its driver to do (:class:`resolver.mesh.Mesh` returns these; the
driver performs them): send a query upstream, hand clients their result, or tell a client
that its serve-stale wait passed."""

from __future__ import annotations

from typing import NamedTuple

from resolver.core.events import SendQuery
from resolver.model import Result


class Transmit(NamedTuple):
    """Send ``query`` upstream for job ``job_id``."""

    job_id: int
    query: SendQuery


class Completed(NamedTuple):
    """``waiters`` of job ``job_id`` have their result: the job's, or SERVFAIL (Extended DNS
    Error 22) for one whose deadline passed first."""

    job_id: int
    result: Result
    waiters: tuple[int, ...]


class StaleDue(NamedTuple):
    """``waiter`` of job ``job_id`` asked for serve-stale and its wait passed with no result
    yet (RFC 8767 §5): answer it the stale entry now. It keeps waiting for the result, which
    refreshes the cache."""

    job_id: int
    waiter: int


Effect = Transmit | Completed | StaleDue
