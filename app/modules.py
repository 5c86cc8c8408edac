"""Domain packages plug in by convention: `app/<domain>/<role>.py` (models, member_merge, wechat_handlers)."""
from __future__ import annotations

import importlib
import pkgutil


def import_domain_modules(role: str) -> list[str]:
    """Import app/<domain>/<role>.py for every domain package that has one; returns the names imported.

    An import error inside such a module is raised, never mistaken for its absence."""
    import app

    imported = []
    for mod in pkgutil.iter_modules(app.__path__):
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
