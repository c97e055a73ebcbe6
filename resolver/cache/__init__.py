"""Caches split by purpose (as Unbound's msg/rrset/infra caches): whole answers as wire
bytes for the hot path, RRsets ranked by trust, negative answers, and per-server facts.

All are sans-IO: they take ``now`` (wall-clock seconds) and never read a clock.
"""
