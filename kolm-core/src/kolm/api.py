"""The plugin API's types: everything a hook receives or returns, importable at run time.

A plugin author needs `kolm.hookimpl`, the hooks documented in `kolm.hookspecs`, and the names
below. Requests and results cross the boundary as pydantic models; `Session` is the one abstract
class a backend subclasses. The core types a hook receives (`DeviceProfile`, `ModelSpec`,
`Manifest`, ...) are defined in their own modules and re-exported here.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from kolm.datamodel import KolmModel
from kolm.devices import DeviceKind, DeviceProfile, Sourced
from kolm.errors import BackendError, PluginError, ToolchainMissingError, UsageError
from kolm.home import kolm_home
from kolm.inventory import Inventory, Tensor
from kolm.manifest import Fidelity, Manifest
from kolm.modelspec import ModelSpec
from kolm.quant import TIERS, Tier

__all__ = [
    "TIERS",
    "Backend",
    "BackendPlugin",
    "BenchRequest",
    "BenchResult",
    "DeviceKind",
    "DeviceProfile",
    "ExportRequest",
    "ExportResult",
    "Fidelity",
    "Generation",
    "Inventory",
    "Manifest",
    "MeasuredDrop",
    "ModelSpec",
    "PayloadFacts",
    "Rate",
    "RunRequest",
    "Session",
    "SizeForecast",
    "Sourced",
    "Steps",
    "Tensor",
    "ThroughputForecast",
    "Tier",
    "TierRecipe",
    "UiPage",
    "Flags",
    "kolm_home",
    "peak_rss_bytes",
    "silent",
    "toolchain_versions",
]

Flags = dict[str, str | int | float | bool]

Steps = Callable[[str], AbstractContextManager[Callable[[int, int], None]]]
"""`steps(description)` opens one step of a long job (a progress bar on a terminal); the context
yields `advance(done, total)` to report progress within the step."""


@contextmanager
def silent(description: str) -> Iterator[Callable[[int, int], None]]:
    """A `Steps` that shows nothing (library use, tests)."""
    yield lambda done, total: None


# -- what a backend declares ---------------------------------------------------------------------


class MeasuredDrop(KolmModel):
    """A recipe's K drop measured on reference models, the forecast's K-loss until `kolm export`
    measures it for the user's own model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points: dict[str, float] = Field(
        min_length=1, description="Model name -> K drop in points (K x 100) below the same backend's fp16 export."
    )
    source: str = Field(description="How it was measured: the benchmark command and the table it printed.")

    def describe(self) -> str:
        """Each model's drop and the source (`SmolLM2-135M-Instruct 6.1, ... (benchmarks/...)`)."""
        return ", ".join(f"{model} {points:.1f}" for model, points in self.points.items()) + f" ({self.source})"


class TierRecipe(KolmModel):
    """How a backend makes one tier. In `backend.json` a bare string stands for `{"spelling": ...}`;
    a recipe without a `name` is named after its spelling (`4-bit g64` -> `4-bit-g64`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$", description="What `--recipe` and the manifest call the recipe."
    )
    spelling: str = Field(description="The toolchain's own name for the tier (`Q4_K_M`, `4-bit g64`); shown to users.")
    options: Flags = Field(
        {}, description="The toolchain options that make the tier (bits, group size ...), passed on by the export."
    )
    measured_drop: MeasuredDrop | None = Field(
        None, description="K drop measured on reference models; the forecast's typical loss for this recipe."
    )

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"spelling": data}
        if isinstance(data, dict) and "name" not in data and isinstance(data.get("spelling"), str):
            data = {**data, "name": data["spelling"].replace(" ", "-").replace(",", "")}
        return data


class Handoff(KolmModel):
    """How an export reaches a device that takes no files over ssh (a stock iPhone): what the copy
    step says instead of `scp`, and where the run step runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transfer: str = Field(description="What the user does instead of copying the folder over ssh.")
    run_where: str = Field(description="Where `kolm run` runs the export (the device itself cannot).")
    run_note: str = Field("", description="What else the user needs there, or how the device runs it.")


