"""The one-screen summary printed at the end of a run."""
from __future__ import annotations


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def format_summary(result) -> str:
    s = result.summary
    f = s.get("final", {})
    lines = [
        f"decopt {s['algorithm']} on {s['problem']}: {s['status']} after {s['iterations']} iterations",
        f"  agents {s['n_agents']} on {s['graph']} ({s['edges']} edges, spectral gap {s['spectral_gap']:.4g}"
        f"{' (estimate)' if 'estimate' in s.get('spectral_gap_method', '') else ''}), "
        f"backend {s['backend']} x{s['world_size']}, compressor {s['compressor']}",
    ]
    for key in ("loss", "grad_norm_sq", "consensus_error", "opt_gap", "accuracy"):
        if key in f:
            lines.append(f"  {key:<16} {_fmt(f[key])}")
    extra = [k for k in f if k not in ("iteration", "bits", "wall_time", "loss", "grad_norm_sq",
                                       "consensus_error", "opt_gap", "accuracy")]
    for key in extra:
        lines.append(f"  {key:<16} {_fmt(f[key])}")
    lines.append(f"  {'bits':<16} {f.get('bits', 0):.4g} ({s['bits_convention']} convention)")
    tpi = s["time_per_iteration"]
    lines.append(f"  {'wall time':<16} {s['wall_time']:.3g} s ({tpi['total'] * 1e6:.1f} us/iteration)")
    if result.run_dir is not None:
        lines.append(f"  results in       {result.run_dir}")
    return "\n".join(lines)


def print_summary(result) -> None:
    print(format_summary(result), flush=True)
