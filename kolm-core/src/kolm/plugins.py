"""Finding and loading plugins, and the one owner of each backend.

Plugins come from the entry-point group `kolm`. `KOLM_LOAD_PLUGINS` is a comma-separated list of
distribution names (`kolm-gguf,kolm-mlx`); when set, only those load (set it empty to load none).

Loading refuses, with one line naming the distribution, a plugin that raises on import, one with a
hook implementation that matches no hook (a misspelling), one that answers backend hooks without
declaring its backend, and one whose `backend` hook answers nothing valid. Refused plugins are
listed by `kolm plugins` and skipped; they never stop the CLI. A backend that two distributions
declare is kept by neither: using it is an error that names both.
"""

from __future__ import annotations

import os
from functools import cache
from importlib.metadata import entry_points

import pluggy

from kolm import hookspecs
from kolm.api import Backend, BackendPlugin, UiPage
from kolm.datamodel import KolmModel
from kolm.devices import USER, DeviceKind, DeviceProfile, DeviceTable, Sourced, user_rows
from kolm.errors import BackendError, KolmError, PluginError, UsageError, one_line

GROUP = "kolm"


class PluginInfo(KolmModel):
    """One plugin as `kolm plugins` reports it."""

    name: str
    distribution: str
    version: str
    hooks: list[str]
    backend: str | None = None
    recipes: dict[str, list[str]] = {}
    """Tier -> the names `--recipe` takes, the default first (a backend that builds on another: none)."""
    toolchain: dict[str, bool] = {}
    install: str | None = None
    error: str | None = None


class Loaded(KolmModel):
    """A registered plugin: its pluggy name, entry-point name and where it came from."""

    key: str
    name: str
    distribution: str
    version: str


