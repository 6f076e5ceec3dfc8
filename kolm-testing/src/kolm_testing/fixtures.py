"""The pytest plugin of kolm-testing (entry point `pytest11`): fixtures every kolm test session gets."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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


@pytest.fixture(scope="module")
def own_kolm_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A KOLM_HOME of the module's own (`pytestmark = pytest.mark.usefixtures("own_kolm_home")`), for
    modules that pack and export models other than the session's SmolLM2: kolm's caches keep one
    model (the fp16 reference per backend, Core ML's converted package), so without it a family
    module run between SmolLM2's pack and its exports (pytest-randomly picks the module order)
    evicts SmolLM2's and the next SmolLM2 export converts it again (100 s for Core ML on 2 cores)."""
    home = tmp_path_factory.mktemp("module-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KOLM_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def chromium():
    """Headless Debian Chromium through Playwright (no `playwright install`)."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("headless Chromium is missing: apt-get install -y chromium (tests marked requires_browser need it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install playwright (Chromium comes from apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
