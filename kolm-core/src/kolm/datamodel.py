"""The base of every kolm pydantic model.

Validators are built on first use (`defer_build`), not at import: a forecast touches a handful of
the models kolm defines, and `kolm export --preview` must start fast.
"""

from pydantic import BaseModel, ConfigDict


class KolmModel(BaseModel):
    """A pydantic model whose validator is built when first needed."""

    model_config = ConfigDict(defer_build=True)
