"""The layer order (app/layers.py) holds for every import in the code base, function-local ones included."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.layers import LAYERS, allowed, unit_of

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "wechat", "posters", "workers")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(module: str, source: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, function-local?) for every import statement in the source."""
    tree = ast.parse(source)
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            local = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: resolve against this module's package
                    base = module.split(".")[: -child.level] if not module.endswith("__init__") else module.split(".")
                    name = ".".join(base + ([child.module] if child.module else []))
                else:
                    name = child.module or ""
                found.extend((f"{name}.{a.name}" if unit_of(f"{name}.{a.name}") else name, child.lineno,
                              in_function) for a in child.names)
            visit(child, local)

    visit(tree, False)
    return found


def violations(sources: dict[str, str]) -> list[str]:
    out = []
    for module, source in sorted(sources.items()):
        if unit_of(module) is None:
            out.append(f"{module}: not in any layer of app/layers.py")
            continue
        for imported, line, local in imports_of(module, source):
            if not allowed(module, imported):
                out.append(f"{module}:{line} imports {imported} against the layer order")
            elif local and unit_of(imported) not in (None, unit_of(module)):
                out.append(f"{module}:{line} imports {imported} inside a function")
    return out


def _tree() -> dict[str, str]:
    return {_module_name(p): p.read_text(encoding="utf-8")
            for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def test_every_import_in_the_tree_follows_the_layer_order():
    assert violations(_tree()) == []


def test_every_package_of_app_is_placed_in_a_layer():
    packages = {f"app.{p.name}" for p in (ROOT / "app").iterdir() if (p / "__init__.py").exists()}
    modules = {f"app.{p.stem}" for p in (ROOT / "app").glob("*.py") if p.stem not in ("__init__", "layers")}
    assert (packages | modules) - set(LAYERS) == set()


@pytest.mark.parametrize("planted", [
    "from app.withdrawals.service import request_withdrawal\n",              # a lower domain reaching up
    "def f():\n    from app.withdrawals import service\n",                    # the same, hidden in a function
    "import workers.outbox\n",                                                # a domain importing the workers
])
def test_a_planted_upward_import_fails_the_check(planted):
    tree = _tree()
    tree["app.ledger.planted"] = planted
    assert [v for v in violations(tree) if v.startswith("app.ledger.planted")]


def test_a_function_local_import_across_packages_is_reported_even_downwards():
    tree = _tree()
    tree["app.withdrawals.planted"] = "def f():\n    from app.ledger import service\n"
    assert violations(tree) == ["app.withdrawals.planted:2 imports app.ledger.service inside a function"]


WEB = ("flask", "apiflask", "flask_migrate")  # werkzeug.security (password hashing) is a plain library


def test_only_the_entry_points_know_the_web_framework():
    """Domain services take a session and return data; only app/api, app/cli and the factory know Flask."""
    web_units = {"app", "app.api", "app.cli"}
    offenders = [f"{module}:{line} {imported}" for module, source in sorted(_tree().items())
                 if unit_of(module) not in web_units and not module.startswith("wechat.emulator")
                 for imported, line, _local in imports_of(module, source) if imported.split(".")[0] in WEB]
    assert offenders == []
