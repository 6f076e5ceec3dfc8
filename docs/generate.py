#!/usr/bin/env python3
"""Fill the generated regions of docs/*.md from kolm's own tables, so a page cannot disagree with
the code: device rows, forecasts, tier spellings and the RS-1 schema. A region is

    <!-- generated: NAME ARG ... -->
    ...the table this script writes...
    <!-- /generated -->

`python3 docs/generate.py` rewrites them (with every plugin of this repo installed: `python3 dev.py
docs`); `--check` exits 1 naming the stale pages (tests/test_docs.py runs it).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REGION = re.compile(r"(<!-- generated: (?P<name>[a-z-]+)(?P<args>[^>]*) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)


def registry():
    from kolm.plugins import registry

    return registry()


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def forecasts(args: list[str]) -> str:
    """`forecasts DEVICE MEMORY,MEMORY TIER,TIER MODEL ...`: size, tok/s and the fit at each memory size."""
    from kolm.forecast import forecast
    from kolm.modelspec import resolve_model
    from kolm.render import human_bytes, tok_s

    reg = registry()
    device, memories, tiers, models = reg.device(args[0]), args[1].split(","), args[2].split(","), args[3:]
    header = ["model", "tier", "backend", "size on disk", "decode tok/s", *(f"fit, {m} GB" for m in memories)]
    rows = []
    for model in models:
        spec = resolve_model(model)
        for tier in tiers:
            fits = [forecast(reg, spec, device, tier, memory_gb=float(m)) for m in memories]
            f, verdicts = fits[0], [x.fit.verdict.upper() for x in fits]
            rows.append([model, tier, f.backend, human_bytes(f.size_bytes), tok_s(f), *verdicts])
    source = f"{device.name}: [{device.bandwidth_gbps.value:g} GB/s]({device.bandwidth_gbps.source})"
    return markdown_table(header, rows) + f"\nForecasts, not measurements; memory bandwidth of the {source}.\n"


def devices(args: list[str]) -> str:
    """`devices KIND,KIND`: the rows of those kinds, with their sources."""
    kinds = args[0].split(",")

    def memory(r) -> str:
        sold = f" (sold with {', '.join(f'{m:g}' for m in r.memory_options_gb)})"
        return f"{r.memory_gb.value:g} GB {r.memory_kind}" + (sold if len(r.memory_options_gb) > 1 else "")

    rows = [
        [
            r.name,
            f"`{r.slug}`",
            memory(r),
            f"[{r.bandwidth_gbps.value:g} GB/s]({r.bandwidth_gbps.source})",
            " > ".join(r.backends),
        ]
        for r in registry().devices().rows
        if r.kind in kinds
    ]
    return markdown_table(["device", "--target", "memory", "bandwidth", "backends"], rows)


def ladder(args: list[str]) -> str:
    """`ladder MODEL TIER`: one device per kind (the slowest and the fastest), and the forecast for MODEL."""
    from kolm.forecast import forecast
    from kolm.modelspec import resolve_model
    from kolm.render import tok_s

    reg = registry()
    spec, tier = resolve_model(args[0]), args[1]
    rows = []
    by_kind: dict[str, list] = {}
    for row in reg.devices().rows:
        by_kind.setdefault(row.kind, []).append(row)
    order = ["browser", "sbc", "phone", "edge-gpu", "laptop", "desktop", "desktop-gpu"]
    for kind in order:
        picks = sorted(by_kind.get(kind, []), key=lambda r: r.bandwidth_gbps.value)
        for row in picks[:1] + picks[-1:] if len(picks) > 1 else picks:
            f = forecast(reg, spec, row, tier)
            rows.append(
                [
                    kind,
                    row.name,
                    f"{row.memory_gb.value:g} GB",
                    f"{row.bandwidth_gbps.value:g} GB/s",
                    f.backend,
                    tok_s(f),
                    f.fit.verdict.upper(),
                ]
            )
    header = ["kind", "device", "memory", "bandwidth", "backend", f"{args[0]} {tier} tok/s", "fit"]
    return markdown_table(header, rows) + "\nForecasts, not measurements (`kolm pick` shows every row).\n"


def tiers(args: list[str]) -> str:
    """`tiers`: each installed backend's recipe per tier (`backend.json`), the default first."""
    from kolm.quant import TIERS

    backends = {name: owner for name, owner in registry().backends().items() if not owner.declared.builds_on}
    rows = []
    for tier in TIERS:
        cells = []
        for owner in backends.values():
            recipes = owner.table.tier_recipes(tier) if tier in owner.table.tiers else []
            cells.append(", ".join(f"`{r.name}`" for r in recipes) or "—")
        rows.append([tier, *cells])
    return markdown_table(["tier", *backends], rows)


def manifest_fields(args: list[str]) -> str:
    """`manifest-fields`: the RS-1 manifest's fields, from `kolm schema`."""
    from kolm.manifest import rs1_json_schema

    schema = rs1_json_schema()
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema["properties"].items():
        options = [p.get("type") or p.get("$ref", "?").split("/")[-1] for p in prop.get("anyOf", [prop])]
        kind = " or ".join(o for o in options if o != "?") or "object"
        description = " ".join(prop.get("description", "").split())
        rows.append([f"`{name}`", kind, "yes" if name in required else "no", description])
    return markdown_table(["field", "type", "required", "meaning"], rows)


GENERATORS = {
    "forecasts": forecasts,
    "devices": devices,
    "ladder": ladder,
    "tiers": tiers,
    "manifest-fields": manifest_fields,
}


def render(text: str) -> str:
    def fill(match: re.Match) -> str:
        body = GENERATORS[match["name"]](match["args"].split())
        return f"{match.group(1)}{body}{match.group(5)}"

    return REGION.sub(fill, text)


def main(check: bool) -> int:
    # The tables are what kolm ships, not this machine's logs: no saved host, no user rows, no
    # measured tok/s or K from $KOLM_HOME.
    saved = os.environ.get("KOLM_HOME")
    try:
        with tempfile.TemporaryDirectory(prefix="kolm-docs-") as home:
            os.environ["KOLM_HOME"] = home
            stale = [page.name for page in sorted(DOCS.glob("*.md")) if refresh(page, write=not check)]
    finally:
        if saved is None:
            del os.environ["KOLM_HOME"]
        else:
            os.environ["KOLM_HOME"] = saved
    if check and stale:
        print(f"stale generated tables in {', '.join(stale)}: run python3 dev.py docs", file=sys.stderr)
        return 1
    print(f"{'stale' if stale else 'up to date'}: {', '.join(stale) or 'every page'}")
    return 0


def refresh(page: Path, write: bool) -> bool:
    """Whether `page`'s generated regions were stale (rewritten when `write`)."""
    text = page.read_text()
    new = render(text)
    if new != text and write:
        page.write_text(new)
    return new != text


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
