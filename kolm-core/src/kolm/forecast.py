"""The forecast shown by the picker and `kolm export --preview`, computed before converting.

Size comes from the backend's per-tensor rule (`forecast_size`) for the chosen recipe, tokens/s
from its calibrated roofline (`forecast_throughput`), K-loss from what `kolm export` measured on
this model, else the recipe's drop measured on reference models, else typical per-tier deltas, and
the fit verdict from `need = size + 1 GB runtime overhead` against the device's memory
(docs/architecture.md, "Forecast").
A backend without a size model or calibration gets a nominal size and the bandwidth ceiling, labelled.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Literal

from kolm import history
from kolm.api import BackendPlugin, SizeForecast, ThroughputForecast, TierRecipe
from kolm.datamodel import KolmModel
from kolm.devices import DeviceProfile
from kolm.errors import BackendError, UsageError
from kolm.evalpack import default_eval_pack, default_pack_sha256
from kolm.modelspec import ModelSpec
from kolm.quant import DEFAULT_MAX_K_DROP, TIERS, TYPICAL_K_LOSS_POINTS, Tier
from kolm.throughput import ceiling

if TYPE_CHECKING:
    from kolm.plugins import Registry

RUNTIME_OVERHEAD_BYTES = 1_000_000_000
PASS_FRACTION = 0.80
# Bits per weight of each tier stored as blocks of 32 weights with one fp16 scale: b + 16/32.
NOMINAL_BITS = {"fp16": 16.0, "int8": 8.5, "int4": 4.5, "int3": 3.5}


class Fit(KolmModel):
    """Whether the export fits the device's memory, with the arithmetic that decided it."""

    verdict: Literal["pass", "tight", "over"]
    need_bytes: int
    memory_bytes: int
    weights_bytes: int
    overhead_bytes: int
    arithmetic: str


class TokS(KolmModel):
    """Decode tokens/s: the band claimed, how it was found (`forecast`, `ceiling`, `measured`), the
    arithmetic and constants behind it, and the command that measures it on the device itself."""

    low: float
    high: float
    method: str
    basis: str
    check: str = ""


class Forecast(KolmModel):
    """Everything the picker shows for one model × device × tier × backend. `command` is the
    `kolm export` to run, or None when the backend cannot export this model (`refusal` says why)."""

    model: str
    device: str
    tier: str
    backend: str
    backend_installed: bool
    recipe: str | None = None
    """The backend's recipe for the tier (`--recipe`); None when the backend is not installed."""
    spelling: str | None = None
    """The toolchain's own name for that recipe (`Q4_K_M`, `5-bit g32, embedding 8-bit`)."""
    refusal: str | None = None
    """Why `kolm export` would refuse this pick (the backend forecasts only, or cannot convert this
    model), None when it would export."""
    size_bytes: int
    size_method: str
    read_per_token_bytes: int
    tok_s: TokS
    k_loss_points: float
    k_loss_method: str
    fit: Fit
    command: str | None
    forecast_sources: list[str]
    notes: list[str] = []


def fit_verdict(
    size_bytes: int,
    memory_bytes: int,
    memory_kind: str,
    overhead_bytes: int = RUNTIME_OVERHEAD_BYTES,
    overhead: str = "runtime",
) -> Fit:
    """Weights plus `overhead_bytes` (the flat runtime allowance, or the KV cache of a context the
    user names) against the device's memory."""
    need = size_bytes + overhead_bytes
    ratio = need / memory_bytes
    verdict = "pass" if ratio <= PASS_FRACTION else "tight" if ratio <= 1.0 else "over"
    arithmetic = (
        f"need {size_bytes / 1e9:.2f} GB weights + {overhead_bytes / 1e9:.2f} GB {overhead}"
        f" = {need / 1e9:.2f} GB of {memory_bytes / 1e9:.1f} GB {memory_kind} ({ratio:.0%});"
        f" pass ≤ {PASS_FRACTION:.0%}, tight ≤ 100%"
    )
    return Fit(
        verdict=verdict,
        need_bytes=need,
        memory_bytes=memory_bytes,
        weights_bytes=size_bytes,
        overhead_bytes=overhead_bytes,
        arithmetic=arithmetic,
    )


def fit_for(spec: ModelSpec, size_bytes: int, memory_bytes: int, memory_kind: str, context: int | None) -> Fit:
    """The fit verdict: with the flat runtime allowance, or with the KV cache of `context` tokens."""
    if context is None:
        return fit_verdict(size_bytes, memory_bytes, memory_kind)
    kv = spec.kv_cache_bytes(context)
    label = f"KV cache for {context:,} tokens (f16; runtime buffers not counted)"
    return fit_verdict(size_bytes, memory_bytes, memory_kind, kv, label)


def recommend_backend(device: DeviceProfile, installed: set[str]) -> str:
    """The device's most preferred backend that is installed, else its most preferred one."""
    return next((b for b in device.backends if b in installed), device.backends[0])


