"""The pytest plugin of kolm-testing (entry point `pytest11`): fixtures every kolm test session gets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private KOLM_HOME (bench and K logs) and HF_HOME (hub cache, offline) for the session and
    every subprocess it starts, so tests never touch the user's."""
    home = tmp_path_factory.mktemp("homes")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KOLM_HOME", str(home / "kolm"))
        mp.setenv("HF_HOME", str(home / "hf"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield home / "kolm"
