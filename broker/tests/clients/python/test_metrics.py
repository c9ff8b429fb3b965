"""Broker metrics at /metrics, checked the way users consume them: `promtool check metrics` on what is
served, and a real Prometheus scraping the broker and answering queries.

The scenario leaves a consumer group with committed offsets behind the log end and no member online, so
the lag must come from committed offsets, not from live consumers.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
import uuid

from confluent_kafka import Consumer, KafkaError, TopicPartition

from kit import COMMON, Rec, ck_produce, create_topic, unique_topic
from prom import Prometheus

# Records produced per partition, and the offsets the group commits: lag = produced - committed.
PRODUCED = {0: 10, 1: 20, 2: 5}
COMMITTED = {0: 4, 1: 15, 2: 5}
CONSUME_TIMEOUT_S = 60.0

def fetch_metrics(http_port: int, accept: str | None = None) -> tuple[str, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{http_port}/metrics")
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers.get("Content-Type", ""), r.read().decode()


def consume_and_commit(bootstrap: str, topic: str, group: str) -> None:
    """Joins `group`, reads every record, commits COMMITTED (behind the end for some partitions), leaves."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "classic",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, **COMMON})
    try:
        c.subscribe([topic])
        got = {p: 0 for p in PRODUCED}
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while any(got[p] < n for p, n in PRODUCED.items()) and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
                continue
            assert not m.error(), f"consumer error: {m.error()}"
            got[m.partition()] += 1
        assert got == PRODUCED, f"records read per partition {got}, expected {PRODUCED} within {CONSUME_TIMEOUT_S}s"
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in COMMITTED.items()], asynchronous=False)
    finally:
        c.close()  # LeaveGroup: the group keeps its offsets with no member online


def by_partition(result, key: str = "partition") -> dict[int, float]:
    return {int(labels[key]): value for labels, value in result}


def test_metrics_pass_promtool_and_prometheus_sees_lag_and_traffic(broker_factory, tmp_path):
    broker = broker_factory({"group.initial.rebalance.delay.ms": "0"})
    topic = unique_topic("metrics")
    group = f"metrics-{uuid.uuid4().hex[:10]}"
    create_topic(broker.bootstrap, topic, len(PRODUCED))
    recs = [Rec(p, f"k{i}".encode(), b"v" * (10 + i)) for p, n in PRODUCED.items() for i in range(n)]
    ck_produce(broker.bootstrap, topic, recs)
    consume_and_commit(broker.bootstrap, topic, group)

    # (1) What a plain scrape gets is valid Prometheus text that promtool's linter accepts.
    content_type, text = fetch_metrics(broker.http_port)
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    assert f'tributary_consumer_group_lag{{group="{group}",topic="{topic}",partition="0"}}' in text, text[:3000]
    check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True,
                           timeout=60)
    assert check.returncode == 0, (f"promtool check metrics exited {check.returncode}:\n"
                                   f"{check.stdout.decode()}{check.stderr.decode()}")
    # Prometheus itself asks for OpenMetrics and gets it.
    om_type, om_text = fetch_metrics(broker.http_port, "application/openmetrics-text;version=1.0.0")
    assert om_type.startswith("application/openmetrics-text"), om_type
    assert om_text.endswith("# EOF\n"), om_text[-200:]

    # (2) A real Prometheus scraping the broker every second.
    with Prometheus(tmp_path / "prometheus", {"tributary-broker": [f"127.0.0.1:{broker.http_port}"]}) as prom:
        try:
            prom.wait_targets_up()
            want_lag = {p: float(PRODUCED[p] - COMMITTED[p]) for p in PRODUCED}
            lag = prom.wait_query(f'tributary_consumer_group_lag{{group="{group}",topic="{topic}"}}',
                                  lambda r: len(r) == len(PRODUCED))
            assert by_partition(lag) == want_lag, f"consumer group lag per partition: {lag}"
            assert all(l["job"] == "tributary-broker" for l, _ in lag), lag

            records_in = prom.query(f'tributary_partition_produced_records_total{{topic="{topic}"}}')
            assert by_partition(records_in) == {p: float(n) for p, n in PRODUCED.items()}, records_in
            # Nothing but these batches was appended, so bytes in equals the log's size on disk.
            bytes_in = by_partition(prom.query(f'tributary_partition_produced_bytes_total{{topic="{topic}"}}'))
            log_size = by_partition(prom.query(f'tributary_log_size_bytes{{topic="{topic}"}}'))
            assert all(bytes_in[p] > 0 for p in PRODUCED) and bytes_in == log_size, (bytes_in, log_size)
            end = by_partition(prom.query(f'tributary_log_end_offset{{topic="{topic}"}}'))
            assert end == {p: float(n) for p, n in PRODUCED.items()}, end
            records_out = by_partition(prom.query(f'tributary_partition_fetched_records_total{{topic="{topic}"}}'))
            assert all(records_out.get(p, 0) >= n for p, n in PRODUCED.items()), records_out

            requests = {l["api"]: v for l, v in prom.query("tributary_requests_total")}
            for api in ("Produce", "Fetch", "JoinGroup", "SyncGroup", "OffsetCommit", "LeaveGroup", "Metadata"):
                assert requests.get(api, 0) >= 1, f"no {api} requests counted: {requests}"
            produce_errors = prom.query('tributary_request_errors_total{api="Produce"}')
            assert [v for _, v in produce_errors] == [0.0], produce_errors
            latency = prom.query('tributary_request_duration_seconds_count{api="Produce"}')
            assert [v for _, v in latency] == [requests["Produce"]], (latency, requests)
            fsyncs = prom.query("tributary_log_flush_duration_seconds_count")
            assert fsyncs and fsyncs[0][1] >= 1, f"default flush policy fsyncs every batch: {fsyncs}"
            accepted = prom.query("tributary_connections_accepted_total")
            assert accepted and accepted[0][1] >= 2, accepted
        except AssertionError as e:
            raise AssertionError(f"{e}\n{prom.tail()}") from e
