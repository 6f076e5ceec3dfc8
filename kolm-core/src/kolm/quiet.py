"""Keeping a toolchain's own output off kolm's terminal while it works.

Converters print progress bars, version warnings and notes of their own; kolm prints its steps, and
`--json` output must stay clean. Errors still raise: only what the toolchain prints is dropped.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet(*loggers: str) -> Iterator[None]:
    """Drop stdout, stderr and warnings, raise the named loggers (and transformers', where it is
    installed) to ERROR and turn transformers' progress bars off; all of it restored on exit."""
    transformers = None
    if importlib.util.find_spec("transformers") is not None:
        from transformers.utils import logging as transformers

        verbosity, bars = transformers.get_verbosity(), transformers.is_progress_bar_enabled()
        transformers.set_verbosity_error()
        transformers.disable_progress_bar()
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if transformers is not None:
            transformers.set_verbosity(verbosity)
            if bars:
                transformers.enable_progress_bar()
