"""``run --help`` (every choice and key), "did you mean", the flag message, ``decopt resume``."""
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import fields

import pytest

from conftest import REPO
from decopt import catalog, cli

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def decopt(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "decopt", *args], capture_output=True, text=True, env=ENV,
                          cwd=cwd, timeout=timeout)


def test_help_lists_every_choice_and_key_with_type_default_and_description(capsys):
    from decopt.config import GROUPS, RunConfig

    assert cli.main(["--help"]) == 0
    page = capsys.readouterr().out
    for group, schemas in GROUPS.items():
        for name in catalog.choices(group):
            assert f"\n  {name}" in page
        for schema in set(schemas.values()):
            for f in fields(schema):
                assert f.name in ("name", "inner") or f"{group}.{f.name}: {f.type} = " in page, (group, f.name)
    for f in fields(RunConfig):
        assert f"run.{f.name}: {f.type} = " in page
    assert "run.iterations: int = 1000" in page
    assert "algo.gamma: float = 0.5  # gamma: consensus step" in page          # choco's, from its comment
    assert "compressor.inner.ratio: float | None = 0.1" in page
    keyed = re.compile(r"    ((?:algo|graph|compressor|problem|backend|run)\.[\w.]+): ([^=#]+) = ")
    lines = [line for line in page.splitlines() if keyed.match(line)]
    assert len(lines) > 200                                                   # every choice's keys, and run's
    undescribed = [line for line in lines if not re.search(r"  # \S", line)]
    assert not undescribed, "keys without a description:\n" + "\n".join(undescribed)


def test_catalog_equals_the_composed_configs():
    """The source-read catalog gives every choice exactly the keys and defaults Hydra composes."""
    from omegaconf import OmegaConf

    from decopt.config import GROUPS

    for group, schemas in GROUPS.items():
        for name in catalog.choices(group):
            composed = OmegaConf.to_container(cli.compose([f"{group}={name}"])[group])
            if group == "compressor" and name == "noisy":
                composed["inner"] = composed["inner"]["name"]
            keys = {k.name: k.default for k in catalog.choice(group, name)[1]}
            assert keys.keys() == composed.keys(), (group, name)
            for key, value in composed.items():
                assert keys[key] == value or float(keys[key]) == value, (group, name, key)
            types = {f.name: f.type for f in fields(schemas[composed["name"]])}
            assert {k.name: k.type for k in catalog.choice(group, name)[1] if k.name != "inner"} == \
                {k: t for k, t in types.items() if k != "inner"}


def test_help_narrows_to_the_choices_given(capsys):
    assert cli.main(["algo=choco", "--help"]) == 0
    page = capsys.readouterr().out
    assert "  choco: CHOCO-SGD" in page and "\n  beer:" not in page and "\n  ring" in page


