"""A one-node Slurm cluster on localhost, owned by the test session.

``start(folder)`` installs Slurm from the Debian packages when it is absent (as root, with apt), writes
``slurm.conf`` and starts munged, slurmctld and slurmd as child processes, then waits until ``sinfo``
reports the node idle. ``Cluster.stop()`` ends exactly those processes. Clients find the cluster
through ``SLURM_CONF`` (``Cluster.env``). Anything that keeps it from starting raises ``Unavailable``
with the reason.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge", "libpmix2", "libpmix-dev"]
SBIN = ["/usr/sbin", "/usr/bin", "/sbin"]
CRED_EXPIRE_S = 5        # Slurm's default, 120 s, also holds a requeued job that long


class Unavailable(RuntimeError):
    """Slurm cannot run here (the message says why)."""


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


def install() -> None:
    """apt-get install the packages when slurmctld is missing (root and apt needed)."""
    if _which("slurmctld") and _which("munged") and _which("sinfo"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Unavailable("Slurm is not installed, and installing it needs root and apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if done.returncode != 0:
            raise Unavailable(f"{' '.join(cmd[:2])} failed: {(done.stderr or done.stdout).strip()[-300:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_line(host: str) -> str:
    """``slurmd -C``'s node line (CPUs, sockets, cores, memory as slurmd sees them), on 127.0.0.1."""
    out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, timeout=30).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("NodeName=")), None)
    if line is None:
        raise Unavailable(f"slurmd -C reported no node: {out.strip()[-200:]}")
    return " ".join([f"NodeName={host}", *line.split()[1:], "NodeAddr=127.0.0.1", "State=UNKNOWN"])


class Cluster:
    def __init__(self, folder: Path):
        self.folder = folder
        self.conf = folder / "slurm.conf"
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.folder / f"{name}.out", "w")
        self.procs.append(subprocess.Popen([_which(name), *args], stdout=log, stderr=subprocess.STDOUT,
                                           env=self.env, start_new_session=True))

    def start(self, timeout: float = 30.0) -> "Cluster":
        f = self.folder
        for sub in ("munge", "state", "spool"):
            (f / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(f, 0o755)
        os.chmod(f / "munge", 0o755)
        key, sock = f / "munge" / "munge.key", f / "munge" / "munge.socket.2"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        host = socket.gethostname().split(".")[0]
        self.conf.write_text("\n".join([
            "ClusterName=decopt-test",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
            "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", "CredType=cred/munge",
            f"AuthInfo=socket={sock},cred_expire={CRED_EXPIRE_S}",          # a requeued job waits this long
            f"StateSaveLocation={f / 'state'}", f"SlurmdSpoolDir={f / 'spool'}",
            f"SlurmctldPidFile={f / 'slurmctld.pid'}", f"SlurmdPidFile={f / 'slurmd.pid'}",
            f"SlurmctldLogFile={f / 'slurmctld.log'}", f"SlurmdLogFile={f / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
            "MpiDefault=pmix", "MailProg=/bin/true", "ReturnToService=2", "KillWait=5",
            "SchedulerParameters=batch_sched_delay=0,sched_interval=1", "MaxArraySize=1000",
            _node_line(host),
            f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            ""]))
        self._spawn("munged", "-F", f"--socket={sock}", f"--key-file={key}", f"--pid-file={f / 'munged.pid'}",
                    f"--log-file={f / 'munged.log'}", f"--seed-file={f / 'munge' / 'seed'}")
        self._wait(lambda: sock.exists(), 10, "munged did not create its socket")
        self._spawn("slurmctld", "-D", "-i")
        self._spawn("slurmd", "-D")
        self._wait(self._idle, timeout, "the node did not become idle")
        return self

    def _idle(self) -> bool:
        out = subprocess.run([_which("sinfo"), "-h", "-o", "%t"], capture_output=True, text=True,
                             env=self.env, timeout=10).stdout
        return out.strip() == "idle"

    def _wait(self, ready, timeout: float, why: str) -> None:
        end = time.monotonic() + timeout
        while not ready():
            for p in self.procs:
                if p.poll() is not None:
                    name = Path(p.args[0]).name
                    log = (self.folder / f"{name}.out").read_text().strip().splitlines()[-1:]
                    self.stop()
                    raise Unavailable(f"{name} exited ({p.returncode}): {' '.join(log)}")
            if time.monotonic() > end:
                self.stop()
                raise Unavailable(f"{why} within {timeout:.0f} s (logs in {self.folder})")
            time.sleep(0.1)

    def stop(self) -> None:
        """End the daemons this object started (and only those), newest first."""
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()


def start(folder: Path) -> Cluster:
    """A running cluster in ``folder`` (munged needs every folder above its socket open to all: a
    folder of its own under /tmp, not pytest's tmp_path)."""
    install()
    return Cluster(folder).start()
