"""A small mutation check of decopt/algorithms and decopt/comm (and the checkpoint path), to run
before a large change.

Each mutant is one line of the source changed the way a refactor breaks it (a sign, an index, a
dropped term, a wrong mask, a missed direction). Each is applied in a temporary copy of the
repository, a fast subset of the tests runs there without MPI (``-x``: it stops at the first
failure), and a table says which mutants the tests caught. A mutant whose line is no longer in
the source is ``stale``: rewrite it for the new code (the list follows the code, it does not
freeze it).

    python tools/mutants.py                  # every mutant, the default test subset (~5-10 min)
    python tools/mutants.py fspda mix        # the mutants whose name contains one of the words
    python tools/mutants.py --list           # the mutants, without running anything
    python tools/mutants.py mix --tests tests/test_network.py tests/test_exact_steps.py

Not part of the test suite: the exit status is 1 when a mutant survives (or is stale, or pytest
itself fails to run), 0 otherwise.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_exact_steps.py", "tests/test_golden.py", "tests/test_registry_wide.py"]

# name: (file under decopt/, the exact source text, its mutant); ``checkpoint.py``/``runner.py``
# hold the two lines of the resume path that an optional state field can slip through
MUTANTS = {
    # --- comm: the stacked operators, the link draw, partial blocks, message rounds
    "mix-own-term": ("comm/stacked.py", "out.add_(self._W_diag * (own - H))", "out.add_(own - H)"),
    "mix-random-own": ("comm/stacked.py", "(H[src] - own[dst])", "(H[src] - H[dst])"),
    "laplacian-static-sign": ("comm/stacked.py", "self._deg * H - self._matmul(self._A, H)",
                              "self._deg * H + self._matmul(self._A, H)"),
    "laplacian-random-index": ("comm/stacked.py", "H[self._dst[a]] - H[self._src[a]]",
                               "H[self._src[a]] - H[self._src[a]]"),
    "edge-draw-per-direction": ("comm/stacked.py", "act = torch.as_tensor(np.repeat(self.active, 2)",
                                "act = torch.as_tensor(np.tile(self.active, 2)"),
    "exchange-no-swap": ("comm/stacked.py", "Mhat.view(-1, 2, Mhat.shape[1]).flip(1).reshape",
                         "Mhat.view(-1, 2, Mhat.shape[1]).reshape"),
    "self-w-partial-block": ("comm/network.py", "1.0 - in_w[rows.start:rows.stop]", "1.0 - in_w[:len(rows)]"),
    "out-src-global-row": ("comm/network.py", "src[self.out_arcs] - rows.start", "src[self.out_arcs]"),
    "gossip-own-weight": ("comm/slots.py", "w[:, 0] = -np.bincount(", "w[:, 0] = np.bincount("),
    "same-key-every-round": ("comm/network.py", "self._call += 1", "self._call += 0"),
    # --- algorithms: one term of each family of updates
    "dsgd-step-sign": ("algorithms/dsgd.py", "self.mix(state.x).sub_(g, alpha=", "self.mix(state.x).add_(g, alpha="),
    "dsgd-gd-step-index": ("algorithms/dsgd_gd.py", "alpha=self.cfg.step_size(t + 1))",
                           "alpha=self.cfg.step_size(t))"),
    "diging-tracker-old-grad": ("algorithms/gradient_tracking.py", "add_(g_new - state.grad_x)",
                                "add_(g_new)"),
    "gt-hsgd-storm-weight": ("algorithms/gt_hsgd.py", "(1.0 - self.cfg.beta) * (v - g_old)",
                             "self.cfg.beta * (v - g_old)"),
    "swarm-local-step-key": ("algorithms/swarm_sgd.py", "self.problem.grad(x, t * H + h)",
                             "self.problem.grad(x, t)"),
    "heavy-ball-decay": ("algorithms/transforms.py", "state.momentum.mul_(self.momentum).add_(g)",
                         "state.momentum.add_(g)"),
    "copy-update-dropped": ("algorithms/public_copy.py", "add_(h, q[: net.n_local])", "pass"),
    "choco-consensus-sign": ("algorithms/choco.py", "return x_half.add_(state.e_hat, alpha=self.cfg.gamma)",
                             "return x_half.sub_(state.e_hat, alpha=self.cfg.gamma)"),
    "beer-tracker-old-grad": ("algorithms/beer.py", "(grad_new - state.grad_x)\n", "grad_new\n"),
    "docom-tracker-dropped-v": ("algorithms/docom.py", "g.add_(torch.sub(v_new, v, out=tmp))", "g.add_(v_new)"),
    "ticopd-dual-sign": ("algorithms/ticopd.py", "lam.add_(dual_dir, alpha=cfg.eta)",
                         "lam.sub_(dual_dir, alpha=cfg.eta)"),
    "ticopd-mirror-laplacian": ("algorithms/ticopd.py", "lxhat.add_(net.laplacian(halo), alpha=cfg.gamma)",
                                "lxhat.add_(halo[: net.n_local], alpha=cfg.gamma)"),
    "ticopd-robust-receiver-copy": ("algorithms/ticopd_robust.py", "b.add_(recv, alpha=cfg.gamma)",
                                    "b.add_(M, alpha=cfg.gamma)"),
    "cpsgd-dual-dropped": ("algorithms/cpsgd.py", "lam.add_(lsum, alpha=lr * cfg.omega)", "pass"),
    "fspda-unshared-wrong-mask": ("algorithms/masked_gossip.py", "V.view(-1)[self.flat_in] - self.got[b]",
                                  "V.view(-1)[self.flat_out] - self.got[b]"),
    "fspda-mask-per-arc": ("algorithms/masked_gossip.py", "self.masks.indices(t, arcs >> 1, net.device)",
                           "self.masks.indices(t, arcs, net.device)"),
    "fspda-dual-eta-dropped": ("algorithms/fspda.py", ".add_(lam, alpha=eta)", ".add_(lam, alpha=0.0)"),
    "fspda-storm-momentum": ("algorithms/fspda_storm.py", "m.sub_(dt).mul_(1 - cfg.storm_momentum)",
                             "m.sub_(dt).mul_(cfg.storm_momentum)"),
    # --- checkpoints: optional state silently dropped on save or on load
    "checkpoint-drops-momentum": ("checkpoint.py", "for k, v in state.items()}",
                                  "for k, v in state.items() if k != \"momentum\"}"),
    "resume-skips-momentum": ("runner.py", "for k, rows in state.rows().items():                # exactly",
                              "for k, rows in [kr for kr in state.rows().items() if kr[0] != \"momentum\"]:  #"),
}


def apply(root: Path, path: str, old: str, new: str) -> bool:
    """Replace the first ``old`` in ``root/decopt/path`` by ``new``; False when ``old`` is not there."""
    f = root / "decopt" / path
    text = f.read_text()
    if old not in text:
        return False
    f.write_text(text.replace(old, new, 1))
    return True


def run(name: str, tests: list[str], timeout: float, mpi: bool = False) -> tuple[str, float, str]:
    """(caught | survived | stale | timeout | error, seconds, the first failing test)."""
    path, old, new = MUTANTS[name]
    with tempfile.TemporaryDirectory(prefix="decopt-mutant-") as tmp:
        root = Path(tmp)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for part in ("decopt", "tests"):
            shutil.copytree(REPO / part, root / part, ignore=ignore)
        if not apply(root, path, old, new):
            return "stale", 0.0, ""
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                   *([] if mpi else ["-m", "not mpi"]), *tests], check=False, cwd=root,
                                  env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", time.perf_counter() - t0, ""
        spent = time.perf_counter() - t0
        if proc.returncode not in (0, 1):               # 1: tests failed; else pytest itself did
            return "error", spent, (proc.stdout + proc.stderr).strip().splitlines()[-1:][0]
        failed = next((ln.split(" ", 1)[1].split(" - ")[0] for ln in proc.stdout.splitlines()
                       if ln.startswith(("FAILED ", "ERROR "))), "")
        return ("caught" if proc.returncode else "survived"), spent, failed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("select", nargs="*", help="run the mutants whose name contains one of these words")
    ap.add_argument("--tests", nargs="+", default=TESTS, help=f"test files to run (default: {' '.join(TESTS)})")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per mutant (a timeout counts as caught)")
    ap.add_argument("--mpi", action="store_true", help="run the tests marked mpi too (skipped by default: "
                    "every mutant is meant to be caught without MPI)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = ap.parse_args(argv)
    names = [n for n in MUTANTS if not args.select or any(w in n for w in args.select)]
    if args.list:
        for n in names:
            path, old, new = MUTANTS[n]
            print(f"{n:30s} decopt/{path}: {old!r} -> {new!r}")
        return 0
    width = max(map(len, names))
    print(f"{'mutant':{width}s}  {'result':8s}  {'time':>6s}  first failing test")
    bad = 0
    for n in names:
        status, spent, failed = run(n, args.tests, args.timeout, args.mpi)
        bad += status in ("survived", "stale", "error")
        print(f"{n:{width}s}  {status:8s}  {spent:5.0f}s  {failed}", flush=True)
    print(f"{len(names) - bad} of {len(names)} caught")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
