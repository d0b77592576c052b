"""One BLAS thread for query work (retrieve, compose, a query's forward pass).

A query's linear algebra is small: a 10 × 150 matrix product, a scan of 100K vectors, a MiniLM
forward pass over a few dozen tokens. On a multi-threaded BLAS under load (the WebUI's sampler,
other processes) waking the BLAS threads costs more than the work: a 10 × 384 by 384 × 150
product took 1.7–4.6 ms with OpenBLAS's two threads at load 4 and 0.16 ms on one thread
(performance issue). So query work runs with BLAS limited to one thread.

The limit is process-wide (that is how BLAS libraries work). The thread that sets it restores the
previous setting when it leaves its outermost block; threads that enter meanwhile (a composer's
worker thread) share the limit and change nothing. (OpenBLAS 0.3.31 takes a count back only from
the thread that set it, and once the main thread has set one, other threads cannot change it: then
this does nothing, which is safe.) The host application's own NumPy work gets its threads back after each query.
Without ``threadpoolctl`` it does nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"owner": None, "depth": 0, "limiter": None, "controller": None}


def _controller() -> Any:
    """threadpoolctl's controller (created once: it inspects the loaded libraries), or False."""
    if _STATE["controller"] is None:
        try:
            from threadpoolctl import ThreadpoolController

            _STATE["controller"] = ThreadpoolController()
        except Exception:  # noqa: BLE001 - not installed, or a library it cannot read: no limit
            _STATE["controller"] = False
    return _STATE["controller"]


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the body with BLAS on one thread (re-entrant, safe across threads; see the module)."""
    me = threading.get_ident()
    with _LOCK:
        mine = _STATE["owner"] in (None, me)
        if mine:
            if _STATE["owner"] is None:
                controller = _controller()
                _STATE["limiter"] = controller.limit(limits=1, user_api="blas") if controller else None
                _STATE["owner"] = me
            _STATE["depth"] += 1
    try:
        yield
    finally:
        if mine:
            with _LOCK:
                _STATE["depth"] -= 1
                if _STATE["depth"] == 0:
                    if _STATE["limiter"] is not None:
                        _STATE["limiter"].restore_original_limits()
                    _STATE["owner"] = _STATE["limiter"] = None
