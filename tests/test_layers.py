"""The house has floors: `core` (the library) <- the domains <- the front (`showcase`) and
`benchmarks`. Every import in the source, at any depth of a function, points down or sideways
within one package, never up."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ["vision", "speech", "translation", "recsys", "rl"]
ABOVE = {
    "core": {"showcase", "benchmarks", "gradio", *DOMAINS},
    **{d: {"showcase", "benchmarks", "gradio", *(set(DOMAINS) - {d})} for d in DOMAINS},
    "showcase": {"benchmarks", *DOMAINS},
}


def imported(path: Path) -> set[str]:
    """The top-level package of every module `path` imports (absolute imports only)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ABOVE))
def test_imports_point_down(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    upward = {
        str(f.relative_to(ROOT)): sorted(imported(f) & ABOVE[package])
        for f in files
        if imported(f) & ABOVE[package]
    }
    assert not upward, f"{package} imports from a floor above it: {upward}"


def test_the_check_sees_an_upward_import(tmp_path):
    (tmp_path / "bad.py").write_text("def f():\n    from showcase.app import serve\n")
    assert imported(tmp_path / "bad.py") & ABOVE["core"] == {"showcase"}
