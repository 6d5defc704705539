"""Paper-style figures from run directories: ``python -m decopt plot DIR [DIR...]``.

Any argument may be a run directory (it holds ``summary.json``) or a folder of them (a Hydra
sweep). Runs that differ only in ``run.seed`` form one line: the mean over seeds with a
min-max band. The legend names what differs between the lines (e.g. ``algo=ticopd``).
"""
from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from .results import read_metrics

LOG_METRICS = {"loss", "grad_norm_sq", "consensus_error", "opt_gap", "dist_opt", "ps_error", "risk",
               "worst_agent_loss", "worst_agent_grad_norm_sq", "tracker_consensus", "consensus_sum_norm",
               "consensus_sum_sq", "consensus_agent0_norm", "grad_norm", "worst_agent_loss_pooled",
               "worst_agent_grad_norm_pooled"}


def find_runs(paths) -> list[Path]:
    runs = []
    for p in map(Path, paths):
        if (p / "metrics.csv").exists():
            runs.append(p)
        else:
            runs.extend(sorted(q.parent for q in p.rglob("metrics.csv")))
    return runs


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def load(run: Path) -> dict:
    cfg = _flatten(yaml.safe_load((run / "config.yaml").read_text()) or {})
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
    return {"path": run, "config": cfg, "summary": summary, "metrics": read_metrics(run)}


def group_by_config(runs: list[dict]) -> dict[tuple, list[dict]]:
    """Runs whose configs agree except for the seed (and the output paths) share a group."""
    ignore = {"run.seed", "run.resume", "run.progress"}
    groups = defaultdict(list)
    for r in runs:
        key = tuple(sorted((k, json.dumps(v)) for k, v in r["config"].items() if k not in ignore))
        groups[key].append(r)
    return dict(groups)


def labels(groups: dict) -> dict[tuple, str]:
    """Name each group by the config keys whose values differ across groups."""
    keys = list(groups)
    varying = sorted({k for key in keys for k, _ in key if len({dict(o).get(k) for o in keys}) > 1})
    varying = varying or ["algo.name"]
    out = {}
    for key in keys:
        cfg = dict(key)
        parts = [f"{k.removesuffix('.name')}={json.loads(cfg[k])}" for k in varying if k in cfg]
        out[key] = ", ".join(parts) or "run"
    return out


def aggregate(runs: list[dict], x: str, y: str):
    """Common x grid (the shortest run's) with mean, min and max of y over the runs."""
    series = [(np.asarray(r["metrics"][x]), np.asarray(r["metrics"][y])) for r in runs if y in r["metrics"]]
    if not series:
        return None
    n = min(len(s[0]) for s in series)
    xs = series[0][0][:n]
    ys = np.stack([s[1][:n] for s in series])
    return xs, ys.mean(0), ys.min(0), ys.max(0)


