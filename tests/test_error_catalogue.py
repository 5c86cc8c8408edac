"""One status per kind of error across the whole API, and every code documented in docs/errors.md.

The codes are read from the source: every domain error raised with a constant code (and its status, explicit or
its class's), the pure rule violations the services turn into 422s, the webhook's event errors, and the
envelope's own codes. A code raised with two statuses, a code missing from docs/errors.md, a status that differs
from the document, or a documented code that no longer exists fails the test."""
from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections import defaultdict
from pathlib import Path

import app as app_package
from app.errors import DomainError

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "errors.md"
# Pure exceptions carrying a code that the layer above always turns into a ValidationFailed (422).
VALIDATION_CARRIERS = {"RuleViolation", "ImageRejected", "_fail"}


def _error_classes() -> dict[str, type]:
    for mod in pkgutil.walk_packages(app_package.__path__, "app."):
        importlib.import_module(mod.name)
    found, todo = {}, [DomainError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def _module_constants(trees) -> dict[str, str]:
    out = {}
    for tree in trees.values():
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(
                    node.value.value, str):
                out.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    return out


def _strings(node, names: dict[str, list[str]]) -> list[str]:
    """The string constants an expression can be: a literal, either branch of `a if c else b`, or a name
    assigned such values in the same module (or a module-level constant)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body, names) + _strings(node.orelse, names)
    if isinstance(node, ast.Name):
        return names.get(node.id, [])
    return []


def source_codes() -> dict[str, set[int]]:
    classes = _error_classes()
    files = [p for pkg in ("app", "wechat", "posters") for p in (ROOT / pkg).rglob("*.py")
             if "emulator" not in p.parts]
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in files}
    constants = _module_constants(trees)
    codes: dict[str, set[int]] = defaultdict(set)
    for cls in classes.values():
        if "code" in vars(cls):
            codes[cls.code].add(cls.status)
    for tree in trees.values():
        names: dict[str, list[str]] = defaultdict(list, {k: [v] for k, v in constants.items()})
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        names[target.id] += _strings(node.value, {})
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            fname = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            kw = {k.arg: k.value for k in node.keywords}
            if fname in classes:
                status = kw["status"].value if isinstance(kw.get("status"), ast.Constant) else classes[fname].status
                for code in _strings(kw["code"], names) if "code" in kw else []:
                    codes[code].add(status)
            elif fname in VALIDATION_CARRIERS and node.args:
                first = node.args[1] if fname == "_fail" and len(node.args) > 1 else node.args[0]
                for code in _strings(first, names):
                    codes[code].add(422)
            elif fname == "error_response" and len(node.args) >= 2:
                if isinstance(node.args[0], ast.Constant):
                    for code in _strings(node.args[1], names):
                        codes[code].add(node.args[0].value)
    envelope = trees[ROOT / "app" / "api" / "envelope.py"]
    for node in ast.walk(envelope):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "CODES" for t in node.targets):
            for k, v in zip(node.value.keys, node.value.values, strict=True):
                codes[v.value].add(k.value)
    codes["amount_not_integer"].add(422)  # the envelope's answer for a Fen or Bps field (app/api/fields.py)
    return codes


def documented_codes() -> dict[str, int]:
    rows = re.findall(r"^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|", DOC.read_text(encoding="utf-8"), re.M)
    out: dict[str, int] = {}
    for code, status in rows:
        assert code not in out, f"{code} is listed twice in docs/errors.md"
        out[code] = int(status)
    return out


def test_every_error_code_has_one_status():
    assert {code: sorted(s) for code, s in source_codes().items() if len(s) > 1} == {}


def test_docs_errors_md_lists_every_code_with_its_status_and_nothing_else():
    source = {code: next(iter(s)) for code, s in source_codes().items()}
    documented = documented_codes()
    assert sorted(set(source) - set(documented)) == [], "codes missing from docs/errors.md"
    assert sorted(set(documented) - set(source)) == [], "docs/errors.md lists codes nothing raises"
    assert {c: (source[c], documented[c]) for c in source if source[c] != documented[c]} == {}


def test_one_status_per_kind_of_error():
    """Codes that name their kind answer that kind's status (docs/errors.md, "Kinds")."""
    source = {code: next(iter(s)) for code, s in source_codes().items()}
    by_suffix = {"_not_found": 404, "_conflict": 409, "_taken": 409, "_exists": 409}
    for code, status in source.items():
        for suffix, expected in by_suffix.items():
            if code.endswith(suffix) and expected:
                assert status == expected, (code, status)
    assert {source[c] for c in ("malformed_json", "json_too_deep", "bad_request")} == {400}
    assert {source[c] for c in ("auth_required", "token_invalid", "token_expired", "signature_invalid")} == {401}
    assert {source[c] for c in ("operator_required", "member_required", "role_required")} == {403}
    assert {source[c] for c in ("validation_error", "amount_not_integer", "login_code_invalid",
                                "oauth_code_invalid", "phone_code_invalid", "store_name_required")} == {422}
