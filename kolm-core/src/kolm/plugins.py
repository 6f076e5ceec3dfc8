"""Finding and loading plugins: entry-point group `kolm`, restricted by `KOLM_LOAD_PLUGINS`.

`KOLM_LOAD_PLUGINS` is a comma-separated list of distribution names (`kolm-gguf,kolm-mlx`); when
set, only those load (set it empty to load none). A plugin that raises on import is reported by
`kolm plugins` and skipped; it never stops the CLI.
"""

from __future__ import annotations

import os
from functools import cache
from importlib.metadata import entry_points

import pluggy

from kolm import fallback, hookspecs
from kolm.backends import Backend
from kolm.datamodel import KolmModel
from kolm.devices import DeviceTable
from kolm.errors import BackendError

GROUP = "kolm"


class PluginInfo(KolmModel):
    """One plugin as `kolm plugins` reports it."""

    name: str
    distribution: str
    version: str
    hooks: list[str]
    backends: list[str]
    toolchain: dict[str, bool]
    install: list[str] = []
    error: str | None = None


class Registry:
    """The plugin manager plus what loading it found (plugin origins and import failures)."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.pm.register(fallback, name="kolm.fallback")
        self.origins: dict[str, tuple[str, str]] = {"kolm.fallback": ("kolm-core", _version("kolm-core"))}
        self.failures: list[PluginInfo] = []
        self._load_entry_points()

    def _load_entry_points(self) -> None:
        allowed = os.environ.get("KOLM_LOAD_PLUGINS")
        wanted = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
        for ep in sorted(entry_points(group=GROUP), key=lambda e: (e.dist.name if e.dist else "", e.name)):
            dist = ep.dist.name if ep.dist else "?"
            if wanted is not None and dist not in wanted:
                continue
            version = ep.dist.version if ep.dist else "?"
            try:
                self.pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # a broken plugin is reported, never fatal
                self.failures.append(
                    PluginInfo(name=ep.name, distribution=dist, version=version, hooks=[], backends=[],
                               toolchain={}, error=f"{type(exc).__name__}: {exc}")
                )
                continue
            self.origins[ep.name] = (dist, version)

    @property
    def hook(self):
        return self.pm.hook

    def backends(self) -> dict[str, Backend]:
        return {b.name: b for rows in self.hook.backends() for b in rows}

    def backend(self, name: str) -> Backend:
        known = self.backends()
        if name not in known:
            raise BackendError(f"backend {name!r} is not installed; pip install kolm-{name}")
        return known[name]

    def devices(self) -> DeviceTable:
        # pluggy calls the most recently registered first; merge in registration order instead
        return DeviceTable.merge(list(reversed(self.hook.device_profiles())))

    def owner(self, backend: str) -> str | None:
        """The plugin name that declares `backend`."""
        for plugin in self.pm.get_plugins():
            declare = getattr(plugin, "backends", None)
            if declare and any(b.name == backend for b in declare()):
                return self.pm.get_name(plugin)
        return None

    def implements(self, plugin_name: str, hook: str) -> bool:
        plugin = self.pm.get_plugin(plugin_name)
        callers = self.pm.get_hookcallers(plugin) or []
        return any(c.name == hook for c in callers)

    def describe(self) -> list[PluginInfo]:
        rows = []
        for name, (dist, version) in self.origins.items():
            plugin = self.pm.get_plugin(name)
            declared = plugin.backends() if hasattr(plugin, "backends") else []
            toolchain: dict[str, bool] = {}
            for b in declared:
                toolchain.update(b.toolchain_status())
            rows.append(
                PluginInfo(
                    name=name, distribution=dist, version=version,
                    hooks=sorted(c.name for c in self.pm.get_hookcallers(plugin) or []),
                    backends=[b.name for b in declared], toolchain=toolchain,
                    install=[b.install for b in declared if not all(b.toolchain_status().values())],
                )
            )
        return rows + self.failures


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


@cache
def registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    return Registry()
