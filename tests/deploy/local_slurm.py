"""A real single-node Slurm for the tests: munged, slurmctld and slurmd from Debian's packages.

Everything lives in one temporary folder (configuration, munge key and socket, state, spool,
logs); the daemons listen on free ports of 127.0.0.1 and run in the foreground as children of
the test process, so that stopping them is stopping those processes. Commands reach this Slurm
through ``SLURM_CONF`` in :attr:`LocalSlurm.env`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sinfo", "sbatch", "squeue", "scontrol", "scancel", "srun")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class LocalSlurm:
    """One Slurm node on 127.0.0.1 with all the machine's CPUs, started by :meth:`start`."""

    def __init__(self, root: Path):
        missing = [p for p in DAEMONS + CLIENTS if shutil.which(p) is None]
        if missing:
            raise RuntimeError(f"Slurm/munge programs not installed: {missing} (deploy/install-system-packages.sh)")
        self.root = root
        self.host = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.conf = root / "slurm.conf"
        self.munge_socket = root / "munge" / "munge.socket"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.procs: dict[str, subprocess.Popen] = {}

    def write_config(self) -> None:
        for d in ("munge", "state", "spool", "log"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o711)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        r = self.root
        self.conf.write_text(f"""\
ClusterName=epmsweep-test
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=3600
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={_memory_mib() // 2} State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")

    def _spawn(self, name: str, args: list[str]) -> None:
        with open(self.root / "log" / f"{name}.out", "w") as log:
            self.procs[name] = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )

    def start(self, timeout: float = 60.0) -> LocalSlurm:
        self.write_config()
        m = self.root / "munge"
        self._spawn("munged", ["munged", "--foreground", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={m / 'munge.key'}", f"--pid-file={m / 'munged.pid'}",
                               f"--log-file={m / 'munged.log'}", f"--seed-file={m / 'munged.seed'}"])
        self._wait(lambda: self.munge_socket.exists(), timeout, "munged to create its socket")
        self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
        self._spawn("slurmd", ["slurmd", "-D"])
        self._wait(self.node_idle, timeout, "the node to be idle in sinfo")
        return self

    def node_idle(self) -> bool:
        out = self.run("sinfo", "--noheader", "--format=%T", check=False).stdout.split()
        return out == ["idle"]

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}: {self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}: {self.logs()}")
            time.sleep(0.3)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """A Slurm command against this cluster."""
        return subprocess.run(args, env=self.env, capture_output=True, text=True, check=check, timeout=60)

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (JobName, JobState, ...); jobs are kept an hour after they end."""
        out = self.run("scontrol", "show", "job", "--oneliner", str(job_id)).stdout
        return dict(item.split("=", 1) for item in out.split() if "=" in item)

    def wait_for_job(self, job_id: str, timeout: float) -> str:
        """The state in which job ``job_id`` ended (COMPLETED, FAILED, ...), polled twice a second."""
        deadline = time.monotonic() + timeout
        while (state := self.job(job_id)["JobState"]) in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {state} after {timeout} s")
            time.sleep(0.5)
        return state

    def jobs(self) -> list[dict[str, str]]:
        """Every job this Slurm knows, running or ended."""
        lines = self.run("scontrol", "show", "job", "--oneliner").stdout.splitlines()
        return [dict(i.split("=", 1) for i in line.split() if "=" in i) for line in lines if "JobId=" in line]

    def active_jobs(self) -> list[str]:
        return self.run("squeue", "--noheader", "--format=%i").stdout.split()

    def logs(self) -> str:
        parts = []
        for f in sorted((self.root / "log").glob("*")):
            parts.append(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel what is left and stop the daemons (SIGTERM, then SIGKILL after 10 s)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            if self.active_jobs():
                self.run("scancel", *self.active_jobs(), check=False)
            deadline = time.monotonic() + 20
            while self.active_jobs() and time.monotonic() < deadline:
                time.sleep(0.5)
        for name in reversed(DAEMONS):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
