"""Several CPU cores for one classifier: one onnxruntime session, N calls at once, one thread each.

On CPU the edge runs every text alone (edge/classifier.py), so a thread count is spent on calls, not inside
them: the session has one intra-op thread and `Workers(N)` runs N calls at once from N Python threads
(onnxruntime releases the GIL while a call runs, and a session may be run from several threads). One
session means one copy of the weights whatever N is, and every call runs exactly as it does with N = 1, so
results are bit-identical at every thread count. Measured against intra-op threads and one session per
core in bench/test_scaling.py (numbers in bench/RESULTS.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

T = TypeVar("T")


def _each(fn: Callable[[T], None], items: Sequence[T]) -> None:
    """fn(item) for every item, in order."""
    for item in items:
        fn(item)


class Workers:
    """Runs fn over a list of items on `n` threads (the caller's thread only, when n is 1)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0  # the process that started the pool: a forked child has none of its threads

    def each(self, fn: Callable[[T], None], items: Sequence[T]) -> None:
        """fn(item) for every item; worker k takes items k, k+n, k+2n, ... (a length-sorted list splits
        into even shares). Returns when all are done, then raises the first worker's error, if any."""
        if self.n == 1 or len(items) < 2:
            _each(fn, items)
            return
        if self._pool is None or self._pid != os.getpid():
            from concurrent.futures import ThreadPoolExecutor  # (imports logging: not on a 1-text start)

            self._pool = ThreadPoolExecutor(self.n, thread_name_prefix="llm2edge-worker")
            self._pid = os.getpid()
        futures = [self._pool.submit(_each, fn, items[k::self.n]) for k in range(min(self.n, len(items)))]
        errors = [future.exception() for future in futures]  # waits for every worker
        first = next((exc for exc in errors if exc is not None), None)
        if first is not None:
            raise first

    def close(self) -> None:
        """Stop the worker threads (a later `each` starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
