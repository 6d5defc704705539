"""Test driver for the MPI backend, run as ``mpirun -n P python tests/mpi_driver.py MODE SPEC``.

Modes:
* ``trajectory SPEC.json``: for each case in the spec (a composed config, an iteration count,
  snapshot iterations, optionally the test codec below and a tiny receive capacity), run the
  algorithm on the mpi backend (also for P = 1), gather every state tensor and the metrics, bits
  and per-arc ledger at the snapshots to rank 0 and save them as ``SPEC.npz``. The pytest
  process computes the same with :func:`trajectory` on the stacked backend and compares.
* ``sparse``: on every rank, sparsifiers' messages broadcast as ``SparseRows`` and applied with
  ``gossip_into`` equal the dense halo and its application, and the stacked backend's local rows
  (ring, star and a random graph, fp64 and fp32); exits nonzero otherwise.
* ``cli_fail RANK ARGS...``: ``python -m decopt run ARGS`` with DSGD's step raising on RANK at
  iteration 3 (the abort path).
* ``cli_kill RANK ARGS...``: the same, but RANK kills itself with SIGKILL.
"""
from __future__ import annotations

import json
import os
import signal
import sys

import numpy as np
import torch

from decopt.compressors.base import Compressor
from decopt.rng import uniform


class VarCodec(Compressor):
    """Test codec with random, variable-size payloads: keeps each entry with probability 0.35
    (keyed on the row id), sends int32 indices + float64 values."""

    name = "var"

    def delta(self, d):
        return 0.35

    def _mask(self, key, rows, d):
        return uniform(key, rows, d) < 0.35

    def plan(self, V, key, rows):
        return {"mask": self._mask(key, rows, V.shape[1]), "v": V.detach()}

    def bits(self, plan):
        return 96 * plan["mask"].sum(1).astype(np.int64)

    def values(self, plan, d, dtype, device):
        return plan["v"].to(device=device, dtype=dtype) * torch.as_tensor(plan["mask"], dtype=dtype, device=device)

    def pack(self, plan, i):
        m = plan["mask"][i]
        return np.flatnonzero(m).astype(np.int32).tobytes() + plan["v"][i].cpu().double().numpy()[m].tobytes()

    def unpack(self, payload, d, key, row):
        k = len(payload) // 12
        idx = np.frombuffer(payload, dtype=np.int32, count=k)
        vals = np.frombuffer(payload, dtype=np.float64, count=k, offset=4 * k)
        mask, v = np.zeros((1, d), dtype=bool), torch.zeros(1, d, dtype=torch.float64)
        mask[0, idx] = True
        v[0, torch.as_tensor(idx.astype(np.int64))] = torch.as_tensor(vals)
        return {"mask": mask, "v": v}


def trajectory(cfg: dict, comm=None, iters: int = 10, snaps=(), codec: str | None = None,
               capacity: int | None = None) -> dict | None:
    """Step the configured algorithm; at each snapshot return (on rank 0) every state tensor in
    global order, the metrics, the total bits and the per-arc ledger. ``comm=None``: stacked."""
    from decopt import runner
    from decopt.comm.mpi import MPINetwork
    from decopt.config import validate
    from decopt.metrics import evaluate

    cfg = json.loads(json.dumps(cfg))
    if comm is not None:
        cfg["backend"]["name"] = "mpi"
    settings = validate(cfg)
    old_build, old_cap = runner.build_compressor, MPINetwork.initial_capacity
    if codec == "var":
        runner.build_compressor = lambda *a, **k: VarCodec()
    MPINetwork.initial_capacity = capacity
    try:
        graph, net, problem, algo = runner.build(settings, comm)
    finally:
        runner.build_compressor, MPINetwork.initial_capacity = old_build, old_cap
    root = comm is None or comm.Get_rank() == 0
    state = algo.init(problem.x0())
    out = {}
    for t in range(iters):
        net.begin(t)
        state = algo.step(state, t)
        if t + 1 in snaps:
            for k, rows in state.rows().items():
                g = net.gather(state[k], rows)
                if root:
                    out[f"{t + 1}/state/{k}"] = g.cpu().numpy().copy()
            for k, v in evaluate(problem, algo, net, state).items():
                out[f"{t + 1}/metric/{k}"] = np.asarray(v, dtype=np.float64)
            out[f"{t + 1}/bits"] = np.asarray(net.total_bits(), dtype=np.int64)
            led = net.ledger()
            if root:
                out[f"{t + 1}/arc_bits"] = np.array(led["bits"])
                out[f"{t + 1}/arc_msgs"] = np.array(led["messages"])
    out["backend"] = np.asarray(net.backend)
    return out if root else None


def _run_trajectories(spec_path: str) -> None:
    from mpi4py import MPI

    torch.set_num_threads(1)
    comm = MPI.COMM_WORLD
    with open(spec_path) as fh:
        spec = json.load(fh)
    saved = {}
    for case in spec["cases"]:
        try:
            res = trajectory(case["cfg"], comm, case["iters"], case["snaps"], case.get("codec"),
                             case.get("capacity"))
        except BaseException:
            import traceback

            sys.stderr.write(f"case {case['name']} failed on rank {comm.Get_rank()}:\n{traceback.format_exc()}")
            sys.stderr.flush()
            comm.Abort(1)
        if res is not None:
            saved.update({f"{case['name']}|{k}": v for k, v in res.items()})
    if comm.Get_rank() == 0:
        np.savez(spec_path[:-5] + ".npz", **saved)


