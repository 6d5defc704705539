"""Compressors as codecs (DESIGN §4, issue 4): exact wire round trip, exact bit counts,
contraction and unbiasedness, keyed randomness, fuzzed decoding, config errors."""
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings, strategies as st

import decopt
from decopt.cli import compose
from decopt.comm import StackedNetwork
from decopt.compressors import SCHEMAS, build_compressor
from decopt.compressors.noisy import Noisy
from decopt.config import validate
from decopt.errors import ConfigError, PayloadError
from decopt.graphs import Links, build_graph
from decopt.graphs import SCHEMAS as GRAPH_SCHEMAS
from decopt.rng import Key, Stream

from conftest import run_cli

KEY = Key(7, Stream.COMPRESS, t=3, call=1)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors: one intra-op thread is much faster on a shared, busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make(name, dtype_bits=32, segments=None, **kw):
    cfg = SCHEMAS[name](name=name, **kw)
    cfg.check()
    return build_compressor(cfg, dtype_bits, segments)


# every compressor and the main variants: (name, kwargs, segments)
CASES = [
    ("none", {}, None),
    ("none", {"precision": 32}, None),
    ("topk", {"ratio": 0.1}, None),
    ("topk", {"ratio": 0.3, "index_bits": "uint"}, None),
    ("topk", {"ratio": 0.2, "per_tensor": True}, "split"),
    ("topk", {"k": 5, "value_bits": 16}, None),
    ("topk", {"k": 3, "value_bits": 64}, None),
    ("randk", {"ratio": 0.25}, None),
    ("randk", {"ratio": 0.25, "unbiased": True, "index_bits": "uint"}, None),
    ("randk", {"ratio": 0.5, "shared_mask": True, "per_tensor": True}, "split"),
    ("qsgd", {"bits": 8}, None),
    ("qsgd", {"bits": 1, "unbiased": True}, None),
    ("qsgd", {"bits": 16, "value_bits": 64}, None),
    ("qsgd", {"bits": 3, "per_tensor": True}, "split"),
    ("sign", {}, None),
    ("sign", {"per_tensor": True, "value_bits": 16}, "split"),
    ("gossip", {"p": 0.5}, None),
    ("noisy", {"inner": {"name": "topk", "ratio": 0.2}, "sigma": 0.01}, None),
    ("noisy", {"inner": {"name": "qsgd", "bits": 4}, "noise": "gaussian", "sigma": 0.1, "erasure": 0.3}, None),
    ("noisy", {"inner": {"name": "gossip", "p": 0.5}, "sigma": 0.1, "mode": "receiver"}, None),
    ("noisy", {"inner": {"name": "randk", "ratio": 0.3, "shared_mask": True}, "sigma": 0.1}, "split"),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items() if k != 'inner')}{'-' + kw['inner']['name'] if 'inner' in kw else ''}"
       for n, kw, _ in CASES]


def segs_for(spec, d):
    if spec != "split" or d < 3:
        return None
    a = max(1, d // 3)
    return [a, d - a - 1, 1]


def roundtrip(comp, V, key=KEY, rows=None):
    """Check decode(encode(V)) == compress(V) bit for bit and bits == 8 * payload bytes."""
    n, d = V.shape
    rows = range(n) if rows is None else rows
    Vhat, bits = comp.compress(V, key, rows)
    payloads = comp.encode(V, key, rows)
    assert Vhat.shape == V.shape and Vhat.dtype == V.dtype
    assert bits.dtype == np.int64 and bits.shape == (n,)
    assert [8 * len(p) for p in payloads] == bits.tolist()
    for i, (p, r) in enumerate(zip(payloads, list(rows))):
        out = comp.decode(p, d, V.dtype, key=key, row=r)
        assert out.shape == (d,) and out.dtype == V.dtype
        assert torch.equal(out, Vhat[i]), (i, out, Vhat[i])
    which = np.arange(0, n, 2)                       # the MPI round's one plan: the same rows and payloads
    for sparse in (False, True):
        Vc, bc, pc = comp.compress_encode(V, key, rows, which, sparse)
        assert torch.equal(Vc.dense() if hasattr(Vc, "dense") else Vc, Vhat)
        assert list(bc) == bits.tolist() and pc == [payloads[i] for i in which]
    return Vhat, bits


@pytest.mark.parametrize("name,kw,spec", CASES, ids=IDS)
@pytest.mark.parametrize("d", [1, 2, 9, 100, 1031])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_decode_encode_equals_compress(name, kw, spec, d, dtype):
    comp = make(name, 64 if dtype == torch.float64 else 32, segs_for(spec, d), **kw)
    g = torch.Generator().manual_seed(d)
    V = torch.randn(4, d, generator=g, dtype=dtype) * torch.tensor([1.0, 1e-3, 1e3, 0.0], dtype=dtype)[:, None]
    Vhat, _ = roundtrip(comp, V)
    assert torch.count_nonzero(Vhat[3]) == 0 or name == "noisy"     # zero in, zero out
    if name in ("topk", "randk", "gossip", "sign") and dtype == torch.float64 and kw.get("value_bits", 32) == 32 \
            and not kw.get("unbiased"):
        # compress rounds the values exactly as the fp32 wire does, even in a float64 run
        assert torch.equal(Vhat, Vhat.float().double())


@FAST
@given(d=st.integers(1, 300), k=st.integers(1, 400), ratio=st.floats(1e-3, 1.0),
       use_k=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float64]),
       value_bits=st.sampled_from([16, 32, 64]), index_bits=st.sampled_from(["packed", "uint"]),
       name=st.sampled_from(["topk", "randk"]), per_tensor=st.booleans(), seed=st.integers(0, 2 ** 31),
       sparse=st.booleans())
