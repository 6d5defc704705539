"""Paper-style figures from run directories: ``python -m decopt plot DIR [DIR...]``.

Any argument may be a run directory (it holds ``metrics.csv``) or a folder of them (a Hydra
sweep). Runs that differ only in ``run.seed`` form one curve: the mean over seeds with a band
(min-max or ± std). Curves are named by the keys that vary between them, ``algo`` first (e.g.
``algo=ticopd``; ``algo.lr`` only where it differs between runs of the same algorithm). The
legend sits below the panels; each algorithm keeps its colour in every panel and figure.
``--hue/--style/--col`` choose which varying key sets the colour, the line style and the
column of panels. Writes PNG + PDF and ``table.md`` (final metrics, the same short names).
"""
from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from .exit_codes import BAD_INPUT
from .results import read_metrics

LOG_METRICS = {"loss", "grad_norm_sq", "consensus_error", "opt_gap", "dist_opt", "ps_error", "risk",
               "worst_agent_loss", "worst_agent_grad_norm_sq", "tracker_consensus", "consensus_sum_norm",
               "consensus_sum_sq", "consensus_agent0_norm", "grad_norm", "worst_agent_loss_pooled",
               "worst_agent_grad_norm_pooled"}
GROUPS = ("algo", "compressor", "graph", "problem", "backend")     # Hydra config groups, in label order
IGNORED = {"run.seed", "run.resume", "run.progress", "run.log_every_s", "run.loggers"}   # not a curve of its own
METHOD_COLORS = {      # one colour per algorithm in every figure (tab10 first, then darker extras)
    "ticopd": "#1f77b4", "fspda": "#ff7f0e", "docom": "#2ca02c", "dsgd_gd": "#d62728", "choco": "#9467bd",
    "cpsgd": "#8c564b", "beer": "#e377c2", "dsgd": "#7f7f7f", "diging": "#bcbd22", "gnsd": "#17becf",
    "gt_hsgd": "#393b79", "swarm_sgd": "#b8860b", "ticopd_robust": "#08519c", "fspda_storm": "#a63603"}