def test_help_and_typos_import_no_torch():
    code = ("import sys; from decopt import cli; cli.main(['--help']); cli.main(['run.iteratons=3']); "
            "print(sorted(m for m in ('torch', 'hydra', 'numpy', 'decopt.config') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert out.stdout.strip().endswith("[]"), out.stdout[-300:] + out.stderr


@pytest.mark.parametrize("args, message", [
    (["run.iteratons=10"], "run.iteratons: unknown key for run; did you mean run.iterations?"),
    (["algo=chocoo"], "algo=chocoo: unknown choice; did you mean choco? (choose one of beer, choco,"),
    (["-m", "algo=ticopd,chocoo"], "algo=chocoo: unknown choice; did you mean choco?"),
    (["algo=choco", "algo.gama=0.1"], "algo.gama: unknown key for algo=choco; did you mean algo.gamma?"),
    (["compressor=topk", "compressor.ration=0.1"], "did you mean compressor.ratio?"),
    (["--iterations", "10"], "--iterations: not an option; write run.iterations=10"),
    (["--seed=3"], "--seed=3: not an option; write run.seed=3"),
    (["run.resume=true"], "write: python -m decopt resume <run dir>"),
])
def test_typos_get_one_line_with_a_suggestion(capsys, args, message):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("decopt: error: ") and message in err, err


def test_flag_exits_2_in_one_line():
    out = decopt("run", "--iterations", "10")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == ("decopt: error: --iterations: not an option; write run.iterations=10 "
                          "(python -m decopt run --help lists every key)\n")


def _rows(run_dir):
    """metrics.csv without the wall_time column, as text: equal means bit for bit."""
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    drop = lines[0].split(",").index("wall_time")
    return [[v for i, v in enumerate(line.split(",")) if i != drop] for line in lines]


def test_resume_command_continues_in_place_bit_for_bit(tmp_path):
    job = ["algo=choco", "compressor=topk", "graph.n=6", "problem.batch_size=5", "run.dtype=float64",
           "run.eval_every=10", "run.progress=none"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert decopt("run", *job, "run.iterations=60", f"hydra.run.dir={whole}").returncode == 0
    assert decopt("run", *job, "run.iterations=30", "run.checkpoint_every=30", f"hydra.run.dir={part}").returncode == 0
    out = decopt("resume", str(part), "run.iterations=60", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"results in       {part}" in out.stdout
    assert _rows(part) == _rows(whole)
    assert not (tmp_path / "outputs").exists()                     # nothing started elsewhere


def test_resume_refuses_what_is_no_run_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for args, message in [([str(tmp_path / "empty")], "is not a decopt run directory (no config.yaml)"),
                          ([str(tmp_path / "nowhere")], "is not a decopt run directory"),
                          ([str(tmp_path / "empty"), "algo.lr=1"], "is not a decopt run directory")]:
        assert cli.resume_main(args) == 2
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("algo: {name: dsgd}\n")
    with pytest.raises(Exception, match="its config.yaml has no graph, compressor, problem, backend, run"):
        cli.resume_argv(str(run), [])
    out = decopt("run", "run.iterations=5", "run.progress=none", f"hydra.run.dir={run}")
    assert out.returncode == 0
    with pytest.raises(Exception, match="has no checkpoint.safetensors to continue from"):
        cli.resume_argv(str(run), [])
    (run / "checkpoint.safetensors").write_bytes(b"")
    with pytest.raises(Exception, match=r"algo.lr=1: only run.iterations, .* may change on resume$"):
        cli.resume_argv(str(run), ["algo.lr=1"])
    with pytest.raises(Exception, match="did you mean run.iterations"):
        cli.resume_argv(str(run), ["run.iteratons=9"])


def test_an_interrupted_run_prints_its_resume_command(tmp_path):
    run = tmp_path / "run dir"
    proc = subprocess.Popen([sys.executable, "-m", "decopt", "run", "run.iterations=100000000", "run.progress=none",
                             "run.eval_every=100", f"hydra.run.dir={run}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 60
    while not (run / "metrics.csv").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"decopt: interrupted; continue with: python -m decopt resume '{run}'" in out


def test_the_source_read_registry_equals_the_imported_one():
    """``--help`` reads the registrations from the source; they are the ones the import makes."""
    from decopt import registry

    for group in registry.GROUPS:
        imported = {name: entry.schema.__name__ for name, entry in registry.entries(group).items()}
        assert catalog.index().registered[group] == imported, group


def _readme_table(header: str) -> set:
    """The choices in the first column of the README table whose header starts with ``header``."""
    text = (REPO / "README.md").read_text()
    table = text.split(header, 1)[1].split("\n\n", 1)[0]
    return {name for line in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", line.split("|")[1])}


@pytest.mark.parametrize("group", ["algo", "compressor", "problem", "graph"])
def test_readme_tables_list_exactly_the_registered_choices(group):
    if group == "graph":
        section = (REPO / "README.md").read_text().split("### Graphs", 1)[1].split("Mixing matrices", 1)[0]
        listed = set(re.findall(r"\b([a-z_]+)\b", section.split("`graph=`", 1)[1])) & set(catalog.choices("graph"))
        assert listed == set(catalog.choices("graph"))
        return
    listed, registered = _readme_table(f"| `{group}=` |"), set(catalog.choices(group))
    assert listed == registered, f"README's {group} table: add {sorted(registered - listed)}, " \
                                 f"drop {sorted(listed - registered)}"