def test_property_sparsifiers(d, k, ratio, use_k, dtype, value_bits, index_bits, name, per_tensor, seed, sparse):
    """Over shapes, dtypes and parameters incl. d = 1 and k >= d: exact round trip, shape,
    number of kept entries, and the bit formula."""
    kw = dict(value_bits=value_bits, index_bits=index_bits)
    if use_k and not per_tensor:
        kw.update(k=k, ratio=None)
    else:
        kw.update(ratio=ratio, per_tensor=per_tensor)
    segments = segs_for("split", d) if per_tensor else None
    comp = make(name, segments=segments, **kw)
    g = torch.Generator().manual_seed(seed)
    V = torch.randn(3, d, generator=g, dtype=dtype)
    if sparse:
        V = V * (torch.rand(3, d, generator=g) < 0.1)
    Vhat, bits = roundtrip(comp, V, key=Key(seed, Stream.COMPRESS, seed % 5, 0), rows=range(seed % 100, seed % 100 + 3))
    lay = comp.layout(d)
    K = sum(kk for _, _, kk in lay)
    assert all(1 <= kk <= ds for _, ds, kk in lay)
    if use_k and not per_tensor:
        assert K == min(k, d)
    idx_bits = 0
    for _, ds, kk in lay:
        if kk < ds:
            idx_bits += kk * (math.ceil(math.log2(ds)) if index_bits == "packed" else
                              8 * (1 if ds <= 256 else 2 if ds <= 65536 else 4))
    if index_bits == "packed":
        idx_bits = 8 * math.ceil(idx_bits / 8)
    assert (bits == K * value_bits + idx_bits).all()
    if name == "topk":   # at most K entries survive, and they are the largest in magnitude
        assert int((Vhat != 0).sum(1).max()) <= K


@FAST
@given(d=st.integers(1, 400), b=st.integers(1, 16), unbiased=st.booleans(),
       dtype=st.sampled_from([torch.float32, torch.float64]), scale=st.sampled_from([0.0, 1e-20, 1.0, 1e20]),
       seed=st.integers(0, 2 ** 31))
def test_property_quantizers(d, b, unbiased, dtype, scale, seed):
    g = torch.Generator().manual_seed(seed)
    V = torch.randn(2, d, generator=g, dtype=dtype) * scale
    q = make("qsgd", bits=b, unbiased=unbiased)
    _, bits = roundtrip(q, V)
    assert (bits == 32 + 8 * math.ceil(d * (b + 1) / 8)).all()
    s = make("sign")
    _, bits = roundtrip(s, V)
    assert (bits == 32 + 8 * math.ceil(d / 8)).all()


