"""Local dataset readers: no download ever happens at run time (DESIGN §6).

Every loader takes a directory and returns numpy arrays. A directory is found as follows: the
problem's ``data_dir`` key when set, otherwise ``$DECOPT_DATA/<dataset>`` (``DECOPT_DATA`` is a
root folder holding ``mnist/``, ``spambase/``, ``leaf_synthetic/``, ...). When the files are not
there, the loaders raise :class:`~decopt.errors.ConfigError` with one line naming the config
key and the expected file names, before any work starts. A corrupt file (truncated or bad
compressed data, a header its data does not match, malformed rows, non-finite values, labels out
of range) is the same one-line error naming the file: ``<key>: <file>: <what is wrong>``. Headers
are checked against the data while reading in chunks, so a lying header allocates nothing, and
nothing is ever unpickled.

Public helpers (import them from here): ``resolve_data_dir``; ``load_spambase`` /
``check_spambase``, ``load_mnist`` / ``check_mnist``, ``load_leaf_synthetic`` /
``check_leaf_synthetic``, ``load_digits`` (scikit-learn's bundled copy), ``femnist_dirs`` and
``load_leaf_json`` (LEAF json shards). The ``check_*`` functions only locate the files, so a
config's ``check()`` can fail fast before any work.
"""
from __future__ import annotations

import gzip
import json
import os
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import ConfigError

ENV_VAR = "DECOPT_DATA"

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_CLASSES = 10
LEAF_SYNTHETIC_FILE = "leaf_synthetic_25x5x1000.npz"


def resolve_data_dir(data_dir: str | os.PathLike | None, dataset: str, key: str = "problem.data_dir",
                     expected: str = "") -> Path:
    """The directory to read ``dataset`` from: ``data_dir`` if given, else ``$DECOPT_DATA/<dataset>``.

    Raises a one-line ConfigError naming ``key`` (and the ``expected`` files) when neither is set
    or the directory does not exist.
    """
    hint = f" (expected {expected})" if expected else ""
    if data_dir in (None, ""):
        root = os.environ.get(ENV_VAR)
        if not root:
            raise ConfigError(f"{key}=null and ${ENV_VAR} is not set: point {key} at the {dataset} "
                              f"directory{hint}, or set ${ENV_VAR} to a folder containing {dataset}/")
        path = Path(root).expanduser() / dataset
        source = f"${ENV_VAR}/{dataset}"
    else:
        path = Path(data_dir).expanduser()
        source = f"{key}={data_dir}"
    if not path.is_dir():
        raise ConfigError(f"{source}: directory {path} not found; set {key} to the {dataset} directory{hint}")
    return path


def _find(path: Path, name: str, key: str, expected: str) -> Path:
    """``name`` or ``name.gz`` inside ``path``, or a one-line ConfigError."""
    for candidate in (path / name, path / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{key}={path}: missing {name}[.gz]; expected {expected}")


def _bad(key: str, path: Path, what: str) -> ConfigError:
    """The one-line error for a corrupt data file: ``<key>: <file>: <what is wrong>``."""
    return ConfigError(" ".join(f"{key}: {path}: {what}".split()))


# Errors of reading or decompressing a file (gzip.BadGzipFile and zipfile.BadZipFile included).
_READ_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile)


def _open(path: Path, mode: str = "rb"):
    """``path`` opened for reading, gunzipped when its name ends in .gz."""
    if path.suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8", errors="replace") if "t" in mode else gzip.open(path, mode)
    return open(path, mode, encoding="utf-8", errors="replace") if "t" in mode else open(path, mode)


def _read_upto(fh, limit: int) -> tuple[bytearray, bool]:
    """At most ``limit`` bytes of ``fh``, read in chunks (so a lying header allocates nothing),
    and False when compressed data stops mid-stream (the bytes before the cut are kept)."""
    buf = bytearray()
    try:
        while len(buf) < limit and (chunk := fh.read1(min(limit - len(buf), 1 << 20))):
            buf += chunk
    except EOFError:
        return buf, False
    return buf, True


