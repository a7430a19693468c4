"""The layout of jobs/ and mlcore/, read from their source (the AST, imports inside functions included): no
import circle, imports that point one way (edges -> domain -> leaves -> models -> mlcore), lazy imports only
where they keep torch out of the web process, and every jobs module saying which process runs it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# What the web (and Celery) reach the domain through. Nothing below them imports them.
EDGES = (
    "jobs.api", "jobs.views", "jobs.forms", "jobs.urls", "jobs.routing", "jobs.consumers", "jobs.ws_auth",
    "jobs.tasks", "jobs.signals", "jobs.admin", "jobs.apps", "jobs.health", "jobs.management", "jobs.body_limit",
    "jobs.outages",
)  # fmt: skip
# Small modules the domain shares; they import nothing of jobs but the models and each other.
LEAVES = (
    "jobs.files", "jobs.offload", "jobs.accounts", "jobs.quota", "jobs.training.events", "jobs.training.dispatch",
    "jobs.registry.precision", "jobs.registry.storage", "jobs.observability",
)  # fmt: skip
# The worker-side state machine and what it stands on: never the API, the views, the tasks or the fast path.
WORKER_SIDE = ("jobs.training.lifecycle", "jobs.training.runner", "jobs.training.callback", *LEAVES)


def _name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for top in ("jobs", "mlcore"):
        for path in (REPO / top).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_name(path)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module an imported name lives in (a package's submodule, or the package itself)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, ast.stmt, bool]]:
    """(imported project module, the statement, whether it sits inside a function) for each import."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)]
    inside = {id(n) for f in functions for n in ast.walk(f)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [_resolve(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            # `from x import y`: the submodule x.y where there is one, else x itself
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else _resolve(base) for a in node.names]
        else:
            continue
        for target in dict.fromkeys(targets):
            if target and target != module:
                found.append((target, node, id(node) in inside))
    return found


GRAPH = {module: {target for target, _, _ in _imports(module)} for module in MODULES}


def _layer(module: str) -> int:
    if module.startswith("mlcore"):
        return 0
    models = ("models", "points", "promotions", "predictions", "quality", "webhook_secrets")
    if module in {f"jobs.{name}" for name in models}:
        return 1
    if module.startswith(LEAVES):
        return 2
    if module.startswith(EDGES):
        return 4
    return 3  # the domain: datasets, training, sweeps, registry, serving


def _circles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    return found


def test_the_graph_is_read_from_the_code():
    # The reader must see imports inside functions and relative imports, or the checks below prove nothing.
    assert "jobs.training.dispatch" in GRAPH["jobs.training.lifecycle"]
    assert "jobs.models" in GRAPH["jobs.training.launch"]
    assert "mlcore.train" in GRAPH["jobs.training.runner"]  # imported inside _train
    assert len([m for m in MODULES if m.startswith("jobs.")]) > 30


def test_no_module_of_jobs_or_mlcore_is_part_of_an_import_circle():
    assert _circles() == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("jobs")))
def test_imports_point_down_the_layers(module):
    upward = sorted(t for t in GRAPH[module] if _layer(t) > _layer(module))
    assert upward == [], f"{module} (layer {_layer(module)}) imports {upward}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(WORKER_SIDE)))
def test_the_worker_side_never_imports_the_api_views_tasks_or_fast_path(module):
    reached, todo = set(), [module]
    while todo:  # everything it loads, however indirectly
        for target in GRAPH[todo.pop()] - reached:
            reached.add(target)
            todo.append(target)
    assert sorted(t for t in reached if t.startswith(EDGES)) == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("jobs")))
def test_imports_inside_functions_are_only_of_mlcore_with_their_reason(module):
    """Lazy imports stay only where they keep torch out of the web process; each says so beside it. (The one
    other: AppConfig.ready connects the signal receivers, where Django asks for it.)"""
    lines = MODULES[module].read_text(encoding="utf-8").splitlines()
    for target, node, inside in _imports(module):
        if not inside or (module, target) == ("jobs.apps", "jobs.signals"):
            continue
        assert target.startswith("mlcore"), f"{module}:{node.lineno} imports {target} inside a function"
        said = lines[node.lineno - 1] + (lines[node.lineno - 2] if node.lineno > 1 else "")
        assert "#" in said, f"{module}:{node.lineno}: a lazy import of {target} without its reason"


@pytest.mark.parametrize(
    "module", sorted(m for m, p in MODULES.items() if m.startswith("jobs.") and p.name != "__init__.py")
)
def test_each_jobs_module_says_which_process_runs_it(module):
    doc = ast.get_docstring(ast.parse(MODULES[module].read_text(encoding="utf-8"))) or ""
    assert "Runs in:" in doc


def test_no_module_of_jobs_is_over_450_lines():
    long = {m: n for m, p in MODULES.items() if m.startswith("jobs") and (n := len(p.read_text().splitlines())) > 450}
    assert long == {}
