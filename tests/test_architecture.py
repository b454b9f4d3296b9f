"""Architecture rules, checked on the source text (nothing is imported).

The import graph is built with ``ast`` from every ``.py`` file under ``include/``: every
``import`` and ``from … import``, including those inside functions (a lazy import is still a
dependency), except those under ``if TYPE_CHECKING:`` (annotations only) and the Alembic
migrations (scripts run by Alembic, not imported by the runtime). Relative imports are
resolved; ``from pkg import name`` where ``pkg.name`` is a module counts as importing that
module, otherwise as importing ``pkg``.

Rules (docs/architecture.md explains them):

* no cycle between modules;
* no cycle between packages: consumption_monitor's direct subpackages and top modules
  (``feeds.sources`` is part of ``feeds``), and ``cm_devtools`` as one package;
* the runtime (``consumption_monitor``, ``dags/``, ``plugins/``) never imports ``cm_devtools``;
* no module over 600 lines, no function over 80 lines (declarative parser builders aside).
"""

from __future__ import annotations

import ast
import itertools
import textwrap
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INCLUDE = REPO / "include"
RUNTIME = "consumption_monitor"
DEVTOOLS = "cm_devtools"
MIGRATIONS = f"{RUNTIME}.warehouse.migrations"  # Alembic scripts: outside the graph
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
# Declarative argparse builders: one add_argument call after another, long by nature.
PARSER_BUILDERS = frozenset({"build_parser", "add_cli_arguments"})
CLI_REGISTER = "register"  # allowed only in a module named ``cli``

# The code layers, lowest first: a package may import only packages of lower layers, never
# one of its own layer or above (``consumption_monitor`` itself is its ``__init__``: the
# version). Validation sits above the warehouse: it reads earlier periods from it and
# records its results in it, while the warehouse loads batches without knowing validation.
# cm_devtools sits beside the runtime: it may import any of it, the runtime never imports it.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(RUNTIME if name == "__init__" else f"{RUNTIME}.{name}" for name in layer.split())
    for layer in (
        "__init__",
        "common",
        "feeds",
        "warehouse",
        "validation indicators",
        "alerts",
        "pipeline",
        "orchestration",
        "cli",
        "__main__",
    )
)

Graph = Mapping[str, Mapping[str, int]]  # module -> {imported module: first line}


# --- reading the source -------------------------------------------------------------------


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module under ``root`` (migrations aside)."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if name == MIGRATIONS or name.startswith(f"{MIGRATIONS}."):
            continue
        found[name] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class _Imports(ast.NodeVisitor):
    """(module, imported name or None, line) for every import outside TYPE_CHECKING blocks."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.found: list[tuple[str, str | None, int]] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.extend((alias.name, None, node.lineno) for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.package.split(".")
            base = parts[: len(parts) - (node.level - 1)]
            module = ".".join([*base, *([node.module] if node.module else [])])
        else:
            module = node.module or ""
        self.found.extend((module, alias.name, node.lineno) for alias in node.names)


def _known_prefix(name: str, known: Mapping[str, Path]) -> str | None:
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


def import_graph(root: Path) -> dict[str, dict[str, int]]:
    """Module -> {module of ``root`` it imports: line of the first such import}."""
    known = modules(root)
    graph: dict[str, dict[str, int]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        visitor = _Imports(package)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        edges: dict[str, int] = {}
        for module, imported, line in visitor.found:
            submodule = f"{module}.{imported}"
            target = submodule if imported and submodule in known else _known_prefix(module, known)
            if target is not None and target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def package_of(module: str) -> str:
    """consumption_monitor's direct subpackage or top module; other top packages whole."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == RUNTIME else parts[0]


def package_graph(graph: Graph) -> dict[str, dict[str, str]]:
    """Package -> {imported package: one import that makes it, "module:line -> module"}."""
    packages: dict[str, dict[str, str]] = {}
    for source, edges in sorted(graph.items()):
        mine = packages.setdefault(package_of(source), {})
        for target, line in sorted(edges.items()):
            other = package_of(target)
            if other != package_of(source):
                mine.setdefault(other, f"{source}:{line} -> {target}")
    return packages


# --- cycles ---------------------------------------------------------------------------------


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's components of more than one node (or with a self-loop), nodes sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def shortest_cycle(graph: Mapping[str, Iterable[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first node: [a, b, …, a]."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph.get(node, ())):
            if nxt not in members:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


def cycles(graph: Mapping[str, Mapping[str, object]]) -> list[str]:
    """One readable line per cycle: the shortest loop and, when larger, the whole tangle."""
    lines = []
    for component in strongly_connected(graph):
        loop = shortest_cycle(graph, component)
        steps = [f"{a} ({graph[a][b]})" for a, b in itertools.pairwise(loop)]
        text = " -> ".join([*steps, loop[-1]])
        if len(component) > len(loop) - 1:
            text += f"   [all entangled: {', '.join(component)}]"
        lines.append(text)
    return lines


