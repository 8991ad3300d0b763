"""Structure rules of the package, read from its source with `ast` (nothing is imported, no
service is needed):

- no function or method longer than 100 lines;
- no import cycle among modules at import time (imports inside functions and under
  `if TYPE_CHECKING:` run later or never, so they do not count);
- no module uses another module's private names: `from backburner.x import _y`, `x._y` on an
  imported backburner module (a private *module*, `backburner._version`, is fine), or a call
  `obj._method(...)` of a private method that only other modules' classes define (see
  `private_calls` for how that is told without types);
- storage (`backburner.backends` and below) does not import `backburner.tracing`.

Each rule has an allowlist of the violations the code had when the rule arrived. The test also
fails when an allowlisted violation is gone, so the lists only shrink: delete the entry with
the change that removes it.
"""

from __future__ import annotations

import ast
import functools
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "backburner"
MAX_FUNCTION_LINES = 100
STORAGE = "backburner.backends"
TRACING = "backburner.tracing"

# -- allowlists: the violations when the rules arrived ---------------------------------------
# Each held today's violations, being removed by issue 11 (the CLI cycle and its private
# imports, the two giant route closures, routers importing each other's privates, cross-module
# private calls to the enqueue path and the job context, storage importing tracing); all are
# gone, so every list is empty. They only shrink: a new violation is fixed, not listed.
# "module:qualname".
LONG_FUNCTIONS_ALLOWED: set[str] = set()

# The modules of one cycle (a strongly connected component of the import-time graph), sorted.
IMPORT_CYCLES_ALLOWED: set[tuple[str, ...]] = set()

# "importer -> module.name".
PRIVATE_NAMES_ALLOWED: set[str] = set()

# "caller -> the called expression".
PRIVATE_CALLS_ALLOWED: set[str] = set()

# "importer -> module".
STORAGE_IMPORTS_TRACING_ALLOWED: set[str] = set()


# -- reading a package -----------------------------------------------------------------------
@dataclass(frozen=True)
class Module:
    name: str
    is_package: bool
    tree: ast.Module = field(repr=False)

    def package(self) -> str:
        """The package that relative imports start from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


@dataclass(frozen=True)
class Import:
    """One name an import statement binds, resolved: `target` is the module that runs (the
    submodule for `from package import submodule`), `name` what is taken from it (None: the
    module itself), `alias` the name bound."""

    importer: str
    target: str
    name: str | None
    alias: str
    at_import_time: bool


def read_package(src: Path, package: str) -> dict[str, Module]:
    found: dict[str, Module] = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = Module(".".join(parts), is_package,
                                        ast.parse(path.read_text(), str(path)))
    return found


@functools.cache
def source() -> dict[str, Module]:
    return read_package(SRC, PACKAGE)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, module: Module, known: dict[str, Module]) -> None:
        self.module = module
        self.known = known
        self.found: list[Import] = []
        self.deferred = 0  # > 0 inside a function body or an `if TYPE_CHECKING:` block

    def _deferred(self, nodes: list[ast.stmt]) -> None:
        self.deferred += 1
        for node in nodes:
            self.visit(node)
        self.deferred -= 1

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # Decorators and defaults run at import time, but hold no import statement.
        self._deferred(node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self._deferred(node.body)
        for statement in node.orelse:
            self.visit(statement)

    def _add(self, target: str, name: str | None, alias: str) -> None:
        self.found.append(Import(self.module.name, target, name, alias, not self.deferred))

    def visit_Import(self, node: ast.Import) -> None:
        for item in node.names:
            if item.name.split(".")[0] == PACKAGE:
                # `import a.b` binds `a`; `import a.b as c` binds c to a.b.
                self._add(item.name, None, item.asname or PACKAGE)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            anchor = self.module.package().split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        if base.split(".")[0] != PACKAGE:
            return
        for item in node.names:
            submodule = f"{base}.{item.name}"
            if submodule in self.known:
                self._add(submodule, None, item.asname or item.name)
            else:
                self._add(base, item.name, item.asname or item.name)


def imports(known: dict[str, Module]) -> list[Import]:
    found: list[Import] = []
    for module in known.values():
        collector = _ImportCollector(module, known)
        collector.visit(module.tree)
        found += collector.found
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# -- the rules -------------------------------------------------------------------------------
def long_functions(known: dict[str, Module]) -> set[str]:
    found: set[str] = set()
    for module in known.values():
        for qualname, node in _functions(module.tree, ""):
            assert node.end_lineno is not None
            if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                found.add(f"{module.name}:{qualname}")
    return found


def _functions(
    node: ast.AST, prefix: str,
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            qualname = f"{prefix}{child.name}"
            yield qualname, child
            yield from _functions(child, f"{qualname}.<locals>.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def import_graph(known: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> the package's modules its import-time imports run. Importing a.b.c also runs
    the packages a and a.b, unless the importer is inside them (then they ran first). A name
    taken from a package (`from backburner import Backburner`) is an edge to the package even
    from inside it: its `__init__` must have got that far."""
    graph: dict[str, set[str]] = {name: set() for name in known}
    for imp in imports(known):
        if not imp.at_import_time:
            continue
        graph[imp.importer].add(imp.target)
        parts = imp.target.split(".")
        for n in range(1, len(parts)):
            package = ".".join(parts[:n])
            if not _inside(imp.importer, package):
                graph[imp.importer].add(package)
    for name, targets in graph.items():
        targets.discard(name)
    return graph


