"""Validation imports no torch, networkx or scipy: the component modules bind them with
``decopt.lazy`` (SPEC 1's ``lazy_loader``), so a bad value (``algo.lr=nan``) is refused before any of them loads."""
import os
import subprocess
import sys

from conftest import REPO
from decopt.config import GROUPS

HEAVY = ("torch", "networkx", "scipy")

# A lazy_loader proxy sits in sys.modules until its first attribute access turns it into the module
# itself (type ModuleType): "loaded" below means that has happened.
CHECK = f"""
import sys, types
from decopt import catalog, cli, config
from decopt.errors import ConfigError

loaded = lambda: [m for m in {HEAVY!r} if type(sys.modules.get(m)) is types.ModuleType]
job = {{**{{g: {{"name": c}} for g, c in catalog.default_choices().items()}}, "run": {{}}}}
config.validate(job)
checked = 0
for group, schemas in config.GROUPS.items():
    for name in schemas:
        node = {{"name": name, **({{"file": sys.argv[1]}} if name == "edge_list" else {{}})}}
        try:
            config.validate({{**job, group: node}})
        except ConfigError:
            pass
        checked += 1
code = cli.main(["algo=choco", "algo.gamma=-1"])
print(checked, code, loaded())
from decopt.graphs import mixing_matrix, topologies
mixing_matrix(topologies.ring(4))
print(loaded())
"""


def test_validation_and_a_bad_value_load_no_torch_networkx_or_scipy(tmp_path):
    edges = tmp_path / "edges.txt"
    edges.write_text("0 1\n1 2\n2 0\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", CHECK, str(edges)], capture_output=True, text=True, env=env,
                         timeout=120)
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout + out.stderr
    assert lines[0] == f"{sum(len(s) for s in GROUPS.values())} 2 []", out.stdout + out.stderr
    assert "scipy" in lines[1]                          # the check sees a load: the first use of scipy
    assert "algo.gamma=-1.0: must be > 0" in out.stderr
