"""One check of `kolm verify` (the six, and the signature `kolm.signing` adds)."""

from kolm.datamodel import KolmModel


class Check(KolmModel):
    """One check: whether it passed, and what was expected against what was found."""

    number: int
    name: str
    passed: bool
    expected: str
    found: str
