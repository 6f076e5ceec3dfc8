"""`kolm matrix`: every model x device x tier planned from its forecast first (cells that do not fit
or that the backend refuses are recorded with the reason, never run), then each cell exported and
scored (K, its drop from fp16, fidelity) as a Ray task, its result appended to `cells.jsonl` the
moment it finishes. Running the same command again runs only the cells with no result for the same
inputs (the artifact's SHA-256, the device row, the tier, the backend and kolm's versions).

Ray schedules the cells: a local Ray that kolm starts (one CPU a cell), or a cluster's
(`--address`). Each node offers a `kolm_<backend>` resource for the backends it runs (kolm's local
node: the backends installed and runnable here; a cluster node: `ray start --resources
'{"kolm_mlx": 8}'`) and a cell asks one unit of its backend's, so an MLX cell only lands on a node
that runs MLX. The cells of one model run one after another and different models in parallel:
a model's cells share its fp16 conversion and reference, which kolm's caches let one process write
at a time, so each model gets a KOLM_HOME of its own under OUT/homes/ (never the user's caches).
Ray is imported only here and only to run cells (`pip install 'kolm-core[matrix]'`).

With `--bench`, each exported cell is then benched (`kolm bench`) once every export is done, one
bench at a time per node (each node offers one `kolm_bench`): on a node that is the cell's device
where one says so (`kolm_device_<slug>`), else on any node. A measurement of the machine that ran
it, named in the result.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from kolm import __version__
from kolm.artifact import sha256_file
from kolm.datamodel import KolmModel
from kolm.devices import DeviceProfile
from kolm.errors import KolmError, UsageError

if TYPE_CHECKING:
    from kolm.forecast import Forecast
    from kolm.plugins import Registry

BENCH_RESOURCE = "kolm_bench"
"""The Ray resource a bench takes one of: a node offers one, so two benches never share a machine."""
DEVICE_RESOURCE = "kolm_device_{slug}"
"""A node that is a device offers one (`ray start --resources '{"kolm_device_raspberry-pi-5": 1,
"kolm_bench": 1}'`): the benches of that device's cells then run on it, one at a time."""
CELLS = "cells.jsonl"
"""The results, one JSON line a cell, appended as cells finish (the resume reads it back)."""
EXPORTS = "exports"
"""The export folder of each cell that ran, under the results folder: exports/<cell key>/."""
HOMES = "homes"
"""Each model's KOLM_HOME (its fp16 conversion and reference caches), under the results folder."""


class BenchSize(KolmModel):
    """`kolm bench`'s sizes (its defaults unless `--n-prompt`, `--n-gen`, `--repetitions` say)."""

    n_prompt: int = 512
    n_gen: int = 128
    repetitions: int = 3


class Bench(KolmModel):
    """`kolm bench` of a cell's export: the speed of the machine named in `machine`, which is the
    cell's device only where a node offered `kolm_device_<slug>`. `note` says why nothing was
    measured (the backend cannot run there)."""

    machine: str | None
    """The machine that ran it (None: no machine did, and `note` says why)."""
    tg_tok_s: float | None = None
    pp_tok_s: float | None = None
    runtime: str | None = None
    note: str | None = None


class Cell(KolmModel):
    """One model x device x tier: what the forecast says of it and, when it will not run, why."""

    key: str
    model: str
    artifact_sha256: str
    base: str
    device: str
    device_row: DeviceProfile
    """The row the forecast used, carried to the node that runs the cell (a user's own row too)."""
    tier: str
    backend: str
    recipe: str | None
    inputs: str
    """SHA-256 of what the result depends on: the artifact, the device row, tier, backend, versions."""
    forecast_bytes: int | None = None
    """None, like the tok/s and fit, when there is no forecast (the backend cannot make the tier)."""
    read_per_token_bytes: int | None = None
    tok_s_low: float | None = None
    tok_s_high: float | None = None
    tok_s_method: str | None = None
    fit: Literal["pass", "tight", "over"] | None = None
    skip: str | None = None
    bench: BenchSize | None = None
    """With `--bench`: the bench to run on the export, on the machine that made it."""


