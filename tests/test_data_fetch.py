"""``python -m decopt data fetch``: checksummed downloads from a local HTTP server (127.0.0.1 only),
a corrupted download rejected, ``--from DIR`` mirrors, ``$DECOPT_DATA`` as the root, and LEAF imports."""
import contextlib
import functools
import hashlib
import http.server
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA, run_cli
from decopt.data import DATASETS, DataError, fetch
from decopt.problems import datasets

SUMS = SHARED_DATA / "SHA256SUMS"
needs = lambda *folders: pytest.mark.skipif(  # noqa: E731
    not all((SHARED_DATA / f).is_dir() for f in folders),
    reason=f"{SHARED_DATA} lacks {', '.join(folders)}/ (set DECOPT_DATA to a data root)")
OURS = {f"{name}/{f}": s for name, spec in DATASETS.items() for f, s in spec.files.items()}


def published_sums() -> dict:
    """``{"mnist/<file>": sha256}`` from the data folder's own SHA256SUMS (decopt's table without one)."""
    if not SUMS.is_file():
        return OURS
    return {line.split()[1]: line.split()[0] for line in SUMS.read_text().splitlines() if line.strip()}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def serve(folder: Path):
    """An HTTP server for ``folder`` on 127.0.0.1 and an ephemeral port, in a thread; yields its URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_checksums_are_the_published_ones():
    if not SUMS.is_file():
        pytest.skip(reason=f"{SUMS} not found (set DECOPT_DATA to a data root with SHA256SUMS)")
    assert OURS == published_sums()


@needs("mnist", "spambase")
def test_fetch_from_a_local_http_server(tmp_path):
    root = tmp_path / "data"
    with serve(SHARED_DATA) as url:
        for name in ("mnist", "spambase"):
            r = run_cli("data", "fetch", name, "--from", url, env={"DECOPT_DATA": str(root)}, timeout=120)
            assert r.returncode == 0, r.stderr
            assert r.stdout.count("sha256 ok, from http://127.0.0.1") == len(DATASETS[name].files)
            assert f"DECOPT_DATA={root}" in r.stdout
    got = {f"{p.parent.name}/{p.name}": sha(p) for p in root.glob("*/*")}
    assert got == {k: v for k, v in published_sums().items() if k.split("/")[0] in ("mnist", "spambase")}
    x, y = datasets.load_spambase(root / "spambase")              # what a run reads
    assert x.shape == (4601, 57) and set(np.unique(y)) == {0, 1}
    assert set(datasets.check_mnist(root / "mnist")) == set(datasets.MNIST_FILES)


@needs("spambase")
def test_a_corrupted_download_is_rejected_and_nothing_is_left(tmp_path):
    mirror = tmp_path / "mirror" / "spambase"
    shutil.copytree(SHARED_DATA / "spambase", mirror)
    bad = bytearray((mirror / "spambase.data").read_bytes())
    bad[1000] ^= 1                                                # one flipped bit
    (mirror / "spambase.data").write_bytes(bytes(bad))
    root = tmp_path / "data"
    with serve(mirror.parent) as url:
        r = run_cli("data", "fetch", "spambase", "--root", str(root), "--from", url, timeout=120)
    assert r.returncode == 2
    line, = r.stderr.strip().splitlines()
    assert line.startswith("decopt: error: spambase/spambase.data from http://127.0.0.1")
    assert hashlib.sha256(bad).hexdigest() in line and DATASETS["spambase"].files["spambase.data"] in line
    assert list((root / "spambase").iterdir()) == []               # no partial or corrupt file


@needs("spambase")
def test_a_wrong_file_in_place_is_replaced(tmp_path):
    (tmp_path / "spambase").mkdir()
    (tmp_path / "spambase" / "spambase.data").write_text("1,2,3\n")
    fetch("spambase", tmp_path, str(SHARED_DATA), log=lambda line: None)
    assert sha(tmp_path / "spambase" / "spambase.data") == DATASETS["spambase"].files["spambase.data"]
    lines = []
    fetch("spambase", tmp_path, str(SHARED_DATA), log=lines.append)
    assert all(line.endswith("already there, sha256 ok") for line in lines) and len(lines) == 3


@needs("spambase", "leaf_synthetic")
@pytest.mark.parametrize("layout", ["root", "folder"])
def test_fetch_from_a_folder(tmp_path, monkeypatch, layout):
    for name in ("spambase", "leaf_synthetic"):
        source = SHARED_DATA if layout == "root" else SHARED_DATA / name
        fetch(name, tmp_path, str(source), log=lambda line: None)
    monkeypatch.setenv("DECOPT_DATA", str(tmp_path))              # a run's default root
    assert datasets.check_spambase() == tmp_path / "spambase" / "spambase.data"
    assert datasets.load_leaf_synthetic()["counts_train"].sum() == 1443


def test_one_line_errors(tmp_path):
    env = {"DECOPT_DATA": ""}
    cases = {("mnist",): "no data root: pass --root DIR or set $DECOPT_DATA",
             ("leaf_synthetic", "--root", str(tmp_path)): "leaf_synthetic: it has no public download",
             ("femnist", "--root", str(tmp_path)): "./preprocess.sh -s niid --sf 1.0 -k 0 -t sample",
             ("femnist", "--root", str(tmp_path), "--from", str(tmp_path)): "no copy and no LEAF output",
             ("cifar", "--root", str(tmp_path)): "unknown dataset 'cifar'; choose one of mnist"}
    for args, message in cases.items():
        r = run_cli("data", "fetch", *args, env=env, timeout=60)
        assert r.returncode == 2 and r.stdout == "", args
        line, = r.stderr.strip().splitlines()
        assert line.startswith("decopt: error: ") and message in line, line


def test_a_missing_file_on_the_mirror_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with serve(tmp_path / "empty") as url:
        with pytest.raises(DataError, match=r"^spambase/spambase.data: could not fetch it from "
                                            r"http://127.0.0.1:\d+/spambase/spambase.data \(HTTP 404 File not found\)"):
            fetch("spambase", tmp_path / "data", url, log=lambda line: None)


def write_leaf(folder: Path, users: list, split: dict) -> None:
    """LEAF's output layout: ``<split>/<name>.json`` with users, num_samples and user_data."""
    for name, data in split.items():
        (folder / name).mkdir(parents=True)
        blob = {"users": users, "num_samples": [len(data[str(u)]["y"]) for u in users], "user_data": data}
        (folder / name / f"mytrain_{name}.json").write_text(json.dumps(blob))


