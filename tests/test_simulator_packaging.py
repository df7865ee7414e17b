"""The simulator stands beside the client: what it imports, how it ships, and no circle inside.

Sources are read with `ast`, not imported, so an import inside a function counts as much as one at
the top of a module.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib

from tests.import_graph import OWN_PACKAGES, ROOT, files_of, imports_in, run_time_imports
from workflows_app.simulator.spec import SPEC_PATH

APP = ROOT / "workflows_app"
SIMULATOR = APP / "simulator"
CLIENT = APP / "nexthink"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def normalized(distribution: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    """The distribution names of pyproject requirement strings."""
    names = (re.match(r"[A-Za-z0-9._-]+", requirement) for requirement in requirements)
    return {normalized(name[0]) for name in names if name}


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
        if top not in {*OWN_PACKAGES, *sys.stdlib_module_names}:
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
