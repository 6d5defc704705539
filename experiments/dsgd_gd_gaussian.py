"""DSGD-GD (Li, Yau & Wai 2022) Exp. A: performative Gaussian mean estimation.

n = 25 agents on a ring (Metropolis weights = 1/3), eps_i = eps_bar * {0.4, 0.45, ..., 1.6}
(so some eps_i > 1 at eps_bar = 0.9), zbar_i ~ U(0, 10) fixed, sigma = 1, theta^0 = 0, one sample
per agent per iteration, gamma_t = a0 / (a1 + t) with a0 = 25, a1 = 50 (the paper's a0, a1 are not
known; the specs' suggested defaults, specs/dsgd_gd.md §6), eps_bar in {0.9, 1.01, 1.05, 1.1}.
"Single eps = 1.01": an agent cut off from the network. decopt needs n >= 2 and a positive edge
weight, so this is 25 agents with eps_i = 1.01 on a ring whose weights are 1e-12
(graph.mixing=constant graph.weight=1e-12: W = I up to 1e-12, i.e. 25 independent single agents
running greedy deployment). Several seeds; the figure shows the mean and the min-max band.

Seeds run as replicas (``common.run_replicated``): each setting is one run with ``problem.replicas=R``
per block of consecutive seeds (replica r is the run with ``run.seed=s0 + r``, to rounding), split
into one run directory per seed, from which the tables, checks and figures are drawn. A batch stops
with status ``diverged`` once an iterate of any replica passes run.diverge_threshold (1e10).

    python experiments/dsgd_gd_gaussian.py                         # 10^6 iterations, 10 seeds
    python experiments/dsgd_gd_gaussian.py --iterations 10000000   # the paper's horizon
    python experiments/dsgd_gd_gaussian.py --quick                 # 10^5 iterations, 3 seeds
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

EPS = (0.9, 1.01, 1.05, 1.1)
N = 25
# the paper's three log-log panels (specs/dsgd_gd.md §5), each axis with its definition
AXES = {"ps_error": "PS error |θ̄ − θ_PS|²", "consensus_error": "consensus error\n(1/n) Σ_i |θ_i − θ̄|²",
        "risk": "expected risk\n(1/n) Σ_i f_i(θ_i; θ_i)", "iteration": "iteration t"}


def points(eps_list) -> list[common.Point]:
    pts = [common.Point(f"ring, eps_bar={e:g}", [f"problem.eps_mean={e}"], meta={"eps": e}) for e in eps_list]
    iso = "[" + ",".join(["1.01"] * N) + "]"
    pts.append(common.Point("single agent, eps=1.01", [f"problem.eps={iso}", "graph.mixing=constant",
                                                      "graph.weight=1e-12"], meta={"eps": 1.01}))
    return pts


def _at(rows, it, key):
    """The value of ``key`` at the last row with iteration <= it."""
    best = rows[0]
    for row in rows:
        if row["iteration"] <= it:
            best = row
    return best.get(key, float("nan"))


def diverged(rec) -> bool:
    """Diverged: stopped as such (an iterate beyond run.diverge_threshold), or the risk still grows
    over the last decade of iterations (risk(T) > 1.5 risk(T/10): polynomial growth, e.g. t^(a0 (eps - 1)))."""
    if rec["summary"].get("status") == "diverged":
        return True
    rows = common.read_metrics(rec["dir"])
    T = rows[-1]["iteration"]
    return rows[-1]["risk"] > 1.5 * _at(rows, T / 10, "risk")


def converged(rec) -> bool:
    """Converging: completed, and the PS error falls by more than 3x over the last decade and ends
    below its starting value."""
    rows = common.read_metrics(rec["dir"])
    T = rows[-1]["iteration"]
    ps = rows[-1].get("ps_error", float("nan"))
    return (rec["summary"].get("status") == "completed" and ps < _at(rows, T / 10, "ps_error") / 3
            and ps < rows[0].get("ps_error", float("nan")))


def main(argv=None) -> int:
    ap = common.parser(__doc__.splitlines()[0], horizon=1_000_000, quick_horizon=100_000, seeds=10, quick_seeds=3)
    ap.add_argument("--eps", default=",".join(map(str, EPS)), help="comma list of eps_bar values")
    args = common.finish_args(ap.parse_args(argv), "dsgd_gd_gaussian")
    t0 = common.header(args, "dsgd_gd_gaussian")
    shared = ["algo=dsgd_gd", "algo.lr=25", "algo.a1=50", "problem=gaussian_mean", "graph=ring", f"graph.n={N}",
              "run.eval_grid=geometric", "run.dtype=float64"]
    eps_list = [float(e) for e in args.eps.split(",")]
    recs = common.run_replicated(points(eps_list), args, shared)
    common.figures(recs, args.out, ["ps_error", "consensus_error", "risk"], xs=("iteration",), logx=True,
                   title=f"DSGD-GD Exp. A: Gaussian mean, ring n={N}, {len(args.seed_list)} seed(s)",
                   axis_labels=AXES)
    div = {}
    for r in recs:
        div[r["label"]] = div.get(r["label"], False) or diverged(r)
    extra = {k: {"diverged": "yes" if v else "no"} for k, v in div.items()}
    print(common.final_table(recs, ["ps_error", "consensus_error", "risk", "iteration"], args.out, extra=extra))
    checks = []
    for e in eps_list:
        label = f"ring, eps_bar={e:g}"
        if e < 1:
            ok = all(converged(r) for r in recs if r["label"] == label)
            ps = common.final(recs, label, "ps_error")
            checks.append((f"eps_bar={e:g}: converges (PS error falling, final {ps:.3g})", ok and not div[label]))
        else:
            checks.append((f"eps_bar={e:g}: diverges", div[label]))
    checks.append(("isolated agent with eps=1.01: diverges", div["single agent, eps=1.01"]))
    return common.footer(args, t0, common.report_checks(checks, args.out))


if __name__ == "__main__":
    sys.exit(main())
