"""`python -m decopt plot`: one curve per config (mean and band over seeds), short labels from the
keys that vary, the legend outside the panels, fixed colours per algorithm, a table of finals."""
import matplotlib
import matplotlib.figure
import pytest

import decopt
from decopt.plotting import (METHOD_COLORS, PlotError, _readable_log_ticks, find_runs, group_by_config, labels,
                             load, plot, varying_keys)

from conftest import run_cli

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def readme_sweep(tmp_path_factory):
    """The README's sweep (3 algorithms x qsgd8 x 2 seeds), a few iterations, through the CLI."""
    out = tmp_path_factory.mktemp("readme") / "sweep"
    proc = run_cli("run", "-m", "algo=ticopd,cpsgd,choco", "compressor=qsgd8", "run.seed=0,1",
                   "run.iterations=10", "run.eval_every=5", "run.progress=none", f"hydra.sweep.dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.fixture
def legends(monkeypatch):
    """Every figure legend that plot() draws, as (figure, {label: handle})."""
    drawn = []
    original = matplotlib.figure.Figure.legend

    def spy(fig, handles, names, **kw):
        drawn.append((fig, dict(zip(names, handles))))
        return original(fig, handles, names, **kw)

    monkeypatch.setattr(matplotlib.figure.Figure, "legend", spy)
    return drawn


def test_readme_sweep_legend_and_table_list_only_algo(readme_sweep, legends, tmp_path):
    groups = group_by_config([load(p) for p in find_runs([readme_sweep])])
    assert sorted(len(g) for g in groups.values()) == [2, 2, 2]          # the seeds are one curve
    assert sorted(labels(groups).values()) == ["algo=choco", "algo=cpsgd", "algo=ticopd"]
    files = plot([readme_sweep], x="bits", out=tmp_path)
    assert [f.name for f in files] == ["loss-grad_norm_sq-consensus_error_vs_bits.png",
                                       "loss-grad_norm_sq-consensus_error_vs_bits.pdf", "table.md"]
    assert files[0].stat().st_size > 10_000
    fig, entries = legends[0]
    assert list(entries) == ["algo=choco", "algo=cpsgd", "algo=ticopd"]
    rows = (tmp_path / "table.md").read_text().splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == ["| algo=choco", "| algo=cpsgd", "| algo=ticopd"]
    assert all("| 2 | completed |" in r and "±" in r for r in rows)


def test_compressor_in_labels_when_it_varies_and_col_panels(tmp_path, legends):
    for algo in ("ticopd", "choco"):
        for comp in ("topk", "qsgd8"):
            decopt.run(f"algo={algo}", f"compressor={comp}", "run.iterations=10", "run.eval_every=5",
                       run_dir=tmp_path / "sweep" / f"{algo}_{comp}")
    groups = group_by_config([load(p) for p in find_runs([tmp_path / "sweep"])])
    assert sorted(labels(groups).values()) == ["algo=choco, compressor=qsgd", "algo=choco, compressor=topk",
                                               "algo=ticopd, compressor=qsgd", "algo=ticopd, compressor=topk"]
    files = plot([tmp_path / "sweep"], x="bits", out=tmp_path / "fig", col="compressor")
    assert files[0].name == "loss-grad_norm_sq-consensus_error_vs_bits_by_compressor.png"
    fig, entries = legends[0]
    assert list(entries) == ["algo=choco", "algo=ticopd"]                 # the column names the compressor
    panels = fig.axes
    assert len(panels) == 6 and {ax.get_title() for ax in panels[:2]} == {"compressor=qsgd", "compressor=topk"}
    for ax in panels:                                                     # one colour per method everywhere
        colours = {line.get_label(): line.get_color() for line in ax.get_lines()}
        assert colours == {"algo=choco": METHOD_COLORS["choco"], "algo=ticopd": METHOD_COLORS["ticopd"]}
    table = (tmp_path / "fig" / "table.md").read_text()
    assert "| algo=ticopd, compressor=topk | 1 | completed |" in table


def test_group_keys_count_only_within_one_choice():
    descs = [{"algo": "ticopd", "algo.lr": 0.05, "algo.beta": 1.0, "compressor": "qsgd8", "run.iterations": 10},
             {"algo": "choco", "algo.lr": 0.01, "compressor": "qsgd8", "run.iterations": 10}]
    assert varying_keys(descs) == ["algo"]
    descs.append({"algo": "ticopd", "algo.lr": 0.1, "algo.beta": 1.0, "compressor": "topk", "run.iterations": 20})
    assert varying_keys(descs) == ["algo", "algo.lr", "compressor", "run.iterations"]


def test_bad_column_is_one_line_listing_the_available(readme_sweep):
    proc = run_cli("plot", str(readme_sweep), "--y", "los")
    assert proc.returncode == 2
    line, = proc.stderr.strip().splitlines()
    assert line.startswith("decopt: error: plot --y 'los'") and "did you mean 'loss'" in line
    assert "available: iteration, bits, wall_time, loss" in line
    with pytest.raises(PlotError, match="--hue 'algo.lrr'.*did you mean 'algo.lr'"):
        plot([readme_sweep], hue="algo.lrr")


def test_log_axis_under_a_decade_gets_several_labels():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.set_yscale("log")
    ax.set_ylim(10, 16)
    _readable_log_ticks(ax.yaxis, 10, 16)
    fig.canvas.draw()
    shown = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(shown) >= 3 and shown[0] == "10"
    ax.set_ylim(0.201, 0.205)                               # not even a 1-2-5 tick inside: evenly spaced
    _readable_log_ticks(ax.yaxis, 0.201, 0.205)
    fig.canvas.draw()
    shown = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(shown) >= 3 and len(set(shown)) == len(shown)
    plt.close(fig)


def test_plot_without_runs_is_a_clear_error(tmp_path):
    proc = run_cli("plot", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.startswith("decopt: error: plot: no run directories")


def test_named_figures_colour_each_method_alike_whatever_the_label_order(legends, tmp_path):
    """Experiment scripts name their curves: each method keeps its colour across figures (the label
    order differs between them), and labels sharing a method differ by line style."""
    runs = {}
    for label, over in (("TiCoPD 8-bit", ["algo=ticopd", "compressor=qsgd8"]),
                        ("TiCoPD top-k", ["algo=ticopd", "compressor=topk"]), ("CHOCO-SGD", ["algo=choco"])):
        runs[label] = str(tmp_path / label.replace(" ", "_"))
        decopt.run(*over, "run.iterations=10", "run.eval_every=5", run_dir=runs[label])
    orders = (["TiCoPD 8-bit", "CHOCO-SGD"], ["CHOCO-SGD", "TiCoPD top-k", "TiCoPD 8-bit"])
    for k, order in enumerate(orders):
        names = {runs[label]: label for label in order}
        plot(list(names), x="iteration", ys=["loss"], names=names, out=tmp_path / f"fig{k}")
    for fig, entries in legends:
        colours = {label: h.get_color() for label, h in entries.items()}
        assert colours["TiCoPD 8-bit"] == METHOD_COLORS["ticopd"] and colours["CHOCO-SGD"] == METHOD_COLORS["choco"]
    shared = legends[1][1]
    assert shared["TiCoPD top-k"].get_color() == METHOD_COLORS["ticopd"]
    looks = {label: (h.get_linestyle(), h.get_marker()) for label, h in shared.items()}
    assert looks["TiCoPD top-k"] != looks["TiCoPD 8-bit"]


def test_plot_into_a_closed_pipe_exits_quietly(tmp_path):
    """``python -m decopt plot DIR | head -1``: the reader is gone before the file names are
    printed; no traceback, the PIPE_CLOSED exit code, and the figures are written."""
    import subprocess
    import sys

    from decopt.exit_codes import PIPE_CLOSED
    from conftest import REPO

    decopt.run("run.iterations=10", "run.eval_every=5", run_dir=tmp_path / "r")
    proc = subprocess.Popen([sys.executable, "-m", "decopt", "plot", str(tmp_path / "r"), "--out", str(tmp_path / "f")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                                     # before the child has printed anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == PIPE_CLOSED and "Traceback" not in err, err
    assert (tmp_path / "f" / "table.md").exists()
