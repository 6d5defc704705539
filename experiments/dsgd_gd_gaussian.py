"""DSGD-GD (Li, Yau & Wai 2022) Exp. A: performative Gaussian mean estimation.

n = 25 agents on a ring (Metropolis weights = 1/3), eps_i = eps_bar * {0.4, 0.45, ..., 1.6}
(so some eps_i > 1 at eps_bar = 0.9), zbar_i ~ U(0, 10) fixed, sigma = 1, theta^0 = 0, one sample
per agent per iteration, gamma_t = a0 / (a1 + t) with a0 = 25, a1 = 50 (the paper's a0, a1 are not
known; the specs' suggested defaults, specs/dsgd_gd.md §6), eps_bar in {0.9, 1.01, 1.05, 1.1}.
"Single eps = 1.01": an agent cut off from the network. decopt needs n >= 2 and a positive edge
weight, so this is 25 agents with eps_i = 1.01 on a ring whose weights are 1e-12
(graph.mixing=constant graph.weight=1e-12: W = I up to 1e-12, i.e. 25 independent single agents
running greedy deployment). Several seeds; the figure shows the mean and the min-max band.

Seeds run as replicas: each setting is one run with ``problem.replicas=R`` per block of consecutive
seeds s0 .. s0 + R - 1 (replica r is the run with ``run.seed=s0 + r``, to rounding), in
``batches/<slug>/seed<s0>x<R>/``, then split into one run directory per seed, ``runs/<slug>/seed<k>/``,
as if run alone (config with that seed and replicas=1; ``bits`` divided by R; ``loss`` and
``grad_norm_sq``, sums over the replicas, left out; ``summary.json`` names its batch), from which
the tables, checks and figures are drawn. A batch stops with status ``diverged`` once an iterate of
any replica passes run.diverge_threshold (1e10); ``run_time_s`` is the batch's time / R.

    python experiments/dsgd_gd_gaussian.py                         # 10^6 iterations, 10 seeds
    python experiments/dsgd_gd_gaussian.py --iterations 10000000   # the paper's horizon
    python experiments/dsgd_gd_gaussian.py --quick                 # 10^5 iterations, 3 seeds
"""
from __future__ import annotations

import csv
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

EPS = (0.9, 1.01, 1.05, 1.1)
N = 25


def points(eps_list) -> list[common.Point]:
    pts = [common.Point(f"ring, eps_bar={e:g}", [f"problem.eps_mean={e}"], meta={"eps": e}) for e in eps_list]
    iso = "[" + ",".join(["1.01"] * N) + "]"
    pts.append(common.Point("single agent, eps=1.01", [f"problem.eps={iso}", "graph.mixing=constant",
                                                      "graph.weight=1e-12"], meta={"eps": 1.01}))
    return pts


PER_REPLICA = ("ps_error", "consensus_error", "risk")       # the metrics with a column per replica


def seed_blocks(seeds) -> list[range]:
    """Consecutive seeds grouped into ranges (one batch of replicas each)."""
    blocks = []
    for s in seeds:
        if blocks and s == blocks[-1].stop:
            blocks[-1] = range(blocks[-1].start, s + 1)
        else:
            blocks.append(range(s, s + 1))
    return blocks


