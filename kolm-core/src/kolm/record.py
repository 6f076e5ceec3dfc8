"""An export folder as kolm finds it later: `kolm-export.json` (the `ExportRecord`), the payload it
lists, and the backend's `Session` opened on it (`kolm run`, `kolm serve`, `kolm bench`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kolm.api import RunRequest, Session
from kolm.errors import ArtifactError, UsageError
from kolm.manifest import ExportRecord

if TYPE_CHECKING:
    from kolm.plugins import Registry

RECORD = "kolm-export.json"
BINDER = "binder.json"


def load_record(path: Path) -> tuple[Path, ExportRecord]:
    """The export folder and its record, given the folder or any file inside it."""
    folder = path if path.is_dir() else path.parent
    record_path = folder / RECORD
    if not record_path.is_file():
        raise UsageError(f"{folder}: no {RECORD}; not a kolm export folder")
    try:
        return folder, ExportRecord.model_validate_json(record_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ArtifactError(f"{record_path}: not a valid export record ({str(exc).splitlines()[0]})") from exc


def run_request(folder: Path, record: ExportRecord, n_ctx: int = 2048, threads: int | None = None) -> RunRequest:
    return RunRequest(path=folder, payload=[p.path for p in record.payload], n_ctx=n_ctx, threads=threads)


def open_session(
    registry: Registry, folder: Path, record: ExportRecord, n_ctx: int = 2048, threads: int | None = None
) -> Session:
    """The backend's `Session` on an export folder (the model loads on first use)."""
    return registry.backend(record.backend).run(run_request(folder, record, n_ctx, threads))
