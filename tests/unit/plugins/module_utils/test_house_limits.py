# -*- coding: utf-8 -*-
"""House rules of plugins/module_utils (issue 11), read from the source with ast, nothing imported:

- no file over MAX_FILE_LINES lines and no function over MAX_FUNCTION_LINES lines (a reader sees a
  step's story in one screen);
- every function annotates its parameters (``self``/``cls`` aside) and its return.

Subpackages are walked too. A file that may break a rule for now is named in an allowlist below, with
the reason; an entry that no longer covers a breach (the file fits, or is gone) fails as well, so the
lists only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MODULE_UTILS = Path(__file__).resolve().parents[4] / "plugins" / "module_utils"
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 60

# Paths relative to plugins/module_utils; a key ending in "/" covers a whole subpackage. Empty since the
# wave-5 split: a new entry needs its reason, and a closing note saying why the rule cannot hold there.
SIZE_ALLOWLIST: dict[str, str] = {}
ANNOTATION_ALLOWLIST: dict[str, str] = {}

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def python_files(root: Path = MODULE_UTILS) -> dict[str, Path]:
    """Every .py file under ``root``, by its path relative to it (``steps/deploy.py``)."""
    return {path.relative_to(root).as_posix(): path for path in sorted(root.rglob("*.py"))}


def functions(tree: ast.AST) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, node) of every function and method in ``tree``, nested ones included."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, FUNCTIONS):
                found.append((prefix + child.name, child))
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def size_breaches(text: str) -> list[str]:
    """What in one file's ``text`` is over the limits, one line each."""
    breaches = []
    lines = len(text.splitlines())
    if lines > MAX_FILE_LINES:
        breaches.append("%d lines (limit %d)" % (lines, MAX_FILE_LINES))
    for name, node in functions(ast.parse(text)):
        length = node.end_lineno - node.lineno + 1
        if length > MAX_FUNCTION_LINES:
            breaches.append("%s() at line %d is %d lines (limit %d)" % (name, node.lineno, length, MAX_FUNCTION_LINES))
    return breaches


def annotation_breaches(text: str) -> list[str]:
    """The functions in ``text`` without an annotation on a parameter or the return, one line each."""
    breaches = []
    for name, node in functions(ast.parse(text)):
        arguments = node.args
        parameters = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
        parameters += [argument for argument in (arguments.vararg, arguments.kwarg) if argument is not None]
        is_method = "." in name and parameters[:1] and parameters[0].arg in ("self", "cls")
        missing = [parameter.arg for parameter in parameters[1 if is_method else 0:] if parameter.annotation is None]
        if node.returns is None:
            missing.append("return")
        if missing:
            breaches.append("%s() at line %d: no annotation on %s" % (name, node.lineno, ", ".join(missing)))
    return breaches


def allowlisted(relative: str, allowlist: dict[str, str]) -> bool:
    return any(relative == key or (key.endswith("/") and relative.startswith(key)) for key in allowlist)


def breaches_of(check: str, allowlist: dict[str, str]) -> list[str]:
    """``file: breach`` for every file the allowlist does not cover."""
    judge = size_breaches if check == "size" else annotation_breaches
    found = []
    for relative, path in python_files().items():
        if not allowlisted(relative, allowlist):
            found += ["plugins/module_utils/%s: %s" % (relative, breach) for breach in judge(path.read_text())]
    return found


def stale_entries(check: str, allowlist: dict[str, str]) -> list[str]:
    """Allowlist entries that cover no breach now: a file that fits or is gone, a subpackage that fits."""
    judge = size_breaches if check == "size" else annotation_breaches
    files = python_files()
    stale = []
    for key in allowlist:
        covered = [path for relative, path in files.items() if allowlisted(relative, {key: ""})]
        if key.endswith("/") and not covered:
            continue  # a subpackage that is not written yet
        if not any(judge(path.read_text()) for path in covered):
            stale.append(key)
    return stale


@pytest.mark.parametrize("check, allowlist", [("size", SIZE_ALLOWLIST), ("annotations", ANNOTATION_ALLOWLIST)])
def test_module_utils_keep_the_house_rules(check: str, allowlist: dict[str, str]) -> None:
    found = breaches_of(check, allowlist)
    assert not found, "%d %s breach(es) in plugins/module_utils (fix, or allowlist with the reason):\n%s" % (
        len(found), check, "\n".join(found))


@pytest.mark.parametrize("check, allowlist", [("size", SIZE_ALLOWLIST), ("annotations", ANNOTATION_ALLOWLIST)])
def test_allowlists_hold_only_what_still_breaks_the_rules(check: str, allowlist: dict[str, str]) -> None:
    stale = stale_entries(check, allowlist)
    assert not stale, "remove from the %s allowlist (no breach left): %s" % (check, ", ".join(stale))


def test_the_walk_sees_the_files_and_subpackages() -> None:
    files = python_files()
    assert "consul_state.py" in files and "errors.py" in files
    assert all(not relative.startswith("/") for relative in files)


# -- the checks themselves, on made-up source: each must catch what it is for -------------------------------
def test_a_long_function_and_a_long_file_are_named() -> None:
    body = "".join("        x = %d\n" % number for number in range(MAX_FUNCTION_LINES))
    text = "class Store:\n    def write(self) -> None:\n" + body
    breaches = size_breaches(text)
    assert len(breaches) == 1 and breaches[0].startswith("Store.write() at line 2 is 61 lines")
    assert size_breaches("x = 1\n" * (MAX_FILE_LINES + 1)) == ["451 lines (limit 450)"]
    assert size_breaches("x = 1\n" * MAX_FILE_LINES) == []


def test_a_missing_annotation_is_named() -> None:
    text = (
        "def typed(a: int, *rest: str, key: bool = False, **more: int) -> int:\n    return a\n"
        "def untyped(a, b: int):\n    pass\n"
        "class C:\n    def method(self, value: int):\n        pass\n"
        "    @classmethod\n    def build(cls) -> C:\n        def inner(y) -> None:\n            pass\n"
    )
    assert annotation_breaches(text) == [
        "untyped() at line 3: no annotation on a, return",
        "C.method() at line 6: no annotation on return",
        "C.build.inner() at line 10: no annotation on y",
    ]
    assert annotation_breaches("def free(self) -> None:\n    pass\n") == [
        "free() at line 1: no annotation on self",
    ]
