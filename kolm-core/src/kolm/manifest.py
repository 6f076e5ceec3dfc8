"""RS-1 manifest models: what a `.kolm` declares about the weights, eval pack and payload inside."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from kolm.datamodel import KolmModel
from kolm.quant import TIERS

SHA256 = Field(pattern=r"^[0-9a-f]{64}$")


class PayloadFile(KolmModel):
    """One file of the payload: its path inside the archive, SHA-256 and exact size in bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: str = SHA256
    size: int = Field(ge=0)


class EvalPackRef(KolmModel):
    """Where the embedded eval pack lives, its SHA-256 and item count."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: str = SHA256
    items: int = Field(ge=1)


class Manifest(KolmModel):
    """`manifest.json` of an RS-1 artifact.

    `quant` is the tier of the weights inside (fp16 for packed sources) and `recipe` the name of the
    backend recipe that made it (an export's; None in an artifact); `k_score` is the K
    measured on the embedded eval pack at that tier and `k_score_fp16_reference` the fp16 K,
    both None until measured. `refusals` names the backends that could not convert the model when
    it was packed, with their reasons, so forecasts refuse them before anyone converts again.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["RS-1"] = Field("RS-1", alias="schema", description="Always `RS-1`.")
    base: str = Field(description="The model's name (`SmolLM2-135M-Instruct`), used in forecasts and export names.")
    arch: str = Field(description="The Hugging Face architecture (`LlamaForCausalLM`) from config.json.")
    params: int = Field(ge=1, description="Parameter count, from the safetensors headers.")
    quant: Literal[TIERS] = Field(  # type: ignore[valid-type]
        description="The tier of the weights inside: fp16 for a packed artifact, an export's tier in its copy."
    )
    recipe: str | None = Field(None, description="The backend recipe that made an export's tier; None in an artifact.")
    k_score: float | None = Field(
        None, ge=0, le=1, description="K: the share of the eval pack answered right at `quant`; None until measured."
    )
    k_score_fp16_reference: float | None = Field(
        None, ge=0, le=1, description="K of the same weights at fp16, the reference drops are measured from."
    )
    refusals: dict[str, str] = Field(
        {}, description="Backend -> why it could not convert this model when packed (forecasts refuse it up front)."
    )
    eval_pack: EvalPackRef = Field(description="The embedded eval pack: member path, SHA-256 and item count.")
    payload: list[PayloadFile] = Field(
        description="Every member under model/: path, SHA-256 and size; nothing else may be there."
    )
    created_by: str = Field(description="The tool and version that wrote it (`kolm 0.1.0`).")
    license: str = Field(description="The weights' license, as the packer declared it (`--license`).")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


def rs1_json_schema() -> dict:
    """The JSON Schema of `manifest.json` (`kolm schema`)."""
    schema = Manifest.model_json_schema(by_alias=True)
    schema["$id"] = "https://kolm.dev/schema/RS-1/manifest.json"
    schema["title"] = "RS-1 manifest"
    return schema


class Fidelity(KolmModel):
    """How closely an export's next-token distributions follow its fp16 reference over the eval
    pack's prompts: top-1 agreement and mean KL(reference || export) per position, in nats.
    Far more sensitive than K on a small pack (llama.cpp's --kl-divergence idea)."""

    model_config = ConfigDict(extra="forbid")

    top1_agreement: float
    mean_kl: float
    positions: int


class KRecord(KolmModel):
    """K measured on the export's payload, its fp16 reference, the drop between them, and the
    fidelity of the payload's token distributions to the fp16 reference (None at fp16)."""

    model_config = ConfigDict(extra="forbid")

    score: float
    points: float
    items: int
    fp16_reference: float | None
    drop_points: float | None
    runtime: str
    fidelity: Fidelity | None = None


class Lockfile(KolmModel):
    """What made the payload: the same inputs, versions and flags must give the same bytes.

    `input_manifest_sha256` identifies the input artifact: its manifest pins every payload file
    by SHA-256, and the export verified each of them."""

    model_config = ConfigDict(extra="forbid")

    input: str
    input_manifest_sha256: str = SHA256
    recipe: str | None = None
    toolchain: dict[str, str]
    flags: dict[str, str | int | float | bool]
    seed: int


class SizeCheck(KolmModel):
    """The forecast's own error, measured on the file the export wrote."""

    model_config = ConfigDict(extra="forbid")

    forecast_bytes: int
    actual_bytes: int
    error_percent: float
    read_per_token_bytes: int


class ExportRecord(KolmModel):
    """`kolm-export.json`, the sidecar beside every export: the manifest embedded in the payload,
    the payload's SHA-256, the measured K, the forecast's error, and the lockfile."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["RS-1/export"] = Field("RS-1/export", alias="schema")
    manifest: Manifest
    backend: str
    device: str
    tier: Literal[TIERS]  # type: ignore[valid-type]
    spelling: str
    payload: list[PayloadFile]
    k: KRecord | None
    k_not_measured: str | None = None
    """Why `k` is None when K was asked for: the backend runs nothing in kolm (its runtime needs
    hardware or packages kolm does not drive), so no K is recorded rather than one copied."""
    size_check: SizeCheck
    lockfile: Lockfile

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)
