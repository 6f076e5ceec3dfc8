"""Which models kolm-coreml exports: the decoder families whose tiny random-weight models convert,
compress and load back in tests/test_families.py (coremltools 9.0, transformers 5.24). The stateful
export needs every attention layer to write its keys and values through transformers' `Cache.update`
and to take a prepared 4D mask; a mixture of experts' routing does not trace to a static program.

Gemma 2 and 3 convert too, but their norms compute x * (1 + w): coremltools folds 1 + w into a const
of another name, so K cannot be measured on the package's weights off macOS (`runtime.WeightsSession`
finds weights by name), and on macOS nothing has been run. They are refused everywhere until then: a
refusal must not depend on the machine, as `kolm pack` records it in the artifact.
"""

from __future__ import annotations

from kolm.api import ModelSpec

CONVERTED = frozenset(
    {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Phi3ForCausalLM"}
)
FOLDED_NORMS_FAMILIES = frozenset({"Gemma2ForCausalLM", "Gemma3ForCausalLM"})
FOLDED_NORMS = (
    "coremltools folds its (1 + w) norm weights into unnamed consts, so kolm cannot find them in the "
    "package to measure K off macOS"
)


def cannot_convert(spec: ModelSpec) -> str | None:
    """Why kolm-coreml will not export `spec`; None when it will."""
    if spec.active_params < spec.inventory.params:
        return "kolm-coreml does not convert a mixture of experts (its routing does not trace to a static program)"
    if spec.arch in FOLDED_NORMS_FAMILIES:
        return f"kolm-coreml does not export {spec.arch} yet: {FOLDED_NORMS}"
    if spec.arch not in CONVERTED:
        return f"kolm-coreml exports {', '.join(sorted(CONVERTED))}; not {spec.arch}"
    return None
