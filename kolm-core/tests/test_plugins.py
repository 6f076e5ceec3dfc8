"""Plugin discovery and backend ownership: entry points, KOLM_LOAD_PLUGINS, plugins refused in one
line naming their distribution (import errors, misspelled hooks, backend hooks without a backend,
bad data files), a backend declared twice, and answers checked against the contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kolm import hookimpl, plugins
from kolm.api import Backend, ExportRequest, RunRequest
from kolm.errors import BackendError, PluginError

GOOD = """
from kolm import hookimpl
from kolm.api import Backend, DeviceProfile, Sourced

@hookimpl
def backend():
    return Backend(name="fakebe", description="fake", tiers={"int4": "Q4"}, toolchain=["json", "no_such_mod"],
                   install="pip install fake")

@hookimpl
def device_profiles():
    s = Sourced(value=4, source="https://example.org")
    return [DeviceProfile(name="Fake Board", kind="sbc", os="linux", arch="arm64", memory_gb=s,
                          memory_kind="ram", bandwidth_gbps=s, backends=["fakebe"])]
"""


def install_fake_distribution(
    root: Path, dist: str, module: str, source: str, files: dict[str, str] | None = None, version: str = "1.2.3"
) -> None:
    """Lay out a module (a package when it ships data `files`) and its .dist-info with a `kolm`
    entry point, as pip would."""
    if files is None:
        (root / f"{module}.py").write_text(source)
    else:
        (root / module).mkdir()
        (root / module / "__init__.py").write_text(source)
        for name, text in files.items():
            (root / module / name).write_text(text)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[kolm]\n{module} = {module}\n")


@pytest.fixture
def install(tmp_path: Path, monkeypatch):
    """install(dist, module, source, ...): a fake distribution on sys.path, and the only ones
    KOLM_LOAD_PLUGINS loads (whatever else the environment holds); the registry reloads afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    installed: list[str] = []

    def install_one(
        dist: str, module: str, source: str, files: dict[str, str] | None = None, version: str = "1.2.3"
    ) -> None:
        install_fake_distribution(tmp_path, dist, module, source, files, version)
        installed.append(dist)
        monkeypatch.setenv("KOLM_LOAD_PLUGINS", ",".join(installed))

    plugins.registry.cache_clear()
    yield install_one
    plugins.registry.cache_clear()


def rows(reg: plugins.Registry) -> dict[str, plugins.PluginInfo]:
    return {row.name: row for row in reg.describe()}


def test_entry_point_plugins_load_and_broken_ones_are_reported(install):
    install("kolm-fake", "kolm_fake", GOOD)
    install("kolm-broken", "kolm_broken", "raise RuntimeError('boom at import')\n")
    reg = plugins.registry()
    found = rows(reg)
    assert found["kolm_fake"].distribution == "kolm-fake" and found["kolm_fake"].version == "1.2.3"
    assert found["kolm_fake"].hooks == ["backend", "device_profiles"] and found["kolm_fake"].backend == "fakebe"
    assert found["kolm_fake"].toolchain == {"json": True, "no_such_mod": False}
    assert found["kolm_fake"].install == "pip install fake"
    assert found["kolm_broken"].error == "RuntimeError: boom at import"
    assert reg.problems == ["plugin kolm_broken (kolm-broken 1.2.3) skipped: RuntimeError: boom at import"]
    assert set(found) == {"kolm_fake", "kolm_broken"}
    assert reg.devices().find("fake-board").backends == ["fakebe"]


def test_every_command_warns_about_a_refused_plugin_and_goes_on(install):
    from kolm_testing import invoke

    install("kolm-fake", "kolm_fake", GOOD)
    install("kolm-broken", "kolm_broken", "raise RuntimeError('boom at import')\n")
    result = invoke("devices", "--json")
    assert result.exit_code == 0 and [row["name"] for row in json.loads(result.stdout)] == ["Fake Board"]
    assert (
        result.stderr == "kolm: warning: plugin kolm_broken (kolm-broken 1.2.3) skipped: RuntimeError: boom at import\n"
    )


def test_load_plugins_restricts_by_distribution(install, monkeypatch):
    install("kolm-fake", "kolm_fake", GOOD)
    install("kolm-broken", "kolm_broken", "raise RuntimeError('boom at import')\n")
    monkeypatch.setenv("KOLM_LOAD_PLUGINS", "kolm-broken")
    assert set(rows(plugins.registry())) == {"kolm_broken"}
    plugins.registry.cache_clear()
    monkeypatch.setenv("KOLM_LOAD_PLUGINS", "")
    assert plugins.registry().describe() == []


