"""`python -m decopt plot`: one line per config, mean and band over seeds, a table of finals."""
import decopt
from decopt.plotting import find_runs, group_by_config, labels, load

from conftest import run_cli


def test_plot_groups_seeds_and_writes_figures(tmp_path):
    for lr in (0.02, 0.05):
        for seed in (0, 1):
            decopt.run(f"algo.lr={lr}", f"run.seed={seed}", "run.iterations=40", "run.eval_every=10",
                       run_dir=tmp_path / "sweep" / f"lr{lr}_s{seed}")
    runs = [load(p) for p in find_runs([tmp_path / "sweep"])]
    assert len(runs) == 4
    groups = group_by_config(runs)
    assert sorted(len(g) for g in groups.values()) == [2, 2]
    assert sorted(labels(groups).values()) == ["algo.lr=0.02", "algo.lr=0.05"]
    proc = run_cli("plot", str(tmp_path / "sweep"), "--x", "bits", "--out", str(tmp_path / "fig"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fig" / "loss-grad_norm_sq-consensus_error_vs_bits.png").stat().st_size > 10_000
    assert (tmp_path / "fig" / "loss-grad_norm_sq-consensus_error_vs_bits.pdf").exists()
    table = (tmp_path / "fig" / "table.md").read_text().splitlines()
    assert len(table) == 4 and "±" in table[2] and "| 2 | completed |" in table[2]


def test_plot_without_runs_is_a_clear_error(tmp_path):
    proc = run_cli("plot", str(tmp_path))
    assert proc.returncode != 0 and "no run directories" in proc.stderr
