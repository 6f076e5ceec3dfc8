"""The report of a `kolm matrix` run: one self-contained HTML page (no script, no network) with the
table of every cell and, per device, K against size on disk with the Pareto front marked (the cells
no other cell of that device beats on both: smaller and at least as good a K)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from kolm.render import human_bytes

WIDTH, HEIGHT, PAD = 520, 300, 48
LABEL = 40  # room right of the largest point for its label
COLUMNS = [
    ("artifact", "artifact"),
    ("model", "model"),
    ("device", "device"),
    ("tier", "tier"),
    ("backend", "backend"),
    ("fit", "fit"),
    ("status", "status"),
    ("size", "size (forecast)"),
    ("tok_s", "tok/s (forecast)"),
    ("bench", "tok/s measured (machine)"),
    ("k", "K (fp16)"),
    ("k_drop_points", "K drop, points"),
    ("fidelity", "top-1 / mean KL"),
    ("reason", "why not"),
]


def pareto(points: list[tuple[float, float, str]]) -> set[str]:
    """Keys of the (size, K, key) points no other point beats: smaller or equal size with a higher K,
    or smaller size with an equal K."""
    front, best = set(), float("-inf")
    for _size, k, key in sorted(points, key=lambda p: (p[0], -p[1])):
        if k > best:
            front.add(key)
            best = k
    return front


def _cell(row: dict, column: str) -> str:
    if column == "size":
        actual = human_bytes(row["size_bytes"]) if row["size_bytes"] else "-"
        return f"{actual} ({human_bytes(row['forecast_bytes'])})" if row["forecast_bytes"] else actual
    if column == "tok_s":
        if row["tok_s_low"] is None:
            return "-"
        return f"{row['tok_s_low']:.0f}–{row['tok_s_high']:.0f} ({escape(row['tok_s_method'])})"
    if column == "bench":
        if row["bench_tg_tok_s"] is not None:
            return f"{row['bench_tg_tok_s']:.1f} ({escape(row['bench_machine'])})"
        return f"- ({escape(row['bench_note'])})" if row["bench_note"] else "-"
    if column == "k":
        if row["k"] is None:
            return "-"
        return f"{row['k']:.3f}" + (f" ({row['k_fp16']:.3f})" if row["k_fp16"] is not None else "")
    if column == "fidelity":
        if row["top1_agreement"] is None:
            return "-"
        return f"{100 * row['top1_agreement']:.1f}% / {row['mean_kl']:.4f}"
    if column == "artifact":
        return escape(Path(row["artifact"]).name)
    value = row[column]
    return "-" if value is None else escape(f"{value:+.1f}" if isinstance(value, float) else str(value))


def plot(device: str, rows: list[dict]) -> str:
    """An SVG scatter of K (y) against size on disk (x) of `device`'s measured cells."""
    points = [(r["size_bytes"], r["k"], f"{Path(r['artifact']).stem} {r['tier']}") for r in rows if r["k"] is not None]
    if not points:
        return f"<p>{escape(device)}: no cell measured K.</p>"
    front = pareto(points)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(0.0, min(ys)), max(1.0, max(ys))

    def at(size: float, k: float) -> tuple[float, float]:
        x = PAD + (size - x0) / (x1 - x0) * (WIDTH - 2 * PAD - LABEL)
        return x, HEIGHT - PAD - (k - y0) / (y1 - y0) * (HEIGHT - 2 * PAD)

    marks = []
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (at(s, k) for s, k, key in sorted(points) if key in front))
    marks.append(f'<polyline points="{line}" fill="none" stroke="#c33" stroke-width="1.5"/>')
    for size, k, key in sorted(points, key=lambda p: p[2] in front):  # the front drawn last, on top
        x, y = at(size, k)
        fill = "#c33" if key in front else "#889"
        marks.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{fill}"><title>{escape(key)}: '
                     f"K {k:.3f}, {human_bytes(size)}</title></circle>")  # fmt: skip
        tier = key.rsplit(" ", 1)[-1]  # the whole name is the point's tooltip; the tier is its label
        marks.append(f'<text x="{x + 6:.1f}" y="{y - 6:.1f}" font-size="10">{escape(tier)}</text>')
    axes = (
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>'
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" font-size="11" text-anchor="middle">size on disk '
        f"({human_bytes(x0)} – {human_bytes(x1)})</text>"
        f'<text x="14" y="{HEIGHT / 2}" font-size="11" transform="rotate(-90 14 {HEIGHT / 2})" '
        f'text-anchor="middle">K ({y0:.2f} – {y1:.2f})</text>'
    )
    title = f"<h3>{escape(device)}: K against size, the Pareto front in red</h3>"
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img">'
    return f"{title}{svg}{axes}{''.join(marks)}</svg>"


def report_html(table: list[dict], title: str = "kolm matrix", nav: str = "") -> str:
    """The page: the table, then one plot per device (`nav`: links put above the title)."""
    head = "".join(f"<th>{escape(label)}</th>" for _, label in COLUMNS)
    body = (
        "".join(
            f'<tr class="{escape(r["status"])}">' + "".join(f"<td>{_cell(r, c)}</td>" for c, _ in COLUMNS) + "</tr>"
            for r in table
        )
        or f'<tr><td colspan="{len(COLUMNS)}">No cell has finished yet.</td></tr>'
    )
    devices = list(dict.fromkeys(r["device"] for r in table))
    plots = "".join(plot(d, [r for r in table if r["device"] == d and r["status"] == "ok"]) for d in devices)
    style = (
        "body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}tr.failed{background:#fee}"
        "tr.skipped{color:#777}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{style}</style></head><body>{nav}<h1>{escape(title)}</h1>"
        "<p>Sizes and K are measured on each export. tok/s (forecast) is the device's, from its "
        "forecast (or a logged bench of that device); tok/s measured (<code>--bench</code>) is the "
        "decode speed of the machine named, which exported the cell, not of the device.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{plots}</body></html>"
    )


def write_report(out: Path, table: list[dict]) -> Path:
    """OUT/report.html, written atomically."""
    from kolm.atomic import atomic_file

    target = out / "report.html"
    with atomic_file(target) as tmp:
        Path(tmp).write_text(report_html(table), encoding="utf-8")
    return target
