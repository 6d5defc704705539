"""Local dataset readers: no download ever happens at run time (DESIGN §6).

Every loader takes a directory and returns numpy arrays. A directory is found as follows: the
problem's ``data_dir`` key when set, otherwise ``$DECOPT_DATA/<dataset>`` (``DECOPT_DATA`` is a
root folder holding ``mnist/``, ``spambase/``, ``leaf_synthetic/``, ...). When the files are not
there, the loaders raise :class:`~decopt.errors.ConfigError` with one line naming the config
key and the expected file names, before any work starts.

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
from pathlib import Path

import numpy as np

from ..errors import ConfigError

ENV_VAR = "DECOPT_DATA"

SPAMBASE_FILES = ("spambase.data",)
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
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


# ----------------------------------------------------------------------------- Spambase
def check_spambase(data_dir: str | os.PathLike | None = None, key: str = "problem.data_dir") -> Path:
    """Path of ``spambase.data``, or a one-line ConfigError naming ``key`` and the file name."""
    expected = "spambase.data (UCI Spambase, 4601 rows x 58 comma-separated columns)"
    return _find(resolve_data_dir(data_dir, "spambase", key, expected), "spambase.data", key, expected)


def load_spambase(data_dir: str | os.PathLike | None = None, key: str = "problem.data_dir"):
    """UCI Spambase: features ``(4601, 57)`` float64 and labels ``(4601,)`` int64 in {0, 1} (1 = spam).

    ``data_dir`` is the folder holding ``spambase.data`` (the original UCI file: no header,
    comma-separated, CRLF or LF line endings); None means ``$DECOPT_DATA/spambase``. Features are
    returned raw (no scaling): callers standardize as their experiment requires.
    """
    path = check_spambase(data_dir, key)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        data = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != 58:
        raise ConfigError(f"{key}={path.parent}: {path.name} has shape {data.shape}, expected (n, 58)")
    return data[:, :57].copy(), data[:, 57].astype(np.int64)


# ----------------------------------------------------------------------------- MNIST
def _read_idx(path: Path, magic: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    got = struct.unpack(">I", raw[:4])[0]
    if got != magic:
        raise ConfigError(f"problem.data_dir: {path.name} is not an IDX file (magic {got}, expected {magic})")
    ndim = magic & 0xFF
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def check_mnist(data_dir: str | os.PathLike | None = None, key: str = "problem.data_dir") -> dict:
    """The four MNIST IDX file paths, or a one-line ConfigError naming ``key`` and the file names."""
    expected = ", ".join(f"{n}[.gz]" for n in MNIST_FILES.values())
    path = resolve_data_dir(data_dir, "mnist", key, expected)
    return {k: _find(path, name, key, expected) for k, name in MNIST_FILES.items()}


_MNIST_CACHE: dict = {}


def load_mnist(data_dir: str | os.PathLike | None = None, key: str = "problem.data_dir"):
    """MNIST from the original IDX files (gzip or not): ``(x_train, y_train, x_test, y_test)``
    with images uint8 ``(N, 28, 28)`` (read-only arrays, cached per process) and labels int64."""
    files = check_mnist(data_dir, key)
    ident = tuple(str(f.resolve()) for f in files.values())
    if ident in _MNIST_CACHE:
        return _MNIST_CACHE[ident]
    x_tr, x_te = _read_idx(files["train_images"], 2051), _read_idx(files["test_images"], 2051)
    y_tr = _read_idx(files["train_labels"], 2049).astype(np.int64)
    y_te = _read_idx(files["test_labels"], 2049).astype(np.int64)
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


def load_leaf_synthetic(data_dir: str | os.PathLike | None = None, key: str = "problem.data_dir",
                        filename: str = LEAF_SYNTHETIC_FILE) -> dict:
    """The DoCoM paper's LEAF-synthetic split (npz with x_train, y_train, counts_train, x_test,
    y_test, counts_test, users), as a dict of numpy arrays."""
    path = check_leaf_synthetic(data_dir, key, filename)
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


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


def load_leaf_json(path: str | os.PathLike, key: str = "problem.data_dir") -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Users of one LEAF json shard (``{"users": [...], "user_data": {u: {"x": [[...]], "y": [...]}}}``)
    in the file's user order: a list of ``(user, x float32 (m, features), y int64 (m,))``."""
    path = Path(path)
    with open(path) as fh:
        blob = json.load(fh)
    if "users" not in blob or "user_data" not in blob:
        raise ConfigError(f"{key}={path.parent}: {path.name} lacks 'users'/'user_data' (not a LEAF json shard)")
    users = []
    for u in blob["users"]:
        ud = blob["user_data"][u]
        users.append((u, np.asarray(ud["x"], dtype=np.float32), np.asarray(ud["y"], dtype=np.int64)))
    return users
