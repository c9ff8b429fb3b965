"""Admin API, error codes, ListOffsets (earliest/latest/by timestamp) and retention."""

import os
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewPartitions,
                                   NewTopic, ResourceType)

from kit import (Rec, admin, assert_same, ck_consumer, ck_produce, ck_producer, ck_read, ck_watermarks,
                 create_topic, kp_read, unique_topic, wait_topic)

EXTERNAL = os.environ.get("KAFKA_BOOTSTRAP", "").strip()


def error_code(fut, timeout=40):
    """The KafkaError code a future fails with, or None when it succeeds."""
    try:
        fut.result(timeout=timeout)
        return None
    except KafkaException as e:
        return e.args[0].code()


def describe_topic_config(a, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    return a.describe_configs([res], request_timeout=30)[res].result(timeout=40)


def test_topic_lifecycle(broker):
    a = admin(broker.bootstrap)
    topic = unique_topic("admin")
    fut = a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1,
                                    config={"retention.ms": "123456789", "cleanup.policy": "delete"})],
                          operation_timeout=30)[topic]
    assert error_code(fut) is None, "CreateTopics of a new topic with valid configs failed"
    wait_topic(broker.bootstrap, topic, 3)

    again = a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic]
    assert error_code(again) == KafkaError.TOPIC_ALREADY_EXISTS, "creating an existing topic must fail with TOPIC_ALREADY_EXISTS"

    cfg = describe_topic_config(a, topic)
    assert cfg["retention.ms"].value == "123456789", f"DescribeConfigs retention.ms: {cfg['retention.ms']}"
    assert cfg["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, \
        f"retention.ms set at creation must be reported as a topic override, got source {cfg['retention.ms'].source}"
    for name in ("cleanup.policy", "segment.bytes", "max.message.bytes", "compression.type"):
        assert name in cfg and cfg[name].value not in (None, ""), f"DescribeConfigs lacks a value for {name}"

    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "987654321", incremental_operation=AlterConfigOpType.SET)])
    assert error_code(a.incremental_alter_configs([res])[res]) is None, "IncrementalAlterConfigs SET failed"
    deadline = time.monotonic() + 15
    while describe_topic_config(a, topic)["retention.ms"].value != "987654321" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert describe_topic_config(a, topic)["retention.ms"].value == "987654321", "altered retention.ms not described"

    fut = a.create_partitions([NewPartitions(topic, 6)], operation_timeout=30)[topic]
    assert error_code(fut) is None, "CreatePartitions 3 -> 6 failed"
    wait_topic(broker.bootstrap, topic, 6)
    shrink = a.create_partitions([NewPartitions(topic, 2)])[topic]
    assert error_code(shrink) == KafkaError.INVALID_PARTITIONS, "shrinking partitions must fail with INVALID_PARTITIONS"

    sent = [Rec(p, b"k%d" % p, b"v%d" % p) for p in range(6)]
    ck_produce(broker.bootstrap, topic, sent)
    assert_same(sent, ck_read(broker.bootstrap, topic, 6), with_ts=False, what="after CreatePartitions")

    assert error_code(a.delete_topics([topic], operation_timeout=30)[topic]) is None, "DeleteTopics failed"
    deadline = time.monotonic() + 30
    while topic in a.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.2)
    assert topic not in a.list_topics(timeout=10).topics, "deleted topic still listed in Metadata after 30s"
    gone = a.delete_topics([topic])[topic]
    assert error_code(gone) == KafkaError.UNKNOWN_TOPIC_OR_PART, "deleting a missing topic must fail with UNKNOWN_TOPIC_OR_PARTITION"


@pytest.mark.parametrize("config", [{"cleanup.policy": "bogus"}, {"retention.ms": "not-a-number"},
                                    {"no.such.config": "1"}])
def test_create_topic_invalid_config(broker, config):
    a = admin(broker.bootstrap)
    topic = unique_topic("badcfg")
    fut = a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=config)])[topic]
    assert error_code(fut) == KafkaError.INVALID_CONFIG, f"CreateTopics with {config} must fail with INVALID_CONFIG"
    assert topic not in a.list_topics(timeout=10).topics, f"topic created despite invalid config {config}"


def test_alter_invalid_config(broker):
    a = admin(broker.bootstrap)
    topic = unique_topic("badalter")
    create_topic(broker.bootstrap, topic, 1, {"retention.ms": "3600000"})
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    assert error_code(a.incremental_alter_configs([res])[res]) == KafkaError.INVALID_CONFIG, \
        "IncrementalAlterConfigs with a non-numeric retention.ms must fail with INVALID_CONFIG"
    assert describe_topic_config(a, topic)["retention.ms"].value == "3600000", "rejected alter changed the config"


