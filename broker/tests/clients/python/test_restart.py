"""Durability across restarts of the tributary-broker binary (same ports, same data dir).

These tests start their own brokers, so they skip when only KAFKA_BOOTSTRAP is given."""

import os
import random
import threading
import time

import pytest
from confluent_kafka import KafkaError

from kit import assert_same, ck_produce, ck_producer, ck_read, create_topic, gen_records, kp_read, unique_topic

PARTITIONS = 6


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_restart_keeps_acknowledged_records(broker_factory, how):
    b = broker_factory()
    topic = unique_topic(f"restart-{how}")
    create_topic(b.bootstrap, topic, PARTITIONS)
    first = gen_records(3000, PARTITIONS, seed=21)
    ck_produce(b.bootstrap, topic, first, **{"compression.type": "lz4"})
    if how == "sigterm":
        code = b.stop()
        assert code == 0, f"graceful shutdown (SIGTERM) exited with code {code}, want 0"
    else:
        b.kill9()
    b.start()
    assert_same(first, ck_read(b.bootstrap, topic, PARTITIONS), what=f"after {how} restart")
    second = gen_records(600, PARTITIONS, seed=22)
    ck_produce(b.bootstrap, topic, second)
    assert_same(first + second, ck_read(b.bootstrap, topic, PARTITIONS), what=f"appending after {how} restart")
    assert_same(first + second, kp_read(b.bootstrap, topic, PARTITIONS), what=f"kafka-python after {how} restart")


def test_restart_twice_and_topic_metadata_survives(broker_factory):
    b = broker_factory()
    topic = unique_topic("meta")
    create_topic(b.bootstrap, topic, 5, {"retention.ms": "86400000"})
    sent = gen_records(200, 5, seed=5)
    ck_produce(b.bootstrap, topic, sent)
    for how in ("sigterm", "kill9"):
        b.restart(graceful=how == "sigterm")
        from kit import admin, wait_topic
        wait_topic(b.bootstrap, topic, 5)
        from confluent_kafka.admin import ConfigResource, ResourceType
        res = ConfigResource(ResourceType.TOPIC, topic)
        a = admin(b.bootstrap)  # keep the handle alive until the future resolves
        cfg = a.describe_configs([res])[res].result(timeout=30)
        assert cfg["retention.ms"].value == "86400000", f"topic config lost after {how} restart"
        assert_same(sent, ck_read(b.bootstrap, topic, 5), what=f"after {how}")


N_IDEMPOTENT = 20_000


def test_idempotent_producer_survives_kill9(broker_factory):
    """kill -9 at a random point of an idempotent acks=all run: every acknowledged record is present
    exactly once at its acknowledged offset, and per-partition order holds."""
    seed = int(os.environ.get("TRIBUTARY_TEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    b = broker_factory()
    topic = unique_topic("idem")
    create_topic(b.bootstrap, topic, PARTITIONS)

    acked: dict[int, tuple[int, int]] = {}  # seq -> (partition, offset)
    failed: dict[int, str] = {}
    fatal: list[str] = []
    lock = threading.Lock()

    def on_delivery(err, msg):
        seq = int(msg.key())
        with lock:
            if err is None:
                acked[seq] = (msg.partition(), msg.offset())
            else:
                failed[seq] = str(err)

    def on_error(err):
        if err.fatal():
            fatal.append(str(err))

    p = ck_producer(b.bootstrap, **{"enable.idempotence": True, "acks": "all", "linger.ms": 2,
                                    "message.timeout.ms": 120_000, "error_cb": on_error,
                                    "reconnect.backoff.max.ms": 500})
    done = threading.Event()

    def run():
        try:
            for seq in range(N_IDEMPOTENT):
                while True:
                    try:
                        p.produce(topic, key=b"%d" % seq, value=b"value-%d" % seq, partition=seq % PARTITIONS,
                                  on_delivery=on_delivery)
                        break
                    except BufferError:
                        p.poll(0.05)
                p.poll(0)
                if seq % 500 == 0:
                    time.sleep(0.01)  # spread the run so the kill lands mid-stream
            p.flush(150)
        finally:
            done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    kill_after = rng.randint(1000, 12000)
    deadline = time.monotonic() + 60
    while len(acked) < kill_after and not done.is_set() and time.monotonic() < deadline:
        time.sleep(0.005)
    acked_at_kill = len(acked)
    assert not done.is_set() and acked_at_kill < N_IDEMPOTENT, \
        f"the producer finished before the kill (seed {seed}); this run would test nothing"
    b.kill9()
    time.sleep(rng.uniform(0.1, 1.5))
    b.start()
    assert done.wait(180), f"producer did not finish within 180s after the restart (seed {seed})"
    t.join(5)

    ctx = f"(seed {seed}, killed after {acked_at_kill} acks)"
    assert not fatal, f"idempotent producer hit a fatal error {ctx}: {fatal}"
    assert not failed, f"{len(failed)} records failed delivery {ctx}, e.g. {list(failed.items())[:3]}"
    assert len(acked) == N_IDEMPOTENT, f"only {len(acked)} of {N_IDEMPOTENT} records acknowledged {ctx}"

    got = ck_read(b.bootstrap, topic, PARTITIONS)
    seqs = [int(r.key) for r in got]
    dups = sorted({s for s in seqs if seqs.count(s) > 1}) if len(seqs) != len(set(seqs)) else []
    assert not dups, f"{len(dups)} records duplicated in the log {ctx}, e.g. {dups[:10]}"
    where = {int(r.key): (r.partition, r.offset) for r in got}
    missing = [s for s in acked if s not in where]
    assert not missing, f"{len(missing)} acknowledged records missing after kill -9 {ctx}, e.g. {missing[:10]}"
    moved = [(s, acked[s], where[s]) for s in acked if where[s] != acked[s]]
    assert not moved, f"{len(moved)} records not at their acknowledged (partition, offset) {ctx}: {moved[:5]}"
    for part in range(PARTITIONS):
        ps = [int(r.key) for r in got if r.partition == part]
        assert ps == sorted(ps), f"partition {part} out of producer order {ctx}"
        bad = [r for r in got if r.partition == part and r.value != b"value-%d" % int(r.key)]
        assert not bad, f"partition {part}: values corrupted {ctx}: {bad[:3]}"