def split(batch: Path, summary: dict, seeds: range, out: Path) -> list[Path]:
    """One run directory per replica of ``batch`` (see the module docstring); returns them."""
    import yaml

    with open(batch / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    cfg = yaml.safe_load((batch / "config.yaml").read_text())
    R, dirs = len(seeds), []
    keep = [k for k in rows[0] if k in ("iteration", "bits", "samples", "wall_time", "sim_time")]
    for r, seed in enumerate(seeds):
        d = out / f"seed{seed}"
        d.mkdir(parents=True, exist_ok=True)
        for f in d.iterdir():                          # files of an earlier run in this folder
            f.unlink()
        mine = [{**{k: row[k] for k in keep}, "bits": str(int(row["bits"]) // R),
                 **{k: row[f"{k}_r{r}"] for k in PER_REPLICA if f"{k}_r{r}" in row}} for row in rows]
        with open(d / "metrics.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(mine[0]))
            w.writeheader()
            w.writerows(mine)
        cfg["run"]["seed"], cfg["problem"]["replicas"] = seed, 1
        (d / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        final = {k: int(float(v)) if k in ("iteration", "bits", "samples") else float(v) for k, v in mine[-1].items()}
        info = {**summary, "final": final, "dimension": summary["dimension"] // R,
                "replica_of": {"batch": str(batch.relative_to(out.parents[1])), "index": r}}
        (d / "summary.json").write_text(json.dumps(info, indent=2) + "\n")
        dirs.append(d)
    return dirs


def run_replicated(points, args, shared) -> list[dict]:
    """``common.run_points`` with the seeds as replicas: one run per point and block of consecutive
    seeds, split into per-seed run directories; one record per seed."""
    import decopt

    base = ["run.threads=1", "run.progress=none", f"run.iterations={args.iterations}", *shared, *args.set]
    only = [o for o in (args.only or "").split(",") if o]
    records = []
    for p in points:
        if only and not any(o in p.label for o in only):
            continue
        for seeds in seed_blocks(args.seed_list):
            R = len(seeds)
            batch = args.out / "batches" / p.slug / f"seed{seeds.start}x{R}"
            t0 = time.perf_counter()
            if args.reuse and (batch / "summary.json").exists():
                summary, how = json.loads((batch / "summary.json").read_text()), "reused"
            else:
                for f in batch.glob("*"):
                    f.unlink()
                r = decopt.run(*base, *p.overrides, f"problem.replicas={R}", f"run.seed={seeds.start}",
                               run_dir=batch)
                summary, how = r.summary, "ran"
            dt = time.perf_counter() - t0
            dirs = split(batch, summary, seeds, args.out / "runs" / p.slug)
            print(f"[{how} {dt:6.1f}s] {p.label:<32s} seeds={seeds.start}..{seeds.stop - 1} "
                  f"status={summary.get('status')} it={summary.get('iterations')}", flush=True)
            if summary.get("status") == "interrupted":               # Ctrl-C / SIGTERM: stop the sweep too
                common.write_csvs(records, args.out)
                sys.exit(f"interrupted during {p.label}; finished batches are kept (--reuse reuses them)")
            for seed, d in zip(seeds, dirs):
                records.append({"xbar_path": None, "point": p, "label": p.label, "slug": p.slug, "group": p.group,
                                "seed": seed, "dir": d, "summary": json.loads((d / "summary.json").read_text()),
                                "run_time_s": (dt if how == "ran" else summary.get("wall_time", math.nan)) / R})
    common.write_csvs(records, args.out)
    return records


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
    shared = ["algo=dsgd_gd", "algo.a0=25", "algo.a1=50", "problem=gaussian_mean", "graph=ring", f"graph.n={N}",
              "run.eval_grid=geometric", "run.dtype=float64"]
    eps_list = [float(e) for e in args.eps.split(",")]
    recs = run_replicated(points(eps_list), args, shared)
    common.figures(recs, args.out, ["ps_error", "consensus_error", "risk"], xs=("iteration",),
                   title=f"DSGD-GD Exp. A: Gaussian mean, ring n={N}, {len(args.seed_list)} seed(s)")
    # the same figure with a log iteration axis (the paper's)
    from decopt.plotting import plot

    plot([r["dir"] for r in recs], x="iteration", ys=["ps_error", "consensus_error", "risk"],
         out=args.out / "figures" / "logx", names={str(r["dir"]): r["label"] for r in recs}, logx=True,
         title=f"DSGD-GD Exp. A: Gaussian mean, ring n={N}, {len(args.seed_list)} seed(s)")
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
