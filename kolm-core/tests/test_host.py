"""This machine as a device: its profile read from the OS, the claims it contradicts, and which
logged runs a forecast may show as measured."""

from __future__ import annotations

import json
import os
import socket

import pytest
from kolm.datamodel import utc_now
from kolm.history import BenchEntry
from kolm.host import HostProfile, contradiction, profile_host
from kolm_testing import device_row, invoke

HOST = HostProfile(
    hostname="box",
    os="linux",
    arch="x86_64",
    cpu="Test CPU",
    cores=8,
    memory_gb=16.4,
    kind="desktop",
    bandwidth_gbps=40.0,
    bandwidth_method="measured: test",
    profiled_at="2026-11-28T00:00:00Z",
)


def test_the_profile_is_read_from_this_machine():
    host = profile_host()
    assert host.hostname == (socket.gethostname() or "localhost") and host.cores == os.cpu_count()
    assert host.os and host.arch and host.cpu and host.memory_gb > 0
    assert host.bandwidth_gbps > 0 and host.bandwidth_method.startswith(f"measured: {os.cpu_count()} processes")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"arch": "arm64"}, "this machine is x86_64, Row is arm64"),
        ({"os": "macos"}, "this machine runs linux, Row runs macos"),
        ({"memory_gb": 8, "memory_options_gb": [4]}, "this machine has 16.4 GB of memory, Row has 4, 8 GB"),
        ({"kind": "desktop-gpu", "memory_kind": "vram"}, "Row has a GPU and this machine has none"),
        ({}, None),
        ({"memory_gb": 8, "memory_options_gb": [16]}, None),  # one of the sizes it is sold with
        ({"os": "android"}, None),  # Linux underneath
        ({"os": "browser", "arch": "wasm32", "memory_gb": 4}, None),  # a browser runs anywhere
    ],
)
def test_what_this_machine_contradicts(fields, reason):
    assert contradiction(HOST, device_row(**fields)) == reason


@pytest.fixture
def this_box(table, monkeypatch):
    """The table registry, with this machine profiled as HOST (what the OS says is tested above)."""
    monkeypatch.setattr("kolm.host.profile_host", lambda: HOST)
    return table


def test_a_bench_logged_as_a_contradicted_device_is_refused_before_measuring(this_box, exported, tmp_path):
    result = invoke("bench", exported("int8"), "--device", "tb4")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "kolm: error: this machine is not a Test Board 4 (this machine is x86_64, Test Board 4 is arm64): bench it "
        "as itself (leave out --device), or pass --trust-device to log it as Test Board 4 anyway"
    )
    assert not (tmp_path / "home" / "bench.jsonl").exists()


def log_bench(device_name: str, host: HostProfile | None, trusted: bool = False) -> None:
    from kolm import history
    from kolm.api import BenchResult, Rate

    rate = Rate(mean=123.0, sd=1.0, samples=[122.0, 124.0])
    result = BenchResult(runtime="test", pp=rate, tg=rate, load_s=0.1, peak_rss_bytes=1, n_prompt=8, n_gen=8, threads=1)
    entry = BenchEntry(
        device=device_name,
        model="tiny-llama",
        tier="int8",
        backend="table",
        payload_sha256="0" * 64,
        result=result,
        measured_at=utc_now(),
        kolm="test",
        host=host,
        trusted_claim=trusted,
    )
    history.append("bench", entry)


@pytest.mark.parametrize(
    ("host", "trusted", "measured"),
    [
        (None, False, False),  # an older line: nothing says where it ran
        (HOST.model_copy(update={"arch": "arm64"}), False, False),  # a machine that cannot be it
        (HOST.model_copy(update={"arch": "arm64"}), True, True),  # the user's word, recorded
        (HOST, False, True),
    ],
)
def test_a_forecast_shows_only_runs_from_a_machine_that_could_be_the_device(this_box, packed, host, trusted, measured):
    log_bench("Test Table Box", host, trusted)
    preview = invoke("export", packed, "--target", "ttb", "--quant", "int8", "--preview", "--json")
    assert (json.loads(preview.stdout)["tok_s"]["method"] == "measured") is measured


def test_devices_here_profiles_this_machine_into_a_row_forecasts_use(this_box, packed):
    """No backend here benches, so the row has none to offer: one line, not a traceback."""
    refused = invoke("devices", "--here")
    assert refused.exit_code == 2
    assert refused.stderr.strip().endswith("no installed backend can run on this machine (pip install kolm-gguf)")


def test_a_shipped_row_cannot_claim_to_be_measured():
    from kolm.plugin_data import DeviceRows

    row = device_row(bandwidth_gbps={"value": 50, "source": "kolm:measured"}).model_dump(mode="json")
    with pytest.raises(ValueError, match="a shipped row cites a public URL"):
        DeviceRows.model_validate({"devices": [row]})


def test_a_decode_rate_the_memory_could_not_feed_is_not_logged():
    from kolm.bench import check_ceiling
    from kolm.errors import BackendError

    box = device_row(bandwidth_gbps=10)  # 10 GB/s over 1 GB a token: 10 tok/s at most
    check_ceiling(14.9, box, 1_000_000_000)  # within the margin (cache, a copy-measured bandwidth)
    with pytest.raises(BackendError, match=r"measured 30\.0 tok/s is 3\.0x the bandwidth ceiling of Row"):
        check_ceiling(30.0, box, 1_000_000_000)
