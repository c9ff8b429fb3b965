"""Fixtures that run the tributary-broker binary for the client compatibility suite.

The suite is black-box: it only starts the binary (``TRIBUTARY_BROKER_BIN``, default
``<repo>/target/debug/tributary-broker``) on loopback ports the kernel picks (port 0, read
back from ``--bound-addresses-file``) with a temp data dir and talks to it with real clients.  ``KAFKA_BOOTSTRAP=host:port`` runs the tests that
do not need to restart or configure the broker against an external broker instead
(used to validate the tests themselves against Apache Kafka).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
EXTERNAL = os.environ.get("KAFKA_BOOTSTRAP", "").strip()
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 60

# Brokers started by the current test (plus the session broker), for log tails on failure.
_LIVE: list["Broker"] = []


def broker_bin() -> Path:
    return Path(os.environ.get("TRIBUTARY_BROKER_BIN", REPO / "target" / "debug" / "tributary-broker"))


class Broker:
    """One tributary-broker process; restartable on the same Kafka port and data dir.

    The first start binds port 0 for both listeners and learns the ports from the addresses file; a restart
    asks for the Kafka port it learned (clients that were connected reconnect to the same address) and a new
    HTTP port (``http_port`` is then the new one).
    """

    def __init__(self, workdir: Path, config: dict[str, str] | None = None):
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file = workdir / "broker.properties"
        cfg = {"auto.create.topics.enable": "true", "num.partitions": "1"}
        cfg.update(config or {})
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
        self.port = 0
        self.http_port = 0
        self.addresses_file = workdir / "addresses"
        self.log_path = workdir / "broker.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.external = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = broker_bin()
        if not binary.is_file():
            pytest.fail(f"tributary-broker binary not found at {binary}: build it (cargo build) or set "
                        f"TRIBUTARY_BROKER_BIN, or set KAFKA_BOOTSTRAP to test an external broker")
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n==== start #{self.starts} at {time.strftime('%H:%M:%S')} ====\n".encode())
        log.flush()
        # A file left by the previous start would name its ports.
        self.addresses_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [str(binary), "--listen", f"127.0.0.1:{self.port}", "--http-listen", "127.0.0.1:0",
             "--bound-addresses-file", str(self.addresses_file),
             "--data-dir", str(self.data_dir), "--node-id", "1", "--config", str(self.config_file)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "RUST_BACKTRACE": "1"})
        log.close()
        self.wait_ready()

    def read_addresses(self, deadline: float) -> None:
        """Waits for the addresses file the broker writes once its listeners are bound; sets the ports."""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"broker exited with code {self.proc.returncode} before binding its "
                                     f"ports\n{self.tail()}")
            try:
                text = self.addresses_file.read_text()
            except FileNotFoundError:
                time.sleep(0.02)
                continue
            bound = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
            self.port = int(bound["kafka"].rsplit(":", 1)[1])
            self.http_port = int(bound["http"].rsplit(":", 1)[1])
            return
        raise AssertionError(f"broker wrote no {self.addresses_file} within {READY_TIMEOUT_S}s\n{self.tail()}")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        self.read_addresses(deadline)
        url = f"http://127.0.0.1:{self.http_port}/readyz"
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"broker exited with code {self.proc.returncode} before ready\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return
                    last = f"HTTP {r.status}"
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        raise AssertionError(f"broker not ready after {READY_TIMEOUT_S}s ({url}: {last})\n{self.tail()}")

    def stop(self) -> int:
        """Graceful stop (SIGTERM); returns the exit code. Kills with SIGKILL after a bound."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"broker did not exit within {STOP_TIMEOUT_S}s of SIGTERM\n{self.tail()}")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self, graceful: bool = True) -> int | None:
        code = self.stop() if graceful else self.kill9()
        self.start()
        return code

    def tail(self, n: int = LOG_TAIL_LINES) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no broker log)"
        return f"--- last {min(n, len(lines))} lines of {self.log_path} ---\n" + "\n".join(lines[-n:])


class ExternalBroker:
    """A broker we did not start (KAFKA_BOOTSTRAP); cannot be restarted or configured."""

    external = True

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap

    def tail(self, n: int = LOG_TAIL_LINES) -> str:
        return f"(external broker {self.bootstrap}: no log)"


def _new_broker(tmp_root: Path, config: dict[str, str] | None) -> Broker:
    b = Broker(Path(tempfile.mkdtemp(prefix="tributary-", dir=tmp_root)), config)
    _LIVE.append(b)
    b.start()
    return b


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """The shared broker for tests that neither restart nor reconfigure it."""
    if EXTERNAL:
        yield ExternalBroker(EXTERNAL)
        return
    b = _new_broker(tmp_path_factory.mktemp("shared"), None)
    yield b
    b.stop()
    _LIVE.remove(b)


@pytest.fixture
def broker_factory(tmp_path):
    """Starts dedicated brokers with extra config; they can be restarted (SIGTERM or kill -9)."""
    if EXTERNAL:
        pytest.skip("needs the tributary-broker binary (restarts it or gives it its own config); "
                    "KAFKA_BOOTSTRAP only points at an external broker")
    started: list[Broker] = []

    def make(config: dict[str, str] | None = None) -> Broker:
        b = _new_broker(tmp_path, config)
        started.append(b)
        return b

    yield make
    for b in started:
        try:
            b.kill9()
        finally:
            _LIVE.remove(b)
    if os.environ.get("TRIBUTARY_KEEP_DATA") != "1":
        shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in list(_LIVE):
            rep.sections.append((f"tributary broker log ({b.bootstrap})", b.tail()))
