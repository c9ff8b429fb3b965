#!/usr/bin/env python3
"""Workload and checker for the fault harness (hack/cluster.sh), run from the venv hack/prereqs.sh makes.

Subcommands (each prints one JSON summary line on stdout; diagnostics go to stderr):
  create     create the test topic (RF, partitions, min.insync.replicas)
  produce    idempotent acks=all producer (confluent-kafka), bounded in records and time; every record
             carries a unique id; writes one JSON line per delivery report (acked: partition and offset the
             producer was told; failed: the error) to --out. hack/faults/java/FaultsProducer.java is the
             same producer on Apache kafka-clients (same arguments, reports and record values)
  check      reads every partition from the beginning to its end (assign + seek, no consumer group) and
             compares with the delivery reports: acknowledged, read, lost, duplicated, out of order per
             producer/partition, inconsistent offset, in total and per client kind (the `client` field of
             reports and records: confluent-kafka, java); writes the end offsets (high watermarks) to --hw-out
  read       reads partitions to their end and writes what it saw (id, partition, offset) to --out, to be
             compared later with `check --seen` (records a consumer saw must survive)
  replicas   with the cluster stopped, parses every replica's segment files (node-*/data/TOPIC-P/*.log under
             the run directory) and checks that every replica holds the same batches, byte for byte, below
             the high watermark check wrote
  metadata   leader, replicas and ISR of every partition of a topic (Metadata)
  controller the controller id DescribeCluster reports
  await-isr  waits until every partition's ISR has --size members (or --max members: shrinks to at most)

Exit status: 0 when there is no anomaly, 1 on an anomaly, 2 on a usage or environment error.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import struct
import sys
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

COMMON = {"broker.address.family": "v4"}
# The `client` field of this module's records and delivery reports; the Java producer writes "java".
CLIENT = "confluent-kafka"
# FAULTS_CLIENT_DEBUG=fetch,protocol,...: librdkafka's debug contexts for every client (logs on stderr).
if os.environ.get("FAULTS_CLIENT_DEBUG"):
    COMMON["debug"] = os.environ["FAULTS_CLIENT_DEBUG"]


def log(*args) -> None:
    print("workload:", *args, file=sys.stderr, flush=True)


def summary(obj: dict) -> None:
    print(json.dumps(obj, sort_keys=True), flush=True)


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, **COMMON})


# ---------------------------------------------------------------------------------------------- create


def cmd_create(a) -> int:
    topic = NewTopic(a.topic, num_partitions=a.partitions, replication_factor=a.rf,
                     config={"min.insync.replicas": str(a.min_isr)})
    client = admin(a.bootstrap)
    futures = client.create_topics([topic], operation_timeout=30, request_timeout=30)
    try:
        futures[a.topic].result(timeout=60)
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            log(f"create {a.topic}: {e}")
            return 2
    deadline = time.time() + 30
    while time.time() < deadline:
        parts = partitions_meta(a.bootstrap, a.topic)
        if parts and len(parts) == a.partitions and all(p["leader"] >= 0 and len(p["isr"]) == a.rf
                                                        for p in parts.values()):
            summary({"created": a.topic, "partitions": parts})
            return 0
        time.sleep(0.3)
    log(f"topic {a.topic} has no leader or a short ISR after 30 s: {partitions_meta(a.bootstrap, a.topic)}")
    return 2


# --------------------------------------------------------------------------------------------- produce


def cmd_produce(a) -> int:
    out = open(a.out, "a", buffering=1)
    counts = {"produced": 0, "acked": 0, "failed": 0}
    errors: dict[str, int] = {}
    fatal: list[str] = []
    t0 = time.time()

    def on_error(err: KafkaError) -> None:
        # Client-level errors (connection refused while a broker is down is normal); fatal ones end
        # the idempotent producer and are an anomaly.
        if err.fatal():
            fatal.append(str(err))
            log(f"FATAL producer error: {err}")

    def on_delivery(err, msg) -> None:
        rec = json.loads(msg.value())
        if err is None:
            counts["acked"] += 1
            out.write(json.dumps({"id": rec["id"], "p": msg.partition(), "off": msg.offset(),
                                  "seq": rec["seq"], "client": CLIENT, "t": round(time.time() - t0, 3)}) + "\n")
        else:
            counts["failed"] += 1
            name = err.name()
            errors[name] = errors.get(name, 0) + 1
            out.write(json.dumps({"id": rec["id"], "p": msg.partition(), "seq": rec["seq"], "client": CLIENT,
                                  "err": name,
                                  "code": err.code(), "retriable": err.retriable(), "fatal": err.fatal(),
                                  "msg": err.str(), "t": round(time.time() - t0, 3)}) + "\n")

    conf = {
        "bootstrap.servers": a.bootstrap, **COMMON,
        "enable.idempotence": True, "acks": "all",
        "linger.ms": 5, "delivery.timeout.ms": a.delivery_timeout_ms,
        "request.timeout.ms": min(30000, a.delivery_timeout_ms),
        "error_cb": on_error,
    }
    producer = Producer(conf)
    tag = a.tag or uuid.uuid4().hex[:8]
    partitions = list(range(a.partitions)) if a.partition is None else [a.partition]
    total = a.records * len(partitions)
    interval = 1.0 / a.rate if a.rate > 0 else 0.0
    seq = {p: 0 for p in partitions}
    i = 0
    next_at = time.time()
    while i < total and time.time() - t0 < a.duration and not fatal:
        if a.stop_file and i % 50 == 0 and os.path.exists(a.stop_file):
            break
        p = partitions[i % len(partitions)]
        value = json.dumps({"id": f"{tag}-{p}-{seq[p]}", "tag": tag, "p": p, "seq": seq[p],
                            "client": CLIENT}).encode()
        try:
            producer.produce(a.topic, value=value, key=tag.encode(), partition=p, on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.1)
            continue
        seq[p] += 1
        i += 1
        counts["produced"] += 1
        producer.poll(0)
        if interval:
            next_at += interval
            delay = next_at - time.time()
            if delay > 0:
                producer.poll(delay)
    produce_s = time.time() - t0
    pending = producer.flush(a.flush_timeout)
    out.close()
    counts.update(pending=pending, errors=errors, fatal=fatal, tag=tag, client=CLIENT,
                  produce_s=round(produce_s, 1), total_s=round(time.time() - t0, 1))
    summary(counts)
    bad = bool(fatal) or pending > 0 or (a.no_errors and counts["failed"] > 0)
    if bad:
        log(f"producer anomalies: fatal={fatal} pending={pending} failed={counts['failed']} {errors}")
    return 1 if bad else 0


# ----------------------------------------------------------------------------------------------- reading


def partitions_meta(bootstrap: str, topic: str) -> dict[int, dict]:
    try:
        md = admin(bootstrap).list_topics(topic, timeout=10)
    except KafkaException as e:
        log(f"metadata: {e}")
        return {}
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return {}
    return {p.id: {"leader": p.leader, "replicas": sorted(p.replicas), "isr": sorted(p.isrs),
                   "error": None if p.error is None else p.error.name()}
            for p in t.partitions.values()}


def read_all(bootstrap: str, topic: str, partitions: list[int], timeout: float) -> tuple[dict, dict, list]:
    """Every record of the partitions from the beginning to the end offset the broker reports when the
    read starts; returns ({partition: [(offset, value)]}, {partition: (low, high)}, problems)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, **COMMON, "group.id": f"faults-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "enable.partition.eof": True})
    records: dict[int, list] = {p: [] for p in partitions}
    marks: dict[int, tuple[int, int]] = {}
    problems: list[str] = []
    try:
        for p in partitions:
            try:
                marks[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15, cached=False)
            except KafkaException as e:
                problems.append(f"partition {p}: no end offset: {e}")
                return records, marks, problems
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        todo = {p for p in partitions if marks[p][1] > marks[p][0]}
        deadline = time.time() + timeout
        while todo and time.time() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    p = msg.partition()
                    if p in todo and msg.offset() >= marks[p][1]:
                        todo.discard(p)
                    continue
                problems.append(f"consumer error: {msg.error()}")
                log(f"consumer error: {msg.error()}")
                continue
            p = msg.partition()
            records[p].append((msg.offset(), msg.value()))
            if msg.offset() + 1 >= marks[p][1]:
                todo.discard(p)
        for p in sorted(todo):
            got = records[p][-1][0] + 1 if records[p] else marks[p][0]
            problems.append(f"partition {p}: read stopped at {got}, end offset {marks[p][1]} (timeout {timeout}s)")
    finally:
        consumer.close()
    return records, marks, problems