def test_record_too_large(broker):
    """The broker (not the client) rejects a record over the topic's max.message.bytes, and keeps going."""
    topic = unique_topic("toolarge")
    create_topic(broker.bootstrap, topic, 1, {"max.message.bytes": "4096"})
    p = ck_producer(broker.bootstrap, **{"compression.type": "none", "linger.ms": 0})
    results = []
    p.produce(topic, value=b"x" * 20_000, partition=0, on_delivery=lambda e, m: results.append(e))
    assert p.flush(30) == 0
    assert results and results[0] is not None and results[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, \
        f"a 20 kB record on a topic with max.message.bytes=4096 must fail with MESSAGE_TOO_LARGE, got {results}"
    ok = [Rec(0, b"small", b"fits")]
    ck_produce(broker.bootstrap, topic, ok)
    assert_same(ok, ck_read(broker.bootstrap, topic, 1), with_ts=False, what="after a rejected record")


def test_auto_create_on_produce(broker):
    """With auto-create on (the default), producing to an unknown topic creates it."""
    topic = unique_topic("auto")
    sent = [Rec(0, b"k", b"auto-created")]
    ck_produce(broker.bootstrap, topic, sent)
    assert topic in admin(broker.bootstrap).list_topics(timeout=10).topics, "auto-created topic not listed"
    assert_same(sent, ck_read(broker.bootstrap, topic, 1), with_ts=False, what="auto-created topic")


@pytest.fixture
def noauto_bootstrap(request):
    """A broker with auto.create.topics.enable=false (KAFKA_BOOTSTRAP_NOAUTO for an external one)."""
    ext = os.environ.get("KAFKA_BOOTSTRAP_NOAUTO", "").strip()
    if ext:
        return ext
    return request.getfixturevalue("broker_factory")({"auto.create.topics.enable": "false"}).bootstrap


def test_unknown_topic_without_auto_create(noauto_bootstrap):
    topic = unique_topic("noauto")
    a = admin(noauto_bootstrap)
    md = a.list_topics(topic=topic, timeout=10).topics.get(topic)
    assert md is not None and md.error is not None and md.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, \
        f"Metadata for a missing topic must carry UNKNOWN_TOPIC_OR_PARTITION, got {md and md.error}"
    p = ck_producer(noauto_bootstrap, **{"topic.metadata.propagation.max.ms": 2000, "message.timeout.ms": 10000})
    results = []
    p.produce(topic, value=b"v", on_delivery=lambda e, m: results.append(e))
    p.flush(30)
    assert results and results[0] is not None and results[0].code() in (
        KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC), \
        f"producing to a missing topic with auto-create off must fail with unknown topic, got {results}"
    assert topic not in a.list_topics(timeout=10).topics, "topic was created although auto-create is off"


def test_list_offsets_by_timestamp(broker):
    topic = unique_topic("ts")
    create_topic(broker.bootstrap, topic, 2)
    base = int(time.time() * 1000) - 86_400_000
    sent = [Rec(0, None, b"%d" % i, (), base + i * 1000) for i in range(60)]
    for chunk in range(0, 60, 15):  # several batches
        ck_produce(broker.bootstrap, topic, sent[chunk:chunk + 15], **{"linger.ms": 0})
    c = ck_consumer(broker.bootstrap)
    try:
        cases = {base - 5000: 0, base: 0, base + 10_000: 10, base + 10_001: 11, base + 59_000: 59,
                 base + 59_001: -1}
        for ts, want in cases.items():
            got = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)[0]
            assert got.error is None, f"offsets_for_times({ts}) error {got.error}"
            assert got.offset == want, f"offsets_for_times(base+{ts - base} ms) = {got.offset}, want {want}"
        empty = c.offsets_for_times([TopicPartition(topic, 1, base)], timeout=10)[0]
        assert empty.offset == -1, f"offsets_for_times on an empty partition = {empty.offset}, want -1 (none)"
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 60), "watermarks after 60 records"
    finally:
        c.close()
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition as KTP
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    try:
        tp = KTP(topic, 0)
        got = kc.offsets_for_times({tp: base + 30_000})[tp]
        assert got is not None and got.offset == 30 and got.timestamp == base + 30_000, \
            f"kafka-python offsets_for_times: {got}"
        assert kc.beginning_offsets([tp])[tp] == 0 and kc.end_offsets([tp])[tp] == 60, "kafka-python earliest/latest"
    finally:
        kc.close()


