"""The layers run one way: no import cycle among the package's modules, runtime/ never imports
export/ or train/, and a run of an ONNX model or a named model imports no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_domain

PACKAGE = Path(__file__).resolve().parents[1] / "cyclegan_tool"


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports() -> dict[str, set[str]]:
    """Each module's imports of the package's own modules (at any depth of the file)."""
    graph: dict[str, set[str]] = {}
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        name = _module(path)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                if node.level:
                    pkg = name.split(".")[: -node.level] if path.name != "__init__.py" else name.split(".")[
                        : len(name.split(".")) - node.level + 1]
                    base = ".".join(pkg + [node.module])
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t.startswith("cyclegan_tool") and t != name:
                    found.add(t)
        graph[name] = found
    return graph


def test_runtime_imports_neither_export_nor_train():
    bad = {m: sorted(t for t in targets if t.startswith(("cyclegan_tool.export", "cyclegan_tool.train")))
           for m, targets in imports().items() if m.startswith("cyclegan_tool.runtime")}
    assert not {m: t for m, t in bad.items() if t}


def test_no_import_cycle_between_modules():
    """Package `__init__`s that re-export their modules are left out (a package importing its own
    submodule is not a cycle between layers)."""
    graph = {m: {t for t in targets if not m.startswith(t + ".") and not t.startswith(m + ".")}
             for m, targets in imports().items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, cycles[:3]


@pytest.mark.parametrize("model", ["horse2zebra", "onnx"])
def test_a_convert_of_an_onnx_or_named_model_imports_no_torch(model, tmp_path, tiny_onnx):
    write_domain(tmp_path / "in", 1, (32, 32), (0.5, 0.6, 0.7), seed=3)
    target = str(tiny_onnx) if model == "onnx" else model
    code = ("import sys\nfrom cyclegan_tool.cli import main\nsys.argv = ['cyclegan-tool', 'convert', '--model', "
            f"{target!r}, {str(tmp_path / 'in')!r}, {str(tmp_path / 'out')!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "out" / "img_000.png").is_file()
