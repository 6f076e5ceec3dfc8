"""What a backend declares about itself: its tiers, its toolchain, how to install it."""

from __future__ import annotations

import importlib.util

from pydantic import ConfigDict

from kolm.datamodel import KolmModel
from kolm.errors import BackendError
from kolm.quant import TIERS


class Backend(KolmModel):
    """A backend a plugin owns.

    `tiers` maps each tier the backend can do to its toolchain's spelling (`int4` -> `Q4_K_M`);
    tiers missing from it are refused. `toolchain` lists the import names `kolm plugins` checks
    with importlib; `install` is the pip requirement that brings them.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    tiers: dict[str, str]
    toolchain: list[str]
    install: str

    def spelling(self, tier: str) -> str:
        """The toolchain's name for `tier`, or a one-line refusal naming the tiers it can do."""
        if tier not in self.tiers:
            can = ", ".join(t for t in TIERS if t in self.tiers)
            raise BackendError(f"{tier} is not supported by {self.name}; use {can}")
        return self.tiers[tier]

    def toolchain_status(self) -> dict[str, bool]:
        """Whether each toolchain module is importable, found without importing it."""
        return {module: importlib.util.find_spec(module) is not None for module in self.toolchain}