def load_jsonl(paths: list[str]) -> list[dict]:
    out = []
    for path in paths:
        with open(path) as f:
            out.extend(json.loads(line) for line in f if line.strip())
    return out


def cmd_read(a) -> int:
    partitions = a.partition or list(range(a.partitions))
    records, marks, problems = read_all(a.bootstrap, a.topic, partitions, a.timeout)
    with open(a.out, "w") as f:
        for p, recs in records.items():
            for off, value in recs:
                f.write(json.dumps({"id": json.loads(value)["id"], "p": p, "off": off}) + "\n")
    summary({"read": sum(len(r) for r in records.values()),
             "end_offsets": {p: m[1] for p, m in marks.items()}, "problems": problems})
    return 1 if problems else 0


# What the checker counts per client kind (and in total), in the order the result line shows them.
TALLY = ("acknowledged", "read", "lost", "duplicated", "out_of_order", "inconsistent_offset", "failed")


def client_of(rec: dict) -> str:
    return rec.get("client", "unknown")


def tally_text(c: dict) -> str:
    failed = c.get("failed", c.get("failed_reports", 0))
    text = (f"{c['acknowledged']} acked, {c['read']} read, {c['lost']} lost, {c['duplicated']} duplicated, "
            f"{c['out_of_order']} out of order")
    if c["inconsistent_offset"]:
        text += f", {c['inconsistent_offset']} at another offset"
    return text + (f" ({failed} failed)" if failed else "")