def _holds(count: int, noun: str, buf: bytearray, limit: int, item: int, whole: bool) -> str:
    """'' when ``buf`` holds exactly ``limit`` bytes (``count`` items of ``item`` bytes), else what is wrong."""
    if len(buf) > limit:
        return f"header says {count} {noun}, the file holds more data after them"
    if len(buf) < limit:
        cut = "" if whole else " (the compressed data stops mid-stream)"
        return f"truncated: header says {count} {noun}, file holds {len(buf) // item}{cut}"
    return ""


# ----------------------------------------------------------------------------- Spambase
def check_spambase(data_dir: str | os.PathLike | None = None, key: str = "problem.data_dir") -> Path:
    """Path of ``spambase.data``, or a one-line ConfigError naming ``key`` and the file name."""
    expected = "spambase.data (UCI Spambase, 4601 rows x 58 comma-separated columns)"
    return _find(resolve_data_dir(data_dir, "spambase", key, expected), "spambase.data", key, expected)


SPAMBASE_FORMAT = "58 comma-separated numbers per row (57 features, then the 0/1 label), no header"


def _spambase_fault(path: Path) -> str:
    """What is wrong with the first malformed row of a Spambase file ('' if none is found)."""
    with _open(path, "rt") as fh:
        rows = (line for line in fh if line.strip())
        for row, line in enumerate(rows, 1):
            fields = line.strip().split(",")
            if len(fields) != 58:
                return f"row {row} has {len(fields)} columns; expected {SPAMBASE_FORMAT}"
            for col, field in enumerate(fields, 1):
                try:
                    float(field)
                except ValueError:
                    return (f"row {row}, column {col}: {field.strip()[:40]!r} is not a number; "
                            f"expected {SPAMBASE_FORMAT}")
    return ""


def load_spambase(data_dir: str | os.PathLike | None = None, key: str = "problem.data_dir"):
    """UCI Spambase: features ``(4601, 57)`` float64 and labels ``(4601,)`` int64 in {0, 1} (1 = spam).

    ``data_dir`` is the folder holding ``spambase.data`` (the original UCI file: no header,
    comma-separated, CRLF or LF line endings); None means ``$DECOPT_DATA/spambase``. Features are
    returned raw (no scaling): callers standardize as their experiment requires. A malformed file
    (text, short rows, non-finite values, labels other than 0/1) is a one-line ConfigError naming it.
    """
    path = check_spambase(data_dir, key)
    try:
        with _open(path, "rt") as fh:
            with warnings.catch_warnings():           # an empty file: the error below says so
                warnings.simplefilter("ignore", UserWarning)
                data = np.loadtxt(fh, delimiter=",", dtype=np.float64, comments=None, ndmin=2)
    except ValueError as exc:
        raise _bad(key, path, _spambase_fault(path) or str(exc)) from None
    except _READ_ERRORS as exc:
        raise _bad(key, path, f"unreadable ({exc})") from None
    if data.shape[0] == 0:
        raise _bad(key, path, f"no data rows; expected {SPAMBASE_FORMAT}")
    if data.shape[1] != 58:
        raise _bad(key, path, f"rows of {data.shape[1]} columns; expected {SPAMBASE_FORMAT}")
    bad = np.argwhere(~np.isfinite(data))
    if len(bad):
        row, col = bad[0]
        raise _bad(key, path, f"row {row + 1}, column {col + 1}: {data[row, col]} is not finite")
    labels = data[:, 57]
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if len(bad):
        raise _bad(key, path, f"row {bad[0] + 1}: label {labels[bad[0]]:g}; expected 0 (non-spam) or 1 (spam)")
    return data[:, :57].copy(), labels.astype(np.int64)


