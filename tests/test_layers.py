"""The package's imports follow its layers (docs/architecture.md): data flows one way, bytes ->
graph -> placement -> plan -> kernels on a device -> checkpoint, and each device kind is a room
of its own.  This walks every module's imports (lazy ones included; ``TYPE_CHECKING`` blocks
excepted) and fails on any that crosses the table below."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "gpugraph"
KINDS = ("cpu", "cuda", "virtual")
LEAVES = {"leaves"}
BELOW_OPS = LEAVES | {"io", "framework", "state", "devices.base"}

# room -> the rooms it may import ("<kind>" stands for the importing module's own kind).
ALLOWED: dict[str, set[str]] = {
    "leaves": LEAVES,
    "io": LEAVES | {"io"},
    "framework": LEAVES | {"io", "framework"},
    "state": LEAVES,
    "devices.base": LEAVES | {"devices.base"},
    "devices.index": LEAVES | {"devices.base", "devices.cpu", "devices.cuda", "devices.virtual"},
    "devices.<kind>": LEAVES | {"devices.base", "devices.<kind>"},
    "ops.generic": BELOW_OPS | {"ops.generic"},
    "ops.<kind>": BELOW_OPS | {"ops.generic", "devices.<kind>", "ops.<kind>"},
    "ops.index": {"ops.generic", "ops.cpu", "ops.cuda"},
    "placement": BELOW_OPS | {"devices.index", "ops.generic"},
    "plan": BELOW_OPS | {"ops.generic", "plan", "distributed"},
    "session": BELOW_OPS | {"devices.index", "ops.generic", "ops.index", "placement", "plan",
                            "session", "distributed"},
    "train": BELOW_OPS | {"ops.generic", "session", "train"},
    "saved_model": BELOW_OPS | {"ops.generic", "session", "train", "saved_model"},
    "summary": BELOW_OPS | {"ops.generic", "session", "train", "summary"},
    "distributed": LEAVES | {"devices.base", "distributed"},
    "top": None,  # resume, cli and the facade may import anything
}


def room(module: str) -> str:
    """The room of dotted module name ``module`` (``gpugraph.ops.cpu.conv`` -> ``ops.cpu``)."""
    parts = module.split(".")[1:]
    if not parts or parts[0] in ("resume", "cli", "__main__"):
        return "top"
    head = parts[0]
    if head in ("errors", "dtypes", "config", "_optional", "_proto"):
        return "leaves"
    if head in ("io", "framework", "state", "placement", "plan", "session", "train",
                "saved_model", "summary", "distributed"):
        return head
    if head in ("devices", "ops"):
        if len(parts) == 1:
            return f"{head}.index"
        if parts[1] in KINDS:
            return f"{head}.{parts[1]}"
        return "devices.base" if head == "devices" else "ops.generic"
    raise AssertionError(f"no room declared for {module}")


def allowed(source: str, target: str) -> bool:
    rules = ALLOWED[_generic(source)]
    if rules is None:
        return True
    kind = source.split(".")[1] if source.split(".")[0] in ("devices", "ops") and \
        source.split(".")[-1] in KINDS else None
    return target in {r.replace("<kind>", kind) if kind else r for r in rules}


def _generic(source: str) -> str:
    first, _, last = source.partition(".")
    return f"{first}.<kind>" if last in KINDS else source


def module_name(path: pathlib.Path, root: pathlib.Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: pathlib.Path, root: pathlib.Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, dotted gpugraph module) for every import in ``path`` outside TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] +
                                ([base] if base else []))
            for alias in node.names:  # `from gpugraph.ops import cpu` imports gpugraph.ops.cpu
                candidate = f"{base}.{alias.name}"
                where = root.parent / candidate.replace(".", "/")
                is_module = where.is_dir() or where.with_suffix(".py").is_file()
                found.append((node.lineno, candidate if is_module else base))
    return [(line, name) for line, name in found if name.split(".")[0] == "gpugraph"]


def violations(root: pathlib.Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        source = room(module_name(path, root))
        for line, target in imports(path, root):
            if target == "gpugraph":
                continue
            to = room(target)
            if not allowed(source, to):
                out.append(f"{path.relative_to(root.parent)}:{line}: {source} may not import "
                           f"{to} ({target})")
    return out


def test_every_import_follows_the_layers() -> None:
    assert violations() == []


@pytest.mark.parametrize(("source", "target", "ok"), [
    ("ops.generic", "devices.cpu", False),      # a generic op family importing a backend
    ("ops.cpu", "devices.cpu", True),
    ("ops.cpu", "devices.cuda", False),         # a backend's ops reaching another kind
    ("devices.cpu", "plan", False),             # a backend importing the planner
    ("devices.cpu", "ops.generic", False),
    ("plan", "devices.cpu", False),             # the plan reaches backends through Device hooks
    ("framework", "plan", False),               # upward against the data flow
    ("train", "plan", False),
    ("top", "devices.cuda", True),
])
def test_the_rules_refuse_what_they_should(source: str, target: str, ok: bool) -> None:
    assert allowed(source, target) is ok


def test_an_added_backend_import_is_caught(tmp_path: pathlib.Path) -> None:
    """A copy of the package with one generic op family importing the CPU backend fails."""
    import shutil

    copy = tmp_path / "gpugraph"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.binpb"))
    family = copy / "ops" / "nn_ops.py"
    family.write_text(family.read_text() + "\nfrom gpugraph.devices.cpu import loops\n")
    found = violations(copy)
    assert len(found) == 1 and "ops.generic may not import devices.cpu" in found[0]
