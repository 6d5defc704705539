"""Corrupt data files are detected and named (DESIGN §8): each test copies a real dataset into
tmp_path with the same folder layout, corrupts one file, and expects a one-line ConfigError that
names that file and what is wrong. FEMNIST is not stored, so its json shards are made here."""
from __future__ import annotations

import gzip
import io
import json
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA
from decopt.comm.stacked import StackedNetwork
from decopt.errors import ConfigError
from decopt.graphs import Links
from decopt.graphs.topologies import ring
from decopt.problems import REGISTRY, datasets

MNIST, SPAMBASE, LEAF = SHARED_DATA / "mnist", SHARED_DATA / "spambase", SHARED_DATA / "leaf_synthetic"
TRAIN_LABELS, TEST_LABELS = "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"


def need(folder: Path):
    return pytest.mark.skipif(not folder.is_dir(), reason=f"shared data folder {folder} not found")


def copy(src: Path, tmp: Path) -> Path:
    """A writable copy of the dataset folder ``src`` as ``tmp/<its name>``."""
    dst = tmp / src.name
    dst.mkdir()
    for f in src.iterdir():
        shutil.copyfile(f, dst / f.name)
    return dst


def error(load, *args) -> str:
    """The message of the ConfigError that ``load(*args)`` raises, checked to be one line."""
    with pytest.raises(ConfigError) as err:
        load(*args)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("problem.data_dir: "), msg
    return msg


# ----------------------------------------------------------------------------- MNIST
def gunzip(path: Path) -> bytearray:
    return bytearray(gzip.decompress(path.read_bytes()))


def regzip(path: Path, data: bytes) -> None:
    path.write_bytes(gzip.compress(bytes(data), compresslevel=1))


def cut_gz(d):
    (d / TRAIN_LABELS).write_bytes((d / TRAIN_LABELS).read_bytes()[:1000])


def cut_raw(d):                      # an uncompressed copy (found before the .gz) that stops early
    (d / TEST_LABELS[:-3]).write_bytes(gunzip(d / TEST_LABELS)[:8 + 1234])


def empty(d):
    (d / TEST_LABELS).write_bytes(b"")


def label_200(d):
    y = gunzip(d / TEST_LABELS)
    y[8 + 17] = 200
    regzip(d / TEST_LABELS, y)


def four_billion_images(d):
    x = gunzip(d / TEST_IMAGES)
    x[4:8] = struct.pack(">I", 4_000_000_000)
    regzip(d / TEST_IMAGES, x)


def fewer_labels(d):                 # a consistent label file, but for 9000 of the 10000 images
    y = gunzip(d / TEST_LABELS)
    regzip(d / TEST_LABELS, struct.pack(">II", 2049, 9000) + y[8:8 + 9000])


def extra_bytes(d):
    regzip(d / TEST_LABELS, gunzip(d / TEST_LABELS) + b"\0" * 5)


def swapped(d):                      # the image file under the label file's name
    shutil.copyfile(d / TEST_IMAGES, d / TEST_LABELS)


def bad_crc(d):
    raw = bytearray((d / TEST_LABELS).read_bytes())
    raw[-8] ^= 0xFF                  # the gzip trailer's CRC-32
    (d / TEST_LABELS).write_bytes(raw)


def not_gzip(d):
    (d / TEST_LABELS).write_bytes(b"this is not gzip data at all")


MNIST_FAULTS = [
    (cut_gz, TRAIN_LABELS, "truncated: header says 60000 labels, file holds"),
    (cut_raw, TEST_LABELS[:-3], "truncated: header says 10000 labels, file holds 1234"),
    (empty, TEST_LABELS, "truncated: 0 bytes, expected an IDX header of 8 bytes"),
    (label_200, TEST_LABELS, "label 200 at index 17; expected 0..9"),
    (four_billion_images, TEST_IMAGES, "header says 4000000000 images, file holds 10000"),
    (fewer_labels, TEST_LABELS, f"9000 labels, but {TEST_IMAGES} holds 10000 images"),
    (extra_bytes, TEST_LABELS, "header says 10000 labels, the file holds more data"),
    (swapped, TEST_LABELS, "magic number 2051, expected 2049"),
    (bad_crc, TEST_LABELS, "CRC check failed"),
    (not_gzip, TEST_LABELS, "Not a gzipped file"),
]


@need(MNIST)
@pytest.mark.parametrize("corrupt, name, expected", MNIST_FAULTS, ids=[f[0].__name__ for f in MNIST_FAULTS])
def test_corrupt_mnist_is_named(tmp_path, corrupt, name, expected):
    d = copy(MNIST, tmp_path)
    corrupt(d)
    msg = error(datasets.load_mnist, d)
    assert f"{d / name}: " in msg and expected in msg, msg


