"""Numerically safe codecs (DESIGN §8): finite input gives finite messages at any fp32 magnitude,
16-bit values saturate at +-65504, payloads with a NaN/inf field are malformed, and a run whose
numbers overflow ends ``diverged`` with finite final metrics, on both backends."""
import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings, strategies as st
from hypothesis.extra.numpy import arrays

import decopt
from decopt.compressors import SCHEMAS, build_compressor, wire
from decopt.errors import PayloadError
from decopt.rng import Key, Stream

KEY = Key(3, Stream.COMPRESS, t=5, call=0)
FP32 = st.floats(width=32, allow_nan=False, allow_infinity=False)      # every finite fp32, |x| <= 3.4e38
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def make(name, dtype_bits=32, segments=None, **kw):
    cfg = SCHEMAS[name](name=name, **kw)
    cfg.check()
    return build_compressor(cfg, dtype_bits, segments)


# every registered compressor with its usual settings, 16-bit values where offered
CASES = [
    ("none", {}), ("none", {"precision": 32}),
    ("topk", {"ratio": 0.3}), ("topk", {"ratio": 0.3, "value_bits": 16}),
    ("topk", {"ratio": 0.5, "per_tensor": True, "value_bits": 64}),
    ("randk", {"ratio": 0.3, "unbiased": True}), ("randk", {"ratio": 0.3, "value_bits": 16, "shared_mask": True}),
    ("qsgd", {"bits": 8}), ("qsgd", {"bits": 16, "unbiased": True}), ("qsgd", {"bits": 4, "value_bits": 16}),
    ("qsgd", {"bits": 2, "per_tensor": True}), ("qsgd", {"bits": 8, "value_bits": 64}),
    ("sign", {}), ("sign", {"value_bits": 16, "per_tensor": True}),
    ("gossip", {"p": 0.5}), ("gossip", {"p": 1.0, "value_bits": 16}),
    ("noisy", {"inner": {"name": "qsgd", "bits": 8}, "sigma": 0.01}),
    ("noisy", {"inner": {"name": "topk", "ratio": 0.3, "value_bits": 16}, "noise": "gaussian", "sigma": 0.01,
               "erasure": 0.2}),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]


def segments(d):
    return [d // 2, d - d // 2] if d >= 2 else None


def test_cases_cover_every_registered_compressor():
    assert {n for n, _ in CASES} == set(SCHEMAS)


@PROPERTY
@example(case=7, dtype=torch.float32, X=np.array([[2e36, -1e36, 3.0]], dtype=np.float32))      # qsgd: norm * level
@example(case=3, dtype=torch.float32, X=np.array([[7e4, -1e5, 1.0, 0.0]], dtype=np.float32))  # 16-bit values
@example(case=0, dtype=torch.float32, X=np.full((2, 5), 3e38, dtype=np.float32))
@given(case=st.integers(0, len(CASES) - 1), dtype=st.sampled_from([torch.float32, torch.float64]),
       X=arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 24)),
                elements=FP32))
def test_finite_input_gives_finite_messages(case, dtype, X):
    """No finite fp32 input (all of [-3.4e38, 3.4e38], as an fp32 or fp64 run's rows) gives a non-finite
    ``compress`` or ``decode(encode(x))``, and the two agree bit for bit."""
    name, kw = CASES[case]
    n, d = X.shape
    comp = make(name, 64 if dtype == torch.float64 else 32, segments(d), **kw)
    V = torch.from_numpy(X).to(dtype)
    Vhat, _ = comp.compress(V, KEY, range(n))
    assert bool(torch.isfinite(Vhat).all()), (name, kw, Vhat)
    for i, p in enumerate(comp.encode(V, KEY, range(n))):
        out = comp.decode(p, d, dtype, key=KEY, row=i)
        assert bool(torch.isfinite(out).all()) and torch.equal(out, Vhat[i]), (name, kw, out, Vhat[i])


@PROPERTY
@example(X=np.array([[2e36, -1e36, 3.0], [1e30, 2.0, -1.0]], dtype=np.float32), bits=8, dtype=torch.float32)
@given(X=arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 24)),
                elements=FP32),
       bits=st.sampled_from([1, 4, 8, 16]), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_qsgd_keeps_every_finite_product_bit_for_bit(X, bits, dtype):
    """The safe order is only a fallback: wherever the old product norm * level / (s tau) is
    finite, the decoded entry has exactly its bits."""
    q = make("qsgd", bits=bits)
    V = torch.from_numpy(X).to(dtype)
    plan = q.plan(V, KEY, range(len(V)))
    got = q.values(plan, V.shape[1], dtype, "cpu")
    lev = plan["level"].to(dtype)
    old = plan["norm"].to(dtype) * torch.where(plan["neg"], -lev, lev) / q._map(V.shape[1], "cpu")[1][:1].to(dtype)
    ok = torch.isfinite(old)
    assert torch.equal(got[ok], old[ok]) and bool(torch.isfinite(got).all())


@PROPERTY
@given(x=arrays(np.float64, st.integers(1, 50), elements=st.floats(allow_nan=False, allow_infinity=False)),
       bits=st.sampled_from([16, 32]))
def test_to_wire_is_the_plain_cast_wherever_that_is_finite(x, bits):
    t = torch.from_numpy(x)
    plain, got = t.to(wire.float_torch(bits)), wire.to_wire(t, bits)
    ok = torch.isfinite(plain)
    top = torch.finfo(wire.float_torch(bits)).max
    assert torch.equal(got[ok], plain[ok])
    assert torch.equal(got[~ok], torch.where(t[~ok] > 0, top, -top).to(got.dtype))


