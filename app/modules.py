"""Packages plug in by convention: `app/<package>/<role>.py`. The roles loaded by `load_plugins`: `models`
(tables), `jobs` (named jobs), `subscribers` (domain-event subscribers) and `member_merge` (moving a package's
rows when two members merge); `wechat.registry` loads `wechat_handlers` (WeChat push handlers) the same way.
This is the one place that imports modules by name; the layer test checks every other import."""
from __future__ import annotations

import importlib
import pkgutil
import threading
from pathlib import Path

_APP_DIR = Path(__file__).resolve().parent
PLUGIN_ROLES = ("models", "member_merge", "jobs", "subscribers")
_loaded = False
_lock = threading.RLock()


def import_domain_modules(role: str) -> list[str]:
    """Import app/<package>/<role>.py for every package that has one; returns the names imported.

    An import error inside such a module is raised, never mistaken for its absence."""
    imported = []
    for mod in pkgutil.iter_modules([str(_APP_DIR)]):
        if not mod.ispkg:
            continue
        name = f"app.{mod.name}.{role}"
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        imported.append(name)
    return imported


def load_plugins() -> None:
    """Import every package's models, merge hooks, jobs and subscribers (once per process)."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if not _loaded:
            for role in PLUGIN_ROLES:
                import_domain_modules(role)
            _loaded = True