def cmd_check(a) -> int:
    t0 = time.time()
    reports = load_jsonl(a.acks)
    acked = {r["id"]: r for r in reports if "off" in r}
    failed = {r["id"]: r for r in reports if "err" in r}
    partitions = list(range(a.partitions))
    records, marks, problems = read_all(a.bootstrap, a.topic, partitions, a.timeout)

    seen: dict[str, list[tuple[int, int]]] = {}
    by_client: dict[str, dict[str, int]] = {}

    def tally(kind: str, what: str) -> None:
        by_client.setdefault(kind, dict.fromkeys(TALLY, 0))[what] += 1

    for r in acked.values():
        tally(client_of(r), "acknowledged")
    for r in failed.values():
        tally(client_of(r), "failed")
    out_of_order = 0
    gaps: list[dict] = []
    unacked_out_of_order = 0
    offsets_gaps = 0
    examples: dict[str, list] = {"lost": [], "duplicated": [], "out_of_order": [], "inconsistent_offset": [],
                                 "seen_then_lost": []}
    for p, recs in records.items():
        last_seq: dict[str, int] = {}
        prev_off = None
        for off, value in recs:
            rec = json.loads(value)
            seen.setdefault(rec["id"], []).append((p, off))
            tally(client_of(rec), "read")
            if rec["p"] != p:
                problems.append(f"record {rec['id']} for partition {rec['p']} read from partition {p}")
            tag = rec["tag"]
            if rec["id"] not in acked:
                # Order is promised for acknowledged records; a record whose delivery failed may sit in
                # the log more than once and anywhere (see the "duplicated" note below).
                unacked_out_of_order += tag in last_seq and rec["seq"] <= last_seq[tag]
                continue
            if tag in last_seq and rec["seq"] <= last_seq[tag]:
                out_of_order += 1
                tally(client_of(rec), "out_of_order")
                if len(examples["out_of_order"]) < 5:
                    examples["out_of_order"].append({"p": p, "off": off, "id": rec["id"], "after_seq": last_seq[tag]})
            last_seq[tag] = max(rec["seq"], last_seq.get(tag, -1))
            if prev_off is not None and off != prev_off + 1:
                offsets_gaps += 1
                if len(gaps) < 5:
                    gaps.append({"p": p, "after": prev_off, "next": off})
            prev_off = off

    lost = [i for i in acked if i not in seen]
    # Duplicates of acknowledged records are anomalies. A record whose delivery failed (a timeout:
    # librdkafka calls it "possibly persisted") may be in the log twice: when an in-flight request times
    # out, librdkafka bumps the producer epoch and re-sends the records not yet expired under the new epoch
    # with new sequence numbers, which no broker can tell from new records. Those are counted apart.
    duplicated = [i for i, where in seen.items() if len(where) > 1 and i in acked]
    duplicated_unacked = [i for i, where in seen.items() if len(where) > 1 and i not in acked]
    inconsistent = [i for i, r in acked.items() if i in seen and (r["p"], r["off"]) not in seen[i]]
    for what, ids in (("lost", lost), ("duplicated", duplicated), ("inconsistent_offset", inconsistent)):
        for i in ids:
            tally(client_of(acked[i]), what)
    for name, ids in (("lost", lost), ("duplicated", duplicated), ("inconsistent_offset", inconsistent)):
        for i in ids[:5]:
            examples[name].append({"id": i, "acked": acked.get(i), "read_at": seen.get(i)})
    # Records a consumer saw earlier (read while faults were active) must still be there, at that offset.
    seen_then_lost = []
    if a.seen:
        for r in load_jsonl([a.seen]):
            if (r["p"], r["off"]) not in seen.get(r["id"], []):
                seen_then_lost.append(r["id"])
        examples["seen_then_lost"] = seen_then_lost[:5]
    read_unacked = sum(1 for i in seen if i not in acked)
    counts = {
        "acknowledged": len(acked), "failed_reports": len(failed), "read": sum(len(r) for r in records.values()),
        "distinct_read": len(seen), "lost": len(lost), "duplicated": len(duplicated),
        "out_of_order": out_of_order, "inconsistent_offset": len(inconsistent), "seen_then_lost": len(seen_then_lost),
        "duplicated_unacked": len(duplicated_unacked), "out_of_order_unacked": unacked_out_of_order,
        "read_unacked": read_unacked, "offset_gaps": offsets_gaps,
        "end_offsets": {p: m[1] for p, m in marks.items()}, "problems": problems,
        "check_s": round(time.time() - t0, 1), "by_client": by_client,
    }
    counts["tally"] = " | ".join([f"all: {tally_text(counts)}"] +
                                 [f"{kind}: {tally_text(c)}" for kind, c in sorted(by_client.items())])
    anomalies = (len(lost) + len(duplicated) + out_of_order + len(inconsistent) + len(seen_then_lost)
                 + len(problems) + offsets_gaps)
    if duplicated_unacked:
        examples["duplicated_unacked"] = [{"id": i, "failed": failed.get(i), "read_at": seen[i]}
                                          for i in duplicated_unacked[:3]]
    if gaps:
        # The test topic has no transactions and no compaction, so its offsets are contiguous: a gap is a
        # batch below the end offset that the consumer was not given (seen in crash-all with records whose
        # delivery had failed, so `lost` did not count them). An anomaly.
        examples["offset_gaps"] = gaps
    if anomalies or duplicated_unacked or gaps:
        counts["examples"] = {k: v for k, v in examples.items() if v}
    if a.hw_out:
        with open(a.hw_out, "w") as f:
            json.dump({str(p): m[1] for p, m in marks.items()}, f)
    summary(counts)
    return 1 if anomalies else 0