def test_a_misspelled_hook_refuses_the_plugin_and_names_the_right_one(install):
    install("kolm-typo", "kolm_typo", GOOD.replace("def device_profiles", "def device_profile"))
    reg = plugins.registry()
    assert rows(reg)["kolm_typo"].error == (
        "hook implementation `device_profile` matches no kolm hook; did you mean `device_profiles`?"
    )
    assert reg.backends() == {} and reg.devices().rows == []


def test_a_hook_with_an_unknown_argument_is_refused_in_one_line(install):
    install("kolm-args", "kolm_args", GOOD + "\n@hookimpl\ndef export(request, backend_name):\n    return None\n")
    error = rows(plugins.registry())["kolm_args"].error
    assert "backend_name" in error and "\n" not in error


def test_backend_hooks_without_a_backend_are_refused(install):
    source = "from kolm import hookimpl\n\n@hookimpl\ndef export(request):\n    return None\n"
    install("kolm-orphan", "kolm_orphan", source)
    assert rows(plugins.registry())["kolm_orphan"].error == (
        "implements backend hooks (export) but declares no backend (the `backend` hook)"
    )


def test_a_backend_hook_answering_nothing_is_refused(install):
    source = "from kolm import hookimpl\n\n@hookimpl\ndef backend():\n    return None\n"
    install("kolm-mute", "kolm_mute", source)
    assert rows(plugins.registry())["kolm_mute"].error == (
        "its `backend` hook returned nothing, not a kolm.api.Backend"
    )


def test_a_backend_declared_twice_is_used_by_neither(install):
    install("kolm-fake", "kolm_fake", GOOD)
    install("kolm-fake-fork", "kolm_fake_fork", GOOD.replace("Fake Board", "Fork Board"), version="9.0")
    reg = plugins.registry()
    conflict = (
        "backend fakebe is declared by both kolm-fake 1.2.3 and kolm-fake-fork 9.0; uninstall one, or "
        "choose with KOLM_LOAD_PLUGINS"
    )
    with pytest.raises(PluginError) as refused:
        reg.backend("fakebe")
    assert str(refused.value) == conflict
    assert reg.problems == [conflict] and "fakebe" not in reg.backends()
    assert {row.error for row in reg.describe()} == {conflict}


def test_a_data_file_that_does_not_validate_names_file_and_field(install):
    source = (
        "from kolm.plugin_data import PluginData\n_data = PluginData(__name__)\n"
        "backend, device_profiles = _data.backend, _data.device_profiles\n"
    )
    declared = {"name": "npu", "description": "d", "tiers": {"int4": "w4"}, "install": "-", "toolchain": []}
    bad_tier = {**declared, "tiers": {"int5": "w5"}}
    install("kolm-bad", "kolm_bad", source, {"backend.json": json.dumps(bad_tier), "devices.json": '{"devices": []}'})
    install(
        "kolm-typo-key",
        "kolm_typo_key",
        source,
        {"backend.json": json.dumps(declared), "devices.json": '{"device": []}'},
    )
    reg = plugins.registry()
    error = rows(reg)["kolm_bad"].error
    assert error.startswith("kolm_bad/backend.json: tiers.int5.[key]: Input should be 'fp16', 'int8', 'int4'")
    with pytest.raises(PluginError, match=r"^kolm_typo_key/devices.json: devices: Field required \(and 1 more\)$"):
        reg.devices()


class Recorder:
    """A backend plugin written as a class: it records the calls it gets and answers from `answers`."""

    def __init__(self, name: str, answers: dict, builds_on: str | None = None) -> None:
        self.name, self.answers, self.builds_on, self.calls = name, answers, builds_on, []

    @hookimpl
    def backend(self):
        tiers = {} if self.builds_on else {"fp16": "F", "int4": "Q"}
        return Backend(name=self.name, description="-", tiers=tiers, builds_on=self.builds_on, install="-")

    @hookimpl
    def export(self, request, base):
        self.calls.append(("export", base))
        return self.answers.get("export")

    @hookimpl
    def run(self, request):
        self.calls.append(("run", None))
        return self.answers.get("run")