def _sparse_equals_dense() -> None:
    from mpi4py import MPI

    from decopt.comm import StackedNetwork
    from decopt.comm.mpi import MPINetwork
    from decopt.compressors import SCHEMAS, build_compressor
    from decopt.compressors.sparse import SparseRows, add_
    from decopt.graphs import SCHEMAS as GRAPHS
    from decopt.graphs import Links, build_graph
    from decopt.runner import block

    torch.set_num_threads(1)
    comm = MPI.COMM_WORLD
    codecs = [("topk", {"ratio": 0.3}), ("topk", {"ratio": 0.2, "per_tensor": True}),
              ("randk", {"ratio": 0.25, "unbiased": True}), ("randk", {"ratio": 0.4, "shared_mask": True})]
    for gname in ("ring", "star", "erdos_renyi"):
        graph = build_graph(GRAPHS[gname](name=gname, n=7), seed=1)
        rows = block(comm.Get_rank(), comm.Get_size(), graph.n)
        for dtype in (torch.float64, torch.float32):
            g = torch.Generator().manual_seed(2)
            V, h0, e0 = (torch.randn(graph.n, 40, generator=g, dtype=dtype) for _ in range(3))
            loc = slice(rows.start, rows.stop)
            tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
            for name, kw in codecs:
                comp = build_compressor(SCHEMAS[name](**kw), 64, segments=[25, 10, 5])
                mpi = MPINetwork(graph, Links(graph), comm, rows, dtype=dtype, seed=5)
                ref = StackedNetwork(graph, Links(graph), dtype=dtype, seed=5)
                halos = []
                for net, sparse in ((mpi, False), (mpi, True), (ref, True)):
                    net.begin(3)
                    halos.append(net.broadcast(V[loc] if net is mpi else V, comp, sparse=sparse))
                dense, sparse, whole = halos
                assert isinstance(sparse, SparseRows) and torch.equal(sparse.dense(), dense), (gname, name)
                assert torch.equal(add_(h0[loc].clone(), sparse[: mpi.n_local]), h0[loc] + dense[: mpi.n_local])
                want = ref.gossip_into(e0.clone(), whole)[loc]
                for H in (dense, sparse):
                    torch.testing.assert_close(mpi.gossip_into(e0[loc].clone(), H), want, **tol)
    comm.Barrier()
    if comm.Get_rank() == 0:
        print("sparse ok")


def _mixing_equals_stacked() -> None:
    """W (``mix``) on every rank's block equals the stacked backend's rows bit for bit, in fp64 and
    fp32: mixing the unit vectors (sent exactly) gives the entries of W themselves, whatever the
    order of summation; ``own`` = 2 V adds the diagonal once more."""
    from mpi4py import MPI

    from decopt.comm import StackedNetwork
    from decopt.comm.mpi import MPINetwork
    from decopt.compressors.identity import Identity
    from decopt.graphs import SCHEMAS as GRAPHS
    from decopt.graphs import Links, build_graph
    from decopt.runner import block

    comm = MPI.COMM_WORLD
    for gname in ("ring", "star", "erdos_renyi"):
        graph = build_graph(GRAPHS[gname](name=gname, n=7), seed=1)
        rows = block(comm.Get_rank(), comm.Get_size(), graph.n)
        loc = slice(rows.start, rows.stop)
        for dtype in (torch.float64, torch.float32):
            V = torch.eye(graph.n, dtype=dtype)
            mpi = MPINetwork(graph, Links(graph), comm, rows, dtype=dtype, seed=5)
            ref = StackedNetwork(graph, Links(graph), dtype=dtype, seed=5)
            comp = Identity(64 if dtype == torch.float64 else 32)
            for net in (mpi, ref):
                net.begin(0)
            H = mpi.broadcast(V[loc], comp)
            for own in (None, 2 * V):
                got = mpi.mix(H, None if own is None else own[loc])
                want = ref.mix(ref.broadcast(V, comp), own)[loc]
                assert torch.equal(got, want), (gname, dtype, own is None, (got - want).abs().max())
    comm.Barrier()
    if comm.Get_rank() == 0:
        print("mixing ok")


def _cli_with_fault(kind: str, rank: int, argv: list[str]) -> int:
    from decopt.algorithms import dsgd
    from decopt.cli import main
    from decopt.comm.launch import world_rank

    step = dsgd.DSGD.step

    def faulty(self, state, t):
        if t == 3 and world_rank() == rank:
            if kind == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"injected failure on rank {rank}")
        return step(self, state, t)

    dsgd.DSGD.step = faulty
    return main(argv)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "trajectory":
        _run_trajectories(sys.argv[2])
    elif mode == "sparse":
        _sparse_equals_dense()
    elif mode == "mixing":
        _mixing_equals_stacked()
    elif mode in ("cli_fail", "cli_kill"):
        sys.exit(_cli_with_fault(mode[4:], int(sys.argv[2]), sys.argv[3:]))
    else:
        sys.exit(f"unknown mode {mode}")
