"""Checkpoints as data, never code (DESIGN §7): one safetensors file holding the algorithm's state
(every agent's and arc's rows) and the network's per-arc counters, with a JSON manifest in its header: the
iteration ``t``, the elapsed time, the network's totals, the decopt version, the state's fields
with their row kinds (``State.rows()``: "agent" or "arc"), the job's config and its fingerprint.
Nothing is ever unpickled.

A checkpoint resumes only the job that wrote it: the fingerprint covers the whole validated config
but the keys in ``RESUMABLE``, which change how long the run goes and how it is watched, never the
trajectory (evaluations draw no randomness: a different ``run.eval_every`` gives the same iterates).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

from .errors import RunDirError
from .lazy import torch


FORMAT = 2                  # 2: the manifest names each state field's rows ("state_rows")
RESUMABLE = ("run.iterations", "run.resume", "run.checkpoint_every", "run.eval_every", "run.eval_grid",
             "run.progress", "run.log_every_s", "run.threads", "run.compile", "run.device", "run.diverge_threshold",
             "backend.name", "run.loggers", "run.mlflow_uri")


def job_config(settings) -> dict:
    """The validated config as ``{"group.key": value}`` (every key, defaults filled in)."""
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        else:
            flat[prefix] = value

    for f in dataclasses.fields(settings):
        walk(f.name, dataclasses.asdict(getattr(settings, f.name)))
    return flat


def fingerprint(config: dict) -> str:
    """sha256 of the config keys that define the trajectory (all but ``RESUMABLE``)."""
    fixed = {k: v for k, v in config.items() if k not in RESUMABLE}
    return hashlib.sha256(json.dumps(fixed, sort_keys=True, default=str).encode()).hexdigest()


def encode(t: int, elapsed: float, state: dict, rows: dict, traffic: dict, config: dict) -> bytes:
    """The checkpoint file's bytes: ``state`` (global tensors, gathered), ``rows`` (their kinds,
    ``State.rows()``) and ``traffic`` (``Network.state_dict``)."""
    from safetensors.torch import save

    from .version import __version__

    tensors = {f"state.{k}": v.detach().cpu().contiguous().clone() for k, v in state.items()}
    tensors["net.arc_bits"] = torch.as_tensor(traffic["arc_bits"])
    tensors["net.arc_msgs"] = torch.as_tensor(traffic["arc_msgs"])
    manifest = {"format": FORMAT, "t": int(t), "elapsed": float(elapsed), "decopt_version": __version__,
                "state_rows": dict(sorted(rows.items())), "network": {"bits": int(traffic["bits"]),
                                                         "sim_time": float(traffic["sim_time"])},
                "fingerprint": fingerprint(config), "config": config}
    return save(tensors, metadata={"decopt": json.dumps(manifest)})


def decode(data: bytes, where) -> tuple[dict, dict]:
    """``(manifest, tensors)`` of a checkpoint file, or a one-line RunDirError naming ``where``."""
    from safetensors.torch import load

    try:
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + size])
        manifest = json.loads(header["__metadata__"]["decopt"])
        tensors = load(data)
        if manifest["format"] != FORMAT:
            raise ValueError(f"format {manifest['format']}, this decopt reads {FORMAT}")
        missing = [k for k in ("t", "elapsed", "state_rows", "network", "fingerprint", "config") if k not in manifest]
        if missing:
            raise ValueError(f"its manifest lacks {', '.join(missing)}")
    except Exception as exc:          # any malformed file: bad header, JSON, tensors or manifest
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunDirError(f"run.resume: {where} is not a decopt checkpoint ({reason[:200]})") from None
    return manifest, tensors


def check(manifest: dict, tensors: dict, config: dict, rows: dict, where) -> dict:
    """Refuse (RunDirError, one line) a checkpoint of another job, past ``run.iterations``, or whose
    state fields (``rows``: this job's ``State.rows()``) differ from this job's; return the resumable
    keys that changed, ``{key: [old, new]}``."""
    old = manifest["config"]
    if manifest["fingerprint"] != fingerprint(config):
        keys = sorted(k for k in set(old) | set(config) if k not in RESUMABLE and old.get(k) != config.get(k))
        swapped = {k.split(".")[0] for k in keys if k.endswith(".name")}        # another algorithm, ...:
        keys = [k for k in keys if k.endswith(".name") or k.split(".")[0] not in swapped]    # its name says it
        diff = ", ".join(f"{k} (checkpoint {old.get(k)}, now {config.get(k)})" for k in keys) or "its fingerprint"
        raise RunDirError(f"run.resume: the checkpoint {where} is from another job: {diff}; only "
                          f"{', '.join(RESUMABLE)} may change")
    iterations = config["run.iterations"]
    if manifest["t"] > iterations:
        raise RunDirError(f"run.iterations={iterations}: the checkpoint {where} is at iteration {manifest['t']}; "
                          f"resume needs run.iterations >= {manifest['t']}")
    want = sorted(rows)
    have = sorted(k[len("state."):] for k in tensors if k.startswith("state."))
    expected = {f"state.{k}" for k in want} | {"net.arc_bits", "net.arc_msgs"}
    if manifest["state_rows"] != rows or have != want or set(tensors) != expected:
        raise RunDirError(f"run.resume: the checkpoint {where} holds the state {', '.join(have)}; this job's "
                          f"state is {', '.join(want)}")
    return {k: [old.get(k), config.get(k)] for k in RESUMABLE if old.get(k) != config.get(k)}
