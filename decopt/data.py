"""``python -m decopt data fetch DATASET [--root DIR] [--from DIR_OR_URL]``: datasets in one command.

Every file is downloaded to a temporary file next to its target, checked against its sha256 and
only then renamed into place, so a corrupt or cut download never leaves a file behind. The root is
``--root`` or ``$DECOPT_DATA`` (the folder runs read ``mnist/``, ``spambase/``, ... from).
``--from`` reads a local mirror instead of the canonical source: a folder or an http(s)/file URL
laid out as a data root (``<from>/mnist/<file>``) or as the dataset folder itself (``<from>/<file>``).
FEMNIST and the LEAF synthetic split have no checksummed public download: they are copied (and
checked) from LEAF's output folder, see docs/data.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .exit_codes import BAD_INPUT

ENV_VAR = "DECOPT_DATA"


@dataclass(frozen=True)
class Dataset:
    files: dict[str, str]                          # file name -> sha256
    sources: tuple[str, ...] = ()                  # canonical base URLs, tried in order
    about: str = ""
    recipe: str = ""                               # how to get it when there is no canonical download


DATASETS = {
    "mnist": Dataset(
        files={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        # LeCun's original site first, then the byte-identical copy torchvision downloads from.
        sources=("http://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        about="MNIST, the four original IDX .gz files (LeCun, Cortes, Burges)"),
    "spambase": Dataset(
        files={
            "spambase.data": "b1ef93de71f97714d3d7d4f58fc9f718da7bbc8ac8a150eff2778616a8097b12",
            "spambase.names": "df418fab7923f929237b81efa0987ddfaf2d68cf61291243625aadc684d5ab6a",
            "spambase.DOCUMENTATION": "462e4ffba1241a5962d528364708d188dc75931d56a25a8e9b6c8bb25e094cfd",
        },
        sources=("https://archive.ics.uci.edu/ml/machine-learning-databases/spambase/",),
        about="UCI Spambase (id 94), the original CRLF files"),
    "leaf_synthetic": Dataset(
        files={"leaf_synthetic_25x5x1000.npz": "9382da3ad805d828955a0312136d374b48cfa6e0a580bce8993ed382b2fb8674"},
        about="the DoCoM paper's LEAF synthetic split (25 users x 5 classes x 1000 features)",
        recipe="it has no public download: copy it with --from DIR_OR_URL (a data root or folder holding "
               "leaf_synthetic_25x5x1000.npz), or rebuild it with LEAF and import LEAF's output with "
               "--from <leaf>/data/synthetic/data (docs/data.md gives the commands)"),
    "femnist": Dataset(
        files={},
        about="LEAF FEMNIST json shards (train/*.json, test/*.json)",
        recipe="LEAF builds it from the NIST SD19 download (several GB): in TalwalkarLab/leaf data/femnist run "
               "./preprocess.sh -s niid --sf 1.0 -k 0 -t sample, then import it with "
               "--from <leaf>/data/femnist/data (docs/data.md)"),
}

# The DoCoM notebook's per-agent training sizes: a LEAF import is the paper's split iff it has these.
LEAF_COUNTS_TRAIN = [91, 14, 470, 51, 79, 6, 5, 4, 3, 6, 25, 9, 19, 403, 84, 51, 38, 24, 5, 4, 4, 10, 4, 31, 3]
CHUNK = 1 << 20


class DataError(ConfigError):
    """A fetch that cannot go on: one line, exit 2."""


def _is_url(source: str) -> bool:
    return "://" in source


def _open(url: str):
    """A readable response for ``url`` and its length in bytes (None when unknown)."""
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "decopt"}), timeout=60)
    except urllib.error.HTTPError as exc:
        raise OSError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise OSError(getattr(exc, "reason", exc)) from None
    length = resp.headers.get("Content-Length")
    return resp, int(length) if length and length.isdigit() else None


def _candidates(dataset: str, name: str, source: str) -> list[str]:
    """Where ``name`` may be in ``source``: ``<source>/<dataset>/<name>``, then ``<source>/<name>``."""
    if _is_url(source):
        base = source.rstrip("/")
        return [f"{base}/{dataset}/{name}", f"{base}/{name}"]
    base = Path(source).expanduser()
    return [str(base / dataset / name), str(base / name)]


def _download(src: str, target: Path, sha256: str, label: str) -> None:
    """Copy ``src`` (URL or path) to ``target`` through a temporary file, renamed only when its
    sha256 is ``sha256``; a mismatch removes the temporary file and raises a one-line DataError."""
    from tqdm import tqdm

    if _is_url(src):
        stream, total = _open(src)
    else:
        stream, total = open(src, "rb"), os.path.getsize(src)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with stream, os.fdopen(fd, "wb") as out, \
                tqdm(total=total, unit="B", unit_scale=True, desc=label, leave=False, disable=None) as bar:
            while chunk := stream.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        if digest.hexdigest() != sha256:
            raise DataError(f"{label} from {src}: sha256 {digest.hexdigest()}, expected {sha256}; "
                            "the download is corrupt or not the canonical file, nothing was written")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_file(label: str, target: Path, sha256: str, candidates: list[str]) -> str:
    """Fetch one checksummed file from the first of ``candidates`` that has it; returns how."""
    if target.is_file() and sha256_of(target) == sha256:
        return "already there, sha256 ok"
    tried = []
    for src in candidates:
        if not _is_url(src) and not Path(src).is_file():
            tried.append(src)
            continue
        try:
            _download(src, target, sha256, label)
            return f"sha256 ok, from {src}"
        except OSError as exc:
            tried.append(f"{src} ({exc})")
    raise DataError(f"{label}: could not fetch it from {'; '.join(tried)}; pass --from DIR_OR_URL with a copy")


def _leaf_users(folder: Path) -> tuple[list, dict]:
    """The users (in file order) and their {x, y} from LEAF json files in ``folder``."""
    users, data = [], {}
    for path in sorted(folder.glob("*.json")):
        try:
            blob = json.loads(path.read_text(encoding="utf-8"))
            users += blob["users"]
            data.update(blob["user_data"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: not a LEAF json file ({exc})") from None
    return users, data


def import_leaf_synthetic(leaf_dir: Path, target: Path) -> None:
    """Build ``leaf_synthetic_25x5x1000.npz`` from LEAF's ``train/`` and ``test/`` json output,
    refusing (one line) a split whose per-user training sizes are not the DoCoM paper's."""
    import numpy as np

    train_users, train = _leaf_users(leaf_dir / "train")
    _, test = _leaf_users(leaf_dir / "test")
    counts = [len(train[str(u)]["y"]) for u in train_users]
    if counts != LEAF_COUNTS_TRAIN:
        raise DataError(f"{leaf_dir}: LEAF training sizes {counts} are not the DoCoM paper's {LEAF_COUNTS_TRAIN}; "
                        "rebuild with the generator settings and seeds of docs/data.md")
    arrays = {}
    for split, blob in (("train", train), ("test", test)):
        parts = [blob.get(str(u), {"x": [], "y": []}) for u in train_users]
        arrays[f"x_{split}"] = np.concatenate([np.asarray(p["x"], dtype=np.float64).reshape(-1, 1000) for p in parts])
        arrays[f"y_{split}"] = np.concatenate([np.asarray(p["y"], dtype=np.int64) for p in parts])
        arrays[f"counts_{split}"] = np.array([len(p["y"]) for p in parts], dtype=np.int64)
    arrays["users"] = np.array(train_users)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".npz", dir=target.parent)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_folder(source: str, dataset: str) -> Path | None:
    """LEAF's output folder (holding ``train/*.json``) in the local ``source``, or None."""
    if _is_url(source):
        return None
    for folder in (Path(source).expanduser() / dataset, Path(source).expanduser()):
        if any((folder / "train").glob("*.json")):
            return folder
    return None


