"""The base of every kolm pydantic model.

Validators are built on first use (`defer_build`), not at import: a forecast touches a handful of
the models kolm defines, and `kolm export --preview` must start fast.
"""

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict


def utc_now() -> str:
    """The UTC timestamp kolm's records carry (`2026-11-28T21:36:43Z`)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KolmModel(BaseModel):
    """A pydantic model whose validator is built when first needed."""

    model_config = ConfigDict(defer_build=True)
