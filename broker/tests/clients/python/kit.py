"""Client helpers shared by the tests: record generation, produce and read-back with
confluent-kafka (librdkafka), kafka-python and kcat, and a byte-exact comparison.

Consumers never join a group (consumer groups are not implemented by Tributary yet):
kafka-python runs with group_id=None; confluent-kafka insists on a group.id, so it gets a
throwaway one with auto-commit off and only assign() is used.
"""

from __future__ import annotations

import random
import subprocess
import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

READ_TIMEOUT_S = 60.0
COMMON = {"broker.address.family": "v4"}


@dataclass(frozen=True)
class Rec:
    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int | None = None  # CreateTime in ms; None = let the client stamp it
    offset: int = field(default=-1, compare=False)

    def content(self, with_ts: bool = True, with_headers: bool = True):
        return (self.key, self.value, self.headers if with_headers else None, self.timestamp if with_ts else None)


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def rand_bytes(rng: random.Random, lo: int, hi: int) -> bytes:
    return rng.randbytes(rng.randint(lo, hi))


def gen_records(n: int, partitions: int, seed: int, *, headers: bool = True, timestamps: bool = True,
                nulls: bool = True, max_len: int = 300) -> list[Rec]:
    """Random binary records spread over partitions, including empty and null keys/values."""
    rng = random.Random(seed)
    base_ts = int(time.time() * 1000) - 3_600_000
    out = []
    for i in range(n):
        special = i % 11
        key = None if (nulls and special == 0) else b"" if special == 1 else rand_bytes(rng, 1, 40)
        value = None if (nulls and special == 2) else b"" if special == 3 else rand_bytes(rng, 1, max_len)
        hdrs: tuple = ()
        if headers and special in (4, 5, 6, 7):
            hdrs = tuple((f"h{j}-{rng.randint(0, 9)}", rand_bytes(rng, 0, 20)) for j in range(rng.randint(1, 3)))
            if special == 5:  # duplicate header keys keep their order
                hdrs = hdrs + ((hdrs[0][0], b"dup"),)
        ts = base_ts + i * 7 if timestamps else None
        out.append(Rec(partition=i % partitions, key=key, value=value, headers=hdrs, timestamp=ts))
    return out


def by_partition(recs) -> dict[int, list[Rec]]:
    out: dict[int, list[Rec]] = {}
    for r in recs:
        out.setdefault(r.partition, []).append(r)
    return out


def assert_same(sent: list[Rec], got: list[Rec], *, with_ts: bool = True, with_headers: bool = True,
                what: str = "") -> None:
    """Every sent record back exactly once, in order per partition, byte for byte; offsets contiguous."""
    s, g = by_partition(sent), by_partition(got)
    assert sorted(g) == sorted(s) or not (set(g) - set(s)), \
        f"{what}: records read from partitions {sorted(set(g) - set(s))} that nothing was sent to"
    for p, sent_p in sorted(s.items()):
        got_p = g.get(p, [])
        offs = [r.offset for r in got_p]
        assert offs == list(range(offs[0], offs[0] + len(offs))) if offs else True, \
            f"{what}: partition {p}: offsets not contiguous/increasing: {offs[:20]}..."
        assert len(got_p) == len(sent_p), \
            f"{what}: partition {p}: sent {len(sent_p)} records, read back {len(got_p)}"
        for i, (a, b) in enumerate(zip(sent_p, got_p)):
            assert a.content(with_ts, with_headers) == b.content(with_ts, with_headers), (
                f"{what}: partition {p} record #{i} (offset {b.offset}) differs:\n"
                f"  sent key={a.key!r:.80} value={a.value!r:.80} headers={a.headers!r:.120} ts={a.timestamp}\n"
                f"  got  key={b.key!r:.80} value={b.value!r:.80} headers={b.headers!r:.120} ts={b.timestamp}")


# ---------------------------------------------------------------- admin (confluent-kafka)

def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, **COMMON})


