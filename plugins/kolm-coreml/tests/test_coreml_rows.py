"""kolm-coreml's iPhone row: every tier including 3-bit palettization is offered."""

from kolm.forecast import pick
from kolm.modelspec import resolve_model
from kolm.plugins import registry


def test_iphone_row_offers_every_tier_through_coreml():
    reg = registry()
    iphone = reg.devices().find("iPhone 15 Pro")
    assert iphone.kind == "phone" and iphone.memory_gb.value == 8
    rows = pick(reg, resolve_model("Llama-3.2-1B"), [iphone])
    assert [(r.tier, r.backend) for r in rows] == [(t, "coreml") for t in ("fp16", "int8", "int4", "int3")]
    assert reg.backend("coreml").recipe("int3").name == "palettize3-g32"