class Registry:
    """The plugin manager, the plugins it loaded or refused, and the owner of each backend."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.loaded: list[Loaded] = []
        self.refused: list[PluginInfo] = []
        self._declared: dict[str, list[tuple[Loaded, Backend]]] = {}
        self._owned: dict[str, BackendPlugin] = {}
        self._load_entry_points()

    # -- loading ---------------------------------------------------------------------------------

    def _load_entry_points(self) -> None:
        allowed = os.environ.get("KOLM_LOAD_PLUGINS")
        wanted = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
        for ep in sorted(entry_points(group=GROUP), key=lambda e: (e.dist.name if e.dist else "", e.name)):
            dist = ep.dist.name if ep.dist else "?"
            if wanted is not None and dist not in wanted:
                continue
            version = ep.dist.version if ep.dist else "?"
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin is reported, never fatal
                self._refuse(
                    Loaded(key=f"{dist}:{ep.name}", name=ep.name, distribution=dist, version=version), one_line(exc)
                )
                continue
            self.add(plugin, ep.name, dist, version)

    def add(self, plugin: object, name: str, distribution: str, version: str) -> bool:
        """Register `plugin` (entry point `name` of `distribution`) and declare its backend, or refuse
        it (see the module docstring); returns whether it was kept."""
        origin = Loaded(key=f"{distribution}:{name}", name=name, distribution=distribution, version=version)
        try:
            self.pm.register(plugin, name=origin.key)
        except (ValueError, pluggy.PluginValidationError) as exc:
            self._refuse(origin, " ".join(str(exc).split()))
            return False
        try:
            self._check(plugin, origin)
        except Exception as exc:  # the plugin's own code may raise anything: report it in one line
            self.pm.unregister(plugin)
            self._refuse(origin, str(exc) if isinstance(exc, KolmError) else one_line(exc))
            return False
        self.loaded.append(origin)
        self._owned.clear()
        return True

    def _check(self, plugin: object, origin: Loaded) -> None:
        hooks = self._hooks(plugin)
        for hook in hooks:
            if not getattr(self.pm.hook, hook).has_spec():
                import difflib

                close = difflib.get_close_matches(hook, self._specs(), n=1)
                raise PluginError(
                    f"hook implementation `{hook}` matches no kolm hook"
                    + (f"; did you mean `{close[0]}`?" if close else "")
                )
        backend_hooks = sorted(set(hooks) & set(hookspecs.BACKEND_HOOKS))
        if "backend" not in hooks:
            if backend_hooks:
                raise PluginError(
                    f"implements backend hooks ({', '.join(backend_hooks)}) but declares no backend "
                    "(the `backend` hook)"
                )
            return
        declared = self.pm.subset_hook_caller("backend", self._others(plugin))()
        declared = declared[0] if declared else None
        if not isinstance(declared, Backend):
            raise PluginError(
                f"its `backend` hook returned {type(declared).__name__ if declared else 'nothing'}, "
                "not a kolm.api.Backend"
            )
        self._declared.setdefault(declared.name, []).append((origin, declared))

    def _refuse(self, origin: Loaded, why: str) -> None:
        self.refused.append(
            PluginInfo(name=origin.name, distribution=origin.distribution, version=origin.version, hooks=[], error=why)
        )

    def _hooks(self, plugin: object) -> list[str]:
        return sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])

    def _specs(self) -> list[str]:
        return [name for name in vars(hookspecs) if getattr(getattr(self.pm.hook, name, None), "has_spec", bool)()]

    def _others(self, plugin: object) -> list[object]:
        return [p for p in self.pm.get_plugins() if p is not plugin]

    # -- backends --------------------------------------------------------------------------------

    @property
    def problems(self) -> list[str]:
        """One line per refused plugin and per backend declared twice, for warnings."""
        lines = [f"plugin {p.name} ({p.distribution} {p.version}) skipped: {p.error}" for p in self.refused]
        lines += [self._conflict(name) for name, owners in sorted(self._declared.items()) if len(owners) > 1]
        return lines

    def _conflict(self, name: str) -> str:
        owners = " and ".join(f"{o.distribution} {o.version}" for o, _ in self._declared[name])
        return f"backend {name} is declared by both {owners}; uninstall one, or choose with KOLM_LOAD_PLUGINS"

    def backends(self) -> dict[str, BackendPlugin]:
        """Every backend with exactly one owner whose `builds_on` (if any) is usable, by name."""
        usable = {}
        for name in sorted(self._declared):
            try:
                usable[name] = self.backend(name)
            except KolmError:
                continue
        return usable

    def declared(self, name: str) -> bool:
        """Whether some loaded plugin declares `name` (usable or not)."""
        return name in self._declared

    def backend(self, name: str) -> BackendPlugin:
        """The backend `name` and its owner; one line if none or two plugins declare it."""
        if name not in self._owned:
            self._owned[name] = self._own(name)
        return self._owned[name]

    def _own(self, name: str) -> BackendPlugin:
        owners = self._declared.get(name, [])
        if not owners:
            raise BackendError(f"backend {name} is not installed; pip install kolm-{name}")
        if len(owners) > 1:
            raise PluginError(self._conflict(name))
        origin, declared = owners[0]
        base, table = None, declared
        if declared.builds_on:
            try:
                base = self.backend(declared.builds_on)
            except KolmError as exc:
                raise BackendError(f"backend {name} builds on {declared.builds_on}, which is unusable: {exc}") from exc
            table = base.table
        plugin = self.pm.get_plugin(origin.key)
        hooks = set(self._hooks(plugin))
        return BackendPlugin(
            declared,
            table,
            origin.distribution,
            origin.version,
            call=lambda hook, **kw: self.pm.subset_hook_caller(hook, self._others(plugin))(**kw),
            implements=hooks.__contains__,
            base=base,
        )

    # -- tables ----------------------------------------------------------------------------------

    @property
    def hook(self):
        """pluggy's hook relay, for the table hooks every plugin answers (`device_profiles`, `import_weights`)."""
        return self.pm.hook

    def devices(self) -> DeviceTable:
        """Every plugin's rows, the rows users added (`--device-file`, `--bandwidth`), and this
        machine's once profiled (`kolm devices --here`, `kolm bench`); each backend added to the rows
        it declares it runs on (`Backend.runs_on`)."""
        # pluggy calls the most recently registered first; merge in registration order instead
        contributions = [*reversed(self.hook.device_profiles()), user_rows()]
        from kolm.host import saved_host

        if host := saved_host():
            contributions.append([self.host_device(host)])
        runs_on = {
            name: owners[0][1].runs_on for name, owners in sorted(self._declared.items()) if owners[0][1].runs_on
        }
        return DeviceTable.merge(contributions).add_backends(runs_on)

    def ui_pages(self) -> dict[str, UiPage]:
        """The pages plugins add to `kolm ui`, by route (the first plugin loaded keeps a route)."""
        pages: dict[str, UiPage] = {}
        for page in (p for pages in reversed(self.hook.ui_pages()) for p in pages):
            pages.setdefault(page.route, page)
        return pages

    def custom_device(self, name: str, bandwidth_gbps: float, memory_gb: float, kind: DeviceKind) -> DeviceProfile:
        """A device the user describes by two numbers, with the backends the plugins' rows of its
        kind run (the one most of them run first). Its OS and architecture are unknown."""
        rows = [r for rows in self.hook.device_profiles() for r in rows if r.kind == kind]
        listed = [b for r in rows for b in r.backends]
        backends = sorted(set(listed), key=lambda b: (-listed.count(b), b))
        if not backends:
            raise UsageError(f"no installed plugin has a {kind} device, so none says which backend runs on one")
        given = "given by the user"
        return DeviceProfile(
            name=name,
            kind=kind,
            os="unknown",
            arch="unknown",
            memory_gb=Sourced(value=memory_gb, source=USER, note=given),
            memory_kind="vram" if kind == "desktop-gpu" else "ram",
            bandwidth_gbps=Sourced(value=bandwidth_gbps, source=USER, note=given),
            backends=backends,
            notes="user-supplied: forecasts from these two numbers and the calibration of its kind",
        )

    def device(self, name: str) -> DeviceProfile:
        """The row `name` names; `this-machine` (or `here`) profiles this machine first if need be."""
        from kolm.host import is_this_machine, saved_host, this_machine

        if is_this_machine(name) and saved_host() is None:
            return self.host_device(this_machine())
        return self.devices().find(name)

    def host_device(self, host) -> DeviceProfile:
        """This machine's row. Its backends: the installed ones that bench, those that more plugin rows
        of this OS and architecture list first."""
        from kolm.host import as_device

        rows = [r for rows in self.hook.device_profiles() for r in rows if (r.os, r.arch) == (host.os, host.arch)]
        usable = [name for name, owner in self.backends().items() if owner.implements("bench")]
        usable.sort(key=lambda name: (-sum(r.backends[0] == name for r in rows), name))
        if not usable:
            raise UsageError("no installed backend can run on this machine (pip install kolm-gguf)")
        return as_device(host, usable)

    def describe(self) -> list[PluginInfo]:
        rows = []
        owned = {origin.key: declared for owners in self._declared.values() for origin, declared in owners}
        for origin in self.loaded:
            declared = owned.get(origin.key)
            toolchain = declared.toolchain_status() if declared else {}
            error = self._conflict(declared.name) if declared and len(self._declared[declared.name]) > 1 else None
            rows.append(
                PluginInfo(
                    name=origin.name,
                    distribution=origin.distribution,
                    version=origin.version,
                    hooks=self._hooks(self.pm.get_plugin(origin.key)),
                    backend=declared.name if declared else None,
                    recipes=declared.recipe_names() if declared else {},
                    toolchain=toolchain,
                    install=declared.install if declared and not all(toolchain.values()) else None,
                    error=error,
                )
            )
        return rows + self.refused


@cache
def registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    return Registry()