@pytest.fixture
def retention_bootstrap(request):
    if EXTERNAL:
        return EXTERNAL  # the external broker must run with a short log.retention.check.interval.ms
    return request.getfixturevalue("broker_factory")(
        {"log.segment.bytes": "1048576", "log.retention.check.interval.ms": "500"}).bootstrap


def test_retention_advances_log_start(retention_bootstrap):
    bs = retention_bootstrap
    topic = unique_topic("retention")
    create_topic(bs, topic, 1, {"segment.bytes": "1048576"})
    import random
    rng = random.Random(9)
    sent = [Rec(0, b"%d" % i, rng.randbytes(100_000)) for i in range(40)]  # ~4 MB -> several segments
    for chunk in range(0, 40, 5):
        ck_produce(bs, topic, sent[chunk:chunk + 5], **{"linger.ms": 0})
    assert ck_watermarks(bs, topic, 1)[0] == (0, 40), "watermarks before retention"

    a = admin(bs)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    assert error_code(a.incremental_alter_configs([res])[res]) is None, "setting retention.ms failed"
    deadline = time.monotonic() + 60
    low, high = 0, 40
    while time.monotonic() < deadline:
        low, high = ck_watermarks(bs, topic, 1)[0]
        if low > 0:
            break
        time.sleep(0.5)
    assert low > 0, ("log start offset did not advance within 60s of retention.ms=1000 on a topic with ~4 segments "
                     "(an external broker needs log.retention.check.interval.ms of a second or so)")
    # Kafka may also roll and delete an expired active segment, so low may reach 40.
    assert high == 40 and low <= 40, f"retention must keep the end offset: (low, high) = ({low}, {high})"
    after = [Rec(0, b"after", b"retention")]
    ck_produce(bs, topic, after)
    got = ck_read(bs, topic, 1)
    assert got and got[0].offset == low, f"a consumer from the beginning starts at {got[0].offset if got else None}, " \
                                         f"want the new log start {low}"
    assert_same(sent[low:] + after, got, with_ts=False, what="records after retention")
    kgot = kp_read(bs, topic, 1)
    assert kgot and kgot[0].offset == low, "kafka-python from the beginning does not start at the new log start"


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated:DeprecationWarning")
def test_alter_configs_replaces_every_override(broker):
    """AlterConfigs (API 33), the non-incremental form, with the two clients that still send it: kafka-python's
    alter_configs and librdkafka's (deprecated) AlterConfigs. The configs named replace the topic's overrides;
    the others go back to their defaults."""
    from kafka.admin import ConfigResource as KpConfigResource, ConfigResourceType, KafkaAdminClient
    a = admin(broker.bootstrap)
    topic = unique_topic("legacyalter")
    create_topic(broker.bootstrap, topic, 1, {"retention.ms": "123456789", "segment.bytes": "1048576"})

    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        response = kp.alter_configs([KpConfigResource(ConfigResourceType.TOPIC, topic,
                                                      configs={"cleanup.policy": "compact"})])
    finally:
        kp.close()
    errors = [(r[0], r[1]) for r in response.resources]
    assert errors == [(0, None)] or errors == [(0, "")], f"kafka-python alter_configs: {response}"
    cfg = describe_topic_config(a, topic)
    assert (cfg["cleanup.policy"].value, cfg["cleanup.policy"].source) == \
        ("compact", ConfigSource.DYNAMIC_TOPIC_CONFIG.value), f"cleanup.policy: {cfg['cleanup.policy']}"
    for name in ("retention.ms", "segment.bytes"):
        assert cfg[name].source == ConfigSource.DEFAULT_CONFIG.value, \
            f"{name} was not named in AlterConfigs, so its override must be gone: {cfg[name]}"
    assert cfg["retention.ms"].value == "604800000"

    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "5000"})
    assert error_code(a.alter_configs([res])[res]) is None, "librdkafka AlterConfigs failed"
    cfg = describe_topic_config(a, topic)
    assert (cfg["retention.ms"].value, cfg["cleanup.policy"].value, cfg["cleanup.policy"].source) == \
        ("5000", "delete", ConfigSource.DEFAULT_CONFIG.value), \
        f"after the second AlterConfigs: retention.ms {cfg['retention.ms']}, cleanup.policy {cfg['cleanup.policy']}"

    bad = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "soon"})
    assert error_code(a.alter_configs([bad])[bad]) == KafkaError.INVALID_CONFIG
    assert describe_topic_config(a, topic)["retention.ms"].value == "5000", "a refused AlterConfigs changed the config"