class DeviceRun(KolmModel):
    """How the device runs an export when kolm does not (`kolm run` is the default run step)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str = Field(description="The command, `{out}` standing for the export folder.")
    note: str = Field("", description="What the device needs for it.")


class Backend(KolmModel):
    """A backend as its plugin declares it (`backend.json`, or the `backend` hook).

    A backend owns a tier table, or says it `builds_on` another backend whose tier table and
    payload it reuses (the browser bundle builds on the GGUF backend); never both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="The name device rows and `--backend` use.")
    description: str = Field(description="One line: what the payload is and which toolchain makes it.")
    tiers: dict[Tier, TierRecipe] = Field(
        {}, description="Every tier the backend makes (a bare string is a spelling); others are refused."
    )
    alternatives: dict[Tier, list[TierRecipe]] = Field(
        {},
        description="Other recipes for a tier of `tiers`, chosen with `--recipe NAME`; the tier's own is the default.",
    )
    builds_on: str | None = Field(None, description="The backend whose tier table and payload this one reuses.")
    toolchain: list[str] = Field([], description="Import names `kolm plugins` checks with importlib (never imports).")
    install: str = Field(description="The command that installs the toolchain, shown when a module is missing.")
    handoff: Handoff | None = Field(
        None, description="Set when the backend's devices take no files over ssh; replaces the copy and run steps."
    )
    device_run: DeviceRun | None = Field(
        None, description="Set when kolm cannot run the exports: the run step's command on the device instead."
    )
    runs_on: list[str] = Field(
        [],
        description="Names of device rows (another plugin's) this backend runs on: kolm adds it to their "
        "backends, after the rows' own. A name no installed plugin has a row for is left out.",
    )

    @model_validator(mode="after")
    def _one_tier_table(self) -> Backend:
        if bool(self.tiers) == bool(self.builds_on):
            raise ValueError("give either `tiers` or `builds_on`, not both or neither")
        for tier, others in self.alternatives.items():
            if tier not in self.tiers:
                raise ValueError(f"alternatives for {tier}, a tier `tiers` does not make")
            names = [self.tiers[tier].name, *(r.name for r in others)]
            if len(set(names)) < len(names):
                raise ValueError(f"two {tier} recipes share a name: {', '.join(names)}")
        return self

    def tier_recipes(self, tier: Tier) -> list[TierRecipe]:
        """The recipes for `tier` (one of `tiers`): its default, then its alternatives."""
        return [self.tiers[tier], *self.alternatives.get(tier, [])]

    def recipes(self) -> list[tuple[Tier, TierRecipe]]:
        """Every (tier, recipe) the backend makes: each tier's default, then its alternatives."""
        return [(tier, recipe) for tier in self.tiers for recipe in self.tier_recipes(tier)]

    def recipe_names(self) -> dict[Tier, list[str]]:
        """Tier -> the names `--recipe` takes, the default first."""
        names: dict[Tier, list[str]] = {}
        for tier, recipe in self.recipes():
            names.setdefault(tier, []).append(recipe.name)
        return names

    def toolchain_status(self) -> dict[str, bool]:
        """Whether each toolchain module is importable, found without importing it."""
        import importlib.util

        return {module: importlib.util.find_spec(module) is not None for module in self.toolchain}

    def require(self, *modules: str) -> None:
        """`ToolchainMissingError`, one line naming the first of `modules` that cannot be imported here
        (found without importing it) and `install`."""
        import importlib.util

        for module in modules:
            if importlib.util.find_spec(module) is None:
                raise ToolchainMissingError(f"{module} is not installed; {self.install}")