STYLES = [("-", None), ("--", None), (":", None), ("-.", None), ("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]
TABLE_METRICS = ("loss", "grad_norm_sq", "consensus_error", "accuracy", "bits")


class PlotError(ValueError):
    """Bad input to ``plot``: no runs, an unknown column or key (one line)."""


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


def _choices(run: Path) -> dict:
    """The Hydra group choices of a CLI run (e.g. ``compressor: qsgd8``); {} for API runs."""
    f = run / ".hydra" / "hydra.yaml"
    if not f.exists():
        return {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    hydra = yaml.load(f.read_text(), Loader=loader) or {}
    return hydra.get("hydra", {}).get("runtime", {}).get("choices", {}) or {}


def load(run: Path) -> dict:
    """A run's config, its description (group choices + other keys), summary and metrics."""
    cfg = _flatten(yaml.safe_load((run / "config.yaml").read_text()) or {})
    choices = _choices(run)
    desc = {k: v for k, v in cfg.items() if k not in IGNORED and k.removesuffix(".name") not in GROUPS}
    for g in GROUPS:
        if g in choices or f"{g}.name" in cfg:
            desc[g] = choices.get(g) or cfg[f"{g}.name"]
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
    return {"path": run, "config": cfg, "desc": desc, "summary": summary, "metrics": read_metrics(run)}


def group_by_config(runs: list[dict]) -> dict[tuple, list[dict]]:
    """Runs whose configs agree except for the seed (and bookkeeping keys) share a group."""
    groups = defaultdict(list)
    for r in runs:
        groups[tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in r["desc"].items()))].append(r)
    return dict(groups)


def _order(key: str) -> tuple:
    head = key.split(".")[0]
    return (GROUPS.index(head) if head in GROUPS else len(GROUPS), key != head, key)


def varying_keys(descs: list[dict]) -> list[str]:
    """Keys whose values differ between the descriptions, ``algo`` first. A group's own key (e.g.
    ``algo.lr``) counts only where it differs between runs of the same choice of that group."""
    out = []
    for k in set().union(*descs):
        head = k.split(".")[0]
        by_choice = defaultdict(set)
        for d in descs:
            by_choice[d.get(head) if head in GROUPS and head != k else None].add(json.dumps(d.get(k)))
        if any(len(v) > 1 for v in by_choice.values()):
            out.append(k)
    return sorted(out, key=_order)


def _fmt(v) -> str:
    return "none" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def _name(desc: dict, keys) -> str:
    return ", ".join(f"{k}={_fmt(desc[k])}" for k in keys if k in desc) or "run"


def labels(groups: dict) -> dict[tuple, str]:
    """Name each group by the keys that vary across groups (``algo=...`` when none does)."""
    descs = {key: dict((k, json.loads(v)) for k, v in key) for key in groups}
    keys = varying_keys(list(descs.values())) or ["algo"]
    return {key: _name(d, keys) for key, d in descs.items()}


def aggregate(runs: list[dict], x: str, y: str, band: str = "minmax"):
    """Common x grid (mean over runs, the shortest run's length) with the mean of y and a band:
    min-max, mean ± std, or none."""
    series = [(np.asarray(r["metrics"][x]), np.asarray(r["metrics"][y])) for r in runs
              if x in r["metrics"] and y in r["metrics"]]
    if not series:
        return None
    n = min(len(s[0]) for s in series)
    xs = np.stack([s[0][:n] for s in series]).mean(0)
    ys = np.stack([s[1][:n] for s in series])
    mean = ys.mean(0)
    if band == "std":
        return xs, mean, mean - ys.std(0), mean + ys.std(0)
    if band == "none" or len(series) == 1:
        return xs, mean, None, None
    return xs, mean, ys.min(0), ys.max(0)


def _palette(key: str, values: list) -> dict:
    """Colour per value of the hue key: fixed per algorithm, a sequential map for numbers."""
    if key == "algo":
        extra = ["#637939", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354"]
        return {v: METHOD_COLORS.get(v, extra[zlib.crc32(str(v).encode()) % len(extra)]) for v in values}
    numbers = sorted(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))
    if len(numbers) > 2:                        # viridis from dark to light; runs without the key grey
        import matplotlib

        cmap = matplotlib.colormaps["viridis"]
        return {v: cmap(0.05 + 0.8 * numbers.index(v) / (len(numbers) - 1)) if v in numbers else "0.45"
                for v in values}
    return {v: f"C{i % 10}" for i, v in enumerate(values)}


def _readable_log_ticks(axis, lo: float, hi: float) -> None:
    """A log axis that shows fewer than two powers of ten gets 1-2-5 ticks (or evenly spaced ones
    when even those are too few), each labelled with enough digits to tell them apart."""
    from matplotlib.ticker import FixedLocator, FixedFormatter, MaxNLocator, NullFormatter

    axis.set_minor_formatter(NullFormatter())
    if not (0 < lo < hi) or math.floor(math.log10(hi)) - math.ceil(math.log10(lo)) >= 1:
        return
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ticks = [m * 10.0 ** k for k in range(k0, k1 + 1) for m in (1, 2, 5) if lo <= m * 10.0 ** k <= hi]
    if len(ticks) < 3:
        ticks = [t for t in MaxNLocator(4).tick_values(lo, hi) if lo <= t <= hi]
    digits = next((p for p in range(2, 9) if len({_tick(t, p) for t in ticks}) == len(ticks)), 9)
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FixedFormatter([_tick(t, digits) for t in ticks]))


def _tick(t: float, digits: int) -> str:
    """``0.02``, ``150``, or ``2×10⁵`` style for very small and large ticks."""
    if 1e-3 <= t < 1e4:
        return f"{t:.{digits}g}"
    mantissa, exponent = f"{t:.{digits - 1}e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return rf"$10^{{{int(exponent)}}}$" if mantissa == "1" else rf"${mantissa}\times10^{{{int(exponent)}}}$"


def _columns(runs: list[dict]) -> list[str]:
    return list(dict.fromkeys(c for r in runs for c in r["metrics"]))


