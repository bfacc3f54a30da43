"""Resources at 10^4 runs, and TLS between client, scheduler and workers."""

import gc
import os
import subprocess
import threading

import dask
from conftest import record_figure
from distributed import LocalCluster
from distributed.security import Security
from epmsweep.sweep import open_client, run_sweep
from epmsweep.sweep.execute import IN_FLIGHT_PER_WORKER

N_RUNS = 10_000


def resident_mib() -> float:
    """Current resident memory of this process (MiB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_ten_thousand_runs_keep_memory_and_graph_small(tmp_path, client):
    """10^4 short runs: the scheduler never holds more than a few tasks per worker, driver memory stays flat."""
    spec = {
        "name": "many", "seed": 3, "replicas": N_RUNS, "model": {"L": 4},
        "initial_states": {"rejuvenated": {"kind": "rejuvenated"}},
        "imposed_stress": {"stress": [0.5], "t_end": 0.5, "n_records": 5},
    }
    peak_tasks, peak_rss, stop = [0], [0.0], threading.Event()

    def watch():
        while not stop.is_set():
            n = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
            peak_tasks[0] = max(peak_tasks[0], n)
            peak_rss[0] = max(peak_rss[0], resident_mib())
            stop.wait(0.2)

    gc.collect()
    rss_before = resident_mib()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    tree = run_sweep(spec, out=tmp_path, client=client, progress=False)
    stop.set()
    watcher.join()
    growth = peak_rss[0] - rss_before
    assert int(tree["imposed_stress"]["completed"].sum()) == N_RUNS
    workers = len(client.scheduler_info()["workers"])
    assert 0 < peak_tasks[0] <= IN_FLIGHT_PER_WORKER * workers + 2
    assert growth < 100, f"driver memory grew by {growth:.0f} MiB"
    record_figure("Resources", f"{N_RUNS} runs through the service: at most {peak_tasks[0]} tasks on the scheduler "
                  f"at once ({workers} workers), driver resident memory growth {growth:.0f} MiB "
                  "(sampled every 0.2 s)")


def _certificates(folder):
    """A CA and one certificate signed by it for 127.0.0.1, with openssl."""
    def sh(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    sh("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=epmsweep-test-ca",
       "-keyout", "ca.key", "-out", "ca.pem")
    sh("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "node.key", "-out", "node.csr")
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    sh("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
       "-extfile", "ext.cnf", "-out", "node.pem")
    return {name: str(folder / name) for name in ("ca.pem", "node.pem", "node.key")}


def test_sweep_over_tls_with_certificates_from_config(tmp_path):
    certs = _certificates(tmp_path)
    config = {
        "distributed.comm.require-encryption": True,
        "distributed.comm.tls.ca-file": certs["ca.pem"],
        "distributed.comm.tls.scheduler.cert": certs["node.pem"],
        "distributed.comm.tls.scheduler.key": certs["node.key"],
        "distributed.comm.tls.worker.cert": certs["node.pem"],
        "distributed.comm.tls.worker.key": certs["node.key"],
        "distributed.comm.tls.client.cert": certs["node.pem"],
        "distributed.comm.tls.client.key": certs["node.key"],
    }
    spec = {
        "name": "tls", "seed": 1, "replicas": 4, "model": {"L": 8},
        "initial_states": {"rejuvenated": {"kind": "rejuvenated"}},
        "imposed_rate": {"shear_rate": [0.01], "strain_end": 0.2, "n_records": 5},
    }
    with dask.config.set(config), LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, protocol="tls", host="127.0.0.1",
        security=Security(), dashboard_address=":0",
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://")
        with open_client(scheduler=address) as tls_client:  # security comes from the Dask config
            tree = run_sweep(spec, out=tmp_path / "out", client=tls_client, progress=False)
        assert int(tree["imposed_rate"]["completed"].sum()) == 4
    record_figure("Security", "a 4-run sweep through a scheduler and worker requiring TLS, certificates from the "
                  "Dask config (openssl-made CA); the embedded cluster listens on 127.0.0.1 only")
