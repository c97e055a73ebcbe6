"""``count_verify.py FILE ARGS`` runs ``python -m resolver ARGS`` with its signature verifications counted and timed, for
``cache_benchmark.py --signed``: every call of ``signature.verifies`` (the one place
Rootwalk verifies an RRSIG, ``resolver/core/dnssec/signature.py``) adds one to a count and its
wall time to a sum (the process is pinned to a CPU of its own, so wall time is CPU time; two
``perf_counter`` calls cost ~0.1 us against ~100 us per verification). SIGUSR1 writes
``COUNT SECONDS`` to FILE. (FILE is an argument, not a ``ROOTWALK_`` variable: Rootwalk
refuses variables with its prefix that name no setting.)
"""

from __future__ import annotations

import runpy
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from resolver.core.dnssec import signature

_real = signature.verifies
_totals = [0, 0.0]  # verifications, seconds
_file = Path(sys.argv[1]) if __name__ == "__main__" else Path()


def _counted(*args: Any, **kwargs: Any) -> bool:
    started = time.perf_counter()
    try:
        return _real(*args, **kwargs)
    finally:
        _totals[1] += time.perf_counter() - started
        _totals[0] += 1


def _dump(_signum: int, _frame: FrameType | None) -> None:
    _file.write_text(f"{_totals[0]} {_totals[1]}\n")


if __name__ == "__main__":
    signature.verifies = _counted
    signal.signal(signal.SIGUSR1, _dump)
    sys.argv = ["resolver", *sys.argv[2:]]
    runpy.run_module("resolver", run_name="__main__", alter_sys=True)
