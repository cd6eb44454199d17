"""The rules of docs/engineering.md that a program can check, checked on every run of the suite.

- At most MAX_RAW_SQL_SITES raw SQL call sites (`cursor.execute`/`executemany`, `RawSQL(...)`, `.raw(...)`) in
  application code (tests, test support, migrations and seed_scale aside), each allowed kind named in the docs.
- No writes to Django's private attributes (`_state`, `_prefetched_objects_cache`, `fields_cache`, ...).
- Database vendor differences (`.vendor`) only in portal/db.py and the two modules built around one vendor's
  feature: the search backends (FTS5 / tsvector) and the bulk COPY helper.
"""

from __future__ import annotations

import ast
from pathlib import Path

from portal.tests.test_module_size import ROOT, application_modules

MAX_RAW_SQL_SITES = 12
EXEMPT = ("portal/testing/", "catalog/management/commands/seed_scale.py")
VENDOR_MODULES = {"portal/db.py", "catalog/search.py", "catalog/bulk.py"}
DJANGO_PRIVATE = {"_state", "_prefetched_objects_cache", "fields_cache", "_result_cache", "_known_related_objects"}


def _modules(root: Path) -> dict[str, ast.Module]:
    found = {}
    for path in application_modules(root):
        relative = path.relative_to(root).as_posix()
        if not relative.startswith(EXEMPT):
            found[relative] = ast.parse(path.read_text(), filename=relative)
    return found


def _receiver_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def raw_sql_sites(modules: dict[str, ast.Module]) -> list[str]:
    sites = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            raw = (
                (isinstance(func, ast.Name) and func.id == "RawSQL")
                or (isinstance(func, ast.Attribute) and func.attr == "RawSQL")
                or (
                    isinstance(func, ast.Attribute)
                    and func.attr in {"execute", "executemany"}
                    and "cursor" in _receiver_name(func.value)
                )
                or (isinstance(func, ast.Attribute) and func.attr == "raw" and _receiver_name(func.value) == "objects")
            )
            if raw:
                sites.append(f"{name}:{node.lineno}")
    return sorted(sites)


def _attribute_chain(node: ast.expr) -> list[str]:
    names = []
    while isinstance(node, ast.Attribute | ast.Subscript):
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
        node = node.value
    return names


def private_writes(modules: dict[str, ast.Module]) -> list[str]:
    found = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.Delete):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            else:
                continue
            for target in targets:
                if DJANGO_PRIVATE & set(_attribute_chain(target)):
                    found.append(f"{name}:{node.lineno}")
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                func = node.value.func  # setattr(obj, "_prefetched_objects_cache", ...)
                if isinstance(func, ast.Name) and func.id == "setattr" and len(node.value.args) > 1:
                    attribute = node.value.args[1]
                    if isinstance(attribute, ast.Constant) and attribute.value in DJANGO_PRIVATE:
                        found.append(f"{name}:{node.lineno}")
    return sorted(found)


def vendor_branches(modules: dict[str, ast.Module]) -> list[str]:
    return sorted(
        f"{name}:{node.lineno}"
        for name, tree in modules.items()
        if name not in VENDOR_MODULES
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "vendor"
    )


def test_application_code_keeps_to_the_raw_sql_budget() -> None:
    modules = _modules(ROOT)
    assert "catalog/services.py" in modules
    sites = raw_sql_sites(modules)
    assert len(sites) <= MAX_RAW_SQL_SITES, f"{len(sites)} raw SQL sites (at most {MAX_RAW_SQL_SITES}): {sites}"


def test_application_code_writes_no_django_private_attribute() -> None:
    assert private_writes(_modules(ROOT)) == []


def test_vendor_differences_stay_in_their_modules() -> None:
    assert vendor_branches(_modules(ROOT)) == []


def test_the_checks_find_what_they_look_for() -> None:
    source = ast.parse(
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SELECT 1')\n"
        "qs.filter(id__in=RawSQL('SELECT 1', []))\n"
        "Agent.objects.raw('SELECT 1')\n"
        "obj._state.fields_cache['owner'] = owner\n"
        "obj._prefetched_objects_cache = {}\n"
        "x = setattr(obj, '_prefetched_objects_cache', {})\n"
        "if connection.vendor == 'sqlite': pass\n"
        "self._state_of_mind = 1\n"
        "cursor_position = things.execute()\n"
    )
    modules = {"catalog/example.py": source}
    assert raw_sql_sites(modules) == ["catalog/example.py:2", "catalog/example.py:3", "catalog/example.py:4"]
    assert private_writes(modules) == ["catalog/example.py:5", "catalog/example.py:6", "catalog/example.py:7"]
    assert vendor_branches(modules) == ["catalog/example.py:8"]
