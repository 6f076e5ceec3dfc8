"""The four steps of a deployment, as exact commands for one pick: export on this machine, copy
to the device, run there, verify back here. `kolm export --preview` prints them and `kolm ui`
shows them; both read this module, so the page and the terminal cannot disagree."""

from __future__ import annotations

import math
import shlex

from kolm.datamodel import KolmModel
from kolm.devices import MEASURED, DeviceProfile
from kolm.forecast import Forecast
from kolm.modelspec import ModelSpec
from kolm.quant import DEFAULT_MAX_K_DROP

DEFAULT_LOGIN = "USER@HOST"  # shown until the user names the device's ssh login
DEFAULT_PROMPT = "What is the capital of France?"


class Step(KolmModel):
    """One step: where it runs, what it does, and the command (None when the pick cannot do it)."""

    number: int
    title: str
    where: str
    command: str | None
    note: str = ""


def out_dir(spec: ModelSpec, device: DeviceProfile, tier: str) -> str:
    """The export folder `kolm export` writes when not given `-o`."""
    return f"{spec.name}-{device.slug}-{tier}"


def verify_budget(f: Forecast) -> float | None:
    """The `--max-k-drop` that verify needs when the export had to `--allow-drop`: the measured drop
    rounded up, plus one point of margin (one item of a 100-item pack) for another CPU's rounding."""
    if f.command is None or "--allow-drop" not in f.command:
        return None
    return float(math.ceil(f.k_loss_points) + 1)


def deployment_steps(
    f: Forecast, spec: ModelSpec, device: DeviceProfile, login: str | None = None, prompt: str = DEFAULT_PROMPT
) -> list[Step]:
    """Export, copy, run and verify for forecast `f` of `spec` on `device` (ssh `login` for the copy)."""
    out = out_dir(spec, device, f.tier)
    artifact = spec.ref if spec.origin == "artifact" else f"{spec.name}.kolm"
    here = device.memory_gb.source == MEASURED  # this machine's own row: nothing to copy
    browser = device.kind == "browser"
    budget = verify_budget(f)
    if f.command is None:
        export = Step(
            number=1, title="export", where="this machine", command=None, note=f"{f.backend} cannot: {f.refusal}"
        )
    else:
        note = "" if spec.origin == "artifact" else f"needs the weights as {artifact}: kolm pack FOLDER -o {artifact}"
        warnings = [
            "" if f.backend_installed else f"install the {f.backend} backend here first",
            f"the K drop ({f.k_loss_points:.1f} points) exceeds {DEFAULT_MAX_K_DROP:g}" if budget is not None else "",
            f"it will not fit: {f.fit.arithmetic}" if f.fit.verdict == "over" else "",
        ]
        note = "; ".join(filter(None, [note, *warnings]))
        export = Step(
            number=1, title="export", where="this machine", command=f"{f.command} -o {shlex.quote(out)}", note=note
        )
    if here or browser:
        copy = Step(
            number=2,
            title="copy",
            where="this machine",
            command=None,
            note="nothing to copy: " + ("the browser loads it from kolm serve" if browser else "the device is here"),
        )
    else:
        target = login or DEFAULT_LOGIN
        copy = Step(
            number=2,
            title="copy",
            where="this machine",
            command=f"scp -r {shlex.quote(out)} {target}:",
            note="" if login else f"replace {DEFAULT_LOGIN} with the device's ssh login",
        )
    if browser:
        run = Step(
            number=3,
            title="run",
            where="this machine, in a browser",
            command=f"kolm serve {shlex.quote(out)}",
            note="open the printed URL and click Run; the weights stay cached in the browser",
        )
    else:
        run = Step(
            number=3,
            title="run",
            where="this machine" if here else f"the {device.name} (ssh {login or DEFAULT_LOGIN})",
            command=f"kolm run {shlex.quote(out)} --prompt {shlex.quote(prompt)}",
            note="" if here else f"with kolm-core and the {f.backend} plugin installed there",
        )
    verify = f"kolm verify {shlex.quote(out)} --against {shlex.quote(artifact)}"
    verify += f" --max-k-drop {budget:g}" if budget is not None else ""
    return [
        export,
        copy,
        run,
        Step(number=4, title="verify", where="this machine", command=verify, note="six checks, K measured again"),
    ]


def preview_json(f: Forecast, steps: list[Step]) -> dict:
    """`kolm export --preview --json` (and `kolm ui`'s /api/preview): the forecast with its steps."""
    return {**f.model_dump(), "steps": [step.model_dump() for step in steps]}