@pytest.mark.parametrize("name,kw", [("topk", {"k": 4, "ratio": None}), ("randk", {"ratio": 1.0}), ("gossip", {"p": 1.0}),
                                     ("sign", {}), ("qsgd", {"bits": 16})])
def test_sixteen_bit_values_saturate_at_65504(name, kw):
    V = torch.tensor([[2e5, -7e4, 65504.0, 1.0]])
    Q, _ = make(name, value_bits=16, **kw).compress(V, KEY, [0])
    assert bool(torch.isfinite(Q).all())
    assert float(Q.abs().max()) <= 65504.0 and float(Q.abs().max()) > 6e4
    if name in ("topk", "randk", "gossip"):
        assert Q[0].tolist() == [65504.0, -65504.0, 65504.0, 1.0]


# --- payloads with a non-finite field -------------------------------------------------------------
FIELDS = [(n, kw, field) for n, kw, field in [
    ("none", {}, "value"), ("none", {"precision": 32}, "value"), ("topk", {"ratio": 0.3}, "value"),
    ("topk", {"ratio": 0.3, "value_bits": 16}, "value"), ("randk", {"ratio": 0.3, "shared_mask": True}, "value"),
    ("randk", {"ratio": 0.3, "value_bits": 64}, "value"), ("qsgd", {"bits": 8}, "norm"),
    ("qsgd", {"bits": 4, "value_bits": 16, "per_tensor": True}, "norm"), ("sign", {}, "scale"),
    ("sign", {"value_bits": 64}, "scale"), ("gossip", {"p": 1.0}, "value"), ("gossip", {"p": 1.0, "value_bits": 16}, "value"),
    ("noisy", {"inner": {"name": "qsgd", "bits": 8}, "sigma": 0.1}, "norm"),
    ("noisy", {"inner": {"name": "topk", "ratio": 0.3}, "erasure": 0.5}, "value")]]


@pytest.mark.parametrize("name,kw,field", FIELDS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(FIELDS)])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_decode_rejects_non_finite_fields(name, kw, field, bad):
    """Every codec's first payload field is a float (norm, scale or value): set to NaN/inf, decode
    and decode_sparse raise PayloadError in one line naming the field; check_finite=False decodes it."""
    d = 10
    comp = make(name, 64, segments(d), **kw)
    good = comp.encode(torch.randn(1, d, dtype=torch.float64), KEY, [0])[0]
    wire_codec = getattr(comp, "inner", comp)
    width = getattr(wire_codec, "value_bits", None) or wire_codec.precision
    width //= 8
    payload = np.array([bad], dtype=f"<f{width}").tobytes() + good[width:]
    comp.decode(good, d, torch.float64, key=KEY, row=0)
    for decode in (comp.decode, comp.decode_sparse):
        with pytest.raises(PayloadError) as err:
            decode(payload, d, torch.float64, key=KEY, row=0)
        msg = str(err.value)
        assert "\n" not in msg and f"payload {field} " in msg and ("not finite" in msg or "negative" in msg), msg
    if not (field == "norm" and bad < 0):                 # a negative norm is malformed either way
        out = comp.decode(payload, d, torch.float64, key=KEY, row=0, check_finite=False)
        assert not bool(torch.isfinite(out).all())


# --- runs whose numbers overflow -----------------------------------------------------------------
def _finite(row):
    return all(isinstance(v, (int, float)) and np.isfinite(v) for v in row.values())


@pytest.mark.parametrize("over", [
    ["algo=choco", "algo.lr=2", "compressor=qsgd"],
    ["algo=ticopd", "algo.lr=2", "compressor=topk", "compressor.value_bits=16"],
    ["algo=dsgd", "algo.lr=2", "compressor=sign"],
])
def test_fp32_overflow_ends_diverged_with_finite_final(tmp_path, over):
    res = decopt.run(*over, "run.dtype=float32", "run.diverge_threshold=null", "run.iterations=300",
                     "run.eval_every=100", run_dir=tmp_path)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["status"] == res.summary["status"] == "diverged"
    assert _finite(saved["final"]) and _finite(res.summary["final"]), saved["final"]
    assert all(_finite({k: v for k, v in zip(res.metrics, row)}) for row in zip(*res.metrics.values()))


@pytest.mark.mpi
def test_mpi_run_whose_messages_turn_nan_ends_diverged(tmp_path):
    """On 2 ranks, top-k sends the NaN of a diverging fp32 iterate between ranks: the receiver
    passes it on (as the stacked backend does) and the job ends diverged, not with a PayloadError."""
    from test_mpi import HAVE_MPI4PY, HAVE_MPIRUN, mpirun
    if not HAVE_MPI4PY or not HAVE_MPIRUN:
        pytest.skip(reason="needs mpi4py and mpirun")
    proc = mpirun(2, ["-m", "decopt", "run", "algo=choco", "algo.lr=2", "compressor=topk", "graph.n=4",
                      "run.dtype=float32", "run.diverge_threshold=null", "run.iterations=300", "run.eval_every=100",
                      "run.progress=none", f"hydra.run.dir={tmp_path}"])
    assert "Traceback" not in proc.stderr and "PayloadError" not in proc.stderr, proc.stderr[-2000:]
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["status"] == "diverged" and saved["world_size"] == 2 and _finite(saved["final"])
