"""The import rules of the house, checked on the source (every import, also those inside functions).

- fraudpipe/ is the shared core: it imports none of the apps (producer/, spark_apps/,
  dashboard/), and no app nor the core imports tests/, benchmarks/ or workloads/;
- nothing but tests/ imports tests/;
- no import cycle among our modules (a cycle held together by an import inside a
  function is still a cycle: the two modules cannot be read or changed apart).
"""
from __future__ import annotations

import ast
import os
from functools import lru_cache
from pathlib import Path

from fraudpipe.contracts import PROJECT_ROOT

CORE = "fraudpipe"
APPS = ("producer", "spark_apps", "dashboard")
DEV_ONLY = ("tests", "benchmarks", "workloads")
SKIPPED_DIRS = {"build", "dist", "node_modules", "__pycache__"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path) -> dict[str, Path]:
    """Module name -> file of every Python file in the project (virtualenvs and build output aside)."""
    files = {}
    for directory, subdirs, names in os.walk(root):
        # prune while walking: .venv alone holds tens of thousands of files
        subdirs[:] = [d for d in subdirs if not (d.startswith(".") or d in SKIPPED_DIRS or d.endswith(".egg-info"))]
        for file_name in names:
            if file_name.endswith(".py"):
                path = Path(directory) / file_name
                files[module_name(path, root)] = path
    return dict(sorted(files.items()))


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports anywhere in its source (functions and __main__ blocks too)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import mod` imports the module pkg.mod when there is one
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            # the nearest project module that the dotted name names (a.b.c -> a.b when c is an attribute)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    files = source_files(root)
    known = set(files)
    return {name: imported_modules(name, path, known) for name, path in files.items()}


@lru_cache(maxsize=1)
def project_graph() -> dict[str, set[str]]:
    return import_graph(PROJECT_ROOT)


def top(module: str) -> str:
    return module.split(".", 1)[0]


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if top(module) == CORE and top(target) in APPS:
                problems.append(f"{module} imports the app module {target}: apps import fraudpipe, not the reverse")
            if top(module) in (CORE, *APPS) and top(target) in DEV_ONLY:
                problems.append(f"{module} imports {target}: shipped code imports no test, benchmark or workload code")
            if top(target) == "tests" and top(module) != "tests":
                problems.append(f"{module} imports the test module {target}")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_sees_the_project() -> None:
    graph = project_graph()
    # a checker that finds nothing would pass every rule: these edges must be seen
    assert "fraudpipe.contracts" in graph["fraudpipe.config"] | graph["fraudpipe.stack"]
    assert "spark_apps.stream.decode" in graph["spark_apps.stream.job"]  # `from spark_apps.stream import decode`
    assert "fraudpipe.connect.jdbc_sqlite" in graph["fraudpipe.connect.plugins"]
    assert {top(m) for m in graph} >= {CORE, *APPS, *DEV_ONLY}


def test_arrows_point_down() -> None:
    assert layer_violations(project_graph()) == []


def test_no_import_cycles() -> None:
    assert cycles(project_graph()) == []


def test_the_rules_catch_what_they_forbid(tmp_path: Path) -> None:
    files = {
        "fraudpipe/__init__.py": "",
        "fraudpipe/health.py": "def f():\n    from spark_apps import features\n",
        "fraudpipe/a.py": "from . import b\n",
        "fraudpipe/b.py": "def g():\n    import fraudpipe.a\n",
        "spark_apps/__init__.py": "",
        "spark_apps/features.py": "from tests.fixtures import stream\n",
        "tests/__init__.py": "",
        "tests/fixtures/__init__.py": "",
        "tests/fixtures/stream.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert layer_violations(graph) == [
        "fraudpipe.health imports the app module spark_apps.features: apps import fraudpipe, not the reverse",
        "spark_apps.features imports tests.fixtures.stream: shipped code imports no test, benchmark or workload code",
        "spark_apps.features imports the test module tests.fixtures.stream",
    ]
    assert cycles(graph) == [["fraudpipe.a", "fraudpipe.b"]]
