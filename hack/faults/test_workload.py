"""Checks of workload.py's checker on made-up histories (no broker): what it counts, in total and per client.
Run: ~/.cache/tributary/venv/bin/python -m pytest -q hack/faults/test_workload.py (hack/test.sh does)."""

from __future__ import annotations

import json
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workload  # noqa: E402


def value(rid: str, client: str) -> bytes:
    tag, p, seq = rid.rsplit("-", 2)
    return json.dumps({"id": rid, "tag": tag, "p": int(p), "seq": int(seq), "client": client}).encode()


def run_check(tmp_path, monkeypatch, log: list[tuple[int, bytes]], reports: list[dict]) -> tuple[int, dict]:
    """cmd_check over `reports` with `log` as partition 0's content; its exit status and summary."""
    printed: list[dict] = []
    monkeypatch.setattr(workload, "read_all", lambda *_: ({0: log}, {0: (0, len(log))}, []))
    monkeypatch.setattr(workload, "summary", printed.append)
    acks = tmp_path / "all.acks"
    acks.write_text("".join(json.dumps(r) + "\n" for r in reports))
    args = types.SimpleNamespace(acks=[str(acks)], partitions=1, bootstrap="unused", topic="t", timeout=1,
                                 seen=None, hw_out=None)
    rc = workload.cmd_check(args)
    return rc, printed[-1]


def test_clean_history_of_both_clients(tmp_path, monkeypatch):
    log = [(0, value("p1-0-0", "confluent-kafka")), (1, value("j1-0-0", "java")), (2, value("j1-0-1", "java"))]
    # A report line exactly as FaultsProducer.java writes it.
    java_line = json.loads('{"id": "j1-0-1", "p": 0, "off": 2, "seq": 1, "client": "java", "t": 1.013}')
    reports = [{"id": "p1-0-0", "p": 0, "off": 0, "seq": 0, "client": "confluent-kafka"},
               {"id": "j1-0-0", "p": 0, "off": 1, "seq": 0, "client": "java"}, java_line]
    rc, out = run_check(tmp_path, monkeypatch, log, reports)
    assert rc == 0
    assert out["by_client"]["java"]["acknowledged"] == 2 and out["by_client"]["java"]["read"] == 2
    assert out["by_client"]["confluent-kafka"]["acknowledged"] == 1
    assert out["tally"].startswith("all: 3 acked, 3 read, 0 lost, 0 duplicated, 0 out of order | ")


def test_anomalies_are_charged_to_their_client(tmp_path, monkeypatch):
    log = [(0, value("p1-0-0", "confluent-kafka")), (1, value("j1-0-1", "java")), (2, value("j1-0-0", "java")),
           (3, value("p1-0-0", "confluent-kafka"))]
    reports = [{"id": "p1-0-0", "p": 0, "off": 0, "client": "confluent-kafka"},
               {"id": "j1-0-0", "p": 0, "off": 2, "client": "java"},
               {"id": "j1-0-1", "p": 0, "off": 1, "client": "java"},
               {"id": "j1-0-2", "p": 0, "off": 4, "client": "java"},
               {"id": "j1-0-3", "p": 0, "client": "java", "err": "REQUEST_TIMED_OUT"}]
    rc, out = run_check(tmp_path, monkeypatch, log, reports)
    assert rc == 1
    java, py = out["by_client"]["java"], out["by_client"]["confluent-kafka"]
    assert (java["lost"], java["duplicated"], java["out_of_order"], java["failed"]) == (1, 0, 1, 1)
    assert (py["lost"], py["duplicated"]) == (0, 1)
    assert (out["lost"], out["duplicated"]) == (1, 1)
    assert "java: 3 acked, 2 read, 1 lost, 0 duplicated, 1 out of order (1 failed)" in out["tally"]


def test_acknowledged_at_another_offset(tmp_path, monkeypatch):
    log = [(0, value("j1-0-0", "java"))]
    rc, out = run_check(tmp_path, monkeypatch, log, [{"id": "j1-0-0", "p": 0, "off": 7, "client": "java"}])
    assert rc == 1
    assert out["by_client"]["java"]["inconsistent_offset"] == 1
    assert "1 at another offset" in out["tally"]
