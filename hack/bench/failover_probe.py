#!/usr/bin/env python3
"""Failover probe for hack/bench-cluster.sh (confluent-kafka, the venv of hack/prereqs.sh).

  failover_probe.py meta BOOTSTRAP TOPIC
      One line per partition, `partition=P leader=L isr=N replicas=R ids=A,B,..` (the replica ids, sorted), then `controller=C` (DescribeCluster's
      controller id) and `brokers=B` (brokers in Metadata). Exit 1 when the metadata call fails.

  failover_probe.py produce BOOTSTRAP TOPIC PARTITIONS OUT [INTERVAL_MS]
      Produces continuously, acks=all + idempotence, to every partition 0..PARTITIONS-1 in turn, one record
      every INTERVAL_MS (default 5) ms, linger.ms=0, until SIGTERM. Every delivery report is appended to OUT
      (flushed at once) as `<ack epoch ms> <partition> ok <offset> <send epoch ms>` or
      `<ack epoch ms> <partition> err <error name> <send epoch ms>`, so the caller can find the first
      acknowledged record that was sent to a partition after a kill -9 it timed itself (a record sent before
      the kill may be acknowledged just after it: it was replicated before the kill).
      A new record is not sent to a partition that has 200 records in flight (the probe measures the gap, not
      a backlog).

Client settings, the same against every broker: acks=all, enable.idempotence=true, linger.ms=0,
message.timeout.ms=120000 (a record is retried, not failed, across a failover), socket.timeout.ms=10000,
everything else librdkafka's default (metadata refresh after an error: retry.backoff.ms 100 ms).
"""
import signal
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient


def meta(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000})
    md = admin.list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        print(f"topic {topic}: {t.error if t else 'missing'}", file=sys.stderr)
        return 1
    for p in sorted(t.partitions.values(), key=lambda p: p.id):
        print(f"partition={p.id} leader={p.leader} isr={len(p.isrs)} replicas={len(p.replicas)} "
              f"ids={','.join(str(r) for r in sorted(p.replicas))}")
    controller = -1
    try:
        controller = admin.describe_cluster(request_timeout=10).result(timeout=15).controller.id
    except Exception as e:  # noqa: BLE001 - reported, the caller falls back
        print(f"describe_cluster: {e}", file=sys.stderr)
    print(f"controller={controller}")
    print(f"brokers={len(md.brokers)}")
    return 0


def produce(bootstrap, topic, partitions, out_path, interval_ms=5.0):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    out = open(out_path, "a", buffering=1)
    inflight = [0] * partitions

    def report(err, msg, sent):
        p = msg.partition()
        inflight[p] -= 1
        now = int(time.time() * 1000)
        if err is None:
            out.write(f"{now} {p} ok {msg.offset()} {sent}\n")
        else:
            out.write(f"{now} {p} err {err.name()} {sent}\n")

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 0,
        "message.timeout.ms": 120000,
        "socket.timeout.ms": 10000,
    })
    payload = b"x" * 100
    p = 0
    next_send = time.monotonic()
    while not stop:
        if inflight[p] < 200:
            try:
                sent = int(time.time() * 1000)
                producer.produce(topic, payload, partition=p,
                                 on_delivery=lambda err, msg, sent=sent: report(err, msg, sent))
                inflight[p] += 1
            except BufferError:
                pass
        p = (p + 1) % partitions
        next_send += interval_ms / 1000.0
        delay = next_send - time.monotonic()
        producer.poll(max(0.0, delay))
        if delay < -1.0:
            next_send = time.monotonic()
    producer.flush(5)
    out.close()
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "meta":
        return meta(argv[1], argv[2])
    if len(argv) >= 5 and argv[0] == "produce":
        return produce(argv[1], argv[2], int(argv[3]), argv[4], float(argv[5]) if len(argv) > 5 else 5.0)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
