"""The package's layers flow one way (DESIGN.md, "Layers"): every import of every module,
at the top, inside functions and under TYPE_CHECKING alike, goes to its own layer or one
below, and no modules import each other round in a cycle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "server" / "llmproc"

LAYERS: list[tuple[str, ...]] = [
    # 0: the vocabulary every layer speaks
    (
        "errors", "messages", "result", "events", "config", "version", "budget", "special_files",
        "_sync", "env_info", "program_errors", "shared_clients", "tools.mcp_config", "composition",
        "client_channel",
    ),
    # 1: the two seams, and a run as the tools see it
    ("run_state", "tools", "tools.base", "providers.base"),
    # 2: the tools and the providers
    ("tools.*", "providers", "providers.*"),
    # 3: programs, the kernel, the run loop and its hooks
    ("program", "kernel", "loop", "turn_hooks", "limits", "process_tools", "spending"),
    # 4: the process and its snapshots
    ("snapshot", "process"),
    # 5: the server's state database
    ("store", "store_postgres", "task_store"),
    # 6: the MCP server front end
    ("mcp_server", "mcp_server.*"),
    # 7: the command lines and the public package
    ("cli", "cli.*", "", "starter"),
]  # fmt: skip


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def layer_of(module: str) -> int | None:
    """The layer `module` is in: an exact name wins over a `package.*` pattern."""
    for exact in (True, False):
        for index, names in enumerate(LAYERS):
            for name in names:
                if exact and name == module:
                    return index
                if not exact and name.endswith(".*") and module.startswith(name[:-1]):
                    return index
    return None


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """The package modules `module` imports, with the line of each import."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if module == "":
        package = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and (node.module == "llmproc" or node.module.startswith("llmproc.")):
                target = node.module.removeprefix("llmproc").lstrip(".")
            else:
                continue
            targets = [f"{target}.{a.name}".lstrip(".") for a in node.names] + [target]
        elif isinstance(node, ast.Import):
            targets = [
                a.name.removeprefix("llmproc").lstrip(".")
                for a in node.names
                if a.name == "llmproc" or a.name.startswith("llmproc.")
            ]
        for target in targets:
            if target in known and target != module:
                yield target, node.lineno
                break


def graph() -> dict[str, dict[str, int]]:
    found = modules()
    return {m: dict(imports_of(m, p, set(found))) for m, p in found.items()}


def name(module: str) -> str:
    return f"llmproc.{module}" if module else "llmproc"


def test_every_module_of_the_package_has_a_layer() -> None:
    unplaced = sorted(name(m) for m in modules() if layer_of(m) is None)
    assert not unplaced, f"place these modules in LAYERS (and in DESIGN.md): {unplaced}"


def test_no_import_goes_up_a_layer() -> None:
    upward = [
        f"{name(m)} (layer {layer_of(m)}) imports {name(t)} (layer {layer_of(t)}) at line {line}"
        for m, targets in graph().items()
        for t, line in targets.items()
        if (layer_of(t) or 0) > (layer_of(m) or 0)
    ]
    assert not upward, "\n".join(upward)


def test_no_modules_import_each_other_in_a_cycle() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done
    path: list[str] = []

    def walk(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in edges.get(module, {}):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            walk(module)
    assert not cycles, "\n".join(" -> ".join(name(m) for m in cycle) for cycle in cycles)


def test_the_layer_check_sees_imports_inside_functions_and_under_type_checking(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .process import LLMProcess\n"
        "def f():\n    from llmproc.store import SqliteStore\n    import llmproc.kernel\n"
    )
    found = dict(imports_of("messages", source, {"process", "store", "kernel", "messages"}))
    assert set(found) == {"process", "store", "kernel"}