@need(MNIST)
def test_corrupt_mnist_through_the_cli(tmp_path, cli):
    d = copy(MNIST, tmp_path)
    label_200(d)
    proc = cli("run", "algo=dsgd", "problem=mnist_mlp", f"problem.data_dir={d}", "problem.train_size=100",
               "graph.n=2", "run.iterations=1", f"hydra.run.dir={tmp_path / 'run'}", timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("decopt: error: problem.data_dir: ") and str(d / TEST_LABELS) in lines[0], lines
    assert "label 200" in lines[0]


# ----------------------------------------------------------------------------- Spambase
def edit_row(row: int, edit):
    """A corruption that replaces row ``row`` (0-based) of spambase.data by ``edit(fields)``."""
    def corrupt(d):
        lines = (d / "spambase.data").read_text().splitlines()
        lines[row] = ",".join(edit(lines[row].split(",")))
        (d / "spambase.data").write_text("\n".join(lines) + "\n")
    return corrupt


def header(d):
    text = (d / "spambase.data").read_text()
    (d / "spambase.data").write_text(",".join(f"col_{i}" for i in range(58)) + "\n" + text)


def spam_empty(d):
    (d / "spambase.data").write_text("")


def cut_spam_gz(d):                  # only a gzip copy, cut short
    data = gzip.compress((d / "spambase.data").read_bytes())
    (d / "spambase.data").unlink()
    (d / "spambase.data.gz").write_bytes(data[:len(data) // 2])


SPAMBASE_FAULTS = [
    ("text", edit_row(5, lambda f: f[:1] + ["abc"] + f[2:]), "spambase.data", "row 6, column 2: 'abc' is not a number"),
    ("short_row", edit_row(9, lambda f: f[:-1]), "spambase.data", "row 10 has 57 columns; expected 58"),
    ("header", header, "spambase.data", "row 1, column 1: 'col_0' is not a number"),
    ("label_7", edit_row(2, lambda f: f[:-1] + ["7"]), "spambase.data", "row 3: label 7; expected 0 (non-spam) or 1"),
    ("nan", edit_row(4, lambda f: f[:3] + ["nan"] + f[4:]), "spambase.data", "row 5, column 4: nan is not finite"),
    ("empty", spam_empty, "spambase.data", "no data rows; expected 58 comma-separated numbers"),
    ("cut_gz", cut_spam_gz, "spambase.data.gz", "unreadable (Compressed file ended"),
]


@need(SPAMBASE)
@pytest.mark.parametrize("case, corrupt, name, expected", SPAMBASE_FAULTS, ids=[f[0] for f in SPAMBASE_FAULTS])
def test_corrupt_spambase_is_named(tmp_path, case, corrupt, name, expected):
    d = copy(SPAMBASE, tmp_path)
    corrupt(d)
    msg = error(datasets.load_spambase, d)
    assert f"{d / name}: " in msg and expected in msg, msg


@need(SPAMBASE)
def test_spambase_copy_loads_the_same(tmp_path):
    """The checks reject nothing valid: an LF-ending copy gives the original arrays."""
    d = copy(SPAMBASE, tmp_path)
    (d / "spambase.data").write_bytes((SPAMBASE / "spambase.data").read_bytes().replace(b"\r\n", b"\n"))
    for a, b in zip(datasets.load_spambase(d), datasets.load_spambase(SPAMBASE)):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- LEAF synthetic
def leaf_arrays() -> dict:
    with np.load(LEAF / datasets.LEAF_SYNTHETIC_FILE) as z:
        return {k: z[k] for k in z.files}


def resave(change):
    """A corruption that rewrites the npz with ``change(arrays)`` applied."""
    def corrupt(path):
        arrays = leaf_arrays()
        change(arrays)
        np.savez(path, **arrays)
    return corrupt


def cut_npz(path):
    path.write_bytes(path.read_bytes()[:100_000])


def huge_header(path):
    """x_train.npy whose header claims 10**9 rows of 1000 float64 values, holding 80 bytes."""
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 1000)})
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("x_train.npy", member.getvalue() + bytes(80))


def pickled(path):
    arrays = leaf_arrays()
    arrays["users"] = np.array([object()] * len(arrays["users"]), dtype=object)
    np.savez(path, **arrays)


def set_at(name, index, value):
    return lambda arrays: arrays[name].__setitem__(index, value)


LEAF_FAULTS = [
    ("truncated", cut_npz, "unreadable npz (File is not a zip file)"),
    ("missing_key", resave(lambda a: a.pop("y_test")), "no array y_test"),
    ("ragged_labels", resave(lambda a: a.update(y_train=a["y_train"][:-1])),
     "x_train (1443, 1000) and y_train (1442,)"),
    ("ragged_columns", resave(lambda a: a.update(x_test=a["x_test"][:, :999])), "x_test (981, 999)"),
    ("counts", resave(set_at("counts_train", 3, 50)), "counts_train of shape (25,) sums to 1442"),
    ("non_finite", resave(set_at("x_train", (7, 3), np.inf)), "x_train row 7: non-finite value"),
    ("label_200", resave(set_at("y_test", 4, 200)), "y_test[4] = 200: expected a class 0..4"),
    ("label_negative", resave(set_at("y_train", 0, -1)), "y_train[0] = -1"),
    ("huge_header", huge_header,
     "x_train.npy (shape (1000000000, 1000), float64): truncated: header says 8000000000000 bytes, file holds 80"),
    ("pickled", pickled, "users.npy: dtype object, expected numbers or text"),
]


