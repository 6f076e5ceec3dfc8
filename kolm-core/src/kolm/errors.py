"""Errors a user can act on. Each subclass has its own exit code; the CLI prints the one-line
message to stderr and exits with that code (`--debug` shows the traceback)."""

from __future__ import annotations


class KolmError(Exception):
    """Base of every error kolm reports to a user. The message is one line."""

    exit_code = 1


class UsageError(KolmError):
    """A flag or argument that cannot be honoured (bad tier, bad combination)."""

    exit_code = 2


class UnknownDeviceError(KolmError):
    exit_code = 3


class UnknownModelError(KolmError):
    """The model reference is not a .kolm, a config.json, a model directory or a known base."""

    exit_code = 4


class ArtifactError(KolmError):
    """A .kolm that is corrupt, truncated, tampered or unsafe to read."""

    exit_code = 5


class UnsupportedModelError(KolmError):
    """A model the chosen backend or converter cannot handle (architecture, tokenizer)."""

    exit_code = 6


class BackendError(KolmError):
    """A backend that is not installed, cannot do the request, or whose toolchain failed."""

    exit_code = 7


class ToolchainMissingError(BackendError):
    """The backend's toolchain is not importable; the message names what to install."""

    exit_code = 8


class OutputError(KolmError):
    """The output cannot be written (missing parent, no space, already exists)."""

    exit_code = 9


class GateError(KolmError):
    """K below the compile gate, or a K drop beyond the allowed one."""

    exit_code = 10


class PluginError(KolmError):
    """An installed plugin that breaks the plugin contract: a data file that does not validate, a
    backend two distributions declare, a hook that returns nothing where an answer is required.
    The message names the distribution."""

    exit_code = 12


def one_line(exc: BaseException) -> str:
    """An exception as one line: a pydantic validation error as `field.path: problem`, anything
    else as its type and the first line of its message."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
