"""Reading the project's imports with `ast` (never importing it), wherever they stand: at the top
of a module, inside a function or under `TYPE_CHECKING`. Shared by the architecture tests."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWN_PACKAGES = ("portal", "workflows_app")


def module_name(path: Path, root: Path = ROOT) -> str:
    """The dotted name of a source file below `root`."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_path(name: str, root: Path = ROOT) -> Path | None:
    """The source file of a dotted module name below `root`, or None (not one of its modules)."""
    base = root.joinpath(*name.split("."))
    return next((p for p in (base / "__init__.py", base.with_suffix(".py")) if p.is_file()), None)


def imports_in(
    source: str, module: str, *, is_package: bool = False, root: Path = ROOT
) -> set[str]:
    """The absolute names of the modules some source imports, wherever the import stands.

    `from pkg import name` counts as importing the module `pkg.name` when there is one, else
    `pkg`.
    """
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
                found.add(submodule if module_path(submodule, root) else origin)
    return found


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """The modules one source file imports."""
    source = path.read_text(encoding="utf-8")
    name = module_name(path, root)
    return imports_in(source, name, is_package=path.name == "__init__.py", root=root)


def files_of(package: Path) -> list[Path]:
    """Every source file of a package."""
    return sorted(package.rglob("*.py"))


def run_time_imports(files: Iterable[Path], root: Path = ROOT) -> dict[str, set[str]]:
    """Every module imported when these files run, following the project's own modules (and
    the packages above them) wherever they lead: module name -> the files that import it."""
    importers: dict[str, set[str]] = {}
    todo, seen = list(files), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imports_of(path, root):
            importers.setdefault(name, set()).add(str(path.relative_to(root)))
            parts = name.split(".")
            if parts[0] in OWN_PACKAGES:
                todo += filter(
                    None, (module_path(".".join(parts[:i]), root) for i in range(1, 1 + len(parts)))
                )
    return importers


def import_graph(root: Path = ROOT, packages: Iterable[str] = OWN_PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules of the same packages it imports."""
    modules = {module_name(p, root): p for package in packages for p in files_of(root / package)}
    return {
        name: (imports_of(path, root) & set(modules)) - {name} for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while not component or component[-1] != node:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
