"""Explicit initial copies (``algo.copy_init``) and the papers' own metric columns
(``run.paper_metrics``), checked on cases computed by hand."""
import math

import numpy as np
import pytest
import torch

import decopt
from decopt.cli import compose
from decopt.config import validate
from decopt.errors import ConfigError
from decopt.metrics import evaluate
from decopt.runner import build

F64 = ("run.dtype=float64",)

# every algorithm with the key: (overrides, state keys holding the copies, keys that must start at 0)
COPIES = {
    "docom": ((), ("x_hat",), ("e_x", "g_hat", "e_g")),
    "beer": ((), ("h",), ("e_h", "g_hat", "e_g")),
    "choco": ((), ("x_hat",), ("e_hat",)),
    "choco-random-links": (("graph.links=one_edge",), ("h_out", "h_in"), ()),
    "ticopd": ((), ("xhat",), ("lxhat", "lam")),
    "cpsgd": ((), ("xhat",), ("lxhat", "lam")),
    "ticopd_robust": (("graph.links=bernoulli",), ("xhat_out", "xhat_in"), ("lam",)),
}


def setup(*overrides):
    graph, net, problem, algo = build(validate(compose(list(overrides))))
    return net, problem, algo


def common_start(n, d):
    """One row repeated n times, with entries whose mean over n identical rows is not exact in
    floating point for most n (the rounding that used to decide where the copies started)."""
    row = torch.tensor([0.1, 1 / 3, -0.7, 2.0 ** -30 + 0.3, 1e5 / 7], dtype=torch.float64)[:d]
    return row.expand(n, d).clone()


@pytest.mark.parametrize("n", [2, 4, 5, 8, 25])
@pytest.mark.parametrize("name", list(COPIES))
def test_copies_start_where_copy_init_says(name, n):
    extra, copies, zeros = COPIES[name]
    net, problem, algo = setup(f"algo={name.split('-')[0]}", *extra, f"graph.n={n}", "problem.dim=5", *F64)
    assert algo.cfg.copy_init == "zero"                  # the default: what the papers' experiments ran
    x0 = common_start(n, 5)
    for mode in ("zero", "x0"):
        algo.cfg.copy_init = mode
        state = algo.init(x0)
        for key in copies:
            rows = state[key]
            want = torch.zeros_like(rows) if mode == "zero" else x0[0].expand_as(rows)
            assert torch.equal(rows, want), (name, n, mode, key)
        for key in zeros:
            assert not state[key].any(), (name, n, mode, key)


def test_copy_init_x0_needs_a_common_starting_point_and_a_known_value():
    net, problem, algo = setup("algo=docom", "algo.copy_init=x0", "graph.n=3", "problem.dim=2", *F64)
    with pytest.raises(ValueError, match="same starting point"):
        algo.init(torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 2.0]], dtype=torch.float64))
    with pytest.raises(ConfigError, match=r"^algo\.copy_init=half: choose one of zero, x0"):
        validate(compose(["algo=beer", "algo.copy_init=half"]))


# ----------------------------------------------------------------------------- paper metrics
def test_paper_consensus_columns_on_a_three_agent_example_by_hand():
    net, problem, algo = setup("algo=dsgd", "graph.n=3", "problem.dim=2", *F64)
    X = torch.tensor([[3.0, 4.0], [0.0, 0.0], [-3.0, -4.0]], dtype=torch.float64)   # xbar = 0
    row = evaluate(problem, algo, net, algo.init(X), paper=True)
    assert row["consensus_sum_norm"] == pytest.approx(5 + 0 + 5, rel=1e-15)        # DoCoM notebook
    assert row["consensus_sum_sq"] == pytest.approx(25 + 0 + 25, rel=1e-15)        # TiCoPD ||X||_K^2
    assert row["consensus_agent0_norm"] == pytest.approx(5, rel=1e-15)             # FSPDA code
    assert row["consensus_error"] == pytest.approx(50 / 3, rel=1e-15)              # decopt's, unchanged
    assert row["grad_norm"] == pytest.approx(math.sqrt(row["grad_norm_sq"]), rel=1e-15)
    plain = evaluate(problem, algo, net, algo.init(X))
    assert not {"consensus_sum_norm", "consensus_sum_sq", "consensus_agent0_norm", "grad_norm"} & set(plain)


def test_paper_metrics_are_columns_of_a_run_only_when_asked():
    on = decopt.run("algo=docom", "graph.n=5", "run.iterations=4", "run.eval_every=2", "run.paper_metrics=true",
                    run_dir=False)
    off = decopt.run("algo=docom", "graph.n=5", "run.iterations=4", "run.eval_every=2", run_dir=False)
    assert {"consensus_sum_norm", "consensus_sum_sq", "consensus_agent0_norm", "grad_norm"} <= set(on.metrics)
    assert "consensus_sum_norm" not in off.metrics
    assert on.metrics["loss"] == off.metrics["loss"]                 # the run itself is the same


LN3 = math.log(3.0)


def test_docom_notebook_worst_agent_metrics_on_a_three_agent_example_by_hand(tmp_path):
    """Three agents, one sample each (features ln 3, 0, -ln 3 plus the bias 1; labels 0, 1, 0), two
    classes; agent models W_i (2 x 2, row k = class k: [feature weight, bias]). sig(ln 3) = 3/4."""
    np.savez(tmp_path / "leaf.npz", x_train=np.array([[LN3], [0.0], [-LN3]]), y_train=np.array([0, 1, 0]),
             counts_train=np.array([1, 1, 1]), x_test=np.array([[LN3], [0.0], [-LN3]]),
             y_test=np.array([0, 1, 0]), counts_test=np.array([1, 1, 1]))
    net, problem, algo = setup("algo=dsgd", "problem=leaf_synthetic", f"problem.data_dir={tmp_path}",
                               "problem.file=leaf.npz", "graph.n=3", "problem.reg=0.5", *F64)
    X = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, LN3]], dtype=torch.float64)
    row = evaluate(problem, algo, net, algo.init(X), paper=True)
    # loss = mean over the 3 samples x 2 classes of sig(y z) + ||W||^2 / (2 N), N = 3:
    #   agent 0 (z = [x, 0]): class 0 gives 3/4, 1/2, 1/4; class 1 gives 1/2 thrice -> 3 / 6 + 1 / 6 = 2/3
    #   agent 1 (W = 0): 1/2;  agent 2 (z = [0, ln 3]): (3/2 + 1/4 + 3/4 + 1/4) / 6 + ln3^2 / 6 = 0.6595
    assert row["worst_agent_loss_pooled"] == pytest.approx(2 / 3, rel=1e-14)
    # gradient (1/N) sum_n y s(1 - s) [x_n, 1] per class + reg W:
    #   agent 0: class 0 (1/3)(3/16 [ln3, 1] - 1/4 [0, 1] + 3/16 [-ln3, 1]) + 0.5 [1, 0] = [1/2, 1/24],
    #            class 1 (1/3)(1/4)(-[ln3, 1] + [0, 1] - [-ln3, 1]) = [0, -1/12]
    #   agent 1: [0, 1/12], [0, -1/12];  agent 2: [0, 1/12], [0, -1/16 + ln3 / 2] (norm 0.494 < 0.509)
    assert row["worst_agent_grad_norm_pooled"] == pytest.approx(math.sqrt(1 / 4 + 1 / 576 + 1 / 144), rel=1e-14)
    # prediction argmin_k z (first on ties): agent 0 gets only the third sample right; agents 1, 2 say 0
    assert row["worst_agent_train_accuracy"] == pytest.approx(1 / 3, rel=1e-15)
