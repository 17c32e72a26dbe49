"""The shape of the code, checked: layers point one way, no import cycles, small modules.

- api_client and storage never import telegram or each other (nor the bot).
- bot/jobs (the lifecycle of a generation) never imports telegram: it talks to the chat through the
  `bot.jobs.notifier.Notifier` protocol.
- Handlers never run SQL: they call the store's methods.
- No module imports itself back through others (a cycle makes import order matter and hides a missing
  layer); imports under `if TYPE_CHECKING:` are for annotations only and do not count.
- Few loose modules directly in bot/ (the folders show the design), none of the runtime modules over 400
  lines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("api_client", "storage", "bot", "fake_telegram", "demo")
RUNTIME = ("api_client", "storage", "bot")
FORBIDDEN = {
    "api_client": {"telegram", "storage", "bot", "aiosqlite"},
    "storage": {"telegram", "api_client", "bot", "httpx"},
    "bot/jobs": {"telegram"},
    "bot/handlers": {"aiosqlite", "sqlite3", "asyncpg"},
}
#: SQL as this project writes it (upper-case keywords), not English that starts with "Create" or "Update".
SQL = re.compile(
    r"^\s*(SELECT\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|CREATE\s+(TABLE|INDEX)|"
    r"ALTER\s+TABLE|DROP\s+TABLE|PRAGMA\s|BEGIN\b)"
)
MAX_LOOSE_BOT_MODULES = 10
MAX_MODULE_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _typing_only(tree: ast.AST) -> set[int]:
    """Nodes under `if TYPE_CHECKING:`."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(child) for child in ast.walk(node))
    return skip


def _imports(name: str, path: Path) -> tuple[set[str], set[str]]:
    """(top-level package names imported, project modules imported) by one module, typing-only excluded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _typing_only(tree)
    tops: set[str] = set()
    project: set[str] = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                tops.add(alias.name.split(".")[0])
                if alias.name in MODULES:
                    project.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
                tops.add(module.split(".")[0])
            for alias in node.names:
                full = f"{module}.{alias.name}"
                project.add(full if full in MODULES else module)
    project.discard(name)
    return tops, {m for m in project if m in MODULES}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_does_not_import_what_it_must_not(layer: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(GRAPH[_module_name(path)][0] & FORBIDDEN[layer])
        for path in (ROOT / layer).rglob("*.py")
    }
    assert {p: names for p, names in offenders.items() if names} == {}


def test_handlers_run_no_sql() -> None:
    found = []
    for path in (ROOT / "bot" / "handlers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v][1]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself can fail: a made-up edge back from storage.db to storage.tasks is a cycle."""
    GRAPH["storage.db"][1].add("storage.tasks")
    try:
        assert any("storage.db" in c and "storage.tasks" in c for c in _cycles())
    finally:
        GRAPH["storage.db"][1].discard("storage.tasks")


def test_few_loose_modules_in_bot() -> None:
    loose = sorted(p.name for p in (ROOT / "bot").glob("*.py"))
    assert len(loose) <= MAX_LOOSE_BOT_MODULES, loose


def test_no_runtime_module_is_over_the_size_limit() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for package in RUNTIME
        for path in (ROOT / package).rglob("*.py")
    }
    assert {p: n for p, n in sizes.items() if n > MAX_MODULE_LINES} == {}
