"""Incremental fetch sessions (KIP-227) with kafka-python, whose consumer opens one per broker and then
sends only the partitions whose position moved (librdkafka, and so confluent-kafka and kcat, never opens
one: it sends every fetch with session id 0 and epoch -1, which the other suites cover).

Records arrive in waves on different partitions while one consumer keeps polling: an incremental answer
that left out a partition with new records, or a session the broker lost, would show up as missing records
or as Fetch errors (session errors count as request errors in the broker's metrics).
"""

from __future__ import annotations

import re
import time
import urllib.request

from kit import Rec, create_topic, kp_produce, unique_topic

PARTITIONS = 6
READ_TIMEOUT_S = 60.0


def metric(http_port: int, name: str, labels: str = "") -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def wave(tag: str, partitions: list[int], per_partition: int) -> list[Rec]:
    return [Rec(p, f"{tag}-{p}-{i}".encode(), f"{tag}-{p}-{i}".encode())
            for p in partitions for i in range(per_partition)]


def test_kafka_python_reads_waves_through_one_incremental_session(broker_factory):
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition as KTP

    broker = broker_factory()
    topic = unique_topic("sessions")
    create_topic(broker.bootstrap, topic, PARTITIONS)
    waves = [wave("a", [0, 1, 2], 20), wave("b", [3, 4, 5], 20), wave("c", [1, 4], 5),
             wave("d", list(range(PARTITIONS)), 3)]
    fetch_errors_before = metric(broker.http_port, "tributary_request_errors_total", '{api="Fetch"}')
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      fetch_max_wait_ms=100)
    try:
        tps = [KTP(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        expected: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        sessions_seen = 0.0
        for records in waves:
            kp_produce(broker.bootstrap, topic, records)
            for r in records:
                expected[r.partition].append(r.value)
            deadline = time.monotonic() + READ_TIMEOUT_S
            while got != expected and time.monotonic() < deadline:
                for tp, msgs in c.poll(timeout_ms=500).items():
                    got[tp.partition].extend(m.value for m in msgs)
            assert got == expected, (
                f"after wave {records[0].key[:1]!r}: read per partition "
                f"{ {p: len(v) for p, v in got.items()} }, expected { {p: len(v) for p, v in expected.items()} }")
            sessions_seen = max(sessions_seen, metric(broker.http_port, "tributary_fetch_sessions"))
        assert sessions_seen >= 1, "kafka-python never opened a fetch session, so nothing incremental was tested"
        fetch_errors = metric(broker.http_port, "tributary_request_errors_total", '{api="Fetch"}')
        assert fetch_errors == fetch_errors_before, \
            f"{fetch_errors - fetch_errors_before} Fetch requests failed (session errors count here)"
    finally:
        c.close()
