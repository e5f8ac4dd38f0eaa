"""Every kind of event made anywhere in edge/ is declared in ``edge.decisions.EVENT_KINDS``.

Read from the source, not from a run: the ``ast`` of each module under ``edge/`` is searched
for calls that make an :class:`edge.decisions.Event` and the kind each passes. A kind is a
string literal, a conditional between literals, a local or module constant (also one
imported from another module of edge/), or a parameter of the function that makes the
event; then that function makes events too, and its callers' arguments are read in turn
(``hub_event(kind, ...)``, ``DeviceEvents._event(t, kind, ...)``, ``edge.updates.event``).
A kind the reader cannot trace is a failure too: the list would otherwise go stale unseen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge.decisions import EVENT_KINDS

EDGE = Path(__file__).resolve().parents[3] / "edge"
SEED = ("edge.decisions", "Event", 3)  # Event(resident, device, t, kind, detail)
_Fn = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class _Module:
    name: str
    path: Path
    tree: ast.Module
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # local -> (module, name)
    constants: dict[str, str] = field(default_factory=dict)  # module-level str constants
    defined: set[str] = field(default_factory=set)  # functions, methods and classes


@dataclass
class Found:
    kinds: dict[str, list[str]]  # kind -> where it is made ("path:line")
    untraced: list[str]  # "path:line: expression" of kinds the reader could not follow


def _load(root: Path) -> dict[str, _Module]:
    mods = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        m = _Module(name, path, ast.parse(path.read_text("utf-8"), str(path)))
        for node in ast.walk(m.tree):  # lazy imports inside functions count too
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    m.imports[a.asname or a.name] = (node.module, a.name)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                m.defined.add(node.name)
        for node in m.tree.body:
            target, value = None, None
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign):
                target, value = node.target, node.value
            if (
                isinstance(target, ast.Name)
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ):
                m.constants[target.id] = value.value
        mods[m.name] = m
    return mods


def _params(fn: _Fn) -> list[str]:
    names = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]
    return names[1:] if names and names[0] in ("self", "cls") else names


def _calls(tree: ast.AST) -> Iterator[tuple[ast.Call, _Fn | None]]:
    """Every call under ``tree``, with the function it is in (None: module level)."""

    def visit(node: ast.AST, fn: _Fn | None) -> Iterator[tuple[ast.Call, _Fn | None]]:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, _Fn) else fn
            if isinstance(child, ast.Call):
                yield child, fn
            yield from visit(child, inner)

    yield from visit(tree, None)


def event_kinds(root: Path = EDGE) -> Found:
    """Every event kind the modules under ``root`` make, and what could not be traced."""
    mods = _load(root)
    makers: dict[tuple[str, str], tuple[int, str]] = {(SEED[0], SEED[1]): (SEED[2], "kind")}
    while True:  # until no new function turns out to pass a kind through
        found, grew = Found({}, []), False
        for m in mods.values():
            for call, fn in _calls(m.tree):
                target = _callee(call, m)
                if target not in makers:
                    continue
                index, pname = makers[target]
                where = f"{m.path.relative_to(root.parent)}:{call.lineno}"
                arg = next((k.value for k in call.keywords if k.arg == pname), None)
                if arg is None and len(call.args) > index:
                    arg = call.args[index]
                if arg is None or any(isinstance(a, ast.Starred) for a in call.args):
                    found.untraced.append(f"{where}: {ast.unparse(call)}")
                    continue
                kinds, passed = _trace(arg, fn, m, mods)
                if passed is not None and fn is not None:
                    key = (m.name, fn.name)
                    if key not in makers:
                        makers[key], grew = (_params(fn).index(passed), passed), True
                    continue
                if kinds is None:
                    found.untraced.append(f"{where}: {ast.unparse(arg)}")
                    continue
                for k in kinds:
                    found.kinds.setdefault(k, []).append(where)
        if not grew:
            return found


def _callee(call: ast.Call, m: _Module) -> tuple[str, str] | None:
    f = call.func
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
        return (m.name, f.attr) if f.value.id in ("self", "cls") else None
    if isinstance(f, ast.Name):
        if f.id in m.defined:
            return (m.name, f.id)
        return m.imports.get(f.id)
    return None


def _trace(
    expr: ast.expr,
    fn: _Fn | None,
    m: _Module,
    mods: dict[str, _Module],
) -> tuple[set[str] | None, str | None]:
    """(the kinds ``expr`` can be, None: untraceable; the parameter it passes on, if so)."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}, None
    if isinstance(expr, ast.IfExp):
        a, _ = _trace(expr.body, fn, m, mods)
        b, _ = _trace(expr.orelse, fn, m, mods)
        return (None if a is None or b is None else a | b), None
    if not isinstance(expr, ast.Name):
        return None, None
    name = expr.id
    if fn is not None:
        if name in _params(fn):
            return set(), name
        values = [
            node.value
            for node in ast.walk(fn)
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        ]
        if values:
            out: set[str] = set()
            for v in values:
                kinds, _ = _trace(v, fn, m, mods)
                if kinds is None:
                    return None, None
                out |= kinds
            return out, None
    if name in m.constants:
        return {m.constants[name]}, None
    source = m.imports.get(name)
    if source is not None and source[0] in mods and source[1] in mods[source[0]].constants:
        return {mods[source[0]].constants[source[1]]}, None
    return None, None


