"""FSPDA (Yau, Liu, Wai; arXiv 2410.18774) Fig. 4 and Fig. 5 on MNIST.

Common set-up (specs/fspda.md §4.1): 784-100-10 sigmoid MLP, n = 10, batch 256 per agent,
complete base graph (45 edges), weight decay 1e-4 (the problem's default), constant steps, paper
forms (momentum 0). Hyper-parameters: the official scripts' (specs/fspda.md §3.4, ``exps/fig4.sh``,
``exps/fig5.sh``), so that a full-length run is the paper's run:

Fig. 4 (sorted vs shuffled split), one random active edge per iteration (graph.links=one_edge):
  FSPDA-SA 1 % (lr 1e-4, eta 1e-4 sorted / 1e-5 shuffled, gamma 0.5, beta 1), FSPDA-STORM 1 %
  (lr 1e-3, eta 1e-3 / 1e-4, gamma 0.5, beta 0.1, a = b = 0.1), CHOCO-SGD random-k 1 % with
  consensus step 1e-3 (decopt activates the one edge; the code activates nodes with probability
  0.1: not the same random graph), Swarm-SGD with unbiased 8-bit QSGD and the pairwise average
  (``graph.mixing=constant graph.weight=0.5``; the code quantises on a lattice),
  DSGD on a Bernoulli random graph with p = 0.0005 per edge, dense messages, Metropolis weights
  (1/10; the code's consensus step is 0.5). Baselines: lr 1e-4 (the scripts' common value).
Fig. 5 (ablation, shuffled): FSPDA-SA (lr 1e-4, eta 1e-6) at 0.01 % of the coordinates with
  1 edge / about 10 edges (each edge up with p = 0.2222) / all 45 edges, and with 1 edge at
  0.1 % and 1 %.

The paper runs 10^7 iterations (Swarm-SGD 10^6). A one-edge FSPDA step costs its batched
gradient plus O(k) here (about 10 ms on one core), so 10^7 is out of reach of a CPU; a GPU or a
bigger machine runs the paper's run with ``--iterations 10000000 --lr-scale 1 --set
run.device=cuda --set run.eval_grid=geometric``. ``--lr-scale S`` multiplies every gradient step
(FSPDA's alpha, Swarm-SGD's, CHOCO's and DSGD's lr) by S for a shorter horizon (default 100
for the default 10,000 iterations: lr x iterations = 100, a tenth of the paper's 1e-4 x 10^7);
the consensus and dual steps (gamma, eta, beta) keep the paper's values: their stability is set
by how often a coordinate is exchanged (the mask density and the active edges), not by the
horizon (with lr = 0.1, eta = 1e-3 the consensus error of FSPDA-SA grows geometrically on sorted
data).

Bits (``--bits-convention``, default ``paper``): FSPDA's as the official code counts them, the k
values both ways plus the k int64 indices once per active edge (2 x 32k + 64k = 101,888 per
iteration at 1 %, specs/fspda.md §3.4 and P12; ``run.bits_convention=paper``), which is the
paper's x-axis; ``broadcast`` is decopt's wire, where the mask is keyed and no index is sent
(50,944). The baselines are on decopt's wire under both (CHOCO's random-k indices bit-packed,
where the code charges 64 bits each), so on the ``paper`` axis FSPDA is the paper's and the
baselines sit below the paper's. Every figure against bits comes on both counts (``fig4_sorted/``
on the paper's, ``fig4_sorted_wire/`` on decopt's wire, ...) from the same runs: per active edge
the two differ by a fixed factor (2 for FSPDA-SA, 1.5 for FSPDA-STORM, 1 for the baselines;
``other_count``). The fewer-bits-than-CHOCO check compares like with like, on decopt's wire.

    python experiments/fspda_mnist.py                   # experiments/RESULTS.md: 10,000 iterations, lr x 100
    python experiments/fspda_mnist.py --iterations 10000000 --lr-scale 1 --set run.device=cuda
"""
from __future__ import annotations

import csv
import shutil
import sys
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from decopt.comm.ledger import PAPER_INDEX_BITS  # noqa: E402

LR = 1e-4                        # FSPDA-SA and every baseline
ONE_EDGE = ["graph.links=one_edge"]
SA_ETA = {"sorted": 1e-4, "iid": 1e-5}
STORM_ETA = {"sorted": 1e-3, "iid": 1e-4}
OTHER = {"paper": "broadcast", "broadcast": "paper"}
BITS_AXIS = {"paper": "bits (run.bits_convention=paper): FSPDA as its code counts (+ int64 indices once per active edge), "
                      "baselines decopt's wire",
             "broadcast": "bits (run.bits_convention=broadcast): decopt's wire (FSPDA's mask keyed: no indices)"}
BITS_XLABEL = {"paper": "bits, the paper's count\nFSPDA-SA: 2·32k + 64k per active edge",
               "broadcast": "bits, decopt's wire\nFSPDA-SA: 2·32k per active edge"}
