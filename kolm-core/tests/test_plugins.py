"""Plugin discovery: entry points, KOLM_LOAD_PLUGINS, and broken plugins reported, not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest
from kolm import plugins

GOOD = '''
from kolm import hookimpl
from kolm.backends import Backend
from kolm.devices import DeviceProfile, Sourced

@hookimpl
def backends():
    return [Backend(name="fakebe", description="fake", tiers={"int4": "Q4"}, toolchain=["json", "no_such_mod"],
                    install="pip install fake")]

@hookimpl
def device_profiles():
    s = Sourced(value=4, source="https://example.org")
    return [DeviceProfile(name="Fake Board", kind="sbc", os="linux", arch="arm64", memory_gb=s,
                          memory_kind="ram", bandwidth_gbps=s, backends=["fakebe"])]
'''


def install_fake_distribution(root: Path, dist: str, module: str, source: str) -> None:
    """Lay out a module and its .dist-info with a `kolm` entry point, as pip would."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[kolm]\n{module} = {module}\n")


@pytest.fixture
def fake_plugins(tmp_path: Path, monkeypatch):
    install_fake_distribution(tmp_path, "kolm-fake", "kolm_fake", GOOD)
    install_fake_distribution(tmp_path, "kolm-broken", "kolm_broken", "raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.registry.cache_clear()
    yield
    plugins.registry.cache_clear()


def test_entry_point_plugins_load_and_broken_ones_are_reported(fake_plugins, monkeypatch):
    monkeypatch.setenv("KOLM_LOAD_PLUGINS", "kolm-fake,kolm-broken")
    reg = plugins.registry()
    rows = {row.name: row for row in reg.describe()}
    assert rows["kolm_fake"].distribution == "kolm-fake" and rows["kolm_fake"].version == "1.2.3"
    assert rows["kolm_fake"].hooks == ["backends", "device_profiles"]
    assert rows["kolm_fake"].toolchain == {"json": True, "no_such_mod": False}
    assert rows["kolm_fake"].install == ["pip install fake"]
    assert rows["kolm_broken"].error == "RuntimeError: boom at import"
    assert reg.devices().find("fake-board").backends == ["fakebe"]


def test_load_plugins_restricts_by_distribution(fake_plugins, monkeypatch):
    monkeypatch.setenv("KOLM_LOAD_PLUGINS", "kolm-broken")
    names = {row.name for row in plugins.registry().describe()}
    assert names == {"kolm.fallback", "kolm_broken"}


def test_empty_load_plugins_loads_only_the_core(fake_plugins, monkeypatch):
    monkeypatch.setenv("KOLM_LOAD_PLUGINS", "")
    assert [row.name for row in plugins.registry().describe()] == ["kolm.fallback"]


def test_rows_for_a_known_device_add_backends(registry):
    from kolm import hookimpl
    from kolm.devices import DeviceProfile, Sourced

    class Extra:
        @hookimpl
        def device_profiles(self):
            s = Sourced(value=99, source="https://example.org")
            return [DeviceProfile(name="test board 4", aliases=["board"], kind="sbc", os="linux", arch="arm64",
                                  memory_gb=s, memory_kind="ram", bandwidth_gbps=s, backends=["other", "testbe"])]

    registry.pm.register(Extra())
    row = registry.devices().find("board")
    assert row.backends == ["testbe", "other"]
    assert row.memory_gb.value == 4  # constants of the first row stay