def create_topic(bootstrap: str, name: str, partitions: int, config: dict[str, str] | None = None) -> None:
    a = admin(bootstrap)  # keep the handle alive until the future resolves
    fut = a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=30, request_timeout=30)[name]
    fut.result(timeout=40)
    wait_topic(bootstrap, name, partitions)


def wait_topic(bootstrap: str, name: str, partitions: int, timeout: float = 20.0) -> None:
    a = admin(bootstrap)
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        t = a.list_topics(topic=name, timeout=10).topics.get(name)
        seen = t
        if t is not None and t.error is None and len(t.partitions) == partitions \
                and all(pm.leader >= 0 for pm in t.partitions.values()):
            return
        time.sleep(0.2)
    raise AssertionError(f"topic {name} not visible with {partitions} led partitions within {timeout}s: {seen}")


# ---------------------------------------------------------------- confluent-kafka

def ck_producer(bootstrap: str, **conf) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, **COMMON, **conf})


def ck_produce(bootstrap: str, topic: str, recs: list[Rec], **conf) -> None:
    p = ck_producer(bootstrap, **conf)
    errors = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)

    for r in recs:
        kw = {}
        if r.timestamp is not None:
            kw["timestamp"] = r.timestamp
        if r.headers:
            kw["headers"] = list(r.headers)
        while True:
            try:
                p.produce(topic, value=r.value, key=r.key, partition=r.partition, on_delivery=cb, **kw)
                break
            except BufferError:
                p.poll(0.1)
    left = p.flush(60)
    assert left == 0, f"confluent-kafka: {left} records not delivered within 60s"
    assert not errors, f"confluent-kafka delivery errors ({len(errors)}): {errors[:3]}"


def ck_consumer(bootstrap: str, **conf) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": f"unused-{uuid.uuid4().hex[:8]}",
                     "enable.auto.commit": False, "enable.auto.offset.store": False,
                     "auto.offset.reset": "earliest", **COMMON, **conf})


_TRANSIENT = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError._TIMED_OUT,
              KafkaError._TRANSPORT, KafkaError.UNKNOWN_TOPIC_OR_PART}


