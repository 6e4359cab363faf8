"""Shared fixtures.

Tests that need the real recordings use the ``shared_data`` fixture. Outside CI they skip
when ``../shared/data`` is absent; when the ``CI`` environment variable is set they FAIL
instead, so a missing data folder can never pass silently in CI.
"""
from __future__ import annotations

import os

import pytest

from cortexfit.datasets.paths import shared_data_dir
from cortexfit.exceptions import DataError


def pytest_configure(config):
    """Under pytest-xdist (``make test``: 2 workers on 2 cores) each worker runs numba on one
    thread: 2 workers x 2 threads would oversubscribe the cores, and the parallel RLS
    kernel's barrier per update then waits for descheduled threads (with the parallel kernel
    on small networks, test_fit.py took 90 s instead of 34 s; see rls.PARALLEL_MIN_BYTES).
    The test that needs 2 threads sets them itself."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import numba

        numba.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data():
    try:
        return shared_data_dir()
    except DataError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the shared data is missing: {exc}")
        pytest.skip(f"shared data not available: {exc}")


@pytest.fixture(scope="session")
def alm_nwb_paths(shared_data):
    folder = shared_data / "alm_economo2018_nwb"
    paths = sorted(folder.glob("*.nwb"))
    if len(paths) != 2:
        pytest.fail(f"expected 2 ALM NWB files in {folder}, found {len(paths)}")
    return paths
