"""FSPDA's bit count and k rule as in the paper's own code (specs/fspda.md §3.4 table, P4, P12):
``run.bits_convention=paper`` adds the int64 mask indices the code sends once per active edge;
``algo.k_rule=code`` truncates d_l (1 - r) in floating point as the code does."""
import csv
import json

import pytest
import torch

import decopt
from decopt.algorithms.fspda import FSPDA, FSPDAConfig
from decopt.algorithms.fspda_storm import FSPDAStorm, FSPDAStormConfig
from decopt.algorithms.masked_gossip import CoordinateMasks, keep_counts
from decopt.comm import StackedNetwork
from decopt.compressors import SCHEMAS as COMPRESSORS, build_compressor
from decopt.errors import ConfigError
from decopt.graphs import Graph, Links

from conftest import SHARED_DATA

MNIST_SEGMENTS = [784 * 100, 100, 100 * 10, 10]      # W1, b1, W2, b2 of the 784-100-10 MLP: d = 79,510


# --- the k rule -------------------------------------------------------------------------------

def test_k_rule_at_r_09_exact_7951_code_7948():
    # r = 0.9: d_l x 0.1 is 7840, 10, 100, 1 exactly; the code's 1 - 0.9 = 0.09999999999999998
    # puts every product just below its integer, and int() drops it by one (the last to 0, floored to 1)
    assert keep_counts(MNIST_SEGMENTS, 0.1) == [7840, 10, 100, 1]
    assert keep_counts(MNIST_SEGMENTS, 0.1, "code") == [7839, 9, 99, 1]
    assert CoordinateMasks(0, MNIST_SEGMENTS, 0.1).k == 7951
    assert CoordinateMasks(0, MNIST_SEGMENTS, 0.1, "code").k == 7948
    # r = 0.99 and 0.9999: both rules agree with the spec's table (784 + 1 + 10 + 1; 7 + 1 + 1 + 1)
    for ratio, k in ((0.01, 796), (0.0001, 10)):
        assert sum(keep_counts(MNIST_SEGMENTS, ratio)) == sum(keep_counts(MNIST_SEGMENTS, ratio, "code")) == k
    masks = CoordinateMasks(4, MNIST_SEGMENTS, 0.1, "code").masks(3, [0, 7])
    assert masks.sum(1).tolist() == [7948, 7948]
    assert masks[:, 78400:78500].sum(1).tolist() == [9, 9]                 # 9 of b1's 100


def test_k_rule_is_validated():
    with pytest.raises(ConfigError, match=r"^algo.k_rule=floor: choose one of exact, code$"):
        FSPDAConfig(k_rule="floor").check()


# --- bits per active edge on the MNIST MLP's layers ---------------------------------------------

class MnistLayers:
    """The MNIST MLP's parameter tensors with zero gradients: the bit count needs no data."""

    segments, d, batch_size = MNIST_SEGMENTS, sum(MNIST_SEGMENTS), None

    def grad(self, X, t):
        return torch.zeros_like(X)


def _fspda_bits(cls, cfg, convention, links="one_edge", p=1.0, iters=3):
    """n = 10 on the complete graph (specs/fspda.md §4.1), fp32 values; total bits after ``iters``
    steps, the ledger, and the number of active edges."""
    g = Graph.from_edges(10, [(i, j) for i in range(10) for j in range(i + 1, 10)])
    net = StackedNetwork(g, Links(g, links, p, seed=2), seed=2, dtype=torch.float32, bits_convention=convention)
    algo = cls(cfg, net, MnistLayers(), build_compressor(COMPRESSORS["none"](), 32))
    state = algo.init(torch.randn(10, MnistLayers.d, generator=torch.Generator().manual_seed(0)))
    active = 0
    for t in range(iters):
        net.begin(t)
        algo.step(state, t)
        active += int(net.active.sum())
    return net.total_bits(), net.ledger(), active


@pytest.mark.parametrize("convention,per_edge", [("paper", 101_888), ("broadcast", 50_944), ("edge", 50_944)])
def test_fspda_sa_mnist_r099_bits_per_active_edge(convention, per_edge):
    # k = 796 at r = 0.99; paper: 2 x 32 k values + 64 k indices = 101,888 (spec §3.4); wire: 2 x 32 k
    bits, led, active = _fspda_bits(FSPDA, FSPDAConfig(mask_ratio=0.01), convention)
    assert active == 3 and bits == 3 * per_edge
    assert led["bits"].sum() == bits
    carried = led["bits"] > 0
    assert carried.sum() == 6                                       # both arcs of each active edge
    if convention == "paper":                                       # indices on the higher agent's arc
        hi = led["src"] > led["dst"]
        assert (led["bits"][carried & hi] == 32 * 796 + 64 * 796).all()
        assert (led["bits"][carried & ~hi] == 32 * 796).all()
    else:
        assert (led["bits"][carried] == 32 * 796).all()


def test_fspda_paper_bits_bernoulli_and_storm():
    # several active edges per iteration: every active edge is charged once
    bits, _, active = _fspda_bits(FSPDA, FSPDAConfig(mask_ratio=0.01), "paper", "bernoulli", 0.2)
    assert active > 3 and bits == active * 101_888
    # STORM: two masked vectors both ways plus the indices once: 4 x 32 k + 64 k = 152,832 (spec §3.4)
    bits, _, active = _fspda_bits(FSPDAStorm, FSPDAStormConfig(mask_ratio=0.01), "paper", iters=2)
    assert bits == active * 152_832
    # unshared masks (ablation P2): each direction sends its own indices
    bits, _, active = _fspda_bits(FSPDA, FSPDAConfig(mask_ratio=0.01, shared_mask=False), "paper", iters=2)
    assert bits == active * 2 * (32 + 64) * 796
    # the code's k rule at r = 0.9: k = 7,948 instead of 7,951
    bits, _, active = _fspda_bits(FSPDA, FSPDAConfig(mask_ratio=0.1, k_rule="code"), "paper", iters=1)
    assert bits == active * 128 * 7948


# --- end to end on mnist_mlp: metrics.csv and traffic.csv ------------------------------------

MNIST = SHARED_DATA / "mnist"


@pytest.mark.skipif(not (MNIST / "train-images-idx3-ubyte.gz").exists(), reason=f"no MNIST data in {MNIST}")
@pytest.mark.parametrize("convention,per_edge", [("paper", 101_888), ("broadcast", 50_944)])
def test_fspda_on_mnist_mlp_bits_column_and_ledger(tmp_path, convention, per_edge):
    decopt.run("problem=mnist_mlp", f"problem.data_dir={MNIST}", "problem.train_size=200", "problem.batch_size=4",
               "algo=fspda", "algo.mask_ratio=0.01", "graph=complete", "graph.n=10", "graph.links=one_edge",
               "run.iterations=4", "run.eval_every=2", f"run.bits_convention={convention}",
               "run.progress=none", run_dir=tmp_path)
    with open(tmp_path / "metrics.csv") as fh:
        rows = [(int(r["iteration"]), int(float(r["bits"]))) for r in csv.DictReader(fh)]
    assert rows == [(t, t * per_edge) for t in (0, 2, 4)]
    with open(tmp_path / "traffic.csv") as fh:
        assert sum(int(r["bits"]) for r in csv.DictReader(fh)) == 4 * per_edge
    assert json.loads((tmp_path / "summary.json").read_text())["bits_convention"] == convention
