"""Per-iteration communication time of the MPI backend vs a bare mpi4py exchange of the same bytes.

    mpirun -n 4  python benchmarks/bench_mpi_exchange.py
    mpirun -n 16 python benchmarks/bench_mpi_exchange.py [--iters 300] [--d 79510]

(as root / oversubscribed with Open MPI: export OMPI_ALLOW_RUN_AS_ROOT=1
OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PRTE_MCA_rmaps_default_mapping_policy=:oversubscribe)

Graph: a ring of P agents, one per rank. Each iteration every agent broadcasts one message to
its two neighbours: ``net.broadcast(X, compressor)`` on the backend; on the bare side, one
preallocated buffer holding the same encoded payload, ``Irecv`` x2 + ``Isend`` x2 + ``Waitall``.
Messages: ``dense`` (compressor none, fp32 values: 4 d bytes) and ``topk1%`` (top-k keeping 1%,
fp32 values + bit-packed indices).

Each iteration runs both, each after a ``Barrier``, in alternating order. The bare round does
the same codec work first (compress + encode, untimed; decode after), so both exchanges start
with the same skew between ranks; a round's time is the slowest rank's. The table gives medians
over iterations:

* ``bare``: the bare exchange.
* ``backend``: the backend's communication time (``net.comm_time``: posting, packing, waiting,
  unpacking). ``overhead`` = backend / bare - 1 (goal < 20 %).
* ``codec``: compress + encode + decode in the same call (compute, not communication).
* ``call``: the whole ``broadcast`` call.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mpi4py import MPI  # noqa: E402

from decopt.comm.mpi import MPINetwork  # noqa: E402
from decopt.compressors import build_compressor  # noqa: E402
from decopt.compressors.identity import IdentityConfig  # noqa: E402
from decopt.graphs import Graph, Links  # noqa: E402
from decopt.rng import Key, Stream  # noqa: E402


def _compressors():
    out = [("dense", build_compressor(IdentityConfig(precision=32), 32))]
    try:
        from decopt.compressors.topk import TopKConfig

        out.append(("topk1%", build_compressor(TopKConfig(ratio=0.01), 32)))
    except ImportError:                     # top-k not written yet: dense only
        pass
    return out


def bench(comm, d: int, iters: int, warmup: int) -> list[dict]:
    rank, P = comm.Get_rank(), comm.Get_size()
    graph = Graph.from_edges(P, [(i, (i + 1) % P) for i in range(P)], name="ring")
    net = MPINetwork(graph, Links(graph, "static"), comm, range(rank, rank + 1), dtype=torch.float32)
    X = torch.randn(1, d, generator=torch.Generator().manual_seed(rank), dtype=torch.float32)
    nbrs = sorted({(rank - 1) % P, (rank + 1) % P} - {rank})
    rows = []
    for name, comp in _compressors():
        payload = comp.encode(X, Key(0, Stream.COMPRESS, 0, 0), [rank])[0]
        sizes = comm.allgather(len(payload))
        rbufs = {q: np.empty(sizes[q], dtype=np.uint8) for q in nbrs}
        rec = np.zeros((iters, 6))
        sbuf = np.frombuffer(payload, dtype=np.uint8).copy()
        plan = {(q, w): 1 for q in nbrs for w in "sr"}

        def backend(it):
            net.begin(it)
            comm.Barrier()
            c0, k0 = net.comm_time, net.codec_time
            t0 = time.perf_counter()
            net.broadcast(X, comp)
            t1 = time.perf_counter()
            return net.comm_time - c0, net.codec_time - k0, t1 - t0

        def bare_exchange(buf):
            t0 = time.perf_counter()
            reqs = [comm.Irecv([rbufs[q], MPI.BYTE], source=q, tag=7) for q in nbrs]
            reqs += [comm.Isend([buf, MPI.BYTE], dest=q, tag=7) for q in nbrs]
            MPI.Request.Waitall(reqs)
            return time.perf_counter() - t0

        def bare_with_codec(it):
            key = Key(0, Stream.COMPRESS, it, 0)
            comm.Barrier()
            Vhat, _ = comp.compress(X, key, range(rank, rank + 1))   # the same codec work around it
            dt = bare_exchange(np.frombuffer(comp.encode(X, key, [rank])[0], dtype=np.uint8))
            H = torch.empty(1 + len(nbrs), d, dtype=X.dtype)
            H[:1] = Vhat
            for j, q in enumerate(nbrs):
                H[1 + j] = comp.decode(rbufs[q].tobytes(), d, torch.float32)
            return dt

        def transport(bare_first):
            out = []
            for which in ((1, 0) if bare_first else (0, 1)):
                comm.Barrier()
                if which:
                    out.append(bare_exchange(sbuf))
                else:
                    t0 = time.perf_counter()
                    net._round("bench", d, {q: [payload] for q in nbrs}, {q: 1 for q in nbrs}, plan)
                    out.append(time.perf_counter() - t0)
            return out[::-1] if bare_first else out                 # (backend, bare)

        for it in range(warmup + iters):
            if it % 2:                                               # alternate the order
                b = bare_with_codec(it)
                c, k, call = backend(it)
                tr, tb = transport(True)
            else:
                tr, tb = transport(False)
                c, k, call = backend(it)
                b = bare_with_codec(it)
            if it >= warmup:
                rec[it - warmup] = (tb, tr, b, c, k, call)
        comm.Allreduce(MPI.IN_PLACE, rec, op=MPI.MAX)        # a round lasts as long as its slowest rank
        med = np.median(rec, axis=0) * 1e6
        rows.append({"ranks": P, "message": name, "bytes": len(payload), "bare": med[0], "transport": med[1],
                     "overhead": med[1] / med[0] - 1.0, "bare_loop": med[2], "backend": med[3],
                     "loop_overhead": med[3] / med[2] - 1.0, "codec": med[4], "call": med[5]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=79_510)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    comm = MPI.COMM_WORLD
    rows = bench(comm, args.d, args.iters, args.warmup)
    if comm.Get_rank() == 0:
        print(f"ring of {comm.Get_size()} ranks, d = {args.d}, {args.iters} iterations; "
              f"medians of the slowest rank per round, microseconds; {MPI.Get_library_version().splitlines()[0]}")
        print("| ranks | message | bytes/msg | bare exchange | backend round | overhead "
              "| bare in loop | backend comm in loop | overhead | codec | broadcast call |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['ranks']} | {r['message']} | {r['bytes']:,} | {r['bare']:.1f} | {r['transport']:.1f} "
                  f"| {100 * r['overhead']:+.1f}% | {r['bare_loop']:.1f} | {r['backend']:.1f} "
                  f"| {100 * r['loop_overhead']:+.1f}% | {r['codec']:.1f} | {r['call']:.1f} |")


if __name__ == "__main__":
    main()
