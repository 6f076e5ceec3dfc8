"""Hypothesis helpers for fuzzing kolm's readers of untrusted bytes (kolm-core's and each plugin's).

Property everywhere: a `KolmError` with a one-line message, never another exception. Each test
tries KOLM_FUZZ_EXAMPLES inputs (1,000 by default; docs/reliability.md gives the long run's
count). Importing this module needs `hypothesis` (in the tox envs that fuzz).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kolm.api import PayloadFacts
from kolm.errors import KolmError
from kolm.plugins import registry

EXAMPLES = int(os.environ.get("KOLM_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same inputs on every machine and run: a failure reproduces
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def one_line(exc: KolmError) -> None:
    assert str(exc) and "\n" not in str(exc), repr(exc)


def mutated(seed: bytes, within: int | None = None) -> st.SearchStrategy[bytes]:
    """The seed truncated, with bytes flipped, with bytes spliced in, or bytes from nowhere. Flips
    and splices land in the first `within` bytes (all of them by default): a file's header, where
    its reader looks, rather than its tensor data."""
    reach = len(seed) if within is None else min(within, len(seed))
    flips = st.lists(st.tuples(st.integers(0, reach - 1), st.integers(1, 255)), min_size=1, max_size=8)
    return st.one_of(
        st.integers(0, len(seed)).map(lambda n: seed[:n]),
        flips.map(lambda fs: _flip(seed, fs)),
        st.tuples(st.integers(0, reach), st.binary(max_size=64)).map(lambda t: seed[: t[0]] + t[1] + seed[t[0] :]),
        st.binary(max_size=512),
    )


def _flip(seed: bytes, flips: list[tuple[int, int]]) -> bytes:
    data = bytearray(seed)
    for at, mask in flips:
        data[at] ^= mask
    return bytes(data)


def read_damaged_payload(backend: str, export: Path, work: Path, damaged: dict[str, bytes]) -> PayloadFacts | None:
    """`backend`'s payload reader (`kolm verify`'s first step) on a copy of `export` whose files
    named in `damaged` (paths relative to the export) hold the given bytes instead, the others hard
    links to the originals (nothing copied; a reader that resolves paths sees one folder): the facts
    it reads, or None when it refused in one line. Anything but a `KolmError` fails the test."""
    from kolm.record import load_record, run_request

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for source in sorted(export.rglob("*")):
        name = source.relative_to(export).as_posix()
        target = work / name
        if source.is_dir():
            target.mkdir(parents=True)
        elif name in damaged:
            target.write_bytes(damaged[name])
        else:
            os.link(source, target)
    try:
        return registry().backend(backend).read_payload(run_request(*load_record(work)))
    except KolmError as exc:
        one_line(exc)
        return None


def tiny_export(root: Path, backend: str, device: str, tier: str) -> Path:
    """A random-weight Mistral of kolm_testing's tiny size (SentencePiece, vocabulary 1,024: a
    payload of a few MB) packed and exported to `backend` without K scoring, as root/export."""
    from kolm_testing import PARIS_ITEM, export_unscored, pack_family

    artifact = pack_family("mistral", root, None, [PARIS_ITEM])
    export_unscored(artifact, device, tier, root / "export", backend=backend)
    return root / "export"


def damaged_payload_test(
    backend: str, members: list[str], within: int = 1 << 16, examples: int = EXAMPLES
) -> Callable[..., None]:
    """A Hypothesis test for a plugin's test module: `backend`'s payload reader on the module's
    `tiny_export` fixture (an export folder) with one of `members` (paths in the export) damaged,
    its flips and splices in the first `within` bytes, where the reader looks; `examples` inputs."""

    @settings(FUZZ, max_examples=examples)
    @given(data=st.data())
    def test(tiny_export: Path, tmp_path: Path, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(members), label="member")
        damaged = data.draw(mutated((tiny_export / name).read_bytes(), within=within), label="bytes")
        read_damaged_payload(backend, tiny_export, tmp_path / "damaged", {name: damaged})

    return test