@need(LEAF)
@pytest.mark.parametrize("case, corrupt, expected", LEAF_FAULTS, ids=[f[0] for f in LEAF_FAULTS])
def test_corrupt_leaf_synthetic_is_named(tmp_path, case, corrupt, expected):
    d = copy(LEAF, tmp_path)
    if case == "huge_header":                              # replace x_train.npy: rewrite without it
        resave(lambda a: a.pop("x_train"))(d / datasets.LEAF_SYNTHETIC_FILE)
    corrupt(d / datasets.LEAF_SYNTHETIC_FILE)
    msg = error(datasets.load_leaf_synthetic, d)
    assert f"{d / datasets.LEAF_SYNTHETIC_FILE}: " in msg and expected in msg, msg


@need(LEAF)
def test_leaf_synthetic_loads_the_same_as_numpy():
    arrays, ref = datasets.load_leaf_synthetic(LEAF), leaf_arrays()
    assert sorted(arrays) == sorted(ref)
    for k in ref:
        assert arrays[k].dtype == ref[k].dtype
        np.testing.assert_array_equal(arrays[k], ref[k])


# ----------------------------------------------------------------------------- FEMNIST json shards
def femnist(tmp: Path, change=None) -> Path:
    """Two LEAF json training shards of two writers each; ``change(blob)`` edits the second shard."""
    rng = np.random.default_rng(0)
    (tmp / "train").mkdir(parents=True)
    for k in range(2):
        users = [f"f{k}_{j}" for j in range(2)]
        blob = {"users": users, "num_samples": [3, 4],
                "user_data": {u: {"x": rng.random((m, 784)).round(3).tolist(), "y": rng.integers(0, 62, m).tolist()}
                              for u, m in zip(users, (3, 4))}}
        if k == 1 and change:
            change(blob)
        (tmp / "train" / f"shard_{k}.json").write_text(json.dumps(blob))
    return tmp


def build_femnist(data_dir: Path):
    schema, cls = REGISTRY["femnist_lenet"]
    cfg = schema(name="femnist_lenet", data_dir=str(data_dir), batch_size=2)
    cfg.check()
    g = ring(2)
    return cls(cfg, StackedNetwork(g, Links(g)), 0)


def user(k=1, j=0):
    return lambda blob: blob["user_data"][f"f{k}_{j}"]


FEMNIST_FAULTS = [
    ("missing_key", lambda b: b.pop("user_data"), "lacks a 'users' list and a 'user_data' mapping"),
    ("missing_user", lambda b: b["users"].append("ghost"), "user 'ghost': no 'x' and 'y' in user_data"),
    ("missing_y", lambda b: user()(b).pop("y"), "user 'f1_0': no 'x' and 'y'"),
    ("ragged", lambda b: user()(b)["x"][1].pop(), "user 'f1_0': 'x' and 'y' must be a list of equal-length rows"),
    ("short_rows", lambda b: [r.pop() for r in user()(b)["x"]], "user 'f1_0': x of shape (3, 783)"),
    ("text", lambda b: user()(b)["x"][0].__setitem__(5, "abc"), "user 'f1_0': 'x' and 'y' must be"),
    ("labels_vs_rows", lambda b: user()(b)["y"].pop(), "x of shape (3, 784) and y of shape (2,)"),
    ("non_finite", lambda b: user()(b)["x"][2].__setitem__(0, float("nan")), "user 'f1_0': x row 2 has a non-finite"),
    ("label_62", lambda b: user(1, 1)(b)["y"].__setitem__(3, 62),
     "user 'f1_1': label 62 at index 3; expected an integer 0..61"),
    ("label_fraction", lambda b: user()(b)["y"].__setitem__(0, 1.5), "label 1.5 at index 0"),
]


@pytest.mark.parametrize("case, change, expected", FEMNIST_FAULTS, ids=[f[0] for f in FEMNIST_FAULTS])
def test_corrupt_femnist_shard_is_named(tmp_path, case, change, expected):
    d = femnist(tmp_path, change)
    msg = error(build_femnist, d)
    assert f"{d / 'train' / 'shard_1.json'}: " in msg and expected in msg, msg


def test_femnist_bad_json_is_named(tmp_path):
    d = femnist(tmp_path)
    shard = d / "train" / "shard_0.json"
    shard.write_text(shard.read_text()[:5000])
    msg = error(build_femnist, d)
    assert f"{shard}: not valid JSON (" in msg, msg


def test_valid_femnist_shards_load(tmp_path):
    problem = build_femnist(femnist(tmp_path))
    assert problem.num_classes == 62 and problem.d == 66_126