# --- sizes ----------------------------------------------------------------------------------


def long_modules(root: Path, limit: int = MAX_MODULE_LINES) -> list[str]:
    return [
        f"{name}: {n} lines"
        for name, path in modules(root).items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > limit
    ]


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def long_functions(root: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """Functions (methods and nested ones included) longer than ``limit`` lines, from the
    ``def`` line to the last line of the body."""
    found = []
    for name, path in modules(root).items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for fn in _functions(tree):
            length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            allowed = fn.name in PARSER_BUILDERS or (
                fn.name == CLI_REGISTER and name.rpartition(".")[2] == "cli"
            )
            if length > limit and not allowed:
                found.append(f"{name}.{fn.name} (line {fn.lineno}): {length} lines")
    return found


# --- the rules ------------------------------------------------------------------------------


def _report(title: str, problems: list[str]) -> str:
    return f"{title}:\n  " + "\n  ".join(problems)


def test_no_cycle_between_modules() -> None:
    problems = cycles(import_graph(INCLUDE))
    assert not problems, _report("import cycles between modules (module (line) -> …)", problems)


def test_no_cycle_between_packages() -> None:
    problems = cycles(package_graph(import_graph(INCLUDE)))
    assert not problems, _report(
        "import cycles between packages (package (an import making the edge) -> …)", problems
    )


def upward_imports(packages: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Imports of a package from a higher layer (or from/to a package missing in LAYERS)."""
    rank = {name: n for n, layer in enumerate(LAYERS) for name in layer}
    problems = []
    for source, edges in sorted(packages.items()):
        if source == DEVTOOLS:
            continue  # beside the runtime: may import any layer
        if source not in rank:
            problems.append(f"{source} is in no layer: add it to LAYERS and docs/architecture.md")
            continue
        for target, where in sorted(edges.items()):
            if target != DEVTOOLS and rank.get(target, len(rank)) >= rank[source]:
                problems.append(f"{source} imports the higher layer {target}: {where}")
    return problems


def test_packages_depend_only_downwards() -> None:
    problems = upward_imports(package_graph(import_graph(INCLUDE)))
    assert not problems, _report(
        "imports against the layers ("
        + " < ".join(
            "|".join(sorted(p.removeprefix(f"{RUNTIME}.") for p in layer)) for layer in LAYERS
        )
        + ")",
        problems,
    )


def devtools_imports(graph: Graph, scripts: Iterable[Path] = ()) -> list[str]:
    """Imports of cm_devtools by runtime modules of ``graph`` and by the ``scripts`` (DAG
    files, Airflow plugins: runtime too, outside the package)."""
    problems = [
        f"{source}:{line} imports {target}"
        for source, edges in sorted(graph.items())
        if package_of(source) != DEVTOOLS
        for target, line in sorted(edges.items())
        if package_of(target) == DEVTOOLS
    ]
    for path in scripts:
        visitor = _Imports("")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        problems += [
            f"{path.name}:{line} imports {module}"
            for module, _, line in visitor.found
            if package_of(module) == DEVTOOLS
        ]
    return problems


def test_runtime_never_imports_devtools() -> None:
    scripts = sorted([*(REPO / "dags").rglob("*.py"), *(REPO / "plugins").rglob("*.py")])
    assert scripts, "no DAG files found"
    problems = devtools_imports(import_graph(INCLUDE), scripts)
    assert not problems, _report("the runtime imports the dev tools", problems)


def test_no_module_too_long() -> None:
    problems = long_modules(INCLUDE)
    assert not problems, _report(f"modules over {MAX_MODULE_LINES} lines", problems)


def test_no_function_too_long() -> None:
    problems = long_functions(INCLUDE)
    assert not problems, _report(f"functions over {MAX_FUNCTION_LINES} lines", problems)


# --- the checks themselves can fail ----------------------------------------------------------


def test_cycle_finder_on_constructed_graphs() -> None:
    acyclic = {"a": {"b": 1, "c": 2}, "b": {"c": 3}, "c": {}}
    assert cycles(acyclic) == []
    tangled = {
        "a": {"b": 1},
        "b": {"c": 2, "d": 3},
        "c": {"a": 4},
        "d": {"b": 5},
        "e": {"a": 6},  # leads into the cycle, is not part of it
        "f": {"f": 7},  # imports itself
    }
    assert strongly_connected(tangled) == [["a", "b", "c", "d"], ["f"]]
    assert cycles(tangled) == [
        "a (1) -> b (2) -> c (4) -> a   [all entangled: a, b, c, d]",
        "f (7) -> f",
    ]
    assert package_graph({f"{RUNTIME}.x.m": {f"{RUNTIME}.y": 3}, f"{RUNTIME}.y": {}}) == {
        f"{RUNTIME}.x": {f"{RUNTIME}.y": f"{RUNTIME}.x.m:3 -> {RUNTIME}.y"},
        f"{RUNTIME}.y": {},
    }


def test_layer_check_on_a_constructed_graph() -> None:
    feeds, warehouse, other = f"{RUNTIME}.feeds", f"{RUNTIME}.warehouse", f"{RUNTIME}.other"
    validation, indicators = f"{RUNTIME}.validation", f"{RUNTIME}.indicators"
    assert upward_imports({warehouse: {feeds: "w:1 -> f"}, DEVTOOLS: {warehouse: "d"}}) == []
    assert upward_imports({validation: {indicators: "v:4 -> i"}}) == [
        f"{validation} imports the higher layer {indicators}: v:4 -> i"  # same layer
    ]
    assert upward_imports({feeds: {warehouse: "f:2 -> w", DEVTOOLS: "f:3 -> d"}}) == [
        f"{feeds} imports the higher layer {warehouse}: f:2 -> w"
    ]
    assert upward_imports({other: {}}) == [
        f"{other} is in no layer: add it to LAYERS and docs/architecture.md"
    ]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_graph_reading_on_a_constructed_tree(tmp_path: Path) -> None:
    p, root = RUNTIME, tmp_path / "include"
    _write(
        root,
        {
            f"{p}/__init__.py": "",
            f"{p}/feeds/__init__.py": "from .spec import Spec\n",
            f"{p}/feeds/spec.py": """\
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from consumption_monitor.warehouse import loader
                else:
                    import json
                """,
            f"{p}/feeds/sources/__init__.py": "",
            f"{p}/feeds/sources/http.py": """\
                from .. import spec
                from ..spec import Spec
                def later():
                    from consumption_monitor.warehouse import loader, LoadRefused
                """,
            f"{p}/warehouse/__init__.py": "LoadRefused = None\n",
            f"{p}/warehouse/loader.py": "import consumption_monitor.feeds.sources.http\n",
            f"{p}/warehouse/migrations/env.py": "import cm_devtools\n",
            f"{DEVTOOLS}/__init__.py": "",
        },
    )
    graph = import_graph(root)
    assert f"{p}.warehouse.migrations.env" not in graph
    assert graph == {
        p: {},
        f"{p}.feeds": {f"{p}.feeds.spec": 1},
        f"{p}.feeds.spec": {},
        f"{p}.feeds.sources": {},
        f"{p}.feeds.sources.http": {
            f"{p}.feeds.spec": 1,
            f"{p}.warehouse.loader": 4,
            f"{p}.warehouse": 4,
        },
        f"{p}.warehouse": {},
        f"{p}.warehouse.loader": {f"{p}.feeds.sources.http": 1},
        DEVTOOLS: {},
    }
    assert cycles(graph) == [
        f"{p}.feeds.sources.http (4) -> {p}.warehouse.loader (1) -> {p}.feeds.sources.http"
    ]
    assert devtools_imports(graph) == []
    _write(
        root,
        {
            f"{p}/feeds/late.py": "def f():\n    from cm_devtools import demo\n",
            f"{DEVTOOLS}/demo.py": "",
        },
    )
    _write(
        tmp_path / "dags",
        {
            "feed.py": "import cm_devtools.sample_server\n",
            "ok.py": "from consumption_monitor import feeds\n",
        },
    )
    assert devtools_imports(import_graph(root), sorted((tmp_path / "dags").glob("*"))) == [
        f"{p}.feeds.late:2 imports {DEVTOOLS}.demo",
        "feed.py:1 imports cm_devtools.sample_server",
    ]
    assert cycles(package_graph(graph)) == [
        f"{p}.feeds ({p}.feeds.sources.http:4 -> {p}.warehouse) -> {p}.warehouse "
        f"({p}.warehouse.loader:1 -> {p}.feeds.sources.http) -> {p}.feeds"
    ]


def test_size_limits_on_a_constructed_tree(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(79))
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "\n" * 601,
            "pkg/ok.py": f"def fits():\n{body}\n",  # 80 lines
            "pkg/long.py": f"def too_long():\n{body}\n    return x0\n",  # 81 lines
            "pkg/cli.py": f"def register():\n{body}\n    return x0\n",
            "pkg/other.py": f"class A:\n    def register(self):\n{textwrap.indent(body, '    ')}"
            "\n        return x0\n",
        },
    )
    assert long_modules(tmp_path) == ["pkg: 601 lines"]
    assert long_functions(tmp_path) == [
        "pkg.long.too_long (line 1): 81 lines",
        "pkg.other.register (line 2): 81 lines",
    ]
