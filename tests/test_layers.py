"""The package's layers hold: the import-linter contracts of setup.cfg (``[importlinter:contract:*]``)
are kept, and the package has no import cycle. Imports inside functions count, as at module level."""
from __future__ import annotations

import configparser
import os
import subprocess
import sys
import textwrap
from itertools import islice
from pathlib import Path

import networkx as nx
import pytest

grimp = pytest.importorskip("grimp", reason="import-linter is not installed (pip install -e .[test])")

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> list[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return [s.split(":", 2)[2] for s in cfg.sections() if s.startswith("importlinter:contract:")]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("contract", _contracts())
def test_layer_contract_is_kept(contract):
    proc = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
         "--no-cache", "--no-logo", "--contract", contract, "setup.cfg"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    if proc.returncode:
        pytest.fail(f"import-linter: contract {contract} is broken\n{proc.stdout}{proc.stderr}", pytrace=False)


def _graph(package: str) -> tuple[nx.DiGraph, object]:
    g = grimp.build_graph(package, cache_dir=None)
    G = nx.DiGraph()
    for module in g.modules:
        G.add_node(module)
        G.add_edges_from((module, imported) for imported in g.find_modules_directly_imported_by(module))
    return G, g


def test_function_level_imports_are_in_the_graph(tmp_path, monkeypatch):
    pkg = tmp_path / "lazy_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "b.py").write_text("")
    (pkg / "a.py").write_text(textwrap.dedent("""
        def f():
            from . import b
            return b
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    G, _ = _graph("lazy_pkg")
    assert G.has_edge("lazy_pkg.a", "lazy_pkg.b")


def _cycles(G: nx.DiGraph, g, shown: int = 5) -> list[str]:
    """Each strongly connected set of modules (a cycle among them), with its shortest cycles and
    the import line of each edge."""
    out = []
    for scc in sorted(nx.strongly_connected_components(G), key=min):
        if len(scc) == 1:
            continue
        S = G.subgraph(scc)
        found = sorted(islice(nx.simple_cycles(S, length_bound=6), 1000), key=len)[:shown] or [
            [a for a, _ in nx.find_cycle(S)]]
        text = [f"{len(scc)} modules import each other: {', '.join(sorted(scc))}"]
        for cycle in found:
            text.append("  cycle:")
            for a, b in zip(cycle, cycle[1:] + cycle[:1]):
                line = g.get_import_details(importer=a, imported=b)
                text.append(f"    {a} -> {b}" + (f" (l.{line[0]['line_number']}: {line[0]['line_contents']})"
                                                  if line else ""))
        out.append("\n".join(text))
    return out


def test_no_import_cycles():
    sys.path.insert(0, str(ROOT))
    try:
        G, g = _graph("decopt")
    finally:
        sys.path.remove(str(ROOT))
    cycles = _cycles(G, g)
    if cycles:
        pytest.fail("import cycles in decopt:\n" + "\n".join(cycles), pytrace=False)