def plot(paths, x: str = "iteration", ys=("loss", "grad_norm_sq", "consensus_error"), out=None,
         names: dict | None = None, title: str | None = None, logx: bool = False,
         axis_labels: dict | None = None) -> list[Path]:
    """``names``: optional {run directory: legend label} (a group takes its first member's label;
    groups are drawn in the order of ``names``); ``title``: a figure title; ``logx``: log x-axis
    (always for bits); ``axis_labels``: optional {column: axis label} (e.g. its definition)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    runs = [load(p) for p in find_runs(paths)]
    if not runs:
        raise SystemExit(f"decopt plot: no run directories (with metrics.csv) under {', '.join(map(str, paths))}")
    groups = group_by_config(runs)
    names, groups = _named(groups, names) if names else (labels(groups), groups)
    ys = [y for y in ys if any(y in r["metrics"] for r in runs)]
    fig, axes = plt.subplots(1, len(ys), figsize=(4.2 * len(ys), 3.4), squeeze=False)
    for ax, y in zip(axes[0], ys):
        floor = math.inf                       # log axes: the starting row (e.g. consensus 1e-13) sets no limit
        for key, members in groups.items():
            agg = aggregate(members, x, y)
            if agg is None:
                continue
            xs, mean, lo, hi = agg
            keep = xs > 0 if (x == "bits" or logx) else np.ones_like(xs, dtype=bool)
            line, = ax.plot(xs[keep], mean[keep], label=names[key], lw=1.4)
            later = mean[keep][1:]
            later = later[np.isfinite(later) & (later > 0)]
            if later.size:
                floor = min(floor, float(later.min()))
            if len(members) > 1:
                ax.fill_between(xs[keep], lo[keep], hi[keep], color=line.get_color(), alpha=0.2, lw=0)
        if y in LOG_METRICS:
            ax.set_yscale("log")
            if math.isfinite(floor) and ax.get_ylim()[0] < floor / 10:
                ax.set_ylim(bottom=floor / 3)
            ax.yaxis.set_minor_formatter(NullFormatter())
        if x == "bits" or logx:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        named = axis_labels or {}
        ax.set_xlabel(named.get(x, "bits transmitted" if x == "bits" else x))
        ax.set_ylabel(named.get(y, y))
        ax.grid(True, which="both", alpha=0.3)
    seen = {}                                  # one legend with every line (a panel may lack some)
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    axes[0][0].legend(list(seen.values()), list(seen), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    target = Path(out) if out else Path(paths[0]) / "plots"
    target.mkdir(parents=True, exist_ok=True)
    stem = f"{'-'.join(ys)}_vs_{x}"
    files = [target / f"{stem}.png", target / f"{stem}.pdf"]
    for f in files:
        fig.savefig(f, dpi=150)
    plt.close(fig)
    (target / "table.md").write_text(table(groups, names))
    return files + [target / "table.md"]


def _named(groups: dict, names: dict) -> tuple[dict, dict]:
    """Labels from a {run directory: label} mapping; groups reordered as the mapping lists them."""
    order = {str(Path(k).resolve()): (i, v) for i, (k, v) in enumerate(names.items())}
    fallback = labels(groups)
    ranked = []
    for key, members in groups.items():
        hit = order.get(str(Path(members[0]["path"]).resolve()))
        ranked.append((hit[0] if hit else len(order), key, hit[1] if hit else fallback[key]))
    ranked.sort(key=lambda r: r[0])
    return {key: label for _, key, label in ranked}, {key: groups[key] for _, key, _ in ranked}


def table(groups: dict, names: dict) -> str:
    """Markdown table: mean ± std over seeds of the final metrics, one row per config."""
    metrics = ["loss", "grad_norm_sq", "consensus_error", "accuracy", "bits"]
    present = [m for m in metrics if any(m in r["summary"].get("final", {}) for g in groups.values() for r in g)]
    lines = ["| config | runs | status | " + " | ".join(present) + " |",
             "|---|---|---|" + "---|" * len(present)]
    for key, members in groups.items():
        cells = []
        for m in present:
            vals = np.array([r["summary"].get("final", {}).get(m, math.nan) for r in members], dtype=float)
            cells.append(f"{np.nanmean(vals):.4g} ± {np.nanstd(vals):.2g}" if len(vals) > 1 else f"{vals[0]:.4g}")
        status = ",".join(sorted({r["summary"].get("status", "?") for r in members}))
        lines.append(f"| {names[key]} | {len(members)} | {status} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m decopt plot", description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", help="run directories or folders of runs (sweeps)")
    ap.add_argument("--x", default="iteration", choices=["iteration", "bits", "wall_time", "samples"])
    ap.add_argument("--y", default="loss,grad_norm_sq,consensus_error", help="comma-separated metric columns")
    ap.add_argument("--out", default=None, help="output folder (default: DIR/plots)")
    ap.add_argument("--logx", action="store_true", help="log x-axis (bits always are)")
    args = ap.parse_args(argv)
    for f in plot(args.dirs, args.x, args.y.split(","), args.out, logx=args.logx):
        print(f)
    return 0