class CellResult(KolmModel):
    """A cell's outcome as `cells.jsonl` keeps it: the plan, then what the export measured."""

    cell: Cell
    status: Literal["ok", "failed", "skipped"]
    reason: str | None = None
    size_bytes: int | None = None
    k: float | None = None
    k_fp16: float | None = None
    k_drop_points: float | None = None
    top1_agreement: float | None = None
    mean_kl: float | None = None
    seconds: float | None = None
    node: str | None = None
    bench: Bench | None = None

    @property
    def needs_bench(self) -> bool:
        """Exported, asked to be benched (`--bench`), not benched yet."""
        return self.status == "ok" and self.cell.bench is not None and self.bench is None


def cell_key(model: Path, device: DeviceProfile, tier: str) -> str:
    """`<artifact stem>-<device slug>-<tier>`: the cell's name in the results and its export folder."""
    return f"{model.stem}-{device.slug}-{tier}"


def plan(
    registry: Registry, models: list[Path], devices: list[str], tiers: list[str], bench: BenchSize | None = None
) -> list[Cell]:
    """Every cell, forecast first: one the backend refuses or that does not fit ("over") carries
    `skip`; an unknown device, tier or a missing artifact is a `UsageError` before anything runs.
    With `bench`, each cell that runs is benched after its export."""
    from kolm.forecast import forecast
    from kolm.modelspec import resolve_model
    from kolm.quant import parse_tier

    parsed = [parse_tier(t) for t in tiers]
    profiles = [registry.device(d) for d in devices]
    cells = []
    for model in models:
        if not model.is_file():
            raise UsageError(f"{model}: no such .kolm artifact")
        spec = resolve_model(str(model))
        if spec.origin != "artifact":
            raise UsageError(f"kolm matrix exports .kolm artifacts; {model} is a {spec.origin}")
        artifact_sha = sha256_file(model)
        for profile in profiles:
            for tier in parsed:
                try:
                    planned, refused = forecast(registry, spec, profile, tier), None
                except KolmError as exc:  # e.g. the device's backend has no such tier
                    planned, refused = None, str(exc)
                cells.append(_cell(registry, model, spec.name, artifact_sha, profile, tier, planned, refused, bench))
    return cells


def _inputs(
    registry: Registry, artifact_sha: str, profile: DeviceProfile, tier: str, backend: str, recipe, bench
) -> str:
    """SHA-256 of what a cell's result depends on (a bench's sizes only when there is one, so a cell
    without one keeps its hash)."""
    owner = registry.backends().get(backend)
    versions = f"kolm {__version__}|{owner.distribution} {owner.version}" if owner else f"kolm {__version__}"
    parts = [artifact_sha, profile.model_dump_json(), tier, backend, str(recipe), versions]
    return hashlib.sha256("|".join(parts + ([bench.model_dump_json()] if bench else [])).encode()).hexdigest()


def _skip(planned: Forecast) -> str | None:
    """Why a forecast cell is not run: the backend refuses the model, is not installed, or it does not fit."""
    if planned.refusal or planned.command is None:
        return planned.refusal or f"{planned.backend} cannot export it"
    if not planned.backend_installed:
        return f"backend {planned.backend} is not installed"
    if planned.fit.verdict == "over":
        return f"does not fit: {planned.fit.arithmetic}"
    return None


def _cell(
    registry: Registry,
    model: Path,
    base: str,
    artifact_sha: str,
    profile: DeviceProfile,
    tier: str,
    planned: Forecast | None,
    refused: str | None = None,
    bench: BenchSize | None = None,
) -> Cell:
    """The cell of `planned`, or, where the forecast itself refused (`refused`), one with no forecast
    (the device's first backend named), recorded with why and never run."""
    backend = planned.backend if planned else (profile.backends[0] if profile.backends else "none")
    recipe = planned.recipe if planned else None
    forecast = {}
    if planned:
        forecast = {
            "forecast_bytes": planned.size_bytes,
            "read_per_token_bytes": planned.read_per_token_bytes,
            "tok_s_low": planned.tok_s.low,
            "tok_s_high": planned.tok_s.high,
            "tok_s_method": planned.tok_s.method,
            "fit": planned.fit.verdict,
        }
    return Cell(
        key=cell_key(model, profile, tier),
        model=str(model),
        artifact_sha256=artifact_sha,
        base=base,
        device=profile.name,
        device_row=profile,
        tier=tier,
        backend=backend,
        recipe=recipe,
        inputs=_inputs(registry, artifact_sha, profile, tier, backend, recipe, bench),
        skip=_skip(planned) if planned else refused,
        bench=bench,
        **forecast,
    )


