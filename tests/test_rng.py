"""Keyed randomness: a row's numbers depend only on (key, row), wherever they are drawn."""
import math

import numpy as np
import pytest

from decopt.rng import Key, Stream, integers, integers_steps, normal, normal_steps, sample, uniform, uniform_steps


def test_block_draws_equal_full_draw():
    key = Key(7, Stream.COMPRESS, t=3, call=1)
    full = uniform(key, range(10), 13)
    for start, stop in [(0, 4), (4, 5), (5, 10), (3, 9)]:
        np.testing.assert_array_equal(uniform(key, range(start, stop), 13), full[start:stop])
    np.testing.assert_array_equal(uniform(key, [7, 2, 2, 9], 13), full[[7, 2, 2, 9]])


def test_iteration_major_draws_depend_only_on_t_and_row():
    key = Key(7, Stream.PROBLEM)
    full = uniform_steps(key, range(40), range(10), 3, 10)
    for steps, rows in [(range(5, 9), range(10)), (range(5, 6), range(3, 7)), (range(39, 40), [9, 0, 4]),
                        (range(12, 30), range(9, 10))]:
        np.testing.assert_array_equal(uniform_steps(key, steps, rows, 3, 10), full[steps.start:steps.stop][:, rows])
    z = normal_steps(key, range(3, 5), range(10), 5, 10)
    assert z.shape == (2, 10, 5) and np.isfinite(z).all()
    i = integers_steps(key, range(40), range(10), 3, 10, 7)                # floor(7 u), the same slices
    np.testing.assert_array_equal(i, np.floor(7 * full).astype(np.int64))
    np.testing.assert_array_equal(integers_steps(key, range(5, 9), [9, 0], 3, 10, 7), i[5:9][:, [9, 0]])
    assert np.bincount(integers_steps(key, range(2000), range(10), 3, 10, 7).ravel(), minlength=7).min() > 8000


def test_keys_give_independent_streams():
    base = uniform(Key(1, Stream.BATCH, 5), range(4), 1000)
    for other in (Key(2, Stream.BATCH, 5), Key(1, Stream.COMPRESS, 5), Key(1, Stream.BATCH, 6),
                  Key(1, Stream.BATCH, 5, call=1)):
        u = uniform(other, range(4), 1000)
        assert abs(np.corrcoef(base.ravel(), u.ravel())[0, 1]) < 0.05
    # rows are independent of each other too
    assert abs(np.corrcoef(base[0], base[1])[0, 1]) < 0.1


def test_distributions():
    z = normal(Key(3, Stream.DATA), range(50), 1001)
    assert z.shape == (50, 1001)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    k = integers(Key(3, Stream.BATCH), range(3), 20000, np.array([5, 7, 1]))
    assert k.min() == 0 and k[0].max() == 4 and k[1].max() == 6 and k[2].max() == 0
    np.testing.assert_allclose(np.bincount(k[1], minlength=7) / 20000, 1 / 7, atol=0.01)


def _first_distinct(c, k):
    out = []
    for v in c.tolist():
        if v not in out:
            out.append(v)
        if len(out) == k:
            return sorted(out)
    raise AssertionError("fewer than k distinct candidates")


@pytest.mark.parametrize("high,k", [(1000, 30), (1000, 199), (1000, 200), (1000, 999), (12, 12)])
def test_sample_is_the_first_k_distinct_of_a_keyed_sequence(high, k):
    key = Key(4, Stream.COMPRESS, 9, 2)
    s = sample(key, [3, 8, 5], high, k)
    assert s.shape == (3, k) and (np.diff(s, axis=1) > 0).all() and s.min() >= 0 and s.max() < high
    np.testing.assert_array_equal(sample(key, [5], high, k)[0], s[2])      # rows do not depend on each other
    if 5 * k <= high:                                                       # sequential rejection sampling
        m = int(np.ceil(-high * np.log1p(-k / high) + 8 * np.sqrt(k) + 16))     # the sequence's length
        c = integers(key, [3, 8, 5], m, high)
        for row, cand in zip(s, c):
            assert row.tolist() == _first_distinct(cand, k)
    else:                                                                   # the k smallest keyed uniforms
        u = uniform(key, [3, 8, 5], high)
        np.testing.assert_array_equal(s, np.sort(np.argsort(u, axis=1)[:, :k], axis=1))


@pytest.mark.parametrize("high,k", [(5, 1), (10, 2), (6, 3)])
def test_sample_gives_every_subset_equally_often(high, k):
    s = sample(Key(1, Stream.COMPRESS, 0), range(30000), high, k)
    _, counts = np.unique(s, axis=0, return_counts=True)
    expect = 30000 / math.comb(high, k)
    assert counts.size == math.comb(high, k)
    assert ((counts - expect) ** 2 / expect).sum() < math.comb(high, k) + 6 * math.sqrt(2 * math.comb(high, k))