def fetch(dataset: str, root: str | os.PathLike, source: str | None = None, log=print) -> Path:
    """Fetch ``dataset`` into ``<root>/<dataset>`` (from ``source`` when given) and return that folder."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    spec = DATASETS[dataset]
    folder = Path(root).expanduser() / dataset
    if source is None:
        if not spec.sources:
            raise DataError(f"{dataset}: {spec.recipe}")
        where = {name: [base + name for base in spec.sources] for name in spec.files}
    else:
        where = {name: _candidates(dataset, name, source) for name in spec.files}
        local_copy = any(Path(c).is_file() for c in sum(where.values(), []))
        if not spec.files or not (_is_url(source) or local_copy):
            return _import_leaf(dataset, source, folder, log)
    folder.mkdir(parents=True, exist_ok=True)
    for name, sha256 in spec.files.items():
        log(f"{dataset}/{name}: {_fetch_file(f'{dataset}/{name}', folder / name, sha256, where[name])}")
    return folder


def _import_leaf(dataset: str, source: str, folder: Path, log) -> Path:
    """FEMNIST or the LEAF synthetic split from LEAF's output folder in ``source``."""
    leaf = _json_folder(source, dataset)
    if leaf is None:
        raise DataError(f"{dataset}: no copy and no LEAF output (train/*.json) in {source}; {DATASETS[dataset].recipe}")
    folder.mkdir(parents=True, exist_ok=True)
    if dataset == "leaf_synthetic":
        import_leaf_synthetic(leaf, folder / next(iter(DATASETS[dataset].files)))
        log(f"{dataset}: imported LEAF output from {leaf}; per-user training sizes are the DoCoM paper's")
    else:
        _import_femnist(leaf, folder)
        log(f"{dataset}: copied LEAF json shards from {leaf}, each checked")
    return folder