def run_cell(cell: Cell, out: Path) -> CellResult:
    """Export and score one cell into OUT/exports/<key>/ (atomically: a killed cell leaves nothing
    there); a `KolmError` is the cell's recorded failure, never the matrix's."""
    from kolm.export import export_artifact
    from kolm.plugins import registry

    start = time.perf_counter()
    try:
        with model_home(out, cell):
            reg = registry()
            record = export_artifact(
                reg,
                Path(cell.model),
                cell.device_row,
                cell.tier,
                cell.backend,
                out / EXPORTS / cell.key,
                cell.forecast_bytes,
                cell.read_per_token_bytes,
                max_drop_points=None,  # the drop is what the matrix reports, not a gate
                recipe_name=cell.recipe,
            )
    except KolmError as exc:
        return CellResult(cell=cell, status="failed", reason=str(exc), seconds=_since(start), node=platform.node())
    k = record.k
    return CellResult(
        cell=cell,
        status="ok",
        size_bytes=sum(p.size for p in record.payload),
        k=k.score if k else None,
        k_fp16=k.fp16_reference if k else None,
        k_drop_points=k.drop_points if k else None,
        top1_agreement=k.fidelity.top1_agreement if k and k.fidelity else None,
        mean_kl=k.fidelity.mean_kl if k and k.fidelity else None,
        reason=None if k else record.k_not_measured,
        seconds=_since(start),
        node=platform.node(),
    )


def bench_cell(result: CellResult, out: Path) -> CellResult:
    """`result` with its export benched on this machine (`kolm bench`, its sizes from the cell), or
    with why it could not be (one line)."""
    from kolm.api import silent
    from kolm.bench import run_bench
    from kolm.host import this_machine
    from kolm.plugins import registry
    from kolm.quant import parse_tier

    cell, size = result.cell, result.cell.bench or BenchSize()
    with model_home(out, cell):
        host = this_machine()
        machine = f"{host.summary()} ({host.hostname})"
        try:
            report = run_bench(registry(), out / EXPORTS / cell.key, None, False, parse_tier(cell.tier),
                               size.n_prompt, size.n_gen, size.repetitions, None, silent)  # fmt: skip
        except KolmError as exc:
            bench = Bench(machine=machine, note=str(exc))
        else:
            got = report.result
            bench = Bench(machine=machine, tg_tok_s=got.tg.mean, pp_tok_s=got.pp.mean, runtime=got.runtime)
    return result.model_copy(update={"bench": bench})


def describe(result: CellResult) -> str:
    """A result in a few words, for the progress lines: its status and why, or what its bench measured."""
    if result.bench:
        b = result.bench
        return f"bench {b.tg_tok_s:.1f} tok/s on {b.machine}" if b.tg_tok_s else f"bench not measured ({b.note})"
    return result.status + (f" ({result.reason})" if result.reason else "")


@contextmanager
def model_home(out: Path, cell: Cell) -> Iterator[None]:
    """KOLM_HOME set to the cell's model's own folder, OUT/homes/<sha>/ (created), for the duration;
    the caller's value restored after."""
    folder = out / HOMES / cell.artifact_sha256[:16]
    folder.mkdir(parents=True, exist_ok=True)
    saved = os.environ.get("KOLM_HOME")
    os.environ["KOLM_HOME"] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("KOLM_HOME", None)
        else:
            os.environ["KOLM_HOME"] = saved


def run_cell_json(cell: str, out: str, after: str | None = None) -> str:
    """`run_cell` with JSON in and out: what a Ray task is handed and returns (no objects pickled).
    `after` is the result of the model's previous cell: Ray starts this one once that one is done."""
    return run_cell(Cell.model_validate_json(cell), Path(out)).model_dump_json()


def bench_cell_json(result: str, out: str) -> str:
    """`bench_cell` with JSON in and out, for a Ray task."""
    return bench_cell(CellResult.model_validate_json(result), Path(out)).model_dump_json()


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 2)


def finished(out: Path) -> dict[str, CellResult]:
    """The results already in OUT/cells.jsonl, by cell key (the last line of a key wins; a line cut
    short by a kill is ignored, and its cell runs again)."""
    done: dict[str, CellResult] = {}
    path = out / CELLS
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            result = CellResult.model_validate_json(line)
        except ValueError:
            continue
        done[result.cell.key] = result
    return done