def _largest_first(V, k):
    """Reference top-k: sort by (NaN first, then |v| descending, then index ascending)."""
    out = []
    for row in V.abs().double().numpy():
        nan = np.isnan(row)
        out.append(np.sort(np.lexsort((np.arange(row.size), -np.where(nan, np.inf, row), ~nan))[:k]))
    return np.stack(out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_topk_selection_largest_magnitudes_ties_to_lower_index(dtype):
    """Top-k keeps the k largest |v| per row and segment, NaN counting as the largest; on the CPU
    (NumPy introselect over blocks of rows: a long segment in several blocks, a short one in one)
    entries tied at the k-th magnitude across the cut are resolved to the lowest indices; bfloat16
    goes through torch.topk (same set whenever there is no such tie)."""
    from decopt.compressors.topk import BLOCK_BYTES
    long = BLOCK_BYTES // 8 + 5                                  # fp32: 2 rows per block, fp64: 1
    segs = [long, 300, 1]                                        # one long, one short, one sent whole
    d = sum(segs)
    g = torch.Generator().manual_seed(0)
    smooth = torch.randn(4, d, generator=g, dtype=torch.float64)
    ties = torch.randint(-3, 4, (4, d), generator=g).double() * 0.5      # many equal magnitudes
    for V in (smooth, ties):
        V = V.clone()
        V[1, 7] = V[2, long + 9] = V[3, :3] = float("nan")
        V = V.to(dtype)
        for ratio in (0.01, 0.3, 0.9):
            comp = make("topk", ratio=ratio, per_tensor=True, segments=segs)
            lay = comp.layout(d)
            got = comp.select(V, KEY, range(4), lay)
            assert got[2] is None
            for (a, ds, k), ix in zip(lay[:2], got[:2]):
                assert ix.shape == (4, k) and ix.dtype == torch.int64
                if dtype == torch.bfloat16:
                    ref = np.sort(torch.topk(V[:, a:a + ds].abs(), k, dim=1).indices.numpy(), 1)
                else:
                    ref = _largest_first(V[:, a:a + ds], k)
                assert np.array_equal(np.sort(ix.numpy(), 1), ref), (ratio, a)
    roundtrip(make("topk", ratio=0.05, per_tensor=True, segments=segs), smooth.to(dtype))


def _argpartition_select(A, k):
    """The CPU selection before fp32 keys (argpartition of |v|, every row's entries >= the k-th
    counted, ``_canonical`` where a tie crosses the cut): the new selection must keep its sets."""
    from decopt.compressors.topk import _canonical
    A = np.abs(A)
    ds = A.shape[1]
    ix = np.argpartition(A, ds - k, axis=1)[:, ds - k:]
    thr = np.take_along_axis(A, ix[:, :1], 1)
    for i in np.flatnonzero(ds - (A < thr).sum(1) != k):
        ix[i] = _canonical(A[i], thr[i, 0], k)
    return np.sort(ix, 1)


NAN_PAYLOADS = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FFFFFFF, 0xFF812345], dtype=np.uint32)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(n=6, d=6, frac=0.0, kind="special", dtype="float64", per_tensor=True, block=64, seed=135)  # NaN and tie rows
@given(n=st.integers(1, 7), d=st.integers(2, 600), frac=st.floats(0.0, 1.0),
       kind=st.sampled_from(["smooth", "ties", "zeros", "special"]), dtype=st.sampled_from(["float32", "float64"]),
       per_tensor=st.booleans(), block=st.sampled_from([64, 1000, None]), seed=st.integers(0, 2 ** 31))
