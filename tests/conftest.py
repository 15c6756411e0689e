"""Shared fixtures: tiny generated rasters in temporary folders; real data located but optional."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# One OpenMP thread: the tests use tiny models, for which a second thread costs more in
# synchronisation than it gains (measured up to 25x slower on a loaded 2-core machine).
os.environ.setdefault("OMP_NUM_THREADS", "1")

# No per-example deadline anywhere: CI machines are shared and noisy, and no property test here
# is about speed (a slow example would otherwise fail as "DeadlineExceeded").
settings.register_profile("landslip", deadline=None)
settings.load_profile("landslip")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """Run torch on one intra-op thread for the whole session (see OMP_NUM_THREADS above)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder ../shared/data; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (see ../shared/data/README.md)")
    return SHARED_DATA