def append(out: Path, result: CellResult) -> None:
    """One line added to OUT/cells.jsonl with a single write, flushed to disk before returning (after
    a line a kill cut short, on a line of its own)."""
    with open(out / CELLS, "a+b") as f:
        torn = f.tell() > 0 and os.pread(f.fileno(), 1, f.tell() - 1) != b"\n"
        f.write((("\n" if torn else "") + result.model_dump_json() + "\n").encode())
        f.flush()
        os.fsync(f.fileno())


def to_run(cells: list[Cell], done: dict[str, CellResult], retry_failed: bool = False) -> list[Cell]:
    """The cells with no result for the same inputs (with `retry_failed`, failed ones too)."""
    return [
        c
        for c in cells
        if c.key not in done or done[c.key].cell.inputs != c.inputs or (retry_failed and done[c.key].status == "failed")
    ]


Runner = Callable[[list[Cell], list[CellResult], Path], Iterator[CellResult]]
"""runner(cells, to_bench, out): exports `cells`, then benches `to_bench` and the new results that
need it, yielding each result as it comes."""


def serially(cells: list[Cell], to_bench: list[CellResult], out: Path) -> Iterator[CellResult]:
    """Each cell in this process, one after another, each bench right after its export (`--serial`;
    the reference for Ray's results)."""
    for cell in cells:
        result = run_cell(cell, out)
        yield result
        if result.needs_bench:
            yield bench_cell(result, out)
    for result in to_bench:
        yield bench_cell(result, out)


def on_ray(address: str | None = None, cpus: int | None = None) -> Runner:
    """Cells as Ray tasks: on a local Ray started here (`cpus` CPUs, offering the backends that run
    here) or on the cluster at `address`; results come back as tasks finish."""

    def run(cells: list[Cell], to_bench: list[CellResult], out: Path) -> Iterator[CellResult]:
        ray = _import_ray()
        from kolm.plugins import registry

        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}  # kolm prints each cell's result
        if address:
            ray.init(address=address, **quiet)
        else:
            n = cpus or len(os.sched_getaffinity(0))
            here = {f"kolm_{name}": float(n) for name in runnable_here(registry())} | {BENCH_RESOURCE: 1.0}
            ray.init(num_cpus=n, resources=here, include_dashboard=False, **quiet)
        try:
            offered = ray.cluster_resources()
            task = ray.remote(run_cell_json)
            pending, last = {}, {}  # last: each model's latest task, which its next cell waits for
            for cell in cells:
                if offered.get(f"kolm_{cell.backend}", 0) < 1:
                    reason = (f"no Ray node runs backend {cell.backend}: start one with "
                              f"ray start --resources '{{\"kolm_{cell.backend}\": 1}}'")  # fmt: skip
                    yield CellResult(cell=cell, status="failed", reason=reason)
                    continue
                options = {"num_cpus": 1, "resources": {f"kolm_{cell.backend}": 1}}
                after = last.get(cell.artifact_sha256)
                ref = task.options(**options).remote(cell.model_dump_json(), str(out), after)
                last[cell.artifact_sha256] = ref
                pending[ref] = cell
            benches = list(to_bench)
            for result in _as_done(ray, pending):
                yield result
                if result.needs_bench:
                    benches.append(result)
            # every export done: one bench at a time per node (each offers one kolm_bench), nothing beside it
            task = ray.remote(bench_cell_json)
            pending = {}
            for result in benches:
                if offered.get(BENCH_RESOURCE, 0) < 1:
                    note = f"no Ray node offers {BENCH_RESOURCE}: ray start --resources '{{\"{BENCH_RESOURCE}\": 1}}'"
                    yield result.model_copy(update={"bench": Bench(machine=None, note=note)})
                    continue
                options = {"num_cpus": 1, "resources": bench_resources(result.cell, offered)}
                pending[task.options(**options).remote(result.model_dump_json(), str(out))] = result
            yield from _as_done(ray, pending)
        finally:
            ray.shutdown()

    return run


def bench_resources(cell: Cell, offered: dict[str, float]) -> dict[str, float]:
    """The Ray resources a cell's bench asks: one `kolm_bench` (one bench a machine at a time), and
    one of its device's `kolm_device_<slug>` where a node offers it (the bench runs on the device)."""
    device = DEVICE_RESOURCE.format(slug=cell.device_row.slug)
    return {BENCH_RESOURCE: 1} | ({device: 1} if offered.get(device, 0) >= 1 else {})