# ---------------------------------------------------------------------------------------------- replicas

_CRC32C = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC32C
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def batches(partition_dir: str) -> tuple[list[dict], list[str]]:
    """(baseOffset, lastOffset, leader epoch, CRC, CRC valid, sha256) for every batch in the directory's
    segments, in offset order."""
    out, problems = [], []
    for seg in sorted(glob.glob(os.path.join(partition_dir, "*.log"))):
        data = open(seg, "rb").read()
        pos = 0
        while pos + 12 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            if length <= 0 or pos + 12 + length > len(data):
                # A torn tail (kill -9 mid-write) past the recovery point; recovery truncates it on start.
                problems.append(f"{seg}: torn batch at byte {pos} (length {length}, file {len(data)})")
                break
            epoch, magic, crc = struct.unpack_from(">ibI", data, pos + 12)
            last_delta = struct.unpack_from(">i", data, pos + 23)[0]
            body = data[pos + 21: pos + 12 + length]
            out.append({"base": base, "last": base + last_delta, "epoch": epoch, "crc": crc, "magic": magic,
                        "crc_ok": crc32c(body) == crc,
                        "sha": hashlib.sha256(data[pos: pos + 12 + length]).hexdigest()[:16]})
            pos += 12 + length
    return out, problems


def cmd_replicas(a) -> int:
    hw = {int(p): h for p, h in json.load(open(a.hw)).items()}
    anomalies: list[str] = []
    per_partition = {}
    for p, high in sorted(hw.items()):
        dirs = sorted(glob.glob(os.path.join(a.run_dir, "node-*", "data", f"{a.topic}-{p}")))
        if len(dirs) != a.rf:
            anomalies.append(f"partition {p}: {len(dirs)} replica directories, want {a.rf}: {dirs}")
        views = {}
        for d in dirs:
            node = d.split(os.sep)[-3]
            bs, problems = batches(d)
            below = [b for b in bs if b["base"] < high]
            for b in below:
                if not b["crc_ok"]:
                    anomalies.append(f"partition {p} {node}: batch at {b['base']} has a bad CRC")
            end = below[-1]["last"] + 1 if below else 0
            if below and end < high:
                anomalies.append(f"partition {p} {node}: batches below the HW {high} end at {end}")
            elif not below and high > 0:
                anomalies.append(f"partition {p} {node}: no batch below the HW {high}")
            views[node] = [(b["base"], b["last"], b["epoch"], b["crc"], b["sha"]) for b in below]
            per_partition.setdefault(p, {})[node] = {"batches_below_hw": len(below), "batches": len(bs),
                                                    "log_end": bs[-1]["last"] + 1 if bs else 0,
                                                    "epochs": sorted({b["epoch"] for b in bs}),
                                                    "torn_tails": len(problems)}
        reference = next(iter(views.values()), None)
        for node, view in views.items():
            if view != reference:
                first = next((i for i, (x, y) in enumerate(zip(view, reference)) if x != y),
                             min(len(view), len(reference)))
                anomalies.append(f"partition {p}: {node} differs from {next(iter(views))} below the HW {high} "
                                 f"at batch #{first}: {view[first:first + 1]} vs {reference[first:first + 1]}")
    summary({"hw": hw, "replicas": per_partition, "anomalies": anomalies})
    return 1 if anomalies else 0