def _check(what: str, name: str, available: list[str]) -> None:
    if name not in available:
        close = difflib.get_close_matches(name, available, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PlotError(f"plot {what} {name!r}: not in the runs{hint}; available: {', '.join(available)}")


def plot(paths, x: str = "iteration", ys=("loss", "grad_norm_sq", "consensus_error"), out=None,
         names: dict | None = None, title: str | None = None, logx: bool = False,
         axis_labels: dict | None = None, hue: str | None = None, style: str | None = None,
         col: str | None = None, band: str = "minmax", strict: bool = False) -> list[Path]:
    """Figures (PNG + PDF) of each y against x, and ``table.md``; returns the files written.

    ``names``: optional {run directory: legend label} (a group takes its first member's label;
    groups are drawn in the order of ``names``, one colour each); ``title``: a figure title;
    ``logx``: log x-axis (always for bits); ``axis_labels``: optional {column: axis label};
    ``hue``/``style``/``col``: the varying key that sets colour / line style / panel column
    (defaults: ``algo`` (or the first varying key) / the other varying keys / none);
    ``band``: ``minmax``, ``std`` or ``none``; ``strict``: a y no run has is an error (else skipped).
    """
    runs = [load(p) for p in find_runs(paths)]
    if not runs:
        raise PlotError(f"plot: no run directories (with metrics.csv) under {', '.join(map(str, paths))}")
    available = _columns(runs)
    _check("--x", x, available)
    for y in ys if strict else ():
        _check("--y", y, available)
    ys = [y for y in ys if y in available]
    if not ys:
        raise PlotError(f"plot: none of the metrics is in the runs; available: {', '.join(available)}")
    groups = group_by_config(runs)
    descs = {key: dict((k, json.loads(v)) for k, v in key) for key in groups}
    keyset = sorted(set().union(*descs.values()), key=_order)
    for flag, key in (("--hue", hue), ("--style", style), ("--col", col)):
        if key is not None:
            _check(flag, key, keyset)
    varying = varying_keys(list(descs.values()))
    if names:
        names, groups = _named(groups, names)
        # colour: the method's own; the label's when every line runs the same method
        hue, hue_of = "algo", {key: descs[key].get("algo", names[key]) for key in groups}
        if len(set(hue_of.values())) == 1:
            hue, hue_of = "label", dict(names)
        style_of, shown = {}, {}
        for key in groups:                      # line style: the label's place among its method's labels
            style_of[key] = shown[hue_of[key]] = shown.get(hue_of[key], -1) + 1
        col_of = {key: None for key in groups}
        legend_of = names
    else:
        hue = hue or next((k for k in varying if k != col), "algo")
        styles = [style] if style else [k for k in varying if k not in (hue, col)]
        shown = [k for k in varying if k in {hue, *styles}] or [hue]
        names = {key: _name(d, varying or ["algo"]) for key, d in descs.items()}
        hue_of = {key: d.get(hue) for key, d in descs.items()}
        style_of = {key: tuple(d.get(k) for k in styles) for key, d in descs.items()}
        col_of = {key: d.get(col) if col else None for key, d in descs.items()}
        legend_of = {key: _name(d, shown) for key, d in descs.items()}
        groups = dict(sorted(groups.items(), key=lambda kv: [_sortable(descs[kv[0]].get(k)) for k in varying]))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = _palette(hue or "", list(dict.fromkeys(hue_of.values())))
    style_ids = {s: i for i, s in enumerate(dict.fromkeys(style_of.values()))}
    cols = list(dict.fromkeys(col_of[key] for key in groups))
    nrows, ncols = (len(ys), len(cols)) if col else (1, len(ys))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows + 0.4), squeeze=False,
                             sharey="row" if col else False, layout="constrained")
    handles = {}
    named = axis_labels or {}
    for i, y in enumerate(ys):
        for j, c in enumerate(cols):
            ax = axes[i][j] if col else axes[0][i]
            log_y = y in LOG_METRICS
            floor = math.inf                    # log axes: the starting row (e.g. consensus 1e-13) sets no limit
            for key, members in groups.items():
                agg = aggregate(members, x, y, band) if col_of[key] == c else None
                if agg is None:
                    continue
                xs, mean, lo, hi = agg
                if log_y:                       # a zero (e.g. consensus at iteration 0) has no place on a log axis
                    mean = np.where(mean > 0, mean, np.nan)
                keep = xs > 0 if (x == "bits" or logx) else np.ones_like(xs, dtype=bool)
                ls, marker = STYLES[style_ids[style_of[key]] % len(STYLES)]
                line, = ax.plot(xs[keep], mean[keep], color=colors[hue_of[key]], ls=ls, marker=marker,
                                markevery=max(1, int(keep.sum()) // 8), ms=4, lw=1.4, label=legend_of[key])
                handles.setdefault(legend_of[key], line)
                later = mean[keep][1:]
                later = later[np.isfinite(later) & (later > 0)]
                if later.size:
                    floor = min(floor, float(later.min()))
                if lo is not None:
                    lo = np.where(lo > 0, lo, mean) if log_y else lo
                    ax.fill_between(xs[keep], lo[keep], hi[keep], color=line.get_color(), alpha=0.2, lw=0)
            if log_y:
                ax.set_yscale("log")
                if math.isfinite(floor) and ax.get_ylim()[0] < floor / 10:
                    ax.set_ylim(bottom=floor / 3)
            if x == "bits" or logx:
                ax.set_xscale("log")
            if col and i == 0:
                ax.set_title(f"{col}={_fmt(c)}", fontsize=9)
            ax.set_xlabel(named.get(x, "bits transmitted" if x == "bits" else x))
            if j == 0:
                ax.set_ylabel(named.get(y, y))
            ax.grid(True, which="major", alpha=0.35)
            ax.grid(True, which="minor", alpha=0.12)
    for ax in axes.flat:                        # after all limits are final (shared rows included)
        if ax.get_yscale() == "log":
            _readable_log_ticks(ax.yaxis, *sorted(ax.get_ylim()))
        if ax.get_xscale() == "log":
            _readable_log_ticks(ax.xaxis, *sorted(ax.get_xlim()))
    width = max(map(len, handles)) * 5.0 + 40   # points per legend entry at fontsize 8
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", fontsize=8, frameon=False,
               ncol=max(1, min(len(handles), int(fig.get_figwidth() * 72 // width))))
    if title:
        fig.suptitle(title, fontsize=10)
    target = Path(out) if out else Path(paths[0]) / "plots"
    target.mkdir(parents=True, exist_ok=True)
    stem = f"{'-'.join(ys)}_vs_{x}" + (f"_by_{col}" if col else "")
    files = [target / f"{stem}.png", target / f"{stem}.pdf"]
    for f in files:
        fig.savefig(f, dpi=150)
    plt.close(fig)
    (target / "table.md").write_text(table(groups, names, ys))
    return files + [target / "table.md"]


def _sortable(v) -> tuple:
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


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


def table(groups: dict, names: dict, ys=()) -> str:
    """Markdown table: mean ± std over seeds of the final metrics (the plotted ones first), one row
    per curve, named as in the legend."""
    metrics = dict.fromkeys([*ys, *TABLE_METRICS])
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
    ap = argparse.ArgumentParser(prog="python -m decopt plot", description=__doc__.split("\n\n")[0],
                                 epilog="Keys for --hue/--style/--col: a config group (algo, compressor, graph, "
                                        "problem, backend) or a dotted key (algo.lr, graph.n, run.iterations).")
    ap.add_argument("dirs", nargs="+", help="run directories or folders of runs (sweeps)")
    ap.add_argument("--x", default="iteration", help="x column: iteration, bits, wall_time, samples, ...")
    ap.add_argument("--y", default="loss,grad_norm_sq,consensus_error", help="comma-separated metric columns")
    ap.add_argument("--out", default=None, help="output folder (default: DIR/plots)")
    ap.add_argument("--logx", action="store_true", help="log x-axis (bits always are)")
    ap.add_argument("--hue", default=None, help="key that sets the colour (default: algo)")
    ap.add_argument("--style", default=None, help="key that sets the line style (default: the other varying keys)")
    ap.add_argument("--col", default=None, help="key whose values get a column of panels each")
    ap.add_argument("--band", default="minmax", choices=["minmax", "std", "none"],
                    help="band over seeds: min-max (default), mean ± std, or none")
    args = ap.parse_args(argv)
    try:
        files = plot(args.dirs, args.x, [y for y in args.y.split(",") if y], args.out, logx=args.logx,
                     hue=args.hue, style=args.style, col=args.col, band=args.band, strict=True)
    except PlotError as e:
        print(f"decopt: error: {e}", file=sys.stderr)
        return BAD_INPUT
    for f in files:
        print(f)
    return 0
