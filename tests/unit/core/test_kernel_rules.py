"""The kernel's architecture rules: core/ stands alone, and one exception class is the root.

- ``core/`` imports numpy and the standard library only, never another package of ours
  (checked on the source with ``ast``, so an import inside a function counts too).
- Every exception class the project's packages define derives from
  :class:`core.errors.WearableEdgeError` (checked on the imported classes, so a class that
  inherits its base through an alias or another module is judged by its real MRO).

Each detector is also run on a planted violation, so a detector that finds nothing because
it is broken fails here instead of passing quietly.
"""

from __future__ import annotations

import ast
import importlib
import sys
import types
from pathlib import Path

from core.errors import WearableEdgeError

ROOT = Path(__file__).resolve().parents[3]
OURS = ("core", "train", "export", "edge", "firmware_bridge", "benchmarks")
KERNEL_MAY_IMPORT = frozenset({"numpy", "core"})  # plus the standard library


def imported_roots(source: str) -> set[str]:
    """Top-level names of every absolute import in ``source`` (relative ones stay inside)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def kernel_violations(source: str) -> set[str]:
    """Imports a kernel module must not have: ours (but core) or any third-party package."""
    return {m for m in imported_roots(source)
            if m not in KERNEL_MAY_IMPORT and m not in sys.stdlib_module_names}


def test_the_import_detector_flags_planted_imports() -> None:
    planted = "import os\nimport numpy as np\nfrom edge.config import X\n" \
              "def f():\n    import train.fit\n    from scipy import signal\n" \
              "from . import sibling\nfrom core.errors import ConfigError\n"
    assert kernel_violations(planted) == {"edge", "train", "scipy"}


def test_core_imports_only_numpy_and_the_standard_library() -> None:
    files = sorted((ROOT / "core").rglob("*.py"))
    assert len(files) >= 10, files  # the walk found the kernel
    bad = {}
    for path in files:
        found = kernel_violations(path.read_text(encoding="utf-8"))
        if found:
            bad[str(path.relative_to(ROOT))] = sorted(found)
    assert not bad, f"core/ must import only numpy and the standard library: {bad}"


def module_names(package: str) -> list[str]:
    """Every module of ``package`` by file (``__main__`` left out: importing it runs it)."""
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def foreign_exceptions(module: types.ModuleType) -> list[str]:
    """Exception classes defined in ``module`` (nested ones too) outside the project's root."""
    out = []
    todo = [c for c in vars(module).values() if isinstance(c, type)]
    seen: set[type] = set()
    while todo:
        cls = todo.pop()
        if cls in seen or cls.__module__ != module.__name__:
            continue
        seen.add(cls)
        todo.extend(c for c in vars(cls).values() if isinstance(c, type))
        if issubclass(cls, BaseException) and not issubclass(cls, WearableEdgeError):
            out.append(f"{module.__name__}.{cls.__qualname__}")
    return sorted(out)


def test_the_exception_detector_flags_a_bare_exception() -> None:
    planted = types.ModuleType("planted")
    ns = vars(planted)
    ns["Bare"] = type("Bare", (Exception,), {"__module__": "planted"})
    ns["Fine"] = type("Fine", (WearableEdgeError, ValueError), {"__module__": "planted"})
    holder = type("Holder", (), {"__module__": "planted"})
    holder.Inner = type("Inner", (KeyError,), {"__module__": "planted"})  # type: ignore[attr-defined]
    ns["Holder"] = holder
    ns["Imported"] = ValueError  # defined elsewhere: not this module's class
    assert foreign_exceptions(planted) == ["planted.Bare", "planted.Inner"]


def test_every_exception_class_derives_from_the_one_root() -> None:
    modules = [m for pkg in OURS for m in module_names(pkg)]
    assert len(modules) > 50, modules
    bad: list[str] = []
    for name in modules:
        bad += foreign_exceptions(importlib.import_module(name))
    assert not bad, f"derive these from core.errors.WearableEdgeError (or a package branch): {bad}"
