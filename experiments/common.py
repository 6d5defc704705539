"""Shared plumbing of the paper-reproduction scripts in ``experiments/``.

Every script builds a list of :class:`Point` (a legend label + the Hydra overrides a user would
type after ``python -m decopt run``), runs each point once per seed through ``decopt.run`` (the
Python API the CLI itself calls), writes one run directory per (point, seed), then figures (PNG +
PDF via ``decopt.plotting.plot``) and plain-text results:

    <out>/runs/<slug>/seed<k>/   config.yaml, metrics.csv, summary.json, traffic.csv (one per run),
                                 xbar.npy (the final average model, numpy)
    <out>/batches/<slug>/...     with seeds as replicas (``run_replicated``): one run per block of
                                 seeds, split into the per-seed folders above
    <out>/results.csv            one row per run: label, slug, seed, status, iterations, final metrics
    <out>/metrics_long.csv       every metrics row of every run, with label, slug and seed columns
    <out>/table.md               mean ± std over seeds of the final metrics, one row per label
    <out>/checks.md              the qualitative claims the script checks, PASS / FAIL
    <out>/figures/*.png|pdf      the paper-style figures

All CSVs read with ``pandas.read_csv`` without decopt. Columns of ``results.csv`` /
``metrics_long.csv``: ``label`` (legend name), ``slug`` (its folder), ``seed``, ``status``
(completed | diverged | ...), then the run's metric columns (README "What a run writes"):
``iteration, bits, wall_time, loss, grad_norm_sq, consensus_error, samples`` and the problem's
extras (``accuracy``, ``train_accuracy``, ``ps_error``, ``risk``, ``worst_agent_*``, ...).
``results.csv`` also has ``run_time_s`` (wall time of the whole run, evaluations included).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from decopt.exit_codes import BAD_INPUT, INTERRUPTED

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


@dataclass
class Point:
    """One line of a figure: a legend ``label`` and its Hydra overrides."""

    label: str
    overrides: list[str]
    group: str = ""                      # figure panel / sub-experiment this point belongs to
    meta: dict = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{self.group}_{self.label}" if self.group else self.label).strip("_")


def parser(description: str, horizon: int, quick_horizon: int, seeds: int = 1, quick_seeds: int | None = None):
    """Common flags. ``--iterations`` overrides the default horizon (``horizon`` / ``quick_horizon``)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true", help="minutes-scale version (CI): tiny horizon, fewer seeds")
    ap.add_argument("--iterations", "--horizon", type=int, default=None, dest="iterations",
                    help=f"iterations per run (default {horizon}; --quick: {quick_horizon})")
    ap.add_argument("--seeds", type=str, default=None,
                    help=f"number of seeds N (0..N-1) or a comma list (default {seeds}; --quick: {quick_seeds or 1})")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default experiments/out/<script>)")
    ap.add_argument("--data", type=Path, default=None,
                    help="data root with mnist/, spambase/, leaf_synthetic/ (default $DECOPT_DATA or ../shared/data)")
    ap.add_argument("--reuse", action="store_true", help="keep finished run directories instead of re-running them, and continue interrupted ones")
    ap.add_argument("--only", type=str, default=None, help="comma list of labels (substrings) to run")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a checked claim fails (checks.md)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra Hydra override applied to every run (repeatable), e.g. --set run.device=cuda")
    ap.set_defaults(_horizon=horizon, _quick_horizon=quick_horizon, _seeds=seeds, _quick_seeds=quick_seeds or 1)
    return ap


def finish_args(args, script: str):
    """Resolve defaults: iterations, seed list, output and data folders."""
    if args.iterations is None:
        args.iterations = args._quick_horizon if args.quick else args._horizon
    s = args.seeds if args.seeds is not None else str(args._quick_seeds if args.quick else args._seeds)
    args.seed_list = [int(v) for v in s.split(",") if v] if "," in s else list(range(int(s)))
    if args.out is None:
        args.out = REPO / "experiments" / "out" / (script + ("_quick" if args.quick else ""))
    args.out = Path(args.out)
    args.data = Path(args.data or os.environ.get("DECOPT_DATA") or DEFAULT_DATA)
    return args


def need_data(args, *folders: str) -> None:
    """Stop with one clear line when a data folder is missing."""
    for f in folders:
        if not (args.data / f).is_dir():
            stop(BAD_INPUT, f"{f}/ not found under {args.data}: pass --data <root> or set DECOPT_DATA "
                            f"(the root holding mnist/, spambase/, leaf_synthetic/)")