class UiPage(KolmModel):
    """A page a plugin adds to `kolm ui`: the files of `folder` in `package`, served under `/ROUTE/`,
    opening at `entry`. Static files only (no build step); they may call the picker's JSON API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    route: str = Field(pattern=r"^[a-z][a-z0-9-]*$", description="The URL path: `verify` serves `/verify/`.")
    title: str = Field(description="The link's text in the page header.")
    package: str = Field(description="The Python package holding the files.")
    folder: str = Field(description="The folder inside `package`.")
    entry: str = Field("index.html", description="The file `/ROUTE/` opens.")


# -- forecasts -----------------------------------------------------------------------------------


class SizeForecast(KolmModel):
    """The bytes an export will hold on disk, computed before converting."""

    bytes: int = Field(ge=0)
    """Every payload file together."""
    read_per_token_bytes: int = Field(gt=0)
    """What decoding one token reads: the weights, less the input embedding (one row is gathered)."""
    method: str
    """How it was computed, for humans (`llama.cpp Q4_K_M per-tensor rule (...)`)."""
    tensor_types: dict[str, int] = {}
    """Optional: how many tensors of each stored type."""


class ThroughputForecast(KolmModel):
    """Decode speed on a device: a range in tokens/s, how it was obtained, and from what."""

    low: float = Field(gt=0)
    high: float = Field(gt=0)
    method: Literal["forecast", "ceiling", "measured"]
    """`forecast`: a calibrated roofline; `ceiling`: the uncalibrated bandwidth bound;
    `measured`: a logged `kolm bench`."""
    basis: str
    """The arithmetic, human readable (`0.53–0.62 × 17.07 GB/s / 0.106 GB per token`)."""
    sources: list[str]
    """URLs (or the bench log) every constant of `basis` comes from."""


# -- export --------------------------------------------------------------------------------------


class ExportRequest(KolmModel):
    """Convert the Hugging Face folder `model_dir` (extracted from the artifact, SHA-256 checked)
    to this backend at `tier` for `device`, writing the payload into `out_dir`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    manifest: Manifest
    """The source artifact's manifest (`base` names the model)."""
    model_dir: Path
    """Config, float16 safetensors and tokenizer files, Hugging Face layout."""
    tier: Tier
    recipe: TierRecipe
    """The backend's recipe for `tier`, from its tier table."""
    device: DeviceProfile | None
    """The target; None for the fp16 reference exports kolm makes for K and fidelity."""
    out_dir: Path
    """An empty staging folder the core renames into place only when the whole export succeeded."""
    work_dir: Path
    """Scratch space on the same filesystem, removed afterwards."""
    steps: Steps = Field(default=silent, exclude=True)
    """Opens a progress step: `with request.steps("quantizing") as advance: ...`."""

    @property
    def spelling(self) -> str:
        return self.recipe.spelling


class ExportResult(KolmModel):
    """What an export wrote (they go into `kolm-export.json` and its lockfile)."""

    payload: list[str] = Field(min_length=1)
    """The payload's files relative to `out_dir`, main file first."""
    toolchain: dict[str, str]
    """Distribution -> version of everything that made the payload."""
    flags: Flags
    """The exact options, so the same inputs and versions give the same bytes."""


# -- running -------------------------------------------------------------------------------------


class RunRequest(KolmModel):
    """Open the export in folder `path`."""

    path: Path
    payload: list[str]
    """The payload's files, main file first, as the export listed them."""
    n_ctx: int = 2048
    threads: int | None = None
    """CPU threads; None lets the runtime choose (usually every core)."""
    seed: int = 0


class PayloadFacts(KolmModel):
    """What a payload says about itself, read from its own files (`kolm verify` checks 1 and 4)."""

    manifest_json: str | None
    """The manifest `embed_manifest` wrote, or None if the payload carries none."""
    tier: Tier | None
    """The tier the stored tensor types show, or None if they match no tier of the backend."""
    recipe: str | None = None
    """The name of the backend's recipe (of `tier`) the stored types show, or None if they match none."""
    types: str
    """A summary of the stored types for humans ("16 Q4_K, 14 Q6_K, 166 Q5_0")."""


class Generation(Iterator[str]):
    """Generated text, piece by piece, that counts the tokens behind it: what kolm's
    OpenAI-compatible server reports as `usage` once the pieces are consumed. `decode` turns the
    token ids of `tokens` into text pieces; a session whose `generate` returns one of these gets
    token counts in the server's answers."""

    def __init__(
        self, prompt_tokens: int, tokens: Iterator[int], decode: Callable[[Iterator[int]], Iterator[str]]
    ) -> None:
        self.prompt_tokens, self.completion_tokens = prompt_tokens, 0
        self._pieces = decode(self._counted(tokens))

    def _counted(self, tokens: Iterator[int]) -> Iterator[int]:
        for token in tokens:
            self.completion_tokens += 1
            yield token

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop generating (a client stopped reading, or a stop string was reached)."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()