def export_request(tmp_path: Path) -> ExportRequest:
    from kolm.api import TierRecipe
    from kolm.manifest import EvalPackRef, Manifest

    manifest = Manifest(
        base="m",
        arch="LlamaForCausalLM",
        params=1,
        quant="fp16",
        created_by="t",
        license="-",
        eval_pack=EvalPackRef(path="eval/pack.jsonl", sha256="0" * 64, items=1),
        payload=[],
    )
    return ExportRequest(
        manifest=manifest,
        model_dir=tmp_path,
        tier="int4",
        recipe=TierRecipe(spelling="Q"),
        device=None,
        out_dir=tmp_path,
        work_dir=tmp_path,
    )


def test_only_the_owner_answers_and_nothing_is_not_an_answer(tmp_path: Path):
    reg = plugins.Registry()
    mine, other = Recorder("mine", {}), Recorder("other", {})
    assert reg.add(mine, "mine", "kolm-mine", "1.0") and reg.add(other, "other", "kolm-other", "2.0")
    with pytest.raises(
        PluginError,
        match=r"^kolm-mine 1.0: hook `export` of backend mine returned nothing, "
        r"not a ExportResult$",
    ):
        reg.backend("mine").export(export_request(tmp_path))
    assert mine.calls == [("export", None)] and other.calls == []
    with pytest.raises(PluginError, match="hook `run` of backend mine returned a str, not a Session"):
        mine.answers["run"] = "a session, honestly"
        reg.backend("mine").run(RunRequest(path=tmp_path, payload=["x"]))


def test_a_backend_builds_on_another_and_reaches_it_as_base():
    reg = plugins.Registry()
    gguf, wasm = Recorder("base-be", {}), Recorder("on-top", {}, builds_on="base-be")
    assert reg.add(wasm, "wasm", "kolm-on-top", "1.0") and reg.add(gguf, "gguf", "kolm-base", "1.0")
    on_top = reg.backend("on-top")
    assert on_top.base is reg.backend("base-be") and on_top.tiers == reg.backend("base-be").tiers
    assert on_top.recipe("int4").spelling == "Q"


def test_a_backend_whose_base_is_missing_says_so():
    reg = plugins.Registry()
    assert reg.add(Recorder("on-top", {}, builds_on="gone"), "wasm", "kolm-on-top", "1.0")
    with pytest.raises(
        BackendError,
        match="^backend on-top builds on gone, which is unusable: backend gone is not "
        "installed; pip install kolm-gone$",
    ):
        reg.backend("on-top")


def test_a_forecast_only_backend_refuses_to_export_before_any_work():
    reg = plugins.Registry()

    class ForecastOnly:
        @hookimpl
        def backend(self):
            return Backend(name="npu", description="-", tiers={"int8": "w8"}, install="-")

    assert reg.add(ForecastOnly(), "npu", "kolm-npu", "0.3")
    npu = reg.backend("npu")
    assert not npu.can_export
    with pytest.raises(
        BackendError,
        match=r"^backend npu cannot export: kolm-npu 0.3 does not implement `export` "
        r"\(forecasts only\)$",
    ):
        npu.refuse_missing("export", "export")


def test_rows_for_a_known_device_add_backends(registry):
    from kolm.api import DeviceProfile, Sourced

    class Extra:
        @hookimpl
        def device_profiles(self):
            s = Sourced(value=99, source="https://example.org")
            return [
                DeviceProfile(
                    name="test board 4",
                    aliases=["board"],
                    kind="sbc",
                    os="linux",
                    arch="arm64",
                    memory_gb=s,
                    memory_kind="ram",
                    bandwidth_gbps=s,
                    backends=["other", "testbe"],
                )
            ]

    assert registry.add(Extra(), "extra", "kolm-extra", "0.1")
    row = registry.devices().find("board")
    assert row.backends == ["testbe", "other"]
    assert row.memory_gb.value == 4  # constants of the first row stay


def test_a_backend_joins_the_rows_it_declares_it_runs_on(registry):
    class Runner:
        @hookimpl
        def backend(self):
            return Backend(
                name="runner",
                description="runs on another plugin's board",
                tiers={"fp16": "F16"},
                install="-",
                runs_on=["Test Board 4", "a board nobody has"],
            )

    assert registry.add(Runner(), "runner", "kolm-runner", "0.1")
    table = registry.devices()
    assert table.find("test-board-4").backends == ["testbe", "runner"]  # after the row's own
    assert [row.name for row in table.rows if "runner" in row.backends] == ["Test Board 4"]