def watermarks(c: Consumer, topic: str, p: int, timeout: float = 15.0) -> tuple[int, int]:
    """ListOffsets earliest/latest, retrying retriable errors (e.g. just after a restart) for a bound."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        except KafkaException as e:
            err = e.args[0]
            transient = err.retriable() or err.code() in _TRANSIENT
            if not transient or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def ck_watermarks(bootstrap: str, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    c = ck_consumer(bootstrap)
    try:
        return {p: watermarks(c, topic, p) for p in range(partitions)}
    finally:
        c.close()


def ck_read(bootstrap: str, topic: str, partitions: int, start=OFFSET_BEGINNING, **conf) -> list[Rec]:
    """Reads every partition from `start` up to the high watermark seen when called."""
    c = ck_consumer(bootstrap, **conf)
    try:
        ends = {p: watermarks(c, topic, p)[1] for p in range(partitions)}
        c.assign([TopicPartition(topic, p, start) for p in range(partitions)])
        pos = {p: -1 for p in range(partitions)}
        out: list[Rec] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while any(pos[p] + 1 < ends[p] for p in ends) and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"confluent-kafka consumer error: {m.error()}")
            tstype, ts = m.timestamp()
            out.append(Rec(m.partition(), m.key(), m.value(), tuple(m.headers() or ()), ts, m.offset()))
            pos[m.partition()] = m.offset()
        short = {p: (pos[p] + 1, ends[p]) for p in ends if pos[p] + 1 < ends[p]}
        assert not short, f"confluent-kafka: partitions not read to the high watermark in " \
                          f"{READ_TIMEOUT_S}s (next offset, high watermark): {short}"
        return out
    finally:
        c.close()


# ---------------------------------------------------------------- kafka-python

def kp_produce(bootstrap: str, topic: str, recs: list[Rec], **conf) -> None:
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **conf)
    try:
        futs = [p.send(topic, value=r.value, key=r.key, partition=r.partition,
                       headers=[(k, v) for k, v in r.headers] or None, timestamp_ms=r.timestamp) for r in recs]
        p.flush(timeout=60)
        for f in futs:
            f.get(timeout=10)
    finally:
        p.close(timeout=10)


def kp_read(bootstrap: str, topic: str, partitions: int, **conf) -> list[Rec]:
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition as KTP
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **conf)
    try:
        tps = [KTP(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        ends = c.end_offsets(tps)
        out: list[Rec] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while any(c.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
            for tp, msgs in c.poll(timeout_ms=500).items():
                for m in msgs:
                    out.append(Rec(m.partition, m.key, m.value, tuple((k, v) for k, v in (m.headers or [])),
                                   m.timestamp, m.offset))
        short = {tp.partition: (c.position(tp), ends[tp]) for tp in tps if c.position(tp) < ends[tp]}
        assert not short, f"kafka-python: partitions not read to the high watermark in {READ_TIMEOUT_S}s " \
                          f"(position, end): {short}"
        return out
    finally:
        c.close()


# ---------------------------------------------------------------- kcat (subprocess)

def kcat(args: list[str], input: bytes | None = None, timeout: float = 60) -> bytes:
    r = subprocess.run(["kcat", "-X", "broker.address.family=v4", *args], input=input, capture_output=True,
                       timeout=timeout)
    assert r.returncode == 0, f"kcat {' '.join(args)} exited {r.returncode}: {r.stderr.decode(errors='replace')[-2000:]}"
    return r.stdout


def kcat_produce_files(bootstrap: str, topic: str, partition: int, payloads: list[bytes], tmpdir,
                       codec: str = "none", headers: tuple[tuple[str, bytes], ...] = ()) -> None:
    """kcat -P with one file per message: arbitrary binary values, null keys."""
    files = []
    for i, v in enumerate(payloads):
        f = tmpdir / f"kcat-{partition}-{i}.bin"
        f.write_bytes(v)
        files.append(str(f))
    hargs = [a for k, v in headers for a in ("-H", f"{k}={v.decode()}")]
    kcat(["-b", bootstrap, "-P", "-t", topic, "-p", str(partition), "-z", codec, *hargs, *files])


def kcat_produce_keyed(bootstrap: str, topic: str, partition: int, pairs: list[tuple[bytes, bytes]],
                       codec: str = "none") -> None:
    """kcat -P -K with a key delimiter; keys/values must not contain the delimiters."""
    data = b"".join(k + b"\x1f" + v + b"\n" for k, v in pairs)
    kcat(["-b", bootstrap, "-P", "-t", topic, "-p", str(partition), "-z", codec, "-K", "\x1f"], input=data)


def kcat_read(bootstrap: str, topic: str, partition: int) -> list[Rec]:
    """kcat -C non-group mode, parsed from a length-prefixed format so binary data survives."""
    fmt = "%K|%k|%S|%s|%T|%o|%h\\n"
    out = kcat(["-b", bootstrap, "-C", "-t", topic, "-p", str(partition), "-o", "beginning", "-e",
                "-q", "-f", fmt])
    recs, i = [], 0

    def until(sep: bytes) -> bytes:
        nonlocal i
        j = out.index(sep, i)
        s, i = out[i:j], j + len(sep)
        return s

    def take(n: int) -> bytes:
        nonlocal i
        s, i = out[i:i + n], i + n
        return s

    while i < len(out):
        klen = int(until(b"|"))
        key = None if klen < 0 else take(klen)
        assert take(1) == b"|"
        vlen = int(until(b"|"))
        value = None if vlen < 0 else take(vlen)
        assert take(1) == b"|"
        ts = int(until(b"|"))
        off = int(until(b"|"))
        hdr = until(b"\n")
        headers = () if hdr in (b"", b"-") else tuple(
            (kv.split(b"=", 1)[0].decode(), kv.split(b"=", 1)[1]) for kv in hdr.split(b","))
        recs.append(Rec(partition, key, value, headers, ts, off))
    return recs