class Session(ABC):
    """An open model. `kolm run`, K-scoring, fidelity and the servers all go through it."""

    @abstractmethod
    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Iterator[str]:
        """Greedy continuation of `prompt`, yielded piece by piece (one piece when not streaming).
        With `chat`, the prompt is one user turn wrapped in the model's chat template."""

    @abstractmethod
    def loglikelihood(self, context: str, continuation: str) -> float:
        """Sum of log-probabilities of `continuation`'s tokens given `context`."""

    @property
    def runtime(self) -> str:
        """How this session computes, for the K record and binder (`runtime`); the class name unless
        the backend says more (a faster path than its toolchain's own runtime must say so)."""
        return type(self).__name__

    def generate_all(self, prompts: list[str], max_tokens: int) -> list[str]:
        """Greedy raw continuations (no chat template) of `prompts`, each whole. K-scoring asks for
        several at once so that a backend may batch them; the default generates one at a time."""
        return ["".join(self.generate(p, max_tokens=max_tokens, stream=False, chat=False)) for p in prompts]

    def position_logprobs(self, text: str):
        """log-softmax of the next-token logits at every position of `text` (a numpy array,
        positions x vocab). Backends that expose logits implement this; fidelity needs it."""
        raise BackendError(f"{type(self).__name__} cannot compare token distributions")

    def fidelity(self, reference: Session, texts: list[str]) -> Fidelity:
        """Compare this model's next-token distributions with `reference`'s (the fp16 export of
        the same backend) over `texts`: top-1 agreement and mean KL(reference || this)."""
        import numpy as np

        if type(reference) is not type(self):
            raise BackendError(
                f"{type(self).__name__} can only be compared with a reference of its own backend, "
                f"not {type(reference).__name__}"
            )
        agree, kl, positions = 0, 0.0, 0
        for text in texts:
            ours, theirs = self.position_logprobs(text), reference.position_logprobs(text)
            n = min(len(ours), len(theirs))
            agree += int((ours[:n].argmax(axis=1) == theirs[:n].argmax(axis=1)).sum())
            kl += float((np.exp(theirs[:n]) * (theirs[:n] - ours[:n])).sum())
            positions += n
        return Fidelity(top1_agreement=agree / positions, mean_kl=kl / positions, positions=positions)

    def chat(self, messages: list[dict[str, str]], max_tokens: int = 128) -> Iterator[str]:
        """Greedy reply to `messages` ({role, content} dicts) in the model's chat template, piece by
        piece. The default takes one user turn; backends that can template a conversation override it."""
        if len(messages) != 1 or messages[0].get("role") != "user":
            raise UsageError(f"{type(self).__name__} answers one user message at a time, not a conversation")
        return self.generate(messages[0]["content"], max_tokens=max_tokens, stream=True, chat=True)

    def serve(self, host: str, port: int, model: str, verify: Path | None = None) -> int:
        """Serve the export on host:port until interrupted (`kolm serve`, `kolm run --port`); returns
        an exit code. Here: the OpenAI-compatible API as `model`. Backends whose export is a web page
        (the browser bundle) override this to host the page, and the `.kolm` at `verify` with it."""
        if verify is not None:
            raise UsageError("--verify serves a .kolm beside a browser page; export with --target browser")
        print(
            f"serving {model} on http://{host}:{port}/v1 (OpenAI-compatible; Ctrl-C stops)", file=sys.stderr, flush=True
        )
        return self.serve_api(host, port, model)

    def serve_api(self, host: str, port: int, model: str) -> int:
        """The OpenAI-compatible API: kolm's own server (`kolm.server`) by default; backends whose
        toolchain ships a maintained server override this to run it instead."""
        from kolm.server import serve

        return serve(self, model, host, port)

    def close(self) -> None:  # noqa: B027 - optional: a session that holds nothing has nothing to release
        """Release the model."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- benchmarking --------------------------------------------------------------------------------


class BenchRequest(KolmModel):
    """Measure the export in folder `path` (llama-bench style): one batch of `n_prompt` prompt
    tokens, then `n_gen` single-token decodes, each `repetitions` times."""

    path: Path
    payload: list[str]
    n_prompt: int = 512
    n_gen: int = 128
    repetitions: int = 3
    threads: int | None = None


class Rate(KolmModel):
    """A measured rate over the repetitions: mean and sample standard deviation in tokens/s."""

    mean: float
    sd: float
    samples: list[float]

    @classmethod
    def of(cls, samples: list[float]) -> Rate:
        import statistics

        sd = statistics.stdev(samples) if len(samples) > 1 else 0.0
        return cls(mean=statistics.fmean(samples), sd=sd, samples=samples)


class BenchResult(KolmModel):
    """What one bench measured on this machine, and with what."""

    runtime: str
    """The runtime and its version (`llama-cpp-python 0.3.36`)."""
    pp: Rate
    tg: Rate
    load_s: float
    peak_rss_bytes: int
    n_prompt: int
    n_gen: int
    threads: int


def toolchain_versions(*distributions: str) -> dict[str, str]:
    """Installed version of each distribution, for `ExportResult.toolchain`."""
    from importlib.metadata import version

    return {d: version(d) for d in distributions}


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB), for `bench`."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# -- ownership -----------------------------------------------------------------------------------


class BackendPlugin:
    """A backend and the one plugin that owns it. kolm calls a backend's hooks through this object,
    so only the owner answers, and checks each answer against the contract: a hook that returns
    nothing where an answer is required is a one-line `PluginError` naming the distribution.

    Plugins meet it as `base`, the backend theirs builds on."""

    def __init__(
        self,
        declared: Backend,
        table: Backend,
        distribution: str,
        version: str,
        call: Callable[..., Any],
        implements: Callable[[str], bool],
        base: BackendPlugin | None,
    ) -> None:
        self.declared, self.table, self.base = declared, table, base
        self.distribution, self.version = distribution, version
        self._call, self._implements = call, implements

    @property
    def name(self) -> str:
        return self.declared.name

    def __repr__(self) -> str:
        return f"<backend {self.name} of {self.distribution} {self.version}>"

    @property
    def tiers(self) -> dict[Tier, TierRecipe]:
        """The tier table: the backend's own, or that of the backend it builds on."""
        return self.table.tiers

    def recipe(self, tier: Tier, name: str | None = None) -> TierRecipe:
        """The recipe for `tier` (its default, or the one called `name`), or a one-line refusal
        naming the tiers, or the recipes, this backend has."""
        if tier not in self.tiers:
            can = ", ".join(t for t in TIERS if t in self.tiers)
            raise BackendError(f"{tier} is not supported by {self.name}; use {can}")
        recipes = self.table.tier_recipes(tier)
        if name is None:
            return recipes[0]
        chosen = next((r for r in recipes if r.name == name), None)
        if chosen is None:
            names = ", ".join(f"{r.name} ({r.spelling})" for r in recipes)
            raise UsageError(f"{self.name} has no {tier} recipe {name!r}; its {tier} recipes: {names}")
        return chosen

    def implements(self, hook: str) -> bool:
        """Whether the owner implements `hook` (a backend inherits nothing from the one it builds on)."""
        return self._implements(hook)

    @property
    def can_export(self) -> bool:
        return self.implements("export")

    @property
    def no_runtime(self) -> str | None:
        """Why kolm cannot run this backend's exports (it implements no `run`), or None."""
        if self.implements("run"):
            return None
        return f"kolm runs no {self.name} export: {self.distribution} {self.version} implements no `run`"

    def refuse_missing(self, hook: str, doing: str) -> None:
        """One line, before any work, when the owner does not implement `hook` (for `run` and `bench`,
        with the backend's `device_run`: what runs the export on the device instead)."""
        if not self.implements(hook):
            instead = ""
            if hook in ("run", "bench") and (device := self.declared.device_run):
                instead = f"; on the device instead: {device.command.format(out='EXPORT')} ({device.note})"
            raise BackendError(
                f"backend {self.name} cannot {doing}: {self.distribution} {self.version} "
                f"does not implement `{hook}`" + ("" if self.can_export else " (forecasts only)") + instead
            )

    def _ask(self, hook: str, expected: type, required: bool = True, **kwargs: Any) -> Any:
        """The owner's answer to `hook`, checked: a required answer must be an `expected`; an
        optional one may also be None (and is None when the owner leaves the hook out)."""
        if not self.implements(hook):
            if required:
                self.refuse_missing(hook, hook.replace("_", " "))
            return None
        answer = self._call(hook, base=self.base, **kwargs)
        if isinstance(answer, expected) or (answer is None and not required):
            return answer
        got = "nothing" if answer is None else f"a {type(answer).__name__}"
        raise PluginError(
            f"{self.distribution} {self.version}: hook `{hook}` of backend {self.name} returned "
            f"{got}, not a {expected.__name__}"
        )

    def forecast_size(
        self, spec: ModelSpec, tier: Tier, device: DeviceProfile | None, recipe: TierRecipe | None = None
    ) -> SizeForecast | None:
        """The owner's size forecast for `recipe` (the tier's default without one), or None when it
        has no size model (the caller labels a nominal one)."""
        recipe = recipe or self.recipe(tier)
        return self._ask(
            "forecast_size", SizeForecast, required=False, spec=spec, tier=tier, recipe=recipe, device=device
        )

    def forecast_throughput(
        self, device: DeviceProfile, spec: ModelSpec | None, tier: Tier, size: SizeForecast
    ) -> ThroughputForecast | None:
        """The owner's calibrated decode forecast, or None without a calibration for this device kind."""
        return self._ask(
            "forecast_throughput", ThroughputForecast, required=False, device=device, spec=spec, tier=tier, size=size
        )

    def cannot_export(
        self, spec: ModelSpec, tier: Tier, device: DeviceProfile | None, recipe: TierRecipe | None = None
    ) -> str | None:
        """The owner's reason it cannot export this model with `recipe` (its `cannot_export`, or
        what it said when the model was packed), or None. Without a recipe: None when any of the
        tier's recipes is accepted (`recipe_for` picks it), else the default's reason. A tier
        outside the table and a backend without `export` are refused before this is asked."""
        if self.name in spec.refusals:
            return f"{spec.refusals[self.name]} (when the model was packed)"
        if recipe is not None:
            return self._refusal(spec, tier, recipe, device)
        return self._first_taken(spec, tier, device)[1]

    def _refusal(self, spec: ModelSpec, tier: Tier, recipe: TierRecipe, device: DeviceProfile | None) -> str | None:
        return self._ask("cannot_export", str, required=False, spec=spec, tier=tier, recipe=recipe, device=device)

    def _first_taken(self, spec: ModelSpec, tier: Tier, device: DeviceProfile | None) -> tuple[TierRecipe, str | None]:
        """(The first of the tier's recipes, default then alternatives, the owner takes for `spec`,
        None), else (the default, the owner's reason for refusing it)."""
        default = self.recipe(tier)
        reasons = []
        for recipe in [default, *self.table.alternatives.get(tier, [])]:
            reason = self._refusal(spec, tier, recipe, device)
            if reason is None:
                return recipe, None
            reasons.append(reason)
        return default, reasons[0]

    def recipe_for(
        self, spec: ModelSpec, tier: Tier, device: DeviceProfile | None, name: str | None = None
    ) -> TierRecipe:
        """The recipe `name` for `tier`; without a name, the first of the tier's recipes (its default,
        then its alternatives) the owner does not refuse for `spec` on `device`, else the default."""
        if name is not None or not self.can_export or self.name in spec.refusals:
            return self.recipe(tier, name)
        return self._first_taken(spec, tier, device)[0]

    def export(self, request: ExportRequest) -> ExportResult:
        return self._ask("export", ExportResult, request=request)

    def embed_manifest(self, out_dir: Path, payload: list[str], manifest_json: str) -> None:
        if self._ask("embed_manifest", bool, out_dir=out_dir, payload=payload, manifest_json=manifest_json) is not True:
            raise PluginError(
                f"{self.distribution} {self.version}: hook `embed_manifest` of backend {self.name} "
                "did not embed the manifest"
            )

    def run(self, request: RunRequest) -> Session:
        return self._ask("run", Session, request=request)

    def read_payload(self, request: RunRequest) -> PayloadFacts:
        return self._ask("read_payload", PayloadFacts, request=request)

    def bench(self, request: BenchRequest) -> BenchResult:
        return self._ask("bench", BenchResult, request=request)
