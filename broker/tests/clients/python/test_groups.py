"""Consumer groups, classic protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup, OffsetCommit/OffsetFetch,
group admin), with Kafka semantics; plus log compaction.

Every wait is a poll loop with a deadline. Offsets are committed explicitly and synchronously
(auto-commit commits the previous poll's offsets, see HAZARDS.md), except in kcat, which cannot
be told otherwise and whose commits the test does not rely on.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import (OFFSET_INVALID, Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaError,
                             KafkaException, TopicPartition)

from kit import COMMON, Rec, admin, ck_produce, ck_read, create_topic, unique_topic

PARTS = 6
SESSION_MS = 6000  # Kafka's group.min.session.timeout.ms default
HEARTBEAT_MS = 500
ASSIGN_TIMEOUT_S = 60.0
CONSUME_TIMEOUT_S = 60.0
HERE = Path(__file__).resolve().parent


def unique_group(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def member_conf(bootstrap: str, group: str, **extra) -> dict:
    return {"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "classic",
            "partition.assignment.strategy": "range", "session.timeout.ms": SESSION_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", **COMMON, **extra}


def error_code(fut, timeout=40):
    try:
        fut.result(timeout=timeout)
        return None
    except KafkaException as e:
        return e.args[0].code()


class Group:
    """In-process confluent-kafka members polled round-robin from one thread (callbacks and
    assignment changes are served by poll); records read are kept per member."""

    def __init__(self, bootstrap: str, group: str, topic: str, n: int, **extra):
        self.topic = topic
        self.group = group
        self.members = [Consumer(member_conf(bootstrap, group, **extra)) for _ in range(n)]
        self.got: list[list[Rec]] = [[] for _ in range(n)]
        for c in self.members:
            c.subscribe([topic])

    def pump(self, timeout: float = 0.03) -> None:
        for i, c in enumerate(self.members):
            for m in c.consume(num_messages=500, timeout=timeout):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"group {self.group} member {i}: consumer error {m.error()}")
                self.got[i].append(Rec(m.partition(), m.key(), m.value(), (), m.timestamp()[1], m.offset()))

    def assignments(self) -> list[list[int]]:
        return [sorted(tp.partition for tp in c.assignment() if tp.topic == self.topic) for c in self.members]

    def close(self) -> None:
        for c in self.members:
            c.close()
        self.members = []


def exact_cover(assigns: list[list[int]], parts: int) -> bool:
    flat = [p for a in assigns for p in a]
    return sorted(flat) == list(range(parts))


def wait_assignment(pump, current, parts: int, sizes: list[int], what: str,
                    timeout: float = ASSIGN_TIMEOUT_S, stable_s: float = 1.5) -> list[list[int]]:
    """Pumps until `current()` is an exact cover of the partitions with the given sorted sizes, unchanged
    for `stable_s` (a transient state between generations must not count)."""
    deadline = time.monotonic() + timeout
    since, seen = None, None
    while time.monotonic() < deadline:
        pump()
        a = current()
        if exact_cover(a, parts) and sorted(len(x) for x in a) == sorted(sizes):
            if a != seen:
                since, seen = time.monotonic(), a
            elif time.monotonic() - since >= stable_s:
                return a
        else:
            since, seen = None, None
    raise AssertionError(f"{what}: no stable assignment of {parts} partitions with sizes {sorted(sizes)} "
                         f"within {timeout}s; last: {current()}")


def describe(bootstrap: str, group: str):
    a = admin(bootstrap)
    return a.describe_consumer_groups([group], request_timeout=30)[group].result(timeout=40)


def wait_described(bootstrap: str, group: str, pump, ok, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    d = None
    while time.monotonic() < deadline:
        d = describe(bootstrap, group)
        if ok(d):
            return d
        for _ in range(5):
            pump()
    raise AssertionError(f"{what}: DescribeGroups never matched within {timeout}s; last: state={d and d.state} "
                         f"members={d and [(m.member_id, m.assignment.topic_partitions) for m in d.members]}")


def consume_until(pump, count, want: int, what: str, timeout: float = CONSUME_TIMEOUT_S, linger_s: float = 1.0):
    """Pumps until `count()` reaches `want`, then `linger_s` more (to catch duplicates)."""
    deadline = time.monotonic() + timeout
    while count() < want and time.monotonic() < deadline:
        pump()
    assert count() >= want, f"{what}: read {count()} of {want} records within {timeout}s"
    end = time.monotonic() + linger_s
    while time.monotonic() < end:
        pump()


def produce_values(bootstrap: str, topic: str, n: int, parts: int, start: int = 0) -> list[Rec]:
    recs = [Rec(i % parts, b"k%d" % i, b"v%d" % i) for i in range(start, start + n)]
    ck_produce(bootstrap, topic, recs)
    return recs


def assert_exactly_once(sent: list[Rec], got: list[Rec], what: str) -> None:
    want = sorted((r.partition, r.value) for r in sent)
    have = sorted((r.partition, r.value) for r in got)
    dup = {x for x in have if have.count(x) > 1} if len(have) != len(set(have)) else set()
    assert not dup, f"{what}: {len(dup)} records delivered more than once, e.g. {sorted(dup)[:5]}"
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    assert not missing and not extra, f"{what}: missing {len(missing)} {missing[:5]}, unexpected {extra[:5]}"


# ------------------------------------------------------------------ assignment


@pytest.mark.parametrize("n,strategy", [(3, "range"), (7, "roundrobin")])
def test_members_split_partitions(broker, n, strategy):
    topic = unique_topic(f"grp{n}")
    create_topic(broker.bootstrap, topic, PARTS)
    g = Group(broker.bootstrap, unique_group(f"split{n}"), topic, n, **{"partition.assignment.strategy": strategy})
    try:
        sizes = [2, 2, 2] if n == 3 else [1] * 6 + [0]
        assigns = wait_assignment(g.pump, g.assignments, PARTS, sizes, f"{n} members ({strategy})")
        ids = [c.memberid() for c in g.members]
        assert all(ids) and len(set(ids)) == n, f"member ids not distinct/non-empty: {ids}"
        want = {ids[i]: assigns[i] for i in range(n)}

        def matches(d):
            got = {m.member_id: sorted(tp.partition for tp in m.assignment.topic_partitions) for m in d.members}
            return d.state == ConsumerGroupState.STABLE and got == want

        d = wait_described(broker.bootstrap, g.group, g.pump, matches, "describe after assignment")
        assert d.partition_assignor == strategy, f"protocol name {d.partition_assignor!r}, want {strategy!r}"
    finally:
        g.close()


# ------------------------------------------------------------------ member killed without leaving


class Child:
    """group_member.py in a subprocess; its stdout lines are read by a thread."""

    def __init__(self, conf: dict, topic: str, lifetime: float = 90.0):
        self.err = tempfile.TemporaryFile()  # not a pipe: nobody drains it while the test runs
        self.proc = subprocess.Popen([sys.executable, str(HERE / "group_member.py"), json.dumps(conf), topic,
                                      str(lifetime)], stdout=subprocess.PIPE, stderr=self.err,
                                     stdin=subprocess.DEVNULL)
        self.lines: queue.Queue = queue.Queue()
        self.assignment: list[int] = []
        self.records: list[tuple[int, int]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def drain(self):
        while True:
            try:
                ev = self.lines.get_nowait()
            except queue.Empty:
                return
            if "assignment" in ev:
                self.assignment = ev["assignment"]
            elif "record" in ev:
                self.records.append(tuple(ev["record"]))
            else:
                raise AssertionError(f"child consumer: {ev}")

    def stderr(self) -> bytes:
        self.err.seek(0)
        return self.err.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


def test_killed_member_partitions_reassigned_after_session_timeout(broker):
    topic = unique_topic("grpkill")
    create_topic(broker.bootstrap, topic, PARTS)
    group = unique_group("kill")
    child = Child(member_conf(broker.bootstrap, group), topic)
    g = Group(broker.bootstrap, group, topic, 2)
    try:
        def pump():
            g.pump()
            child.drain()
            assert child.proc.poll() is None, f"child consumer exited early: {child.stderr()[-2000:]!r}"

        wait_assignment(pump, lambda: g.assignments() + [child.assignment], PARTS, [2, 2, 2], "3 members")
        killed = child.assignment
        child.kill()
        t0 = time.monotonic()
        after = wait_assignment(g.pump, g.assignments, PARTS, [3, 3], "after SIGKILL of a member",
                                timeout=SESSION_MS / 1000 + 40, stable_s=0.5)
        elapsed = time.monotonic() - t0
        # The last heartbeat was at most HEARTBEAT_MS before the kill, so expiry cannot come before
        # SESSION_MS - HEARTBEAT_MS; a closed TCP connection alone must not evict a classic member.
        assert elapsed >= (SESSION_MS - HEARTBEAT_MS) / 1000 - 0.5, \
            f"partitions {killed} of the killed member reassigned after {elapsed:.1f}s, before the session timeout"
        assert elapsed <= SESSION_MS / 1000 + 20, f"reassignment took {elapsed:.1f}s"
        assert set(killed) <= {p for a in after for p in a}
    finally:
        child.kill()
        g.close()


# ------------------------------------------------------------------ independent groups


def test_two_groups_each_read_everything(broker):
    topic = unique_topic("grp2")
    create_topic(broker.bootstrap, topic, 3)
    a = Group(broker.bootstrap, unique_group("a"), topic, 2)
    b = Group(broker.bootstrap, unique_group("b"), topic, 1)
    try:
        # Stable before producing: no partition moves after records are read, so no re-delivery.
        wait_assignment(a.pump, a.assignments, 3, [1, 2], "group a")
        wait_assignment(b.pump, b.assignments, 3, [3], "group b")
        sent = produce_values(broker.bootstrap, topic, 300, 3)

        def pump():
            a.pump()
            b.pump()

        consume_until(pump, lambda: min(sum(map(len, a.got)), sum(map(len, b.got))), len(sent), "two groups")
        assert_exactly_once(sent, [r for m in a.got for r in m], "group a")
        assert_exactly_once(sent, [r for m in b.got for r in m], "group b")
        assert all(a.got), f"a member of group a read nothing: {[len(x) for x in a.got]}"
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------------ commit, restart, resume


@pytest.fixture
def restartable(request):
    """The shared broker for how == 'none', a dedicated restartable one otherwise (skips on KAFKA_BOOTSTRAP)."""
    if request.param == "none":
        return request.param, request.getfixturevalue("broker")
    return request.param, request.getfixturevalue("broker_factory")()


@pytest.mark.parametrize("restartable", ["none", "sigterm", "kill9"], indirect=True)
def test_new_member_resumes_at_committed_offsets(restartable):
    how, b = restartable
    topic = unique_topic(f"resume-{how}")
    create_topic(b.bootstrap, topic, PARTS)
    group = unique_group("resume")
    first = produce_values(b.bootstrap, topic, 600, PARTS)

    c1 = Consumer(member_conf(b.bootstrap, group))
    c1.subscribe([topic])
    done1: list[Rec] = []
    committed: dict[int, int] = {}
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    try:
        while len(done1) < 300 and time.monotonic() < deadline:
            batch = c1.consume(num_messages=40, timeout=0.5)
            last: dict[int, int] = {}
            for m in batch:
                if m.error():
                    assert m.error().code() == KafkaError._PARTITION_EOF, f"consumer error {m.error()}"
                    continue
                done1.append(Rec(m.partition(), m.key(), m.value(), offset=m.offset()))  # "processed"
                last[m.partition()] = m.offset() + 1
            if last:
                c1.commit(offsets=[TopicPartition(topic, p, o) for p, o in last.items()], asynchronous=False)
                committed.update(last)
        assert len(done1) >= 300, f"first member read {len(done1)} of 300 records in {CONSUME_TIMEOUT_S}s"
        got = {tp.partition: tp.offset for tp in
               c1.committed([TopicPartition(topic, p) for p in committed], timeout=20)}
        assert got == committed, f"OffsetFetch right after commit: {got}, committed {committed}"
    finally:
        c1.close()

    if how != "none":
        b.restart(graceful=how == "sigterm")
    second = produce_values(b.bootstrap, topic, 300, PARTS, start=600)

    c2 = Consumer(member_conf(b.bootstrap, group))
    try:
        deadline = time.monotonic() + 30
        while True:  # the coordinator may still be loading right after a restart
            try:
                got = {tp.partition: tp.offset for tp in
                       c2.committed([TopicPartition(topic, p) for p in range(PARTS)], timeout=10)}
                break
            except KafkaException as e:
                if time.monotonic() > deadline or not e.args[0].retriable():
                    raise
                time.sleep(0.5)
        want = {p: committed.get(p, OFFSET_INVALID) for p in range(PARTS)}
        assert got == want, f"committed offsets after {how}: {got}, want {want}"

        c2.subscribe([topic])
        done2: list[Rec] = []

        def pump():
            for m in c2.consume(num_messages=500, timeout=0.1):
                if m.error() and m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                assert not m.error(), f"consumer error {m.error()}"
                done2.append(Rec(m.partition(), m.key(), m.value(), offset=m.offset()))

        consume_until(pump, lambda: len(done1) + len(done2), len(first) + len(second), f"resume after {how}")
        firsts = {}
        for r in done2:
            firsts.setdefault(r.partition, r.offset)
        for p, off in firsts.items():
            assert off == committed.get(p, 0), \
                f"after {how}: partition {p} resumed at offset {off}, committed {committed.get(p)}"
        assert_exactly_once(first + second, done1 + done2, f"first member + resumed member ({how})")
    finally:
        c2.close()


# ------------------------------------------------------------------ OffsetFetch: epoch and metadata


def test_offset_fetch_returns_leader_epoch_and_metadata(broker):
    topic = unique_topic("epoch")
    create_topic(broker.bootstrap, topic, 3)
    produce_values(broker.bootstrap, topic, 30, 3)
    group = unique_group("epoch")
    c = Consumer(member_conf(broker.bootstrap, group))
    c.subscribe([topic])
    try:
        seen: dict[int, object] = {}
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while len(seen) < 3 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                seen.setdefault(m.partition(), m)
        assert len(seen) == 3, f"read from partitions {sorted(seen)} only"
        epochs = {p: m.leader_epoch() for p, m in seen.items()}
        assert all(e is not None and e >= 0 for e in epochs.values()), f"records carry no leader epoch: {epochs}"
        offsets = [TopicPartition(topic, 0, seen[0].offset() + 1, "meta-0 \u00e9", epochs[0]),
                   TopicPartition(topic, 1, seen[1].offset() + 2, "", epochs[1]),
                   TopicPartition(topic, 2, 7)]  # no metadata, no leader epoch
        c.commit(offsets=offsets, asynchronous=False)
        got = {tp.partition: tp for tp in c.committed([TopicPartition(topic, p) for p in range(3)], timeout=20)}
        for tp in offsets:
            g = got[tp.partition]
            assert g.error is None, f"partition {tp.partition}: {g.error}"
            assert (g.offset, g.metadata or "", g.leader_epoch) == (tp.offset, tp.metadata or "", tp.leader_epoch), \
                f"partition {tp.partition}: committed (offset, metadata, epoch) " \
                f"{(tp.offset, tp.metadata, tp.leader_epoch)}, fetched {(g.offset, g.metadata, g.leader_epoch)}"
    finally:
        c.close()

    # kafka-python reads the same (it drops the leader epoch of OffsetFetch: "TODO: save leader_epoch"), and
    # commits one with metadata and epoch (OffsetCommit v6+) that confluent-kafka and the admin client read back.
    # confluent-kafka-python commits the metadata string with its C NUL terminator: the broker must keep the bytes.
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata
    from kafka.structs import TopicPartition as KTP
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        om = kc.committed(KTP(topic, 0), metadata=True)
        assert om.offset == offsets[0].offset and om.metadata in (offsets[0].metadata, offsets[0].metadata + "\0"), \
            f"kafka-python: {om}"
        om2 = kc.committed(KTP(topic, 2), metadata=True)
        assert om2.offset == 7, f"kafka-python: {om2}"
        kc.commit({KTP(topic, 1): OffsetAndMetadata(5, "kp-meta", epochs[1])})
    finally:
        kc.close()
    offsets[1] = TopicPartition(topic, 1, 5, "kp-meta", epochs[1])
    c = Consumer(member_conf(broker.bootstrap, group))
    try:
        g = c.committed([TopicPartition(topic, 1)], timeout=20)[0]
        assert (g.offset, g.metadata, g.leader_epoch) == (5, "kp-meta", epochs[1]), \
            f"kafka-python's commit read by confluent-kafka: {(g.offset, g.metadata, g.leader_epoch)}"
    finally:
        c.close()
    a = admin(broker.bootstrap)
    res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=40)
    got = {tp.partition: (tp.offset, (tp.metadata or "").rstrip("\0"), tp.leader_epoch) for tp in res.topic_partitions}
    want = {tp.partition: (tp.offset, tp.metadata or "", tp.leader_epoch) for tp in offsets}
    assert got == want, f"admin list_consumer_group_offsets: {got}, want {want}"


# ------------------------------------------------------------------ kcat + kafka-python in one group


class KcatMember:
    def __init__(self, bootstrap: str, group: str, topic: str):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["kcat", "-X", "broker.address.family=v4", "-b", bootstrap, "-G", group, "-q", "-u",
             "-X", "auto.offset.reset=earliest", "-X", f"session.timeout.ms={SESSION_MS}",
             "-X", f"heartbeat.interval.ms={HEARTBEAT_MS}", "-f", "%p %o %s\\n", topic],
            stdout=subprocess.PIPE, stderr=self.err, stdin=subprocess.DEVNULL)
        self.q: queue.Queue = queue.Queue()
        self.records: list[Rec] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.q.put(line)

    def drain(self):
        while True:
            try:
                line = self.q.get_nowait()
            except queue.Empty:
                return
            p, o, v = line.rstrip(b"\n").split(b" ", 2)
            self.records.append(Rec(int(p), None, v, offset=int(o)))

    def stop(self) -> bytes:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.err.seek(0)
        return self.err.read()


def test_kcat_and_kafka_python_share_a_group(broker):
    from kafka import KafkaConsumer
    topic = unique_topic("grpmix")
    create_topic(broker.bootstrap, topic, PARTS)
    group = unique_group("mix")
    kcats = [KcatMember(broker.bootstrap, group, topic) for _ in range(2)]
    kp = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False,
                       auto_offset_reset="earliest", session_timeout_ms=SESSION_MS,
                       heartbeat_interval_ms=HEARTBEAT_MS)
    kp_got: list[Rec] = []
    try:
        def pump():
            for _tp, msgs in kp.poll(timeout_ms=100).items():
                kp_got.extend(Rec(m.partition, None, m.value, offset=m.offset) for m in msgs)
            for k in kcats:
                k.drain()
                assert k.proc.poll() is None, f"kcat exited {k.proc.returncode}: {k.stop()[-2000:]!r}"

        def ok(d):
            return d.state == ConsumerGroupState.STABLE and len(d.members) == 3 and exact_cover(
                [[tp.partition for tp in m.assignment.topic_partitions] for m in d.members], PARTS)

        deadline = time.monotonic() + ASSIGN_TIMEOUT_S
        while time.monotonic() < deadline and len(kp.assignment()) != 2:
            pump()
        wait_described(broker.bootstrap, group, pump, ok, "kcat x2 + kafka-python group", timeout=ASSIGN_TIMEOUT_S)
        sent = produce_values(broker.bootstrap, topic, 600, PARTS)
        consume_until(pump, lambda: len(kp_got) + sum(len(k.records) for k in kcats), len(sent), "mixed group")
        assert_exactly_once(sent, kp_got + [r for k in kcats for r in k.records], "kcat + kafka-python group")
        counts = [len(kp_got)] + [len(k.records) for k in kcats]
        assert all(counts), f"a member read nothing (kafka-python, kcat, kcat): {counts}"
    finally:
        kp.close()
        for k in kcats:
            k.stop()


# ------------------------------------------------------------------ group admin


def test_group_admin(broker):
    bs = broker.bootstrap
    a = admin(bs)
    topic = unique_topic("grpadm")
    create_topic(bs, topic, PARTS)
    group = unique_group("adm")
    g = Group(bs, group, topic, 2)
    try:
        assigns = wait_assignment(g.pump, g.assignments, PARTS, [3, 3], "2 members")
        ids = [c.memberid() for c in g.members]
        listed = a.list_consumer_groups(request_timeout=30).result(timeout=40)
        mine = [x for x in listed.valid if x.group_id == group]
        assert len(mine) == 1, f"list_consumer_groups: {group} not listed once: {mine} (errors {listed.errors})"
        assert mine[0].state == ConsumerGroupState.STABLE and not mine[0].is_simple_consumer_group, mine[0]
        d = describe(bs, group)
        assert d.state == ConsumerGroupState.STABLE and d.partition_assignor == "range", (d.state, d.partition_assignor)
        got = {m.member_id: sorted(tp.partition for tp in m.assignment.topic_partitions) for m in d.members}
        assert got == {ids[0]: assigns[0], ids[1]: assigns[1]}, f"described assignments {got}"
        assert error_code(a.delete_consumer_groups([group], request_timeout=30)[group]) == \
            KafkaError.NON_EMPTY_GROUP, "DeleteGroups of a group with members must fail with NON_EMPTY_GROUP"
        for c, parts in zip(g.members, assigns):
            c.commit(offsets=[TopicPartition(topic, p, 1 + p) for p in parts], asynchronous=False)
    finally:
        g.close()

    def offsets():
        r = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=40)
        return {(tp.topic, tp.partition): tp.offset for tp in r.topic_partitions}

    assert offsets() == {(topic, p): 1 + p for p in range(PARTS)}
    d = describe(bs, group)
    assert d.state == ConsumerGroupState.EMPTY and not d.members, f"after close: {d.state} {d.members}"
    r = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, 0, 3), TopicPartition(topic, 5, 0)])])[group].result(timeout=40)
    assert all(tp.error is None for tp in r.topic_partitions), r.topic_partitions
    want = {**{p: 1 + p for p in range(PARTS)}, 0: 3, 5: 0}
    assert offsets() == {(topic, p): o for p, o in want.items()}
    # A new member starts at the altered offsets.
    sent = produce_values(bs, topic, 12 * PARTS, PARTS)
    g = Group(bs, group, topic, 1)
    try:
        n = sum(12 - o for o in want.values())
        consume_until(g.pump, lambda: len(g.got[0]), n, "member after AlterOffsets")
        firsts = {}
        for r in g.got[0]:
            firsts.setdefault(r.partition, r.offset)
        assert firsts == want, f"first offsets read after AlterOffsets {firsts}, want {want}"
        assert_exactly_once([r for r in sent if r.value and int(r.value[1:]) // PARTS >= want[r.partition]],
                            g.got[0], "member after AlterOffsets")
    finally:
        g.close()
    assert error_code(a.delete_consumer_groups([group], request_timeout=30)[group]) is None
    listed = a.list_consumer_groups(request_timeout=30).result(timeout=40)
    assert group not in [x.group_id for x in listed.valid], "deleted group still listed"
    left = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=40)
    assert not [tp for tp in left.topic_partitions if tp.offset >= 0], f"offsets survive deletion: {left}"
    assert error_code(a.delete_consumer_groups([group], request_timeout=30)[group]) == KafkaError.GROUP_ID_NOT_FOUND


# ------------------------------------------------------------------ log compaction


COMPACT_TIMEOUT_S = 60.0


@pytest.fixture
def compact_broker(request):
    """An external broker as is (Kafka: start it with log.cleaner.backoff.ms low), else a dedicated
    Tributary broker whose cleaner runs every 500 ms."""
    if os.environ.get("KAFKA_BOOTSTRAP", "").strip():
        return request.getfixturevalue("broker")
    return request.getfixturevalue("broker_factory")({"log.cleaner.backoff.ms": "500"})


def test_compaction_keeps_latest_value_per_key(compact_broker):
    bs = compact_broker.bootstrap
    topic = unique_topic("compact")
    create_topic(bs, topic, 1, {"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
                                "delete.retention.ms": "100", "min.compaction.lag.ms": "0"})
    keys = [b"key-%02d" % i for i in range(40)]
    writes: list[tuple[bytes, bytes | None]] = []
    for wave in range(5):
        batch = []
        for i, k in enumerate(keys):
            if wave == 2 and i < 10:
                batch.append((k, None))  # tombstone keys 0-9
            elif wave == 3 and i >= 5:
                continue  # keys 0-4 come back; 5-9 stay deleted
            elif wave == 4 and i < 20:
                continue
            else:
                batch.append((k, b"%s@%d" % (k, wave) + b"." * (wave * 7)))
        if wave % 2:
            batch.reverse()  # the final offset order is not the key order
        writes += batch
        ck_produce(bs, topic, [Rec(0, k, v) for k, v in batch])
        time.sleep(0.3)  # > segment.ms: the next append rolls a new segment
    last_index = {k: i for i, (k, _) in enumerate(writes)}
    live = sorted((i, k) for k, i in last_index.items() if writes[i][1] is not None)
    want = [(k, writes[i][1]) for i, k in live]
    deleted = {k for k, i in last_index.items() if writes[i][1] is None}
    assert len(deleted) == 5 and len(want) == 35

    deadline = time.monotonic() + COMPACT_TIMEOUT_S
    nudges: list[bytes] = []
    got: list[Rec] = []
    while time.monotonic() < deadline:
        # A record with a fresh key rolls the segment (segment.ms elapsed) and adds dirty bytes, so the
        # cleaner keeps finding work (tombstones go only in a pass after delete.retention.ms).
        nudges.append(b"nudge-%03d" % len(nudges))
        ck_produce(bs, topic, [Rec(0, nudges[-1], b"n" * 500)])
        time.sleep(1.0)
        got = ck_read(bs, topic, 1)
        ks = [r.key for r in got]
        if len(ks) == len(set(ks)) and not deleted & set(ks):
            break
    ks = [r.key for r in got]
    dups = sorted({k for k in ks if ks.count(k) > 1})
    assert not dups, f"not compacted within {COMPACT_TIMEOUT_S}s: keys with several records: {dups[:10]}"
    assert not deleted & set(ks), f"tombstoned keys still present after {COMPACT_TIMEOUT_S}s: {sorted(deleted & set(ks))}"
    have = [(r.key, r.value) for r in got if r.key in last_index]
    assert have == want, f"live keys after compaction (in offset order) differ:\n got  {have[:8]}...\n want {want[:8]}..."
    assert [r.key for r in got if r.key not in last_index] == nudges, "the filler records are not all there, in order"
    offs = [r.offset for r in got]
    assert offs == sorted(offs) and len(set(offs)) == len(offs)