# -------------------------------------------------------------------------------------------- metadata


def cmd_metadata(a) -> int:
    summary(partitions_meta(a.bootstrap, a.topic))
    return 0


def cmd_controller(a) -> int:
    """The controller id from Metadata (`controller`, what the harness waits on: any live broker answers it)
    and from DescribeCluster (`describe_cluster`; librdkafka may send it to the old controller and wait
    out its timeout while that one is down, so it is asked with a short timeout and -1 means no answer)."""
    client = admin(a.bootstrap)
    try:
        md = client.list_topics(timeout=10)
    except KafkaException as e:
        log(f"metadata: {e}")
        return 2
    described = -1
    try:
        result = client.describe_cluster(request_timeout=3).result(timeout=5)
        described = result.controller.id if result.controller else -1
    except Exception as e:  # noqa: BLE001 - a probe: any failure is "no answer"
        log(f"describe_cluster: {e}")
    summary({"controller": md.controller_id, "describe_cluster": described, "brokers": sorted(md.brokers)})
    return 0


def cmd_await_isr(a) -> int:
    t0 = time.time()
    parts = {}
    while time.time() - t0 < a.timeout:
        parts = partitions_meta(a.bootstrap, a.topic)
        wanted = [a.partition] if a.partition is not None else list(parts)
        ok = bool(parts) and all(
            (a.size is None or len(parts[p]["isr"]) == a.size) and
            (a.max is None or len(parts[p]["isr"]) <= a.max) and
            (a.without is None or a.without not in parts[p]["isr"])
            for p in wanted) and all(p in parts for p in wanted)
        if ok:
            summary({"after_s": round(time.time() - t0, 1), "partitions": parts})
            return 0
        time.sleep(0.25)
    log(f"ISR condition not met in {a.timeout}s: {parts}")
    summary({"after_s": None, "partitions": parts})
    return 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def cmd(name, fn, topic=True):
        s = sub.add_parser(name)
        s.set_defaults(fn=fn)
        if name != "replicas":
            s.add_argument("--bootstrap", required=True)
        if topic:
            s.add_argument("--topic", required=True)
        return s

    s = cmd("create", cmd_create)
    s.add_argument("--partitions", type=int, default=3)
    s.add_argument("--rf", type=int, default=3)
    s.add_argument("--min-isr", type=int, default=2)
    s = cmd("produce", cmd_produce)
    s.add_argument("--partitions", type=int, default=3)
    s.add_argument("--partition", type=int, help="only this partition")
    s.add_argument("--records", type=int, default=1000, help="records per partition")
    s.add_argument("--rate", type=float, default=200, help="records per second over all partitions (0: no limit)")
    s.add_argument("--duration", type=float, default=60, help="stop producing after this many seconds")
    s.add_argument("--flush-timeout", type=float, default=90)
    s.add_argument("--delivery-timeout-ms", type=int, default=60000)
    s.add_argument("--no-errors", action="store_true", help="a failed delivery report is an anomaly")
    s.add_argument("--stop-file", help="stop producing once this file exists (then flush)")
    s.add_argument("--tag", help="producer name in record ids (default random)")
    s.add_argument("--out", required=True)
    s = cmd("check", cmd_check)
    s.add_argument("--partitions", type=int, default=3)
    s.add_argument("--acks", nargs="+", required=True)
    s.add_argument("--seen", help="a file `read` wrote: records that must still be there")
    s.add_argument("--hw-out")
    s.add_argument("--timeout", type=float, default=60)
    s = cmd("read", cmd_read)
    s.add_argument("--partitions", type=int, default=3)
    s.add_argument("--partition", type=int, action="append", help="only these partitions (repeatable)")
    s.add_argument("--out", required=True)
    s.add_argument("--timeout", type=float, default=30)
    s = cmd("replicas", cmd_replicas)
    s.add_argument("--run-dir", required=True)
    s.add_argument("--hw", required=True)
    s.add_argument("--rf", type=int, default=3)
    cmd("metadata", cmd_metadata)
    cmd("controller", cmd_controller, topic=False)
    s = cmd("await-isr", cmd_await_isr)
    s.add_argument("--partition", type=int)
    s.add_argument("--size", type=int)
    s.add_argument("--max", type=int)
    s.add_argument("--without", type=int, help="this broker is not in the ISR")
    s.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
