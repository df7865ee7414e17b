"""The simulator stands beside the client: what it imports, how it ships, and no circle inside.

Sources are read with `ast`, not imported, so an import inside a function counts as much as one at
the top of a module.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

from workflows_app.simulator.spec import SPEC_PATH

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "workflows_app"
SIMULATOR = APP / "simulator"
CLIENT = APP / "nexthink"
OWN_PACKAGES = {"workflows_app", "portal"}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def module_name(path: Path) -> str:
    """The dotted name of a source file of the project."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_path(name: str) -> Path | None:
    """The project's source file of a dotted module name, or None (not the project's)."""
    base = ROOT.joinpath(*name.split("."))
    return next((p for p in (base / "__init__.py", base.with_suffix(".py")) if p.is_file()), None)


def imports_in(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """The absolute names of the modules some source imports, wherever the import stands."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            origin = ".".join(p for p in (base, node.module) if p)
            for alias in node.names:  # `from . import control` imports the module control
                submodule = f"{origin}.{alias.name}"
                found.add(submodule if module_path(submodule) else origin)
    return found


def imports_of(path: Path) -> set[str]:
    """The modules one source file of the project imports."""
    source = path.read_text(encoding="utf-8")
    return imports_in(source, module_name(path), is_package=path.name == "__init__.py")


def files_of(package: Path) -> list[Path]:
    """Every source file of a package."""
    return sorted(package.rglob("*.py"))


def run_time_imports(files: Iterable[Path]) -> dict[str, set[str]]:
    """Every module imported when these files run, following the project's own modules (and
    the packages above them) wherever they lead: module name -> the files that import it."""
    importers: dict[str, set[str]] = {}
    todo, seen = list(files), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imports_of(path):
            importers.setdefault(name, set()).add(str(path.relative_to(ROOT)))
            parts = name.split(".")
            if parts[0] in OWN_PACKAGES:
                todo += filter(
                    None, (module_path(".".join(parts[:i])) for i in range(1, 1 + len(parts)))
                )
    return importers


def normalized(distribution: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    """The distribution names of pyproject requirement strings."""
    names = (re.match(r"[A-Za-z0-9._-]+", requirement) for requirement in requirements)
    return {normalized(name[0]) for name in names if name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph as [a, b, ..., a], or None when it is a DAG."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph.get(node, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    return next(filter(None, (visit(node) for node in sorted(graph))), None)


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    """Run this interpreter in the project root, without Django settings or a secret key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "SECRET_KEY"))}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_import_walk_sees_imports_inside_functions_and_relative_ones() -> None:
    source = (
        "import json\n"
        "from .state import SimState\n"
        "def later():\n"
        "    import django.conf\n"
        "    from . import control\n"
        "    from ..nexthink.models import Workflow\n"
    )
    assert imports_in(source, "workflows_app.simulator.routes") == {
        "json",
        "workflows_app.simulator.state",
        "django.conf",
        "workflows_app.simulator.control",
        "workflows_app.nexthink.models",
    }


def test_everything_the_simulator_imports_is_a_runtime_dependency() -> None:
    """`docker compose --profile simulator` runs it from the production image: no dev extra."""
    third_party: dict[str, set[str]] = {}
    for name, files in run_time_imports(files_of(SIMULATOR)).items():
        top = name.split(".")[0]
        if top not in OWN_PACKAGES | set(sys.stdlib_module_names):
            third_party.setdefault(top, set()).update(files)
    installed = importlib.metadata.packages_distributions()
    runtime = requirement_names(PYPROJECT["project"]["dependencies"])
    missing = {
        f"{name} ({', '.join(installed.get(name, ['not installed']))}, imported by "
        f"{', '.join(sorted(files))})"
        for name, files in third_party.items()
        if not runtime & {normalized(d) for d in installed.get(name, [])}
    }
    assert not missing, f"not in [project].dependencies of pyproject.toml: {sorted(missing)}"


def test_the_client_imports_nothing_from_the_simulator() -> None:
    imported = run_time_imports(files_of(CLIENT))
    from_outside = {
        name: sorted(f for f in files if not f.startswith("workflows_app/simulator/"))
        for name, files in imported.items()
        if name.split(".")[:2] == ["workflows_app", "simulator"]
    }
    assert {name: files for name, files in from_outside.items() if files} == {}


def test_neither_the_client_nor_the_simulator_imports_django() -> None:
    for package in (CLIENT, SIMULATOR):
        imported = run_time_imports(files_of(package))
        django = {n: sorted(f) for n, f in imported.items() if n.split(".")[0] == "django"}
        assert django == {}, f"{package.relative_to(ROOT)} reaches Django: {django}"


def test_the_client_and_the_simulator_import_in_no_circle() -> None:
    for package in (CLIENT, SIMULATOR):
        modules = {module_name(p): p for p in files_of(package)}
        graph = {name: imports_of(path) & set(modules) for name, path in modules.items()}
        cycle = find_cycle(graph)
        assert cycle is None, " -> ".join(cycle or [])


def test_the_image_ships_the_openapi_file() -> None:
    """The Dockerfile installs the project with pip: the spec must be package data."""
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["workflows_app"]
    relative = SPEC_PATH.relative_to(APP).as_posix()
    assert SPEC_PATH.is_file()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), patterns


def test_compose_runs_the_simulator_without_django() -> None:
    """The compose service runs the package as a module, which needs no portal settings."""
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    service = re.search(r"^  simulator:\n(.*?)(?=^\S|^  \S)", compose, re.MULTILINE | re.DOTALL)
    assert service, "no simulator service in docker-compose.yml"
    command_line = re.search(r"command: (\[.*?\])", service[1], re.DOTALL)
    assert command_line, "the simulator service names no command"
    command = json.loads(command_line[1])
    assert command[:3] == ["python", "-m", "workflows_app.simulator"]
    ran = run_python(
        "-c",
        "import sys, workflows_app.simulator.__main__; "
        "sys.exit(', '.join(m for m in sys.modules if m.split('.')[0] == 'django') or None)",
    )
    assert ran.returncode == 0, ran.stderr
    helped = run_python(*command[1:3], "--help")
    assert helped.returncode == 0 and "--client-secret" in helped.stdout, helped.stderr
