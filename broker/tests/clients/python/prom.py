"""A real Prometheus server for tests: started on a loopback port the kernel picks (port 0, read back from
Prometheus' own "Listening on" log line) with a config that scrapes the given targets every second, queried
through its HTTP API, stopped (SIGTERM, then SIGKILL) at the end.

Reusable by any test that needs to see its metrics the way a user's Prometheus would (the broker's here;
the operator's later). Needs the `prometheus` binary (Debian package, installed by hack/prereqs.sh).

As a library::

    with Prometheus(workdir, {"broker": ["127.0.0.1:9644"], "operator": ["127.0.0.1:8080"]}) as prom:
        prom.wait_targets_up()
        prom.query('tributary_requests_total{api="Produce"}')

From a shell (for tests in other languages)::

    python3 prom.py start DIR JOB=HOST:PORT [JOB=HOST:PORT ...]   # prints the base URL; pid in DIR/pid
    python3 prom.py stop DIR
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
SCRAPE_INTERVAL = "1s"


# What Prometheus (its exporter-toolkit web server) logs at info level once it serves, with the bound address.
_LISTENING = re.compile(r'msg="Listening on" address=127\.0\.0\.1:(\d+)')


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise RuntimeError("prometheus not found on PATH: run hack/prereqs.sh (Debian package 'prometheus')")
    return found


def render_config(targets: dict[str, list[str]], interval: str = SCRAPE_INTERVAL) -> str:
    """prometheus.yml scraping each job's targets (host:port, or host:port/path for another metrics path)."""
    lines = ["global:", f"  scrape_interval: {interval}", f"  scrape_timeout: {interval}", "scrape_configs:"]
    for job, addrs in targets.items():
        by_path: dict[str, list[str]] = {}
        for addr in addrs:
            host, _, path = addr.partition("/")
            by_path.setdefault("/" + (path or "metrics"), []).append(host)
        for i, (path, hosts) in enumerate(sorted(by_path.items())):
            name = job if i == 0 else f"{job}-{i}"
            lines += [f"  - job_name: {json.dumps(name)}", f"    metrics_path: {json.dumps(path)}",
                      "    static_configs:", f"      - targets: {json.dumps(hosts)}"]
    return "\n".join(lines) + "\n"


class Prometheus:
    """One Prometheus process; `workdir` holds its config, TSDB and log. Without `port` it listens on port 0
    and `port` and `url` are known once `start()` returns."""

    def __init__(self, workdir: Path | str, targets: dict[str, list[str]], port: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.targets = targets
        self.requested_port = port or 0
        self.port = port or 0
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "prometheus.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Prometheus":
        config = self.workdir / "prometheus.yml"
        config.write_text(render_config(self.targets))
        log = open(self.log_path, "ab")
        offset = log.tell()
        # Info level: the "Listening on" line carries the port bound for port 0.
        self.proc = subprocess.Popen(
            [prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.requested_port}", "--log.level=info"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        (self.workdir / "pid").write_text(str(self.proc.pid))
        deadline = time.monotonic() + START_TIMEOUT_S
        self.port = self.requested_port
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode} on start\n{self.tail()}")
            if not self.port:
                with open(self.log_path, "rb") as f:
                    f.seek(offset)
                    found = _LISTENING.search(f.read().decode(errors="replace"))
                if found is None:
                    time.sleep(0.05)
                    continue
                self.port = int(found.group(1))
                self.url = f"http://127.0.0.1:{self.port}"
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        if not self.port:
            raise AssertionError(f"prometheus logged no 'Listening on' address within {START_TIMEOUT_S}s\n{self.tail()}")
        raise AssertionError(f"prometheus not ready within {START_TIMEOUT_S}s\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> "Prometheus":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no prometheus log)"
        return f"--- last {min(n, len(lines))} lines of {self.log_path} ---\n" + "\n".join(lines[-n:])

    def _get(self, path: str, **params) -> dict:
        url = f"{self.url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"prometheus {path} {params}: HTTP {e.code}: {e.read()[:500]!r}") from e
        if body.get("status") != "success":
            raise AssertionError(f"prometheus {path} {params}: {body}")
        return body["data"]

    def targets_health(self) -> list[dict]:
        return self._get("/api/v1/targets")["activeTargets"]

    def wait_targets_up(self, timeout: float = 30.0) -> None:
        """Until every configured target has been scraped successfully."""
        deadline = time.monotonic() + timeout
        seen: list = []
        while time.monotonic() < deadline:
            seen = [(t["labels"].get("job"), t["scrapeUrl"], t["health"], t.get("lastError", ""))
                    for t in self.targets_health()]
            expected = sum(len(a) for a in self.targets.values())
            if len(seen) >= expected and all(h == "up" for _, _, h, _ in seen):
                return
            time.sleep(0.3)
        raise AssertionError(f"prometheus targets not all up within {timeout}s: {seen}\n{self.tail()}")

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """An instant query; each series as (labels, value)."""
        data = self._get("/api/v1/query", query=expr)
        if data["resultType"] != "vector":
            raise AssertionError(f"query {expr!r} gave a {data['resultType']}, not a vector")
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def wait_query(self, expr: str, check, timeout: float = 30.0):
        """Polls `expr` until `check(result)` is true; returns the result, or fails showing the last one."""
        deadline = time.monotonic() + timeout
        result: list = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if check(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"prometheus query {expr!r} did not reach the expected value within {timeout}s; "
                             f"last result: {result}")


def _main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[1] == "start":
        targets: dict[str, list[str]] = {}
        for spec in argv[3:]:
            job, sep, addr = spec.partition("=")
            if not sep or not job or not addr:
                print(f"prom.py: target {spec!r} is not JOB=HOST:PORT[/path]", file=sys.stderr)
                return 2
            targets.setdefault(job, []).append(addr)
        prom = Prometheus(argv[2], targets).start()
        print(prom.url)
        return 0
    if len(argv) == 3 and argv[1] == "stop":
        pid_file = Path(argv[2]) / "pid"
        if not pid_file.is_file():
            return 0
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        pid_file.unlink(missing_ok=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