def choose_backend(
    registry: Registry, spec: ModelSpec, device: DeviceProfile, tier: Tier
) -> tuple[str, dict[str, str | None]]:
    """(The backend a pick takes when the user names none, what each backend asked on the way answered
    to `cannot_export`): the device's most preferred installed backend that does not refuse `spec`,
    else `recommend_backend`'s. A tier a backend lacks, or a backend that only forecasts, is not a
    refusal here (the forecast reports it)."""
    installed = registry.backends()
    asked: dict[str, str | None] = {}
    for name in device.backends:
        owner = installed.get(name)
        if owner is None:
            continue
        if not owner.can_export:
            return name, asked
        try:
            asked[name] = owner.cannot_export(spec, tier, device)
        except BackendError:
            return name, asked
        if not asked[name]:
            return name, asked
    return recommend_backend(device, set(installed)), asked


def export_command(
    spec: ModelSpec, device: DeviceProfile, tier: str, backend: str, recommended: str, recipe: str | None = None
) -> str:
    """The `kolm export` that makes this pick (`--recipe` only for a recipe export would not pick itself)."""
    ref = spec.ref if spec.origin == "artifact" else f"{spec.name}.kolm"
    command = f"kolm export {shlex.quote(ref)} --target {device.slug} --quant {tier}"
    command += f" --backend {backend}" if backend != recommended else ""
    return command + (f" --recipe {shlex.quote(recipe)}" if recipe else "")


def nominal_size(spec: ModelSpec, tier: Tier, why: str) -> SizeForecast:
    """Tier bits per weight plus one fp16 scale per 32-weight block, labelled (`why` says what is missing)."""
    bits = NOMINAL_BITS[tier]
    weights = int(spec.inventory.params * bits / 8)
    read = sum(t.numel * spec.read_share(t.name) for t in spec.inventory.tensors)
    return SizeForecast(
        bytes=weights,
        read_per_token_bytes=int(read * bits / 8),
        method=f"nominal {bits:g} bits per weight ({why})",
    )


def size_of(
    backend: BackendPlugin | None,
    name: str,
    spec: ModelSpec,
    tier: Tier,
    device: DeviceProfile | None,
    recipe: TierRecipe | None = None,
) -> SizeForecast:
    """The backend's size forecast (for `recipe`, else the tier's default), or the nominal one when
    it has none (or is not installed)."""
    answer = backend.forecast_size(spec, tier, device, recipe) if backend else None
    return answer or nominal_size(spec, tier, f"backend {name} has no size model for {spec.arch}")


def speed_of(
    backend: BackendPlugin | None,
    name: str,
    device: DeviceProfile,
    spec: ModelSpec | None,
    tier: Tier,
    size: SizeForecast,
) -> ThroughputForecast:
    """The backend's calibrated decode forecast, or the labelled bandwidth ceiling without one."""
    answer = backend.forecast_throughput(device, spec, tier, size) if backend else None
    return answer or ceiling(device, size.read_per_token_bytes, f"no calibration for {name} on {device.kind}")