# ----------------------------------------------------------------------------- MNIST
def _read_idx(path: Path, magic: int, noun: str, key: str) -> np.ndarray:
    """An IDX file of unsigned bytes (``magic`` 2049: 1-D labels, 2051: 3-D images) as a read-only
    uint8 array, or a one-line ConfigError: bad magic, a header whose counts the file does not
    hold (checked while reading, before anything of the header's size is allocated), corrupt gzip."""
    ndim = magic & 0xFF
    head = 4 + 4 * ndim
    try:
        with _open(path) as fh:
            header, _ = _read_upto(fh, head)
            if len(header) < head:
                raise _bad(key, path, f"truncated: {len(header)} bytes, expected an IDX header of {head} bytes")
            got, *shape = struct.unpack(f">{1 + ndim}I", header)
            if got != magic:
                raise _bad(key, path, f"magic number {got}, expected {magic} (IDX {noun} of unsigned bytes)")
            if 0 in shape[1:]:
                raise _bad(key, path, f"header says {noun} of shape {tuple(shape[1:])}; expected non-zero sizes")
            item = int(np.prod(shape[1:]))
            size = shape[0] * item
            data, whole = _read_upto(fh, size + 1)
    except _READ_ERRORS as exc:
        raise _bad(key, path, f"unreadable ({exc})") from None
    wrong = _holds(shape[0], noun, data, size, item, whole)
    if wrong:
        raise _bad(key, path, wrong)
    array = np.frombuffer(data, dtype=np.uint8).reshape(shape)
    array.flags.writeable = False
    return array


def check_mnist(data_dir: str | os.PathLike | None = None, key: str = "problem.data_dir") -> dict:
    """The four MNIST IDX file paths, or a one-line ConfigError naming ``key`` and the file names."""
    expected = ", ".join(f"{n}[.gz]" for n in MNIST_FILES.values())
    path = resolve_data_dir(data_dir, "mnist", key, expected)
    return {k: _find(path, name, key, expected) for k, name in MNIST_FILES.items()}


_MNIST_CACHE: dict = {}


def load_mnist(data_dir: str | os.PathLike | None = None, key: str = "problem.data_dir"):
    """MNIST from the original IDX files (gzip or not): ``(x_train, y_train, x_test, y_test)``
    with images uint8 ``(N, rows, cols)`` (read-only arrays, cached per process) and labels int64.
    Corrupt files, label counts that differ from the image counts, train and test images of
    different sizes and labels outside 0..9 are one-line ConfigErrors naming the file."""
    files = check_mnist(data_dir, key)
    ident = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files.values())
    if ident in _MNIST_CACHE:
        return _MNIST_CACHE[ident]
    data = {}
    for split in ("test", "train"):                   # the small files first: their faults show at once
        images, labels = files[f"{split}_images"], files[f"{split}_labels"]
        x, y = _read_idx(images, 2051, "images", key), _read_idx(labels, 2049, "labels", key)
        if len(y) != len(x):
            raise _bad(key, labels, f"{len(y)} labels, but {images.name} holds {len(x)} images; "
                       "expected one label per image")
        if len(y) and y.max() >= MNIST_CLASSES:
            at = int(np.argmax(y >= MNIST_CLASSES))
            raise _bad(key, labels, f"label {y[at]} at index {at}; expected 0..{MNIST_CLASSES - 1}")
        data[split] = x, y.astype(np.int64)
    (x_tr, y_tr), (x_te, y_te) = data["train"], data["test"]
    if x_te.shape[1:] != x_tr.shape[1:]:
        raise _bad(key, files["test_images"], f"images of {x_te.shape[1]}x{x_te.shape[2]}, but "
                   f"{files['train_images'].name} holds {x_tr.shape[1]}x{x_tr.shape[2]}; expected the same size")
    _MNIST_CACHE[ident] = (x_tr, y_tr, x_te, y_te)
    return x_tr, y_tr, x_te, y_te