def import_cycles(known: dict[str, Module]) -> set[tuple[str, ...]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph = import_graph(known)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: set[tuple[str, ...]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = stack[stack.index(node):]
            del stack[stack.index(node):]
            if len(component) > 1:
                cycles.add(tuple(sorted(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def private_names(known: dict[str, Module]) -> set[str]:
    """`from backburner.x import _y`, and `x._y` where x is a backburner module imported."""
    every = imports(known)
    found = {f"{imp.importer} -> {imp.target}.{imp.name}" for imp in every
             if imp.name is not None and _is_private(imp.name) and imp.target != imp.importer}
    for module in known.values():
        # Name -> the module bound to it; `import backburner.x` binds `backburner` itself, and
        # the chain `backburner.x._y` then spells the module in full.
        bound = {imp.alias: imp.target if imp.alias != PACKAGE else PACKAGE
                 for imp in every if imp.importer == module.name and imp.name is None}
        for node in ast.walk(module.tree):
            if not (isinstance(node, ast.Attribute) and _is_private(node.attr)):
                continue
            head, _, rest = (_dotted(node.value) or "").partition(".")
            if head not in bound:
                continue
            owner = ".".join([bound[head], *([rest] if rest else [])])
            if owner in known and owner != module.name:
                found.add(f"{module.name} -> {owner}.{node.attr}")
    return found


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def private_calls(known: dict[str, Module]) -> set[str]:
    """Calls `obj._m(...)` (obj not `self` or `cls`) of a private method that a class of
    another module defines and no class of the caller's module does. Without types, that is
    how it is told from a call on an instance of the module's own class (`other._key()`, or
    `sub._offer()` by the module that owns `Subscription`) and from a public underscore API of
    another library (`namedtuple._replace`, `sys._getframe`): those names are defined by no
    class of ours, or by one of the caller's module."""
    methods: dict[str, set[str]] = {}  # private method name -> modules whose classes define it
    for module in known.values():
        for cls in (n for n in ast.walk(module.tree) if isinstance(n, ast.ClassDef)):
            for item in cls.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and _is_private(
                        item.name):
                    methods.setdefault(item.name, set()).add(module.name)
    found: set[str] = set()
    for module in known.values():
        for node in ast.walk(module.tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver, name = node.func.value, node.func.attr
            if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
                continue
            owners = methods.get(name, set())
            if owners and module.name not in owners:
                found.add(f"{module.name} -> {ast.unparse(node.func)}")
    return found


def storage_imports_tracing(known: dict[str, Module]) -> set[str]:
    return {f"{imp.importer} -> {imp.target}" for imp in imports(known)
            if _inside(imp.importer, STORAGE) and _inside(imp.target, TRACING)}


# -- the tests on the package ----------------------------------------------------------------
def _same(found: set[str] | set[tuple[str, ...]], allowed: set[str] | set[tuple[str, ...]],
          rule: str) -> None:
    new = sorted(str(v) for v in found if v not in allowed)
    gone = sorted(str(v) for v in allowed if v not in found)
    assert not new, f"{rule}: new violation(s), fix them (do not allowlist): {new}"
    assert not gone, (f"{rule}: allowlisted violation(s) no longer found, delete them from "
                      f"the allowlist in {Path(__file__).name}: {gone}")


def test_no_function_is_longer_than_100_lines() -> None:
    _same(long_functions(source()), LONG_FUNCTIONS_ALLOWED, "function over 100 lines")


def test_no_import_cycle() -> None:
    _same(import_cycles(source()), IMPORT_CYCLES_ALLOWED, "import cycle at import time")


def test_no_module_imports_another_modules_private_names() -> None:
    _same(private_names(source()), PRIVATE_NAMES_ALLOWED, "private name of another module")


def test_no_module_calls_another_modules_private_methods() -> None:
    _same(private_calls(source()), PRIVATE_CALLS_ALLOWED,
          "private method of another module's class")


def test_storage_does_not_import_tracing() -> None:
    _same(storage_imports_tracing(source()), STORAGE_IMPORTS_TRACING_ALLOWED,
          "backburner.backends imports backburner.tracing")


# -- the checks themselves, on a made-up package: a checker that finds nothing passes all ----
FAKE = {
    "__init__.py": "from backburner.app import App\n",
    "_version.py": "__version__ = '1'\n",
    "app.py": """
        from typing import TYPE_CHECKING
        from backburner import _version, helpers
        from backburner.backends import store
        if TYPE_CHECKING:
            from backburner.worker import Worker
        class App:
            def _insert(self) -> None: ...
            def go(self, other: App) -> None:
                self._insert()
                other._insert()
                helpers._tidy()
        """,
    "helpers.py": """
        import backburner.app as application
        from backburner import App
        def _tidy() -> None:
            import backburner.worker
            backburner.worker._private()
        def call(app: object, parts: object) -> None:
            app._insert()
            parts._replace()
        """,
    "worker.py": "from backburner.app import App\ndef _private() -> None: ...\n",
    "backends/__init__.py": "",
    "backends/store.py": "from ..tracing import _hidden, span\n",
    "tracing.py": "def span() -> None: ...\ndef _hidden() -> None: ...\n",
    "long.py": "def f() -> None:\n" + "    x = 1\n" * MAX_FUNCTION_LINES,
    "short.py": "def f() -> None:\n" + "    x = 1\n" * (MAX_FUNCTION_LINES - 1),
}


def test_the_checks_find_each_kind_of_violation(tmp_path: Path) -> None:
    for name, text in FAKE.items():
        path = tmp_path / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    fake = read_package(tmp_path, PACKAGE)
    assert long_functions(fake) == {"backburner.long:f"}
    # backburner -> app -> helpers -> backburner (a name from the package's __init__); the
    # worker's imports are deferred (a function, TYPE_CHECKING) or one-way.
    assert import_cycles(fake) == {("backburner", "backburner.app", "backburner.helpers")}
    assert private_names(fake) == {"backburner.app -> backburner.helpers._tidy",
                                   "backburner.helpers -> backburner.worker._private",
                                   "backburner.backends.store -> backburner.tracing._hidden"}
    assert private_calls(fake) == {"backburner.helpers -> app._insert"}
    assert storage_imports_tracing(fake) == {"backburner.backends.store -> backburner.tracing"}


def test_the_package_is_read() -> None:
    # A wrong SRC would find nothing and pass every rule.
    assert {"backburner", "backburner.app", "backburner.backends"} <= set(source())
    assert source()["backburner.backends"].is_package
