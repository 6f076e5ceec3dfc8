"""The four steps of a deployment, as exact commands for one pick: export on this machine, copy
to the device, run there, verify back here. `kolm export --preview` prints them and `kolm ui`
shows them; both read this module, so the page and the terminal cannot disagree."""

from __future__ import annotations

import math
import shlex

from kolm.api import Backend
from kolm.datamodel import KolmModel
from kolm.devices import MEASURED, DeviceProfile
from kolm.forecast import Forecast
from kolm.modelspec import ModelSpec
from kolm.plugins import Registry
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


def declared(reg: Registry, f: Forecast) -> Backend | None:
    """The declaration of forecast `f`'s backend, if it is installed (its handoff and device run)."""
    return reg.backend(f.backend).declared if f.backend_installed else None


def deployment_steps(
    f: Forecast,
    spec: ModelSpec,
    device: DeviceProfile,
    login: str | None = None,
    prompt: str = DEFAULT_PROMPT,
    backend: Backend | None = None,
) -> list[Step]:
    """Export, copy, run and verify for forecast `f` of `spec` on `device` (ssh `login` for the copy;
    the `backend` declaration's handoff and device run, where it has them)."""
    out = out_dir(spec, device, f.tier)
    artifact = spec.ref if spec.origin == "artifact" else f"{spec.name}.kolm"
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
    copy, run = copy_and_run(f, device, out, login, prompt, backend)
    verify = f"kolm verify {shlex.quote(out)} --against {shlex.quote(artifact)}"
    verify += f" --max-k-drop {budget:g}" if budget is not None else ""
    checked = "six checks, K measured again"
    if backend is not None and backend.device_run is not None:
        checked = f"checks 1-4; 5 and 6 fail as not run: kolm runs no {f.backend} export, so K is not measured"
    return [
        export,
        copy,
        run,
        Step(number=4, title="verify", where="this machine", command=verify, note=checked),
    ]


def copy_and_run(
    f: Forecast, device: DeviceProfile, out: str, login: str | None, prompt: str, backend: Backend | None
) -> tuple[Step, Step]:
    """Steps 2 and 3: `scp` and `kolm run` over ssh; nothing to copy for this machine's own row or the
    browser (`kolm serve`); the backend's handoff for a device that takes no files over ssh, and its
    device run where kolm cannot run the export."""
    handoff = backend.handoff if backend else None
    device_run = backend.device_run if backend else None
    run_command = f"kolm run {shlex.quote(out)} --prompt {shlex.quote(prompt)}"
    run_note = f"with kolm-core and the {f.backend} plugin installed there"
    if device_run is not None:
        run_command, run_note = device_run.command.format(out=shlex.quote(out)), device_run.note
    if device.memory_gb.source == MEASURED:  # this machine's own row
        copy = Step(
            number=2, title="copy", where="this machine", command=None, note="nothing to copy: the device is here"
        )
        return copy, Step(number=3, title="run", where="this machine", command=run_command)
    if device.kind == "browser":
        copy = Step(
            number=2,
            title="copy",
            where="this machine",
            command=None,
            note="nothing to copy: the browser loads it from kolm serve",
        )
        run = Step(
            number=3,
            title="run",
            where="this machine, in a browser",
            command=f"kolm serve {shlex.quote(out)}",
            note="open the printed URL and click Run; the weights stay cached in the browser",
        )
        return copy, run
    if handoff is not None:
        copy = Step(number=2, title="copy", where="this machine", command=None, note=handoff.transfer)
        return copy, Step(number=3, title="run", where=handoff.run_where, command=run_command, note=handoff.run_note)
    target = login or DEFAULT_LOGIN
    copy = Step(
        number=2,
        title="copy",
        where="this machine",
        command=f"scp -r {shlex.quote(out)} {target}:",
        note="" if login else f"replace {DEFAULT_LOGIN} with the device's ssh login",
    )
    run = Step(
        number=3,
        title="run",
        where=f"the {device.name} (ssh {target})",
        command=run_command,
        note=run_note,
    )
    return copy, run


def preview_json(f: Forecast, steps: list[Step]) -> dict:
    """`kolm export --preview --json` (and `kolm ui`'s /api/preview): the forecast with its steps."""
    return {**f.model_dump(), "steps": [step.model_dump() for step in steps]}