def test_topk_selection_equals_the_argpartition_selection(n, d, frac, kind, dtype, per_tensor, block, seed):
    """Randomized: the selection (fp32 keys, fp64 argpartition, over blocks of rows of any size)
    keeps exactly the sets of the previous argpartition selection and of the sorted reference, on
    smooth data, many ties, mostly zeros, and +-0 / +-inf / NaN of several payloads and signs."""
    from decopt.compressors import topk
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d)).astype(dtype)
    if kind == "ties":
        A = (rng.integers(-3, 4, (n, d)) * 0.5).astype(dtype)
    elif kind == "zeros":
        A *= rng.random((n, d)) < 0.05
    elif kind == "special":
        pick = rng.random((n, d))
        A[pick < 0.1] = -0.0
        A[(pick > 0.1) & (pick < 0.15)] = np.inf
        A[(pick > 0.15) & (pick < 0.2)] = -np.inf
        nan = np.flatnonzero(pick.ravel() > 0.8)
        if dtype == "float32":
            A.view(np.uint32).ravel()[nan] = NAN_PAYLOADS[rng.integers(0, NAN_PAYLOADS.size, nan.size)]
        else:
            A.ravel()[nan] = np.where(rng.random(nan.size) < 0.5, np.nan, -np.nan)
    V = torch.from_numpy(A)
    segs = segs_for("split", d) if per_tensor else None
    comp = make("topk", ratio=max(frac, 1e-3), per_tensor=per_tensor, segments=segs)
    lay = comp.layout(d)
    old = topk.BLOCK_BYTES
    topk.BLOCK_BYTES = block or old                              # several blocks of one or more rows
    try:
        got = comp.select(V, KEY, range(n), lay)
    finally:
        topk.BLOCK_BYTES = old
    for (a, ds, k), ix in zip(lay, got):
        if k >= ds:
            assert ix is None
            continue
        seg = A[:, a:a + ds]
        ref = _argpartition_select(seg, k)
        assert np.array_equal(ref, _largest_first(torch.from_numpy(seg), k))
        assert ix.dtype == torch.int64 and np.array_equal(np.sort(ix.numpy(), 1), ref), (a, ds, k)


# --- exact bit counts (the wire format) -------------------------------------------------------
def test_topk_bits_d79510():
    d = 79510
    V = torch.randn(1, d)
    assert math.ceil(math.log2(d)) == 17
    k = 7952                                                    # a multiple of 8: no padding
    packed = make("topk", k=k, ratio=None)
    uint = make("topk", k=k, ratio=None, index_bits="uint")
    assert packed.compress(V, KEY, [0])[1][0] == k * (32 + 17)
    assert uint.compress(V, KEY, [0])[1][0] == k * (32 + 32)
    assert 8 * len(packed.encode(V, KEY, [0])[0]) == k * (32 + 17)
    assert 8 * len(uint.encode(V, KEY, [0])[0]) == k * (32 + 32)
    ten = make("topk", ratio=0.1)                               # k = 7951: 17k bits padded to a byte
    assert ten.layout(d)[0][2] == 7951
    assert ten.compress(V, KEY, [0])[1][0] == 7951 * 32 + 8 * math.ceil(7951 * 17 / 8)
    roundtrip(ten, V)


def test_bit_formulas():
    d = 1000
    V = torch.randn(2, d)
    assert make("none", precision=32).compress(V, KEY, range(2))[1].tolist() == [32000] * 2
    assert make("qsgd", bits=8).compress(V, KEY, range(2))[1].tolist() == [32 + 9 * 1000] * 2
    assert make("qsgd", bits=4).compress(V, KEY, range(2))[1].tolist() == [32 + 8 * math.ceil(5000 / 8)] * 2
    assert make("sign").compress(V, KEY, range(2))[1].tolist() == [32 + 1000] * 2
    assert make("randk", ratio=0.1, shared_mask=True).compress(V, KEY, range(2))[1].tolist() == [100 * 32] * 2
    assert make("randk", ratio=0.1).compress(V, KEY, range(2))[1].tolist() == [100 * 32 + 8 * math.ceil(1000 / 8)] * 2
    assert make("topk", k=1000, ratio=None).compress(V, KEY, range(2))[1].tolist() == [32000] * 2  # dense
    # per tensor: segments [900, 90, 10], ratio 0.05 -> k = 45, 4, 1 (at least one per tensor)
    pt = make("topk", ratio=0.05, per_tensor=True, segments=[900, 90, 10])
    assert [k for _, _, k in pt.layout(d)] == [45, 4, 1]
    assert pt.compress(V, KEY, range(2))[1][0] == 50 * 32 + 8 * math.ceil((45 * 10 + 4 * 7 + 1 * 4) / 8)
    # per-tensor quantizers: one norm / scale per tensor
    assert make("qsgd", bits=4, per_tensor=True, segments=[900, 90, 10]).compress(V, KEY, range(2))[1][0] == \
        3 * 32 + 8 * math.ceil(5000 / 8)
    assert make("sign", per_tensor=True, segments=[900, 90, 10]).compress(V, KEY, range(2))[1][0] == 3 * 32 + 1000
    gb = make("gossip", p=0.5).compress(torch.randn(200, 10), KEY, range(200))[1]
    assert set(gb.tolist()) == {0, 320} and 60 < (gb > 0).sum() < 140
    nz = make("noisy", inner={"name": "topk", "ratio": 0.1}, erasure=0.5)
    assert nz.compress(V, KEY, range(2))[1].tolist() == make("topk", ratio=0.1).compress(V, KEY, range(2))[1].tolist()