def _import_femnist(leaf: Path, folder: Path) -> None:
    """Copy LEAF's FEMNIST ``train/`` and ``test/`` json shards, each checked as a LEAF shard first."""
    from .problems.datasets import load_leaf_json
    from .problems.femnist import CLASSES, FEATURES

    shards = [path for split in ("train", "test") for path in sorted((leaf / split).glob("*.json"))]
    for path in shards:                                   # all checked before any is copied
        load_leaf_json(path, key="--from", features=FEATURES, classes=CLASSES)
    for path in shards:
        (folder / path.parent.name).mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder / path.parent.name)
        os.close(fd)
        shutil.copyfile(path, tmp)
        os.replace(tmp, folder / path.parent.name / path.name)


USAGE = f"""usage: python -m decopt data fetch DATASET [--root DIR] [--from DIR_OR_URL]

datasets: {', '.join(DATASETS)}; --root defaults to ${ENV_VAR}; runs then find the data with
{ENV_VAR}=<root> (or problem.data_dir=<root>/<dataset>)."""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m decopt data", usage=USAGE.splitlines()[0][7:],
                                     description="Download a dataset, verify its sha256 and put it where runs read it.",
                                     epilog="\n".join(f"  {k:15s} {v.about}" for k, v in DATASETS.items()),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["fetch"])
    parser.add_argument("dataset", help=" | ".join(DATASETS))
    parser.add_argument("--root", help=f"data root (default: ${ENV_VAR})")
    parser.add_argument("--from", dest="source", metavar="DIR_OR_URL",
                        help="a local mirror (folder or URL) instead of the canonical source")
    args = parser.parse_args(argv)
    root = args.root or os.environ.get(ENV_VAR)
    try:
        if not root:
            raise DataError(f"no data root: pass --root DIR or set ${ENV_VAR} (runs read the data from there)")
        folder = fetch(args.dataset, root, args.source)
    except ConfigError as exc:
        print(f"decopt: error: {exc}", file=sys.stderr)
        return BAD_INPUT
    print(f"{args.dataset}: ready in {folder}; runs find it with {ENV_VAR}={Path(root).expanduser()}")
    return 0