def forecast(
    registry: Registry,
    spec: ModelSpec,
    device: DeviceProfile,
    tier: Tier,
    backend: str | None = None,
    memory_gb: float | None = None,
    context: int | None = None,
    recipe_name: str | None = None,
) -> Forecast:
    """Forecast one pick with the backend's recipe `recipe_name` (without one, the tier's first recipe
    the backend takes for `spec`: `BackendPlugin.recipe_for`; the fit with the KV cache of `context`
    tokens when given). Raises `BackendError` when the backend cannot do `tier`, `UsageError` for a
    recipe it does not list."""
    recommended, asked = choose_backend(registry, spec, device, tier)
    name = backend or recommended
    if name not in device.backends:
        raise UsageError(f"{device.name} is not a {name} target; its backends: {', '.join(device.backends)}")
    owner = registry.backend(name) if registry.declared(name) else None  # one line if declared but unusable
    notes, refusal, recipe = [], None, None
    if owner is None:
        if recipe_name:
            raise UsageError(f"--recipe needs backend {name} installed to list its recipes; pip install kolm-{name}")
        notes.append(f"backend {name} is not installed (pip install kolm-{name}); nominal forecast")
    else:
        recipe = owner.recipe_for(spec, tier, device, recipe_name)
        if not owner.can_export:
            refusal = f"{owner.distribution} {owner.version} forecasts only"
        elif name in asked and recipe_name is None:
            refusal = asked[name]
        else:
            refusal = owner.cannot_export(spec, tier, device, recipe)
        if refusal:
            notes.append(f"{name} cannot export {spec.name}: {refusal}")
    size = size_of(owner, name, spec, tier, device, recipe)
    speed = speed_of(owner, name, device, spec, tier, size)
    tok_s = TokS(low=speed.low, high=speed.high, method=speed.method, basis=speed.basis)
    sources = [*speed.sources, *spec.sources]
    measured = history.latest_bench(device, spec.name, tier, name)
    if measured:
        tg = measured.result.tg
        notes.append(f"forecast was {speed.low:.1f}–{speed.high:.1f} tok/s ({speed.basis})")
        tok_s = TokS(
            low=tg.mean - tg.sd,
            high=tg.mean + tg.sd,
            method="measured",
            basis=f"kolm bench {measured.measured_at}: tg{measured.result.n_gen} {tg.mean:.1f} ± {tg.sd:.1f} "
            f"tok/s ({measured.result.runtime}, {measured.result.threads} threads)",
        )
        sources = [str(history.log_path("bench"))]
    memory_bytes = int(memory_gb * 1e9) if memory_gb else device.memory_bytes
    k_loss, k_method, this_model = typical_k_loss(spec, tier, recipe)
    pack = spec.eval_pack_sha256 or default_pack_sha256(default_eval_pack())  # the pack an export would score
    measured_k = history.latest_k(spec.name, tier, name, recipe.name, pack) if recipe else None
    chosen = recipe_name if recipe_name and recipe != owner.recipe_for(spec, tier, device) else None
    command = None if refusal else export_command(spec, device, tier, name, recommended, chosen)
    if command:
        tok_s.check = f"on the {device.name} itself: {command} -o EXPORT && kolm bench EXPORT --device {device.slug}"
    if measured_k is not None and measured_k.k.drop_points is not None:
        k_loss, this_model = measured_k.k.drop_points, True
        k_method = (
            f"measured by kolm export {measured_k.measured_at}: K {measured_k.k.score:.3f} vs fp16 "
            f"{measured_k.k.fp16_reference:.3f} on {measured_k.k.items} items"
        )
    if k_loss > DEFAULT_MAX_K_DROP and command:
        if this_model:
            command += " --allow-drop"
        notes.append(
            f"the {'measured' if this_model else 'expected'} K drop exceeds the default --max-k-drop "
            f"{DEFAULT_MAX_K_DROP:g}" + ("" if this_model else "; kolm export fails if this model's drop does too")
        )
    if spec.active_params < spec.inventory.params:
        notes.append(
            f"mixture of experts: a token reads {spec.config['num_experts_per_tok']} of {spec.config['num_experts']}"
            f" experts ({spec.active_params / 1e9:.2f} B of {spec.inventory.params / 1e9:.2f} B parameters active);"
            " speed counts those, size all of them"
        )
    if spec.origin == "artifact" and spec.quant != "fp16":
        notes.append(f"the artifact already holds {spec.quant} weights; loss is counted from there")
    return Forecast(
        model=spec.name,
        device=device.name,
        tier=tier,
        backend=name,
        backend_installed=owner is not None,
        recipe=recipe.name if recipe else None,
        spelling=recipe.spelling if recipe else None,
        refusal=refusal,
        size_bytes=size.bytes,
        size_method=size.method,
        read_per_token_bytes=size.read_per_token_bytes,
        tok_s=tok_s,
        k_loss_points=k_loss,
        k_loss_method=k_method,
        fit=fit_for(spec, size.bytes, memory_bytes, device.memory_kind, context),
        command=command,
        forecast_sources=list(dict.fromkeys(sources)),
        notes=notes,
    )


def typical_k_loss(spec: ModelSpec, tier: Tier, recipe: TierRecipe | None) -> tuple[float, str, bool]:
    """(K-loss to expect before `kolm export` measures it, how it was found, whether it was measured
    on this very model): the recipe's drop measured on this model, else the mean of the drops it
    showed on the reference models (a K that rose counts as no loss), else kolm's per-tier planning
    delta."""
    if spec.quant == "fp16" and recipe is not None and recipe.measured_drop is not None:
        measured = recipe.measured_drop
        if spec.name in measured.points:
            loss = max(0.0, measured.points[spec.name])
            return loss, f"measured for this recipe on this model: {measured.describe()}", True
        mean = sum(max(0.0, points) for points in measured.points.values()) / len(measured.points)
        how = f"mean of the drops measured for this recipe on other models, a rise as 0: {measured.describe()}"
        return mean, f"{how}; {spec.name} not measured", False
    loss = max(0.0, TYPICAL_K_LOSS_POINTS[tier] - TYPICAL_K_LOSS_POINTS[spec.quant])
    return (
        loss,
        (f"typical delta vs fp16 for {tier} until kolm export measures it (kolm's planning figure, not a measurement)"),
        False,
    )


def pick(
    registry: Registry,
    spec: ModelSpec,
    devices: list[DeviceProfile],
    tiers: tuple[str, ...] = TIERS,
    context: int | None = None,
    recipe_name: str | None = None,
) -> list[Forecast]:
    """The picker: one forecast per device and tier with each device's recommended backend.
    Tiers the recommended backend refuses are left out, and with `recipe_name` the rows whose
    backend has no recipe of that name (a `UsageError` when that leaves none)."""
    rows = []
    for device in devices:
        for tier in tiers:
            try:
                rows.append(forecast(registry, spec, device, tier, context=context, recipe_name=recipe_name))
            except BackendError:
                continue
            except UsageError:
                if recipe_name is None:
                    raise
    if recipe_name and not rows:
        raise UsageError(f"no backend of these devices has a recipe {recipe_name!r} for {', '.join(tiers)}")
    return rows