def stop(code: int, message: str) -> None:
    """Exit with ``code`` (decopt.exit_codes) and ``message`` as one line on stderr."""
    print(f"{Path(sys.argv[0]).name}: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def previous(summary_path: Path, reuse: bool) -> tuple[dict | None, bool]:
    """Under ``--reuse``: the summary of a finished run to keep (else None), and whether the run was
    interrupted and goes on from its checkpoint."""
    summary = json.loads(summary_path.read_text()) if reuse and summary_path.exists() else None
    if summary is not None and summary.get("status") == "interrupted":
        return None, True
    return summary, False


def run_points(points: list[Point], args, common: list[str] = ()) -> list[dict]:
    """Run every point for every seed; return one record per run (label, slug, seed, summary, dir)."""
    import decopt

    only = [o for o in (args.only or "").split(",") if o]
    records = []
    base = ["run.threads=1", "run.progress=none", f"run.iterations={args.iterations}", *common, *args.set]
    for p in points:
        if only and not any(o in p.label for o in only):
            continue
        for seed in args.seed_list:
            d = args.out / "runs" / p.slug / f"seed{seed}"
            summary_path = d / "summary.json"
            t0 = time.perf_counter()
            summary, resume = previous(summary_path, args.reuse)
            if summary is not None:
                how = "reused"
            else:
                if d.exists() and not resume:
                    for f in d.iterdir():
                        if f.is_file():
                            f.unlink()
                try:
                    r = decopt.run(*base, *p.overrides, f"run.seed={seed}", *(["run.resume=true"] if resume else []),
                                   run_dir=d)
                except Exception as exc:                            # a bad point must not sink the sweep
                    print(f"[failed] {p.label} seed={seed}: {type(exc).__name__}: {exc}", flush=True)
                    continue
                summary = r.summary
                how = "resumed" if resume else "ran"
                x = r.state.get("x") if isinstance(r.state, dict) else None
                if x is not None and hasattr(x, "mean"):          # the final average model, for re-evaluation
                    import numpy as np

                    np.save(d / "xbar.npy", x.double().mean(0).cpu().numpy())
            dt = time.perf_counter() - t0
            fin = summary.get("final", {})
            print(f"[{how} {dt:6.1f}s] {p.label:<40s} seed={seed} status={summary.get('status')} "
                  f"it={summary.get('iterations')} " + " ".join(
                      f"{k}={_fmt(fin[k])}" for k in ("loss", "grad_norm_sq", "consensus_error", "accuracy",
                                                       "ps_error", "risk") if k in fin), flush=True)
            xbar_path = d / "xbar.npy"
            if summary.get("status") == "interrupted":               # Ctrl-C / SIGTERM: stop the sweep too
                write_csvs(records, args.out)
                stop(INTERRUPTED, f"interrupted during {p.label} seed={seed}; finished runs are kept (--reuse resumes)")
            records.append({"xbar_path": xbar_path if xbar_path.exists() else None, "point": p, "label": p.label, "slug": p.slug, "group": p.group, "seed": seed,
                            "dir": d, "summary": summary, "run_time_s": dt if how != "reused" else
                            summary.get("wall_time", math.nan)})
    write_csvs(records, args.out)
    return records


def seed_blocks(seeds) -> list[range]:
    """Consecutive seeds grouped into ranges (one batch of replicas each)."""
    blocks = []
    for s in seeds:
        if blocks and s == blocks[-1].stop:
            blocks[-1] = range(blocks[-1].start, s + 1)
        else:
            blocks.append(range(s, s + 1))
    return blocks


EXACT = ("iteration", "bits", "samples")
SHARED = ("iteration", "bits", "samples", "wall_time", "sim_time")     # columns every replica keeps


def split(batch: Path, summary: dict, seeds: range, out: Path) -> list[Path]:
    """One run directory per replica of ``batch`` (``run_replicated``); returns them."""
    import numpy as np
    import yaml

    with open(batch / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    cfg = yaml.safe_load((batch / "config.yaml").read_text())
    xbar = np.load(batch / "xbar.npy") if (batch / "xbar.npy").exists() else None
    R, dirs = len(seeds), []
    for r, seed in enumerate(seeds):
        d = out / f"seed{seed}"
        d.mkdir(parents=True, exist_ok=True)
        for f in d.iterdir():                          # files of an earlier run in this folder
            f.unlink()
        own = lambda k: k in SHARED or R == 1                                    # one replica: every column
        mine = [{**{k: v for k, v in row.items() if own(k)}, "bits": str(int(row["bits"]) // R),
                 **{k[:-len(f"_r{r}")]: v for k, v in row.items() if R > 1 and k.endswith(f"_r{r}")}} for row in rows]
        with open(d / "metrics.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(mine[0]))
            w.writeheader()
            w.writerows(mine)
        cfg["run"]["seed"], cfg["problem"]["replicas"] = seed, 1
        (d / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        final = {k: int(float(v)) if k in EXACT else float(v) for k, v in mine[-1].items() if v != ""}
        info = {**summary, "final": final, "dimension": summary["dimension"] // R,
                "replica_of": {"batch": str(batch.relative_to(out.parents[1])), "index": r}}
        (d / "summary.json").write_text(json.dumps(info, indent=2) + "\n")
        if xbar is not None:
            np.save(d / "xbar.npy", xbar[r])
        dirs.append(d)
    return dirs


def run_replicated(points: list[Point], args, common: list[str] = ()) -> list[dict]:
    """``run_points`` with the seeds as replicas (a problem with ``problem.replicas``): one run per
    point and block of consecutive seeds s0 .. s0 + R - 1 with ``problem.replicas=R run.seed=s0``
    (replica r is the run with seed s0 + r, to rounding), in ``batches/<slug>/seed<s0>x<R>/`` with its
    final average models ``xbar.npy`` (R, d), then split into one run directory per seed,
    ``runs/<slug>/seed<k>/``, as if run alone: config with that seed and replicas=1, the replica's
    metric columns (``<name>_r<k>`` renamed ``<name>``), ``bits`` divided by R, its ``xbar.npy``, and
    a ``summary.json`` naming its batch. A batch stops with status ``diverged`` once an iterate of
    any replica passes run.diverge_threshold; ``run_time_s`` is the batch's time / R. One record
    per seed, as ``run_points``."""
    import numpy as np

    import decopt

    base = ["run.threads=1", "run.progress=none", f"run.iterations={args.iterations}", *common, *args.set]
    only = [o for o in (args.only or "").split(",") if o]
    records = []
    for p in points:
        if only and not any(o in p.label for o in only):
            continue
        for seeds in seed_blocks(args.seed_list):
            R = len(seeds)
            batch = args.out / "batches" / p.slug / f"seed{seeds.start}x{R}"
            t0 = time.perf_counter()
            summary, resume = previous(batch / "summary.json", args.reuse)
            if summary is not None:
                how = "reused"
            else:
                for f in [] if resume else batch.glob("*"):
                    f.unlink()
                r = decopt.run(*base, *p.overrides, f"problem.replicas={R}", f"run.seed={seeds.start}",
                               *(["run.resume=true"] if resume else []), run_dir=batch)
                summary, how = r.summary, "resumed" if resume else "ran"
                np.save(batch / "xbar.npy", r.state["x"].double().mean(0).view(R, -1).cpu().numpy())
            dt = time.perf_counter() - t0
            dirs = split(batch, summary, seeds, args.out / "runs" / p.slug)
            print(f"[{how} {dt:6.1f}s] {p.label:<40s} seeds={seeds.start}..{seeds.stop - 1} "
                  f"status={summary.get('status')} it={summary.get('iterations')}", flush=True)
            if summary.get("status") == "interrupted":               # Ctrl-C / SIGTERM: stop the sweep too
                write_csvs(records, args.out)
                stop(INTERRUPTED, f"interrupted during {p.label}; finished batches are kept (--reuse resumes)")
            for seed, d in zip(seeds, dirs):
                records.append({"xbar_path": d / "xbar.npy" if (d / "xbar.npy").exists() else None, "point": p,
                                "label": p.label, "slug": p.slug, "group": p.group, "seed": seed, "dir": d,
                                "summary": json.loads((d / "summary.json").read_text()),
                                "run_time_s": (dt if how != "reused" else summary.get("wall_time", math.nan)) / R})
    write_csvs(records, args.out)
    return records


def _fmt(v) -> str:
    try:
        return f"{float(v):.4g}"
    except (TypeError, ValueError):
        return str(v)


def read_metrics(run_dir: Path) -> list[dict]:
    with open(Path(run_dir) / "metrics.csv") as fh:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in csv.DictReader(fh)]


def write_csvs(records: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    finals, longs = [], []
    for r in records:
        fin = dict(r["summary"].get("final", {}))
        finals.append({"label": r["label"], "slug": r["slug"], "group": r["group"], "seed": r["seed"],
                       "status": r["summary"].get("status"), "iterations": r["summary"].get("iterations"),
                       "run_time_s": round(float(r["run_time_s"]), 2), **fin})
        if (r["dir"] / "metrics.csv").exists():
            for row in read_metrics(r["dir"]):
                longs.append({"label": r["label"], "slug": r["slug"], "group": r["group"], "seed": r["seed"], **row})
    for name, rows in (("results.csv", finals), ("metrics_long.csv", longs)):
        cols = []
        for row in rows:
            cols += [k for k in row if k not in cols]
        with open(out / name, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)


AXIS_LABELS = {      # each axis says which definition it plots (decopt.metrics, the problems' docstrings)
    "loss": "f(x̄) = (1/n) Σ_i f_i(x̄)",
    "grad_norm_sq": "‖∇f(x̄)‖²",
    "grad_norm": "‖∇f(x̄)‖",
    "consensus_error": "(1/n) Σ_i ‖x_i − x̄‖²",
    "consensus_sum_norm": "Σ_i ‖x_i − x̄‖ (DoCoM notebook)",
    "consensus_sum_sq": "Σ_i ‖x_i − x̄‖² (TiCoPD ‖X‖²_K)",
    "consensus_agent0_norm": "‖x_1 − x̄‖ (FSPDA code)",
    "worst_agent_loss": "max_i f(x_i)",
    "worst_agent_loss_pooled": "max_i mean_{n,k} loss + ‖x_i‖²/2N\n(DoCoM notebook, pooled data)",
    "worst_agent_grad_norm_pooled": "max_i ‖∇ pooled loss(x_i)‖\n(DoCoM notebook)",
    "worst_agent_accuracy": "min_i test accuracy of x_i",
    "worst_agent_train_accuracy": "min_i train accuracy of x_i",
    "accuracy": "test accuracy of x̄",
    "bits": "bits transmitted",
    "samples": "gradient samples drawn",
}


def figures(records: list[dict], out: Path, ys, xs=("iteration", "bits"), name: str = "", title: str | None = None,
            logx: bool = False, axis_labels: dict | None = None):
    """Paper-style figures (PNG + PDF) of ``ys`` against each x in ``xs`` via decopt.plotting.plot,
    each axis labelled with its definition (``AXIS_LABELS``, updated by ``axis_labels``)."""
    from decopt.plotting import plot

    records = [r for r in records if (r["dir"] / "metrics.csv").exists()]
    names = {}
    for r in records:
        names.setdefault(str(r["dir"]), r["label"])
    target = out / "figures" / name if name else out / "figures"
    files = []
    for x in xs:
        files += plot([r["dir"] for r in records], x=x, ys=list(ys), out=target, names=names, title=title, logx=logx,
                      axis_labels={**AXIS_LABELS, **(axis_labels or {})})
    return [f for f in files if f.suffix in (".png", ".pdf")]


def final_table(records: list[dict], columns, out: Path | None = None, name: str = "table.md",
                extra: dict | None = None) -> str:
    """Markdown table, one row per label: mean ± std over seeds of the final metrics."""
    import numpy as np

    by = {}
    for r in records:
        by.setdefault(r["label"], []).append(r)
    extra = extra or {}
    ecols = sorted({k for v in extra.values() for k in v})
    lines = ["| method | seeds | status | " + " | ".join(columns + ecols) + " |",
             "|---|---|---|" + "---|" * (len(columns) + len(ecols))]
    for label, rs in by.items():
        cells = []
        for c in columns:
            vals = np.array([_num(r["summary"].get("final", {}).get(c)) for r in rs], dtype=float)
            if np.all(np.isnan(vals)):
                cells.append("–")
            elif len(vals) > 1:
                cells.append(f"{np.nanmean(vals):.3g} ± {np.nanstd(vals):.1g}")
            else:
                cells.append(f"{vals[0]:.3g}")
        cells += [extra.get(label, {}).get(c, "–") for c in ecols]
        status = ",".join(sorted({str(r["summary"].get("status")) for r in rs}))
        iters = sorted({int(r["summary"].get("final", {}).get("iteration", 0)) for r in rs})
        status += f" @{iters[-1]}" if iters else ""
        lines.append(f"| {label} | {len(rs)} | {status} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if out is not None:
        (out / name).write_text(text)
    return text


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def final(records, label: str, metric: str, how=max) -> float:
    """The final ``metric`` of the runs labelled ``label`` (max over seeds by default)."""
    vals = [_num(r["summary"].get("final", {}).get(metric)) for r in records if r["label"] == label]
    return how(vals) if vals else math.nan


def report_checks(checks: list[tuple[str, bool]], out: Path) -> bool:
    """The paper's qualitative claims checked on our runs, one PASS / FAIL line each (checks.md)."""
    lines = [f"- [{'PASS' if ok else 'FAIL'}] {claim}" for claim, ok in checks]
    (out / "checks.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return all(ok for _, ok in checks)


def header(args, script: str) -> float:
    print(f"{script}: {args.iterations} iterations, seeds {args.seed_list}, out {args.out}, data {args.data}",
          flush=True)
    return time.perf_counter()


def footer(args, t0: float, ok: bool) -> int:
    """Exit status: 0, or 1 under --strict when a claim in checks.md failed."""
    dt = time.perf_counter() - t0
    print(f"total {dt:.1f} s; results in {args.out} (table.md, results.csv, figures/)", flush=True)
    with open(args.out / "run_time.txt", "a") as fh:          # one line per invocation
        fh.write(f"{dt:.1f} s, {args.iterations} iterations, seeds {args.seed_list}"
                 f"{' (--reuse: finished runs kept)' if args.reuse else ''}\n")
    return 0 if ok or not args.strict else 1