@needs("leaf_synthetic")
def test_leaf_synthetic_is_rebuilt_from_leafs_json_output(tmp_path):
    paper = datasets.load_leaf_synthetic(SHARED_DATA / "leaf_synthetic")
    users = paper["users"].tolist()                               # LEAF's ids; json keys are strings
    split = {}
    for name in ("train", "test"):
        cuts = np.cumsum(paper[f"counts_{name}"])[:-1]
        xs, ys = np.split(paper[f"x_{name}"], cuts), np.split(paper[f"y_{name}"], cuts)
        split[name] = {str(u): {"x": x.tolist(), "y": y.tolist()} for u, x, y in zip(users, xs, ys)}
    write_leaf(tmp_path / "leaf", users, split)
    folder = fetch("leaf_synthetic", tmp_path / "data", str(tmp_path / "leaf"), log=lambda line: None)
    rebuilt = datasets.load_leaf_synthetic(folder)
    for key in paper:
        np.testing.assert_array_equal(rebuilt[key], paper[key], err_msg=key)
    assert rebuilt["x_train"].dtype == np.float64

    first = split["train"][str(users[0])]
    first["x"], first["y"] = first["x"][:-1], first["y"][:-1]
    shutil.rmtree(tmp_path / "leaf")
    write_leaf(tmp_path / "leaf", users, split)
    with pytest.raises(DataError, match=r"LEAF training sizes \[90, 14, .* are not the DoCoM paper's \[91, 14,"):
        fetch("leaf_synthetic", tmp_path / "other", str(tmp_path / "leaf"), log=lambda line: None)


def test_femnist_shards_are_checked_and_copied(tmp_path):
    rng = np.random.default_rng(0)
    shard = lambda label: {u: {"x": rng.random((3, 784)).tolist(), "y": [label, 1, 2]} for u in ("f0", "f1")}  # noqa: E731
    write_leaf(tmp_path / "leaf", ["f0", "f1"], {"train": shard(61), "test": shard(0)})
    folder = fetch("femnist", tmp_path / "data", str(tmp_path / "leaf"), log=lambda line: None)
    train, test = datasets.femnist_dirs(folder)
    assert [p.name for p in train] == ["mytrain_train.json"] and [p.name for p in test] == ["mytrain_test.json"]
    assert datasets.load_leaf_json(train[0], features=784, classes=62)[0][2].tolist() == [61, 1, 2]

    shutil.rmtree(tmp_path / "leaf")
    write_leaf(tmp_path / "leaf", ["f0", "f1"], {"train": shard(0), "test": shard(62)})
    r = run_cli("data", "fetch", "femnist", "--root", str(tmp_path / "bad"), "--from", str(tmp_path / "leaf"))
    assert r.returncode == 2
    line, = r.stderr.strip().splitlines()
    assert line.endswith("mytrain_test.json: user 'f0': label 62 at index 0; expected an integer 0..61"), line
    assert list((tmp_path / "bad" / "femnist").iterdir()) == []    # the good train shard is not copied either
