"""Human output: rich tables, reports and progress bars. `--json` bypasses all of it."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from kolm.api import DeviceRun
from kolm.bench import BenchReport
from kolm.devices import MEASURED, USER, DeviceProfile
from kolm.forecast import Forecast
from kolm.host import HostProfile
from kolm.inventory import Inventory
from kolm.kscore import Binder
from kolm.manifest import ExportRecord, Manifest
from kolm.plugins import PluginInfo
from kolm.steps import Step
from kolm.verify import Verification

VERDICT_STYLE = {"pass": "green", "tight": "yellow", "over": "red"}


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def rate(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:,.0f}"


def tok_s(f: Forecast) -> str:
    t = f.tok_s
    if t.method == "ceiling":
        return f"≤ {rate(t.high)} (ceiling)"
    if t.method == "measured":
        return f"{rate((t.low + t.high) / 2)} ± {rate((t.high - t.low) / 2)} (measured)"
    return f"{rate(t.low)}–{rate(t.high)}"


def backend_status(f: Forecast) -> str:
    return "" if f.backend_installed else " (not installed)"


def device_table(rows: list[DeviceProfile]) -> Table:
    table = Table(title="Devices (constants with their sources: kolm devices --json)")
    for column in ("device", "aliases", "kind", "memory", "bandwidth", "backends"):
        table.add_column(column)
    for row in rows:
        options = f" (options {', '.join(f'{o:g}' for o in row.memory_options_gb)})" if row.memory_options_gb else ""
        whose = {MEASURED: " (measured here)", USER: " (yours)"}.get(row.bandwidth_gbps.source, "")
        table.add_row(
            row.name + whose,
            ", ".join(row.aliases),
            row.kind,
            f"{row.memory_gb.value:g} GB {row.memory_kind}{options}",
            f"{row.bandwidth_gbps.value:g} GB/s",
            " > ".join(row.backends),
        )
    return table


def host_report(host: HostProfile, row: DeviceProfile) -> Group:
    """`kolm devices --here`: what this machine is, and the device row forecasts use for it."""
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    lines.add_row("device", f"{row.name} (--target {' or '.join(row.aliases)})")
    lines.add_row("machine", host.summary() + (f"; board: {host.board}" if host.board else ""))
    lines.add_row("kind", f"{row.kind} (the throughput calibration used for it)")
    lines.add_row("memory", f"{row.memory_gb.value:g} GB {row.memory_kind} ({row.memory_gb.note})")
    lines.add_row("bandwidth", f"{row.bandwidth_gbps.value:g} GB/s ({row.bandwidth_gbps.note})")
    lines.add_row("backends", " > ".join(row.backends))
    return Group(lines, Text(f"saved; kolm pick and kolm export --target {row.aliases[0]} forecast it"))


# What each hook lets kolm do with a plugin, in the words `kolm plugins` shows (--json lists the hooks).
CAPABILITIES = {
    "device_profiles": "devices",
    "import_weights": "import",
    "forecast_size": "forecast",
    "forecast_throughput": "forecast",
    "export": "export",
    "run": "run",
    "read_payload": "verify",
    "bench": "bench",
}


def plugin_table(rows: list[PluginInfo]) -> Table:
    table = Table(title="Plugins (kolm plugins --json: entry points and every hook)")
    for column in ("distribution", "backend", "can", "recipes (--recipe; default first)", "toolchain"):
        table.add_column(column, overflow="fold")
    order = list(dict.fromkeys(CAPABILITIES.values()))
    for row in rows:
        distribution = f"{row.distribution} {row.version}"
        if row.error and not row.hooks:
            table.add_row(distribution, "", Text(f"skipped: {row.error}", style="red"), "", "")
            continue
        toolchain = Text(", ".join(f"{m} {'✓' if ok else '✗'}" for m, ok in row.toolchain.items()))
        toolchain.append(f"\n{row.install}" if row.install else "")  # Text: `pip install 'x[extra]'` is not markup
        can = Text(", ".join(sorted({CAPABILITIES[h] for h in row.hooks if h in CAPABILITIES}, key=order.index)))
        if row.error:
            can.append(f"\n{row.error}", style="red")
        recipes = "\n".join(f"{tier}: {', '.join(names)}" for tier, names in row.recipes.items())
        table.add_row(distribution, row.backend or "", can, recipes, toolchain)
    return table


def base_table(rows: list[dict]) -> Table:
    table = Table(title="Reference bases (shapes from each published config.json)")
    for column in ("name", "aliases", "params", "source"):
        table.add_column(column)
    for row in rows:
        params = f"{row['params'] / 1e9:.2f} B"
        if row["active_params"] < row["params"]:
            params += f" ({row['active_params'] / 1e9:.2f} B active)"
        table.add_row(row["name"], ", ".join(row["aliases"]), params, row["source"])
    return table


def short_rate(value: float) -> str:
    """tok/s in at most four characters: 7.6, 49, 812, 1.6k."""
    return f"{value:.1f}" if value < 10 else f"{value:.0f}" if value < 1000 else f"{value / 1000:.1f}k"


def short_size(n: int) -> str:
    """Bytes in at most six characters: 88 MB, 4.9 GB, 16 GB."""
    number, unit = human_bytes(n).split()
    return f"{number} {unit}" if float(number) < 10 else f"{float(number):.0f} {unit}"


def pick_cell(f: Forecast) -> Text:
    """`106 MB PASS` over `19–49`: a cell of the device × tier grid, at most 13 characters wide."""
    t = f.tok_s
    speed = f"≤{short_rate(t.high)}" if t.method == "ceiling" else f"{short_rate(t.low)}–{short_rate(t.high)}"
    return Text.assemble(
        f"{short_size(f.size_bytes)} ",
        (f.fit.verdict.upper(), VERDICT_STYLE[f.fit.verdict]),
        f"\n{speed}" + ("*" if t.method == "measured" else ""),
        ("\ncannot export", "red") if f.refusal else "",
    )


def pick_table(rows: list[Forecast]) -> Table:
    """One row per device, one column per tier (size, fit, decode tok/s), readable at 80 columns."""
    from rich import box

    model = rows[0].model if rows else ""
    table = Table(
        title=f"{model}: forecasts, not measurements", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0)
    )
    table.add_column("device", min_width=10, max_width=14)
    table.add_column("backend", no_wrap=True)
    tiers = list(dict.fromkeys(f.tier for f in rows))
    for tier in tiers:
        table.add_column(tier, justify="right", no_wrap=True, min_width=13)
    by_device: dict[str, dict[str, Forecast]] = {}
    for f in rows:
        by_device.setdefault(f.device, {})[f.tier] = f
    for device, cells in by_device.items():
        first = next(iter(cells.values()))
        row = [device, first.backend + ("?" if not first.backend_installed else "")]
        for tier in tiers:
            f = cells.get(tier)
            row.append(pick_cell(f) if f else Text("not supported", style="dim"))
        table.add_row(*row)
    measured = any(f.tok_s.method == "measured" for f in rows)
    missing = any(not f.backend_installed for f in rows)
    table.caption = (
        "each cell: size on disk, fit (size + 1 GB runtime vs memory), decode tokens/s"
        + (" (* measured by kolm bench)" if measured else "")
        + ("; backend? = not installed" if missing else "")
        + "; arithmetic and sources: kolm export MODEL --target DEVICE --quant TIER --preview"
    )
    return table


def recipe_label(record: ExportRecord) -> str:
    """The toolchain's spelling, with the recipe's name where the two differ."""
    recipe = record.manifest.recipe
    return record.spelling if recipe in (None, record.spelling) else f"{record.spelling}, recipe {recipe}"


def forecast_report(f: Forecast) -> Group:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("size on disk", f"{human_bytes(f.size_bytes)} ({f.size_bytes:,} B) — {f.size_method}")
    table.add_row("tokens/s", f"{tok_s(f)} tok/s decode — {f.tok_s.basis}")
    table.add_row("K-score loss", f"{f.k_loss_points:.1f} points — {f.k_loss_method}")
    table.add_row("fit", Text.assemble((f.fit.verdict.upper(), VERDICT_STYLE[f.fit.verdict]), f" — {f.fit.arithmetic}"))
    table.add_row("backend", f.backend + backend_status(f))
    if f.recipe:
        table.add_row("recipe", f.recipe if f.recipe == f.spelling else f"{f.recipe} ({f.spelling})")
    table.add_row("command", f.command or f"none: {f.backend} cannot export {f.model}: {f.refusal}")
    table.add_row("sources", "\n".join(f.forecast_sources))
    for note in f.notes:
        table.add_row("note", note)
    status = "tok/s measured by kolm bench" if f.tok_s.method == "measured" else "not measured"
    title = Text(f"Forecast ({status}): {f.model} → {f.device}, {f.tier}", style="bold")
    return Group(title, table)


def steps_text(steps: list[Step]) -> str:
    """The four steps as plain lines, each command whole on a line of its own (never wrapped, so it
    copies as it is)."""
    lines = ["", "Steps"]
    for step in steps:
        lines.append(f"{step.number}. {step.title}, on {step.where}" + (f": {step.note}" if step.note else ""))
        lines.append(f"   {step.command}" if step.command else "   (no command)")
    return "\n".join(lines)


def inspect_report(path: Path, manifest: Manifest, inventory: Inventory) -> Group:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    k = "not measured" if manifest.k_score is None else f"{manifest.k_score:.3f}"
    for key, value in (
        ("base", manifest.base),
        ("arch", manifest.arch),
        ("params", f"{manifest.params:,}"),
        ("quant", manifest.quant),
        ("K-score", k),
        ("eval pack", f"{manifest.eval_pack.items} items"),
        ("tensors", f"{len(inventory.tensors)} ({inventory.params:,} params)"),
        ("dtype bytes", ", ".join(f"{d} {human_bytes(b)}" for d, b in inventory.dtype_bytes().items())),
        ("payload", "\n".join(f"{p.path}  {human_bytes(p.size)}  sha256 {p.sha256[:16]}…" for p in manifest.payload)),
        ("created by", manifest.created_by),
        ("license", manifest.license),
    ):
        table.add_row(key, value)
    return Group(Text(str(path), style="bold"), table)


def _stderr_bar(*columns):
    """A transient rich Progress on stderr: the description, a bar, then `columns` (disabled when
    stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        *columns,
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A transient bar on stderr fed by (done, total) callbacks (silent when not a terminal),
    then one line saying the step is done and how long it took."""
    import time

    from rich.progress import DownloadColumn, TimeRemainingColumn

    with _stderr_bar(DownloadColumn(), TimeRemainingColumn()) as progress:
        task = progress.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        start = time.perf_counter()
        yield advance
    print(f"✓ {description} ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)


@contextmanager
def cell_progress(description: str) -> Iterator[Callable[[str | None, int, int], None]]:
    """A bar on stderr counting finished items, fed by (line, done, total) callbacks; each `line` is
    printed above the bar (only the lines when stderr is not a terminal)."""
    from rich.progress import MofNCompleteColumn, TimeElapsedColumn

    with _stderr_bar(MofNCompleteColumn(), TimeElapsedColumn()) as progress:
        task = progress.add_task(description, total=None)

        def advance(line: str | None, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)
            if line is None:
                return
            if progress.disable:
                print(line, file=sys.stderr, flush=True)
            else:
                progress.console.print(line, markup=False, highlight=False)

        yield advance


def export_report(out: Path, record: ExportRecord, device_run: DeviceRun | None = None) -> Group:
    """What `kolm export` made; `device_run` is the backend's run command for a payload kolm cannot run."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    main = record.payload[0]
    check = record.size_check
    table.add_row("payload", f"{out / main.path}  {human_bytes(main.size)}  sha256 {main.sha256}")
    table.add_row(
        "size vs forecast",
        f"forecast {check.forecast_bytes:,} B, actual {check.actual_bytes:,} B ({check.error_percent:+.3f}%)",
    )
    if record.k is None:
        table.add_row("K-score", f"not measured: {record.k_not_measured}" if record.k_not_measured else "not measured")
    else:
        k = record.k
        reference = (
            ""
            if k.fp16_reference is None
            else f"; fp16 reference {k.fp16_reference:.3f}, drop {k.drop_points:+.1f} points"
        )
        table.add_row("K-score", f"{k.score:.3f} on {k.items} eval items ({k.runtime}){reference}")
        if k.fidelity:
            f = k.fidelity
            table.add_row(
                "fidelity",
                f"top-1 agreement {f.top1_agreement:.1%}, mean KL {f.mean_kl:.4f} nats "
                f"over {f.positions:,} positions, vs the fp16 export",
            )
    table.add_row("toolchain", ", ".join(f"{n} {v}" for n, v in record.lockfile.toolchain.items()))
    table.add_row("record", str(out / "kolm-export.json"))
    if record.k_not_measured is None:
        bench = f"kolm bench {out} --device {shlex.quote(record.device)}"
        table.add_row("next", f'kolm run {out} --prompt "..."   ·   {bench}')
    else:  # kolm runs none of this backend's exports: its payload is run on the device by the toolchain
        there = f"the {record.device} machine"
        how = "it (the backend's README says how)"
        if device_run:
            how = f"`{device_run.command.format(out=shlex.quote(out.name))}`"
        table.add_row("next", f"copy {out} to {there} and run {how} there")
    return Group(
        Text(
            f"Exported {record.manifest.base} → {record.device}, {record.tier} ({recipe_label(record)})", style="bold"
        ),
        table,
    )


def bench_report(report: BenchReport) -> Group:
    r = report.result
    table = Table(title=f"kolm bench: {report.model} {report.tier} ({report.backend}) — measured on this machine")
    for column in ("test", "tok/s", "±sd", "runs"):
        table.add_column(column, justify="right" if column != "test" else "left")
    table.add_row(f"pp{r.n_prompt}", f"{r.pp.mean:,.1f}", f"{r.pp.sd:,.1f}", str(len(r.pp.samples)))
    table.add_row(f"tg{r.n_gen}", f"{r.tg.mean:,.1f}", f"{r.tg.sd:,.1f}", str(len(r.tg.samples)))
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    lines.add_row("machine", f"{report.host.hostname}: {report.host.summary()}")
    lines.add_row(
        "load", f"{r.load_s:.2f} s; peak RSS {human_bytes(r.peak_rss_bytes)}; {r.threads} threads; {r.runtime}"
    )
    lines.add_row(
        f"forecast for {report.device}",
        f"{rate(report.forecast_low)}–{rate(report.forecast_high)} tok/s ({report.forecast_basis})",
    )
    lines.add_row("measured / forecast", f"{report.ratio:.2f}× (tg mean vs forecast midpoint)")
    lines.add_row("logged to", f"{report.log} — later forecasts for {report.device} use this measurement")
    return Group(table, lines)


def verify_table(result: Verification) -> Group:
    table = Table(title=f"kolm verify {result.export} --against {result.against}")
    for column in ("#", "check", "result", "expected", "found"):
        table.add_column(column)
    for c in result.checks:
        table.add_row(
            str(c.number),
            c.name,
            Text("PASS" if c.passed else "FAIL", style="green" if c.passed else "red"),
            c.expected,
            c.found,
        )
    passed = sum(c.passed for c in result.checks)
    table.caption = f"{passed} of {len(result.checks)} checks passed"
    return Group(
        table,
        binder_report(result.binder) if result.binder else Text(""),
        *(Text(f"note: {note}") for note in result.notes),
    )


def binder_report(binder: Binder) -> Table:
    """The binder in a few lines: K, fidelity, and the items the model got wrong."""
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    k = binder.k
    reference = "not measured" if binder.fp16_reference is None else f"{binder.fp16_reference:.3f}"
    lines.add_row("binder", f"K {k.k:.3f} on {k.n} items ({binder.runtime}); fp16 reference {reference}")
    if binder.fidelity:
        f = binder.fidelity
        lines.add_row(
            "fidelity",
            f"top-1 agreement {f.top1_agreement:.1%}, mean KL {f.mean_kl:.4f} nats "
            f"over {f.positions:,} positions vs a fresh fp16 export",
        )
    wrong = [item for item in k.items if not item.score]
    for item in wrong[:8]:
        lines.add_row(f"✗ {item.id}", repr(item.output.strip()[:60]))
    if len(wrong) > 8:
        lines.add_row("", f"… and {len(wrong) - 8} more (--json has every item)")
    return lines


def plan_table(cells: list) -> Table:
    """`kolm matrix --plan`: each cell (kolm.matrix.Cell) with its forecast and whether it will run."""
    table = Table(title="kolm matrix plan: forecasts, nothing converted")
    for column in ("cell", "backend", "fit", "size", "tok/s", "runs?"):
        table.add_column(column, overflow="fold")
    for c in cells:
        size = human_bytes(c.forecast_bytes) if c.forecast_bytes else "-"
        rate = f"{c.tok_s_low:.0f}–{c.tok_s_high:.0f}" if c.tok_s_low is not None else "-"
        table.add_row(c.key, c.backend, c.fit or "-", size, rate, f"no: {c.skip}" if c.skip else "yes")
    return table


def matrix_table(results: list) -> Table:
    """`kolm matrix`'s results (kolm.matrix.CellResult): what each export measured, or why it did not run."""
    table = Table(title="kolm matrix: size and K measured on each export")
    benched = any(r.bench for r in results)  # with --bench: each export's decode speed where it was benched
    measured = ["tok/s (machine)"] if benched else []
    for column in ("cell", "status", "size", "K", "drop", "top-1", *measured, "why not"):
        table.add_column(column, overflow="fold")
    for r in results:
        bench = r.bench and (f"{r.bench.tg_tok_s:.1f} ({r.bench.machine})" if r.bench.tg_tok_s else r.bench.note)
        table.add_row(
            r.cell.key,
            r.status,
            human_bytes(r.size_bytes) if r.size_bytes else "-",
            f"{r.k:.3f}" if r.k is not None else "-",
            f"{r.k_drop_points:+.1f}" if r.k_drop_points is not None else "-",
            f"{100 * r.top1_agreement:.1f}%" if r.top1_agreement is not None else "-",
            *([bench or "-"] if benched else []),
            r.reason or "",
        )
    return table
