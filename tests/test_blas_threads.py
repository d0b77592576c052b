"""sdk.single_blas_thread: one BLAS thread while any query runs, the host's setting back after."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from stylus_ext import sdk

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads() -> list[int]:
    """Thread counts of NumPy's own BLAS (torch may bring another, which query work never uses)."""
    return [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
            if lib["user_api"] == "blas" and "numpy" in lib["filepath"]]


def test_limit_is_shared_with_worker_threads_and_restored_by_its_setter():
    if not blas_threads():
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl here")
    with threadpoolctl.threadpool_limits(2, "blas"):
        host = blas_threads()
        seen: list[list[int]] = []

        def worker() -> None:  # a composer's worker thread inside the caller's block
            with sdk.single_blas_thread():
                seen.append(blas_threads())
                np.ones((8, 8)) @ np.ones((8, 8))

        with sdk.single_blas_thread():
            assert set(blas_threads()) == {1}
            with sdk.single_blas_thread():  # re-entrant
                assert set(blas_threads()) == {1}
            assert set(blas_threads()) == {1}
            t = threading.Thread(target=worker)
            t.start()
            t.join(10)
            assert seen and set(seen[0]) == {1} and set(blas_threads()) == {1}  # the worker changed nothing
        assert blas_threads() == host  # restored when its setter left


def test_an_error_in_the_body_still_restores():
    if not blas_threads():
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl here")
    with threadpoolctl.threadpool_limits(2, "blas"):
        host = blas_threads()
        with pytest.raises(ValueError), sdk.single_blas_thread():
            raise ValueError("boom")
        assert blas_threads() == host
