"""The package's layers, read from the code's own imports.

Every protocol rule lives in an object that does no I/O (docs/design.md, section 2), so
that it can be tested with plain bytes and a manual clock and run by the simulator. That
holds only while those modules never reach a socket, a selector, TLS or the terminal,
directly or through another bluetrace module. This test follows the imports (the whole
closure inside ``bluetrace``) and names the first path that breaks the rule.
"""

import ast
from collections import deque
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bluetrace"

SANS_IO = [
    "bluetrace.protocol",  # every module of the package
    "bluetrace.server.core",
    "bluetrace.server.connection",
    "bluetrace.server.upload",
    "bluetrace.server.stores",
    "bluetrace.server.registry",
    "bluetrace.server.passwords",
    "bluetrace.phone.core",
    "bluetrace.phone.contacts",
    "bluetrace.term.keys",
    "bluetrace.phone.shell",
    "bluetrace.phone.commands",
    "bluetrace.term.lineedit",
]
"""Modules (or whole packages) that must stay free of I/O."""

FORBIDDEN_STDLIB = {"socket", "select", "selectors", "ssl", "termios", "tty", "subprocess"}
FORBIDDEN_PACKAGES = ("bluetrace.runtime",)

UPWARD = {
    # a layer may import only the layers listed for it (and itself)
    "bluetrace.protocol": (),
    "bluetrace.runtime": ("bluetrace.protocol",),
    "bluetrace.term": ("bluetrace.protocol", "bluetrace.runtime", "bluetrace.phone.commands"),
    "bluetrace.server": ("bluetrace.protocol", "bluetrace.runtime"),
    "bluetrace.phone": ("bluetrace.protocol", "bluetrace.runtime", "bluetrace.term"),
}
"""The dependency order of docs/design.md's layer table."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, name: str) -> set[str]:
    """Absolute names this module imports, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # ``from bluetrace.protocol import wire`` imports a module, not a name
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def first_offence(start: str, modules: dict[str, Path]) -> list[str] | None:
    """The import path from ``start`` to something forbidden, or None."""
    queue: deque[list[str]] = deque([[start]])
    seen = {start}
    while queue:
        chain = queue.popleft()
        for target in sorted(imports_of(modules[chain[-1]], chain[-1])):
            top = target.split(".")[0]
            if top in FORBIDDEN_STDLIB or target.startswith(FORBIDDEN_PACKAGES):
                return [*chain, target]
            if target in modules and target not in seen:
                seen.add(target)
                queue.append([*chain, target])
    return None


def sans_io_modules(modules: dict[str, Path]) -> list[str]:
    chosen = []
    for entry in SANS_IO:
        members = [m for m in modules if m == entry or m.startswith(entry + ".")]
        chosen.extend(members)
    return sorted(set(chosen))


@pytest.mark.parametrize("name", sans_io_modules(all_modules()))
def test_sans_io_modules_never_reach_io(name: str) -> None:
    offence = first_offence(name, all_modules())
    assert offence is None, " -> ".join(offence or [])


def test_the_list_names_modules_that_exist() -> None:
    # A renamed module must not silently drop out of the check.
    modules = all_modules()
    missing = [e for e in SANS_IO if not any(m == e or m.startswith(e + ".") for m in modules)]
    assert missing == []
    assert len(sans_io_modules(modules)) >= 15


@pytest.mark.parametrize("layer", sorted(UPWARD))
def test_layers_import_only_what_is_below_them(layer: str) -> None:
    modules = all_modules()
    allowed = (layer, *UPWARD[layer])
    wrong = sorted(
        f"{name} imports {target}"
        for name, path in modules.items()
        if name == layer or name.startswith(layer + ".")
        for target in imports_of(path, name)
        if target.startswith("bluetrace.")
        and not target.startswith("bluetrace.__")  # the root's __version__
        and not target.startswith(tuple(f"{a}." for a in allowed) + allowed)
    )
    assert wrong == []


def test_a_planted_socket_import_is_caught(tmp_path: Path) -> None:
    # The checker itself, seen to fail: a copy of a pure module that imports socket.
    fake = {
        "bluetrace.protocol.fake": tmp_path / "fake.py",
        "bluetrace.protocol.x": tmp_path / "x.py",
    }
    fake["bluetrace.protocol.fake"].write_text("from bluetrace.protocol import x\n")
    fake["bluetrace.protocol.x"].write_text("import socket\n")
    assert first_offence("bluetrace.protocol.fake", fake) == [
        "bluetrace.protocol.fake",
        "bluetrace.protocol.x",
        "socket",
    ]


SIM_STUDIES = "bluetrace.sim.studies"
"""Studies built on the simulator; its core (the rest of ``bluetrace.sim``) never imports them."""


def core_imports_of_studies(modules: dict[str, Path]) -> list[str]:
    """``core module imports study module`` for every such import in the simulator."""
    return sorted(
        f"{name} imports {target}"
        for name, path in modules.items()
        if name.startswith("bluetrace.sim")
        and not (name == SIM_STUDIES or name.startswith(SIM_STUDIES + "."))
        for target in imports_of(path, name)
        if target == SIM_STUDIES or target.startswith(SIM_STUDIES + ".")
    )


def test_the_simulator_core_never_imports_its_studies() -> None:
    modules = all_modules()
    assert any(m.startswith(SIM_STUDIES + ".") for m in modules)  # the check has a subject
    assert core_imports_of_studies(modules) == []


def test_a_planted_study_import_in_the_core_is_caught(tmp_path: Path) -> None:
    # The checker itself, seen to fail: a core module that imports a study lazily.
    core = tmp_path / "core.py"
    core.write_text("def f() -> None:\n    from bluetrace.sim.studies import tracking\n")
    fake = {"bluetrace.sim.core": core, "bluetrace.sim.studies.x": tmp_path / "x.py"}
    fake["bluetrace.sim.studies.x"].write_text("from bluetrace.sim import world\n")
    assert core_imports_of_studies(fake) == [
        "bluetrace.sim.core imports bluetrace.sim.studies",
        "bluetrace.sim.core imports bluetrace.sim.studies.tracking",
    ]