def test_every_event_kind_made_in_edge_is_declared() -> None:
    found = event_kinds()
    assert found.untraced == [], "event kinds this test cannot trace (use a literal or constant)"
    undeclared = {k: w for k, w in found.kinds.items() if k not in EVENT_KINDS}
    assert undeclared == {}, "add these to edge.decisions.EVENT_KINDS"
    # the update path's events among them, each traced to where it is made
    for kind in ("model_swapped", "update_refused", "model_rolled_back", "personal_head"):
        assert kind in found.kinds, kind
    assert any(w.startswith("edge/updates.py") for w in found.kinds["model_rolled_back"])


def test_every_declared_kind_is_made_somewhere() -> None:
    found = event_kinds()
    assert [k for k in EVENT_KINDS if k not in found.kinds] == []
    assert len(set(EVENT_KINDS)) == len(EVENT_KINDS)


def test_the_reader_finds_an_undeclared_kind_and_an_untraceable_one(tmp_path: Path) -> None:
    """Positive control: the reader sees through helpers, constants and imports."""
    root = tmp_path / "edge"
    root.mkdir()
    (root / "decisions.py").write_text(
        "class Event:\n    def __init__(self, resident, device, t, kind, detail): ...\n"
    )
    (root / "kinds.py").write_text('OTHER = "imported_kind"\n')
    (root / "maker.py").write_text(
        "from edge.decisions import Event\n"
        "from edge.kinds import OTHER\n"
        'LOCAL = "constant_kind"\n'
        "def hub(kind, detail):\n"
        '    return Event("hub", "hub", 0.0, kind, detail)\n'
        "class Thing:\n"
        "    def _event(self, t, kind):\n"
        '        return hub(kind=kind, detail={"t": t})\n'
        "    def on(self, up, x):\n"
        '        k = "up_kind" if up else "down_kind"\n'
        "        return [self._event(0.0, k), self._event(1.0, LOCAL), hub(OTHER, {}),\n"
        '                self._event(2.0, x.kind), Event("r", "d", 0.0, kind="literal", detail={})]\n'
    )
    (root / "other.py").write_text(
        "import asyncio\nfrom edge.maker import hub\n"
        "stop = asyncio.Event()\n"  # not ours: never counted
        'hub("far_kind", {})\n'
    )
    found = event_kinds(root)
    assert sorted(found.kinds) == [
        "constant_kind",
        "down_kind",
        "far_kind",
        "imported_kind",
        "literal",
        "up_kind",
    ]
    assert len(found.untraced) == 1 and "x.kind" in found.untraced[0]
