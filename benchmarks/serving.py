"""Serving figures: predict latency over HTTP (p50/p95 for 1 row and 1,000 rows) and a blue-green swap under load.

Run: `.venv/bin/python benchmarks/serving.py [--requests N]` (or `make bench`). Writes benchmarks/results/serving.json.
A throwaway project: simulated data, version 1 trained and promoted, version 2 trained; `mlcicd serve` on a free
loopback port; then requests from this process (one at a time, as a client would send them); then promotion_job
with serving on deploys version 2 blue-green while a second thread keeps sending requests.
Targets (issue 8): p95 < 20 ms for 1 row, < 100 ms for 1,000 rows, zero failed requests during the swap. Issue 21: one row
p50 <= 2 ms; 8 concurrent clients (separate processes, one kept-alive connection each) >= 1,000 requests/s with p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def latency(url: str, body: bytes, requests: int) -> dict:
    for _ in range(20):  # warm up
        post(url, body)
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        status = post(url, body)
        times.append((time.perf_counter() - start) * 1000)
        assert status == 200, status
    return {"requests": requests, "p50_ms": round(float(np.percentile(times, 50)), 2), "p95_ms": round(float(np.percentile(times, 95)), 2)}


def client(args: tuple) -> list[float]:
    """One client: requests one after another on one kept-alive connection for `seconds`; each one's time in ms."""
    import http.client

    port, body, seconds = args
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, stop = [], time.perf_counter() + seconds
    while time.perf_counter() < stop:
        start = time.perf_counter()
        connection.request("POST", "/predict", body=body, headers={"content-type": "application/json"})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        times.append((time.perf_counter() - start) * 1000)
    connection.close()
    return times


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system, every thread), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def concurrent(port: int, body: bytes, clients: int, seconds: float, server_pid: int) -> dict:
    """`clients` client processes at once (on the same cores as the server, as a loaded host would have them), and the
    server's CPU time per request."""
    from multiprocessing import get_context

    with get_context("spawn").Pool(clients) as pool:
        pool.map(client, [(port, body, 1.0)] * clients)  # warm up: connections, the server's threads
        started, cpu = time.perf_counter(), cpu_seconds(server_pid)
        runs = pool.map(client, [(port, body, seconds)] * clients)
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(server_pid) - cpu
    times = np.concatenate([np.asarray(r) for r in runs])
    return {"clients": clients, "seconds": round(elapsed, 2), "requests": int(len(times)), "requests_per_second": round(len(times) / elapsed, 1),
            "p50_ms": round(float(np.percentile(times, 50)), 2), "p99_ms": round(float(np.percentile(times, 99)), 2),
            "server_cpu_ms_per_request": round(cpu * 1000 / len(times), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    from mlcicd.core.deploy import records
    from mlcicd.core.simulate import simulate_batch

    with tempfile.TemporaryDirectory() as tmp:
        project, home = Path(tmp) / "project", Path(tmp) / "home"
        project.mkdir()
        home.mkdir()
        shutil.copytree(ROOT / "contracts", project / "contracts")
        port = free_port()
        from shipped import shipped_settings

        config = shipped_settings()
        config["serving"].update({"enabled": False, "port": port})
        (project / "mlcicd.yaml").write_text(yaml.safe_dump(config))
        env = {**os.environ, "DAGSTER_HOME": str(home), "MLCICD_CONFIG": str(project / "mlcicd.yaml")}
        env.pop("MLFLOW_TRACKING_URI", None)

        def mlcicd(*command: str) -> None:
            subprocess.run([str(BIN / "mlcicd"), *command], env=env, cwd=project, check=True, capture_output=True)

        mlcicd("simulate", "--batches", "2")
        mlcicd("train")
        mlcicd("promote")
        mlcicd("simulate", "--batches", "1")
        mlcicd("train")
        server = subprocess.Popen([str(BIN / "mlcicd"), "serve"], env=env, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(120):
                try:
                    urllib.request.urlopen(base + "/health", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.5)
            rows = simulate_batch(99, 1000).drop(columns=["is_fraud"])
            one = json.dumps({"records": records(rows.head(1))}).encode()
            thousand = json.dumps({"records": records(rows)}).encode()
            figures = {
                "predict_1_row": latency(base + "/predict", one, args.requests),
                "predict_1000_rows": latency(base + "/predict", thousand, max(50, args.requests // 3)),
                "predict_1_row_one_client_kept_alive": concurrent(port, one, 1, 10, server.pid),
                "predict_1_row_8_clients": concurrent(port, one, 8, 10, server.pid),
            }

            config["serving"]["enabled"] = True  # promotion_job now deploys: version 2, blue-green, under load
            (project / "mlcicd.yaml").write_text(yaml.safe_dump(config))
            statuses, stop = [], threading.Event()

            def traffic():
                while not stop.is_set():
                    statuses.append(post(base + "/predict", one))

            thread = threading.Thread(target=traffic)
            thread.start()
            start = time.perf_counter()
            mlcicd("promote")
            swap_seconds = time.perf_counter() - start
            stop.set()
            thread.join()
            live = json.loads(urllib.request.urlopen(base + "/health").read())["version"]
            figures["blue_green_swap"] = {
                "requests_during_promotion": len(statuses), "failed_requests": sum(s != 200 for s in statuses),
                "promotion_job_seconds": round(swap_seconds, 2), "live_version_after": live,
            }
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)

    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": "python benchmarks/serving.py",
        "targets": {"predict_1_row_p95_ms": 20, "predict_1000_rows_p95_ms": 100, "failed_requests_during_swap": 0,
                    "issue_21": {"predict_1_row_p50_ms": 2, "requests_per_second_8_clients": 1000, "p99_ms_8_clients": 20,
                                 "predict_1000_rows_p95_ms": 20}},
        **figures,
    }
    out = ROOT / "benchmarks" / "results" / "serving.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