SA_BITS_1PCT = {"paper": 2 * 32 * 796 + 64 * 796, "broadcast": 2 * 32 * 796}    # per active edge, fp32, k = 796


def paper_over_wire(messages: int, value_bits: int = 32) -> Fraction:
    """FSPDA's paper count over decopt's wire count: per active edge, ``messages`` k-value messages
    (2 for FSPDA-SA, 4 for FSPDA-STORM) plus, in the paper's count only, the k int64 indices once
    (specs/fspda.md P12): (messages b + 64) / (messages b), whatever k and the number of active edges."""
    return Fraction(messages * value_bits + PAPER_INDEX_BITS, messages * value_bits)


SA, STORM = {"paper_over_wire": paper_over_wire(2)}, {"paper_over_wire": paper_over_wire(4)}


def other_count(records, out: Path, convention: str) -> list[dict]:
    """The runs' metrics on the other bit convention, without re-running them: every bit count of
    an FSPDA run is (active edges) x (bits per active edge), so the two conventions differ by the
    factor ``paper_over_wire`` row by row (1 for the baselines). Written as run directories
    (config.yaml, metrics.csv with ``bits`` rescaled) under ``out/bits_<convention>/``; returns
    records pointing there."""
    moved = []
    for r in records:
        f = r["point"].meta.get("paper_over_wire", Fraction(1))
        f = f if OTHER[convention] == "paper" else 1 / f
        d = out / f"bits_{OTHER[convention]}" / r["slug"] / f"seed{r['seed']}"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(r["dir"] / "config.yaml", d / "config.yaml")
        with open(r["dir"] / "metrics.csv") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            bits = Fraction(int(row["bits"])) * f
            assert bits.denominator == 1, (r["label"], row["bits"])     # exact: (edges) x (bits per edge)
            row["bits"] = str(bits.numerator)
        with open(d / "metrics.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        final = {**r["summary"].get("final", {}), "bits": int(rows[-1]["bits"])}
        moved.append({**r, "dir": d, "summary": {**r["summary"], "final": final}})
    return moved


def fig4_points(partitions, scale: float) -> list[common.Point]:
    lr = LR * scale
    pts = []
    for part in partitions:
        pp = [f"problem.partition={part}"]
        g = f"fig4_{part}"
        pts += [
            common.Point(f"FSPDA-SA 1% ({part})", ["algo=fspda", f"algo.lr={lr:g}", f"algo.eta={SA_ETA[part]:g}",
                                                   "algo.gamma=0.5", "algo.beta=1", "algo.mask_ratio=0.01",
                                                   *ONE_EDGE, *pp], g, SA),
            common.Point(f"FSPDA-STORM 1% ({part})", [
                "algo=fspda_storm", f"algo.lr={10 * lr:g}", f"algo.eta={STORM_ETA[part]:g}", "algo.gamma=0.5",
                "algo.beta=0.1", "algo.storm_momentum=0.1", "algo.storm_dual_momentum=0.1", "algo.mask_ratio=0.01",
                *ONE_EDGE, *pp], g, STORM),
            common.Point(f"CHOCO-SGD rand-1% ({part})", [
                "algo=choco", f"algo.lr={lr:g}", "algo.gamma=0.001", "compressor=randk", "compressor.ratio=0.01",
                *ONE_EDGE, *pp], g),
            # unbiased 8-bit QSGD (the contractive one shrinks the averaged models: they collapse)
            common.Point(f"Swarm-SGD 8-bit ({part})", ["algo=swarm_sgd", f"algo.lr={lr:g}", "compressor=qsgd8",
                                                       "compressor.unbiased=true", "graph.mixing=constant",
                                                       "graph.weight=0.5", *ONE_EDGE, *pp], g),
            common.Point(f"DSGD random graph p=5e-4 ({part})", ["algo=dsgd", f"algo.lr={lr:g}", "graph.links=bernoulli",
                                                                "graph.link_p=0.0005", *pp], g),
        ]
    return pts


def fig5_points(scale: float) -> list[common.Point]:
    pp = ["problem.partition=iid", "algo=fspda", f"algo.lr={LR * scale:g}", "algo.eta=1e-06", "algo.gamma=0.5",
          "algo.beta=1"]
    g = "fig5"
    return [
        common.Point("0.01%, 1 edge", [*pp, "algo.mask_ratio=0.0001", *ONE_EDGE], g, SA),
        common.Point("0.01%, ~10 edges (p=0.2222)", [*pp, "algo.mask_ratio=0.0001", "graph.links=bernoulli",
                                                     "graph.link_p=0.2222"], g, SA),
        common.Point("0.01%, all 45 edges", [*pp, "algo.mask_ratio=0.0001", "graph.links=static"], g, SA),
        common.Point("0.1%, 1 edge", [*pp, "algo.mask_ratio=0.001", *ONE_EDGE], g, SA),
        common.Point("1%, 1 edge", [*pp, "algo.mask_ratio=0.01", *ONE_EDGE], g, SA),
    ]


def main(argv=None) -> int:
    ap = common.parser(__doc__.splitlines()[0], horizon=10_000, quick_horizon=100)
    ap.add_argument("--figure", default="4,5", help="which figures: 4, 5 or 4,5")
    ap.add_argument("--lr-scale", type=float, default=100.0,
                    help="multiply every gradient step by this (default 100; 1 = the paper's); "
                         "consensus and dual steps unchanged")
    ap.add_argument("--partitions", default="sorted,iid", help="Fig. 4 splits (iid = the paper's 'shuffled')")
    ap.add_argument("--bits-convention", choices=sorted(BITS_AXIS), default="paper",
                    help="paper: FSPDA's bits as its code counts them (default); broadcast: decopt's wire")
    args = common.finish_args(ap.parse_args(argv), "fspda_mnist")
    common.need_data(args, "mnist")
    t0 = common.header(args, "fspda_mnist")
    shared = ["problem=mnist_mlp", f"problem.data_dir={args.data / 'mnist'}", "graph=complete", "graph.n=10",
              f"run.eval_every={max(args.iterations // 20, 10)}", f"run.bits_convention={args.bits_convention}"]
    if args.quick:
        shared += ["problem.train_size=6000", "problem.batch_size=64"]
    figs = [f.strip() for f in args.figure.split(",")]
    ys = ["loss", "grad_norm_sq", "consensus_error", "accuracy"]
    cols = ["loss", "grad_norm_sq", "consensus_error", "accuracy", "bits"]
    checks, tables = [], []
    pts = (fig4_points(args.partitions.split(","), args.lr_scale) if "4" in figs else []) + \
        (fig5_points(args.lr_scale) if "5" in figs else [])
    recs = common.run_points(pts, args, shared)               # one call: results.csv holds every run
    conv, other = args.bits_convention, OTHER[args.bits_convention]
    by_count = {conv: recs, other: other_count(recs, args.out, conv)}
    suffix = {"paper": "", "broadcast": "_wire"}                # figure folders: fig4_sorted, fig4_sorted_wire, ...

    def render(group: str, title: str) -> dict:
        """``group``'s figures against iterations and both bit counts; its records per convention."""
        subs = {c: [r for r in rs if r["group"] == group] for c, rs in by_count.items()}
        for c, sub in subs.items():
            common.figures(sub, args.out, ys, xs=("iteration", "bits") if c == conv else ("bits",),
                           name=group + suffix[c], title=f"{title}\n{BITS_AXIS[c]}",
                           axis_labels={"bits": BITS_XLABEL[c]})
            tables.append(f"### {title} ({BITS_AXIS[c]})\n\n" + common.final_table(sub, cols))
        return subs

    if "4" in figs:
        for part in args.partitions.split(","):
            subs = render(f"fig4_{part}", f"FSPDA Fig. 4 ({part}), complete n=10, {args.iterations} it., "
                                          f"lr x{args.lr_scale:g}")
            for c, sub in subs.items():
                fs, per_edge = common.final(sub, f"FSPDA-SA 1% ({part})", "bits"), SA_BITS_1PCT[c]
                checks.append((f"Fig. 4 ({part}): FSPDA-SA 1% costs {per_edge:,} bits per one-edge iteration ({c})",
                               fs == per_edge * args.iterations))
            wire = subs["broadcast"]
            checks.append((f"Fig. 4 ({part}): FSPDA-SA 1% sends fewer bits than CHOCO-SGD 1% on decopt's wire",
                           common.final(wire, f"FSPDA-SA 1% ({part})", "bits")
                           < common.final(wire, f"CHOCO-SGD rand-1% ({part})", "bits")))
    if "5" in figs:
        recs5 = render("fig5", f"FSPDA Fig. 5 (shuffled), {args.iterations} it., lr x{args.lr_scale:g}")[conv]
        b = {r["label"]: float(r["summary"]["final"]["bits"]) for r in recs5}
        c = {r["label"]: float(r["summary"]["final"]["consensus_error"]) for r in recs5}
        checks.append(("Fig. 5: 0.01%/1 edge is the cheapest setting in bits",
                       min(b, key=b.get) == "0.01%, 1 edge"))
        checks.append(("Fig. 5: the consensus error is larger with 1 edge than with all 45 edges at 0.01%",
                       c["0.01%, 1 edge"] > c["0.01%, all 45 edges"]))
    text = "\n".join(tables)
    (args.out / "table.md").write_text(text)
    print(text)
    return common.footer(args, t0, common.report_checks(checks, args.out))


if __name__ == "__main__":
    sys.exit(main())