def _as_done(ray, pending: dict) -> Iterator[CellResult]:
    """The results of `pending` Ray tasks (ObjectRef -> the Cell or CellResult it was handed), as they
    finish; a task whose worker died is a failed cell (an export) or a bench not measured."""
    while pending:
        [ready], _ = ray.wait(list(pending), num_returns=1)
        handed = pending.pop(ready)
        try:
            yield CellResult.model_validate_json(ray.get(ready))
        except ray.exceptions.RayError as exc:  # the worker died (killed, out of memory)
            if isinstance(handed, CellResult):
                yield handed.model_copy(update={"bench": Bench(machine=None, note=_one_line(exc))})
            else:
                yield CellResult(cell=handed, status="failed", reason=_one_line(exc))


def _one_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise UsageError("kolm matrix runs cells on Ray: pip install 'kolm-core[matrix]' (or --serial)") from exc
    return ray


def runnable_here(reg: Registry) -> list[str]:
    """The installed backends that can export and run here (their toolchain imports)."""
    return sorted(
        name
        for name, owner in reg.backends().items()
        if owner.can_export and all(owner.declared.toolchain_status().values())
    )


def run_matrix(
    cells: list[Cell],
    out: Path,
    runner: Runner,
    progress: Callable[[CellResult | None, int, int], None] = lambda result, done, total: None,
    retry_failed: bool = False,
) -> list[CellResult]:
    """Run what `cells` still needs into OUT (created), appending each result as it comes and calling
    `progress(result, done, total)` (first with no result, before any cell runs); returns every cell's
    result (the ones kept from earlier runs included), in `cells`' order."""
    (out / EXPORTS).mkdir(parents=True, exist_ok=True)
    done = finished(out)
    todo = to_run(cells, done, retry_failed)
    for cell in todo:
        if cell.skip:
            done[cell.key] = CellResult(cell=cell, status="skipped", reason=cell.skip)
            append(out, done[cell.key])
    runnable = [c for c in todo if not c.skip]
    again = {c.key for c in todo}
    to_bench = [done[c.key] for c in cells if c.key not in again and c.key in done and done[c.key].needs_bench]
    total = len(runnable) + sum(c.bench is not None for c in runnable) + len(to_bench)
    progress(None, 0, total)
    for i, result in enumerate(runner(runnable, to_bench, out), start=1):
        append(out, result)
        done[result.cell.key] = result
        progress(result, i, total)
    return [done[c.key] for c in cells if c.key in done]


def rows(results: Iterable[CellResult]) -> list[dict]:
    """One flat row a cell, for the CSV and Parquet tables and the report."""
    table = []
    for r in results:
        c = r.cell
        table.append(
            {
                "model": c.base,
                "artifact": c.model,
                "device": c.device,
                "tier": c.tier,
                "backend": c.backend,
                "recipe": c.recipe,
                "fit": c.fit,
                "status": r.status,
                "reason": r.reason,
                "forecast_bytes": c.forecast_bytes,
                "size_bytes": r.size_bytes,
                "tok_s_low": c.tok_s_low,
                "tok_s_high": c.tok_s_high,
                "tok_s_method": c.tok_s_method,
                "k": r.k,
                "k_fp16": r.k_fp16,
                "k_drop_points": r.k_drop_points,
                "top1_agreement": r.top1_agreement,
                "mean_kl": r.mean_kl,
                "seconds": r.seconds,
                "node": r.node,
                "bench_tg_tok_s": r.bench.tg_tok_s if r.bench else None,
                "bench_pp_tok_s": r.bench.pp_tok_s if r.bench else None,
                "bench_machine": r.bench.machine if r.bench else None,
                "bench_note": r.bench.note if r.bench else None,
            }
        )
    return table


def write_tables(out: Path, table: list[dict]) -> list[Path]:
    """OUT/results.csv and, where pyarrow is installed, OUT/results.parquet (each written atomically)."""
    import csv

    from kolm.atomic import atomic_file

    written = []
    with atomic_file(out / "results.csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]) if table else ["model"])
        writer.writeheader()
        writer.writerows(table)
    written.append(out / "results.csv")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return written
    with atomic_file(out / "results.parquet") as tmp:
        pq.write_table(pa.Table.from_pylist(table), str(tmp))
    written.append(out / "results.parquet")
    return written


def counts(results: list[CellResult]) -> dict[str, int]:
    """How many cells ran ("ok"), failed and were skipped."""
    tally = {"ok": 0, "failed": 0, "skipped": 0}
    for r in results:
        tally[r.status] += 1
    return tally