def test_bits_column_ratio_matches_wire_format():
    """The acceptance runs' claim: topk/qsgd bits are below none's by the wire-format ratio."""
    base = ["algo=dsgd", "problem=least_squares", "graph=ring", "graph.n=10", "run.iterations=20", "run.eval_every=20"]
    bits = {}
    for c in (["compressor=none"], ["compressor=topk", "compressor.ratio=0.1"], ["compressor=qsgd", "compressor.bits=8"],
              ["compressor=noisy", "compressor/inner=topk"]):
        res = decopt.run(*base, *c, run_dir=False)
        bits[c[0] + (c[1] if len(c) > 1 else "")] = res.metrics["bits"][-1]
        d = res.summary["dimension"]
    none = bits["compressor=none"]
    assert none == 20 * 10 * 32 * d
    k = max(1, int(0.1 * d))
    topk = bits["compressor=topkcompressor.ratio=0.1"]
    assert topk * (32 * d) == none * (32 * k + 8 * math.ceil(k * math.ceil(math.log2(d)) / 8))
    assert bits["compressor=noisycompressor/inner=topk"] == topk
    q = bits["compressor=qsgdcompressor.bits=8"]
    assert q * (32 * d) == none * (32 + 8 * math.ceil(9 * d / 8))


# --- contraction and unbiasedness -------------------------------------------------------------
def adversarial(d, g):
    x = torch.randn(d, generator=g, dtype=torch.float64)
    sparse = torch.zeros(d, dtype=torch.float64)
    sparse[d // 3] = -2.5
    spike = x * 1e-3
    spike[0] = 50.0
    return {"gaussian": x, "sparse": sparse, "constant": torch.full((d,), 0.7, dtype=torch.float64),
            "huge": x * 1e30, "tiny": x * 1e-30, "spike": spike, "zeros": torch.zeros(d, dtype=torch.float64)}


CONTRACTIVE = [
    ("topk", {"ratio": 0.1}), ("topk", {"ratio": 0.3, "per_tensor": True}), ("randk", {"ratio": 0.2}),
    ("randk", {"ratio": 0.2, "unbiased": True}), ("qsgd", {"bits": 2}), ("qsgd", {"bits": 4, "unbiased": True}),
    ("qsgd", {"bits": 8}), ("qsgd", {"bits": 2, "per_tensor": True}), ("sign", {}), ("sign", {"per_tensor": True}),
    ("gossip", {"p": 0.3}), ("none", {"precision": 32}),
    ("noisy", {"inner": {"name": "randk", "ratio": 0.2}, "sigma": 0.05, "erasure": 0.2}),
    ("noisy", {"inner": {"name": "qsgd", "bits": 4}, "noise": "gaussian", "sigma": 0.05}),
]


@pytest.mark.parametrize("name,kw", CONTRACTIVE, ids=[f"{n}-{kw}" for n, kw in CONTRACTIVE])
def test_contraction(name, kw):
    """Monte-Carlo E||Q(x) - x||^2 <= (1 - delta) ||x||^2 (+ noise_var for channels), 4 s.e. slack."""
    d, N = 50, 1500
    comp = make(name, 64, segments=[20, 25, 5], **kw)
    delta = comp.delta(d)
    assert (delta > 0) == (not (name == "randk" and kw.get("unbiased")))
    extra = comp.noise_var(d) if isinstance(comp, Noisy) else 0.0
    for label, x in adversarial(d, torch.Generator().manual_seed(1)).items():
        X = x.expand(N, d).contiguous()
        Q, _ = comp.compress(X, KEY, range(N))
        nx = float(x.norm() ** 2)
        err = ((Q - X) ** 2).sum(1)
        if nx == 0:
            if extra == 0:
                assert float(err.max()) == 0, label
            else:
                assert float(err.mean()) <= extra * 1.2, label
            continue
        scale = nx if label != "tiny" or extra == 0 else 1.0    # tiny inputs: the noise dominates
        ratio = err / scale
        se = float(ratio.std()) / math.sqrt(N)
        bound = (1 - delta) * nx / scale + extra / scale
        assert float(ratio.mean()) <= bound + 4 * se + 1e-6, (label, float(ratio.mean()), bound)


UNBIASED = [("randk", {"ratio": 0.2, "unbiased": True}), ("randk", {"ratio": 0.2, "unbiased": True, "per_tensor": True}),
            ("qsgd", {"bits": 2, "unbiased": True}), ("qsgd", {"bits": 8, "unbiased": True}),
            ("qsgd", {"bits": 1, "unbiased": True, "per_tensor": True}), ("none", {}),
            ("noisy", {"inner": {"name": "qsgd", "bits": 3, "unbiased": True}, "sigma": 0.2})]


@pytest.mark.parametrize("name,kw", UNBIASED, ids=[f"{n}-{kw}" for n, kw in UNBIASED])
def test_unbiased(name, kw):
    d, N = 30, 4000
    comp = make(name, 64, segments=[10, 15, 5], **kw)
    assert comp.unbiased
    x = torch.randn(d, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x[5] = 0.0
    X = x.expand(N, d).contiguous()
    Q, _ = comp.compress(X, KEY, range(N))
    se = Q.std(0) / math.sqrt(N) + 1e-6 * x.abs().max()
    z = (Q.mean(0) - x).abs() / se
    assert float(z.max()) < 5.0, z


def test_biased_variants_are_detectably_biased():
    """The unbiasedness test has power: the contractive (scaled) versions fail it."""
    d, N = 30, 4000
    x = torch.randn(d, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for comp in (make("qsgd", 64, bits=2), make("randk", 64, ratio=0.2)):
        assert not comp.unbiased
        Q, _ = comp.compress(x.expand(N, d).contiguous(), KEY, range(N))
        z = (Q.mean(0) - x).abs() / (Q.std(0) / math.sqrt(N) + 1e-12)
        assert float(z.max()) > 5.0


# --- keyed randomness -------------------------------------------------------------------------
@pytest.mark.parametrize("name,kw", [("randk", {"ratio": 0.1}), ("qsgd", {"bits": 2}), ("gossip", {"p": 0.5}),
                                     ("noisy", {"inner": {"name": "topk"}, "sigma": 1.0})])
def test_same_key_same_output_independent_otherwise(name, kw):
    d = 200
    comp = make(name, 64, **kw)
    x = torch.randn(d, dtype=torch.float64)
    X = x.expand(8, d).contiguous()
    A, _ = comp.compress(X, KEY, range(8))
    B, _ = comp.compress(X, KEY, range(8))
    assert torch.equal(A, B)
    # row r's draw does not depend on which other rows are in the batch (P-invariance)
    C, _ = comp.compress(X[:3], KEY, [5, 2, 7])
    assert torch.equal(C, A[[5, 2, 7]])
    # equal row ids (both arcs of an edge with shared=True) get the same draw
    S, _ = comp.compress(X[:4], KEY, [3, 3, 4, 4])
    assert torch.equal(S[0], S[1]) and torch.equal(S[2], S[3])
    if name != "gossip":   # different agents / iterations / message rounds: different draws
        assert not torch.equal(A[0], A[1])
        for other in (Key(7, Stream.COMPRESS, 4, 1), Key(7, Stream.COMPRESS, 3, 2), Key(8, Stream.COMPRESS, 3, 1)):
            assert not torch.equal(comp.compress(X[:1], other, [0])[0], A[:1])
    else:
        sent = comp.compress(torch.ones(400, 3), KEY, range(400))[1] > 0
        later = comp.compress(torch.ones(400, 3), Key(7, Stream.COMPRESS, 4, 1), range(400))[1] > 0
        assert 0.3 < sent.mean() < 0.7 and 0.15 < (sent & later).mean() < 0.35   # independent coins


def test_randk_masks_independent_across_rows():
    d, k, N = 40, 8, 3000
    comp = make("randk", 64, k=k, ratio=None)
    Q, _ = comp.compress(torch.ones(N, d, dtype=torch.float64), KEY, range(N))
    M = (Q != 0).double()
    assert (M.sum(1) == k).all()
    freq = M.mean(0)                                   # each coordinate kept w.p. k/d
    assert float((freq - k / d).abs().max()) < 5 * math.sqrt(0.2 * 0.8 / N)
    overlap = (M[::2] * M[1::2]).sum(1).mean()         # E|S1 & S2| = k^2/d for independent masks
    assert abs(float(overlap) - k * k / d) < 0.15


def test_shared_mask_exchange_both_directions():
    """exchange(shared=True) keys on the undirected edge: both arcs use the same mask."""
    gcfg = GRAPH_SCHEMAS["ring"](name="ring", n=6)
    graph = build_graph(gcfg, seed=0)
    net = StackedNetwork(graph, Links(graph, "static", 1.0, seed=0), dtype=torch.float64)
    net.begin(0)
    comp = make("randk", 64, ratio=0.25, shared_mask=True)
    M = torch.randn(2 * graph.m, 16, dtype=torch.float64)
    net.exchange(M, comp, shared=True)
    mask = (M != 0).view(graph.m, 2, 16)
    assert torch.equal(mask[:, 0], mask[:, 1])
    assert net.total_bits() == 2 * graph.m * 4 * 32


# --- the noisy channel ------------------------------------------------------------------------
def test_noisy_sender_and_receiver_modes():
    d = 100
    X = torch.randn(6, d, dtype=torch.float64)
    inner = make("topk", 64, ratio=0.1)
    clean, _ = inner.compress(X, KEY, range(6))
    snd = make("noisy", 64, inner={"name": "topk", "ratio": 0.1}, sigma=0.5)
    s, r, bits = snd.compress_split(X, KEY, range(6))
    assert s is r
    diff = r - clean
    sup = clean != 0
    assert bool((diff[sup] != 0).all()) and bool((diff[~sup] == 0).all())   # only sent entries
    assert float(diff.abs().max()) <= 0.5
    rcv = make("noisy", 64, inner={"name": "topk", "ratio": 0.1}, sigma=0.5, mode="receiver")
    s2, r2, _ = rcv.compress_split(X, KEY, range(6))
    assert torch.equal(s2, clean) and torch.equal(r2, r)
    # erasure: lost messages are zero, their bits are still charged
    er = make("noisy", 64, inner={"name": "none"}, sigma=0.0, erasure=0.5)
    Q, bits = er.compress(torch.ones(400, 5, dtype=torch.float64), KEY, range(400))
    lost = (Q == 0).all(1)
    assert 0.35 < float(lost.double().mean()) < 0.65 and (bits == 5 * 64).all()
    assert torch.equal(Q[~lost], torch.ones_like(Q[~lost]))


def test_noisy_receiver_mode_through_exchange():
    gcfg = GRAPH_SCHEMAS["ring"](name="ring", n=5)
    graph = build_graph(gcfg, seed=0)
    net = StackedNetwork(graph, Links(graph, "static", 1.0, seed=0), dtype=torch.float64)
    net.begin(0)
    comp = make("noisy", 64, inner={"name": "none"}, sigma=0.1, mode="receiver")
    M0 = torch.randn(2 * graph.m, 8, dtype=torch.float64)
    M = M0.clone()
    R = net.exchange(M, comp)
    assert torch.equal(M, M0)                       # the sender keeps its clean message
    sent_back = R.view(graph.m, 2, 8).flip(1).reshape(-1, 8)
    assert 0 < float((sent_back - M0).abs().max()) <= 0.1


# --- malformed payloads -----------------------------------------------------------------------
FUZZ = [c for c in CASES if c[0] != "none" or c[1]] + [("none", {}, None)]


@FAST
@given(case=st.sampled_from(range(len(FUZZ))), d=st.integers(1, 70), data=st.data())
def test_fuzz_decode(case, d, data):
    name, kw, spec = FUZZ[case]
    comp = make(name, 64, segs_for(spec, d), **kw)
    good = comp.encode(torch.randn(1, d, dtype=torch.float64), KEY, [0])[0]
    how = data.draw(st.sampled_from(["random", "same_length", "truncated", "extended", "flipped"]))
    if how == "random":
        payload = data.draw(st.binary(max_size=4 * len(good) + 8))
    elif how == "same_length":
        payload = data.draw(st.binary(min_size=len(good), max_size=len(good)))
    elif how == "truncated":
        payload = good[:data.draw(st.integers(0, max(0, len(good) - 1)))]
    elif how == "extended":
        payload = good + data.draw(st.binary(min_size=1, max_size=9))
    else:
        b = bytearray(good)
        if b:
            b[data.draw(st.integers(0, len(b) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        payload = bytes(b)
    try:
        out = comp.decode(payload, d, torch.float64, key=KEY, row=0)
    except PayloadError:
        if how == "truncated" and len(payload) == len(good):
            raise
        return
    assert out.shape == (d,) and out.dtype == torch.float64
    if how in ("truncated", "extended") and len(payload) != len(good):
        inner = kw.get("inner", {}).get("name")
        assert "gossip" in (name, inner) and len(payload) == 0     # the only other valid length: nothing sent


def test_decode_rejects_bad_indices():
    comp = make("topk", k=2, ratio=None, index_bits="uint")
    vals = np.array([1.0, 2.0], dtype="<f4").tobytes()
    assert torch.equal(comp.decode(vals + bytes([3, 5]), 10, torch.float32),
                       torch.tensor([0, 0, 0, 1.0, 0, 2.0, 0, 0, 0, 0]))
    with pytest.raises(PayloadError):
        comp.decode(vals + bytes([3, 10]), 10)           # out of range
    with pytest.raises(PayloadError):
        comp.decode(vals + bytes([3, 3]), 10)            # repeated
    with pytest.raises(PayloadError):
        comp.decode(vals + bytes([3]), 10)               # truncated
    with pytest.raises(PayloadError):
        comp.decode("not bytes", 10)


# --- configuration errors ---------------------------------------------------------------------
@pytest.mark.parametrize("overrides,key", [
    (["compressor=topk", "compressor.ratio=0"], "compressor.ratio"),
    (["compressor=topk", "compressor.ratio=1.5"], "compressor.ratio"),
    (["compressor=topk", "compressor.k=0"], "compressor.k"),
    (["compressor=randk", "compressor.k=-3"], "compressor.k"),
    (["compressor=topk", "compressor.index_bits=int64"], "compressor.index_bits"),
    (["compressor=topk", "compressor.value_bits=8"], "compressor.value_bits"),
    (["compressor=qsgd", "compressor.bits=0"], "compressor.bits"),
    (["compressor=qsgd", "compressor.bits=17"], "compressor.bits"),
    (["compressor=gossip", "compressor.p=0"], "compressor.p"),
    (["compressor=noisy", "compressor.sigma=-0.1"], "compressor.sigma"),
    (["compressor=noisy", "compressor.erasure=1"], "compressor.erasure"),
    (["compressor=noisy", "compressor/inner=topk", "compressor.inner.ratio=0"], "compressor.inner.ratio"),
    (["compressor=noisy", "compressor/inner=qsgd", "compressor.inner.bits=20"], "compressor.inner.bits"),
    (["run.link_bandwidth=0"], "run.link_bandwidth"),
])
def test_bad_params_one_line(overrides, key):
    with pytest.raises(ConfigError) as err:
        validate(compose(overrides))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(key), msg


def test_cli_bad_ratio_exits_2_with_one_line():
    proc = run_cli("run", "compressor=topk", "compressor.ratio=0")
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "compressor.ratio" in lines[0], proc.stderr


def test_nested_inner_spelling_composes():
    s = validate(compose(["compressor=noisy", "compressor/inner=randk", "compressor.inner.ratio=0.05",
                          "compressor.sigma=0.01"]))
    assert s.compressor.inner.name == "randk" and s.compressor.inner.ratio == 0.05
    comp = build_compressor(s.compressor, 32)
    assert isinstance(comp, Noisy) and comp.inner.name == "randk"


# --- link model -------------------------------------------------------------------------------
def test_link_model_sim_time():
    res = decopt.run("algo=dsgd", "graph=ring", "graph.n=6", "compressor=topk", "compressor.k=2",
                     "compressor.ratio=null", "run.iterations=10", "run.eval_every=5",
                     "run.link_latency=0.001", "run.link_bandwidth=1e6", run_dir=False)
    d = res.summary["dimension"]
    per_msg = 2 * 32 + 8 * math.ceil(2 * math.ceil(math.log2(d)) / 8)
    assert res.metrics["bits"][-1] == 10 * 6 * per_msg
    assert res.metrics["sim_time"][-1] == pytest.approx(10 * (0.001 + per_msg / 1e6))
    assert "sim_time" not in decopt.run("run.iterations=2", run_dir=False).metrics