# ----------------------------------------------------------------------------- scikit-learn digits
def load_digits():
    """scikit-learn's bundled 8x8 digits (1797 images, pixel values 0..16): ``(x (1797, 64), y)``."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError:  # pragma: no cover - dependency declared in setup.cfg
        raise ConfigError("problem=digits_mlp needs scikit-learn (pip install scikit-learn)") from None
    bunch = _load()
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


# ----------------------------------------------------------------------------- LEAF synthetic
def check_leaf_synthetic(data_dir: str | os.PathLike | None = None, key: str = "problem.data_dir",
                         filename: str = LEAF_SYNTHETIC_FILE) -> Path:
    """Path of the LEAF-synthetic npz, or a one-line ConfigError naming ``key`` and the file name."""
    expected = f"{filename} (npz with x_train, y_train, counts_train, x_test, y_test, counts_test)"
    return _find(resolve_data_dir(data_dir, "leaf_synthetic", key, expected), filename, key, expected)


LEAF_SYNTHETIC_KEYS = ("x_train", "y_train", "counts_train", "x_test", "y_test", "counts_test")


def _npz_array(zf: zipfile.ZipFile, name: str, path: Path, key: str, kinds: str) -> np.ndarray:
    """Member ``name`` of an npz, of a dtype kind in ``kinds`` (never pickled objects), its header's
    shape checked against the data it holds while reading (nothing of the header's size is
    allocated first)."""
    with zf.open(name) as fh:
        version = np.lib.format.read_magic(fh)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise _bad(key, path, f"{name}: npy format version {version}, expected 1.0 or 2.0")
        shape, fortran, dtype = readers[version](fh)
        if dtype.kind not in kinds:
            allowed = "numbers" if kinds == "iuf" else "numbers or text"
            raise _bad(key, path, f"{name}: dtype {dtype}, expected {allowed}")
        size = int(np.prod(shape)) * dtype.itemsize
        data, whole = _read_upto(fh, size + 1)
    wrong = _holds(size, "bytes", data, size, 1, whole)
    if wrong:
        raise _bad(key, path, f"{name} (shape {shape}, {dtype}): {wrong}")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _check_leaf_split(d: dict, path: Path, key: str) -> None:
    """One-line ConfigErrors for a LEAF-synthetic split whose arrays do not fit together."""
    def bad(what):
        return _bad(key, path, what)
    if d["x_train"].ndim != 2:
        raise bad(f"x_train has shape {d['x_train'].shape}; expected (samples, features)")
    cols = d["x_train"].shape[1]
    for split in ("train", "test"):
        x, y, counts = d[f"x_{split}"], d[f"y_{split}"], d[f"counts_{split}"]
        if x.ndim != 2 or x.shape[1] != cols or y.shape != (len(x),):
            raise bad(f"x_{split} {x.shape} and y_{split} {y.shape}: expected (m, {cols}) features and (m,) labels")
        if counts.ndim != 1 or len(counts) != len(d["counts_train"]) or (counts < 0).any() \
                or (counts != np.round(counts)).any() or counts.sum() != len(y):
            raise bad(f"counts_{split} of shape {counts.shape} sums to {counts.sum()}; expected "
                      f"{len(d['counts_train'])} per-user counts (integers >= 0) summing to {len(y)}, "
                      f"the rows of y_{split}")
        if not np.isfinite(x).all():
            raise bad(f"x_{split} row {np.argwhere(~np.isfinite(x))[0][0]}: non-finite value")
    if len(d["y_train"]) == 0:
        raise bad("y_train is empty; expected training samples")
    top = d["y_train"].max()
    for split in ("train", "test"):
        y = d[f"y_{split}"]
        wrong = np.flatnonzero((y < 0) | (y > top) | (y != np.round(y)))
        if len(wrong):
            raise bad(f"y_{split}[{wrong[0]}] = {y[wrong[0]]}: expected a class 0..{top} (the classes of y_train)")


def load_leaf_synthetic(data_dir: str | os.PathLike | None = None, key: str = "problem.data_dir",
                        filename: str = LEAF_SYNTHETIC_FILE) -> dict:
    """The DoCoM paper's LEAF-synthetic split (npz with x_train, y_train, counts_train, x_test,
    y_test, counts_test, optional users), as a dict of numpy arrays. A corrupt file, a missing
    array, arrays that do not fit together, non-finite features or labels out of range are a
    one-line ConfigError naming the file."""
    path = check_leaf_synthetic(data_dir, key, filename)
    try:
        with zipfile.ZipFile(path) as zf:
            members = {n.removesuffix(".npy") for n in zf.namelist() if n.endswith(".npy")}
            missing = [k for k in LEAF_SYNTHETIC_KEYS if k not in members]
            if missing:
                raise _bad(key, path, f"no array {', '.join(missing)}; expected {', '.join(LEAF_SYNTHETIC_KEYS)}")
            data = {k: _npz_array(zf, f"{k}.npy", path, key, "iuf" if k in LEAF_SYNTHETIC_KEYS else "iufUS")
                    for k in sorted(members)}
    except ConfigError:
        raise
    except (*_READ_ERRORS, ValueError) as exc:
        raise _bad(key, path, f"unreadable npz ({exc})") from None
    _check_leaf_split(data, path, key)
    return data


# ----------------------------------------------------------------------------- LEAF json shards
def femnist_dirs(data_dir: str | os.PathLike | None = None, key: str = "problem.data_dir") -> tuple[list[Path], list[Path]]:
    """LEAF json shards for FEMNIST: ``(train_files, test_files)``. The directory is LEAF's
    output folder with ``train/*.json`` (one shard per agent) and optionally ``test/*.json``, or a
    folder of ``*.json`` training shards (then there is no test set)."""
    expected = "LEAF json shards: train/*.json (one per agent) and test/*.json, or *.json"
    path = resolve_data_dir(data_dir, "femnist", key, expected)
    train = sorted((path / "train").glob("*.json")) if (path / "train").is_dir() else sorted(path.glob("*.json"))
    test = sorted((path / "test").glob("*.json")) if (path / "test").is_dir() else []
    if not train:
        raise ConfigError(f"{key}={path}: no json shards found; expected {expected}")
    return train, test


def load_leaf_json(path: str | os.PathLike, key: str = "problem.data_dir", features: int | None = None,
                   classes: int | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Users of one LEAF json shard (``{"users": [...], "user_data": {u: {"x": [[...]], "y": [...]}}}``)
    in the file's user order: a list of ``(user, x float32 (m, features), y int64 (m,))``.
    Bad JSON, missing keys, ragged or non-finite ``x``, rows of other than ``features`` values,
    and labels outside 0..``classes``-1 are one-line ConfigErrors naming the file and user."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            blob = json.load(fh)
    except ValueError as exc:
        raise _bad(key, path, f"not valid JSON ({exc}); expected a LEAF json shard") from None
    except OSError as exc:
        raise _bad(key, path, f"unreadable ({exc})") from None
    if not isinstance(blob, dict) or not isinstance(blob.get("users"), list) \
            or not isinstance(blob.get("user_data"), dict):
        raise _bad(key, path, "lacks a 'users' list and a 'user_data' mapping (not a LEAF json shard)")
    users = []
    for u in blob["users"]:
        ud = blob["user_data"].get(u) if isinstance(u, str) else None
        if not isinstance(ud, dict) or "x" not in ud or "y" not in ud:
            raise _bad(key, path, f"user {u!r}: no 'x' and 'y' in user_data; expected one entry per listed user")
        try:
            x, y = np.asarray(ud["x"], dtype=np.float32), np.asarray(ud["y"], dtype=np.float64)
        except (ValueError, TypeError):
            raise _bad(key, path, f"user {u!r}: 'x' and 'y' must be a list of equal-length rows of numbers "
                       "and a list of labels") from None
        if x.shape == (0,) and features is not None:
            x = x.reshape(0, features)
        if x.ndim != 2 or (features is not None and x.shape[1] != features) or y.shape != (len(x),):
            raise _bad(key, path, f"user {u!r}: x of shape {x.shape} and y of shape {y.shape}; expected "
                       f"(m, {features or 'features'}) and (m,)")
        if not np.isfinite(x).all():
            raise _bad(key, path, f"user {u!r}: x row {np.argwhere(~np.isfinite(x))[0][0]} has a non-finite value")
        top = np.inf if classes is None else classes - 1
        wrong = np.flatnonzero(~((y >= 0) & (y <= top) & (y == np.round(y))))
        if len(wrong):
            raise _bad(key, path, f"user {u!r}: label {y[wrong[0]]:g} at index {wrong[0]}; "
                       f"expected an integer {'>= 0' if classes is None else f'0..{top}'}")
        users.append((u, x, y.astype(np.int64)))
    return users
