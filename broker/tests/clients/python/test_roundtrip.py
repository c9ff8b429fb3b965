"""Round trips with confluent-kafka, kafka-python and kcat, and across clients: every record
back exactly once, in order per partition, byte for byte (keys, values, headers, timestamps)."""

import pytest

from kit import (assert_same, ck_produce, ck_read, create_topic, gen_records, kcat_produce_files,
                 kcat_produce_keyed, kcat_read, kp_produce, kp_read, unique_topic, Rec)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 12


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_roundtrip(broker, codec):
    topic = unique_topic(f"ck-{codec}")
    create_topic(broker.bootstrap, topic, PARTITIONS)
    sent = gen_records(1200, PARTITIONS, seed=hash(codec) & 0xFFFF)
    ck_produce(broker.bootstrap, topic, sent, **{"compression.type": codec})
    assert_same(sent, ck_read(broker.bootstrap, topic, PARTITIONS), what=f"confluent({codec})->confluent")
    assert_same(sent, kp_read(broker.bootstrap, topic, PARTITIONS), what=f"confluent({codec})->kafka-python")


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_roundtrip(broker, codec):
    topic = unique_topic(f"kp-{codec}")
    create_topic(broker.bootstrap, topic, PARTITIONS)
    sent = gen_records(600, PARTITIONS, seed=7 + len(codec))
    kp_produce(broker.bootstrap, topic, sent, compression_type=None if codec == "none" else codec)
    assert_same(sent, kp_read(broker.bootstrap, topic, PARTITIONS), what=f"kafka-python({codec})->kafka-python")
    assert_same(sent, ck_read(broker.bootstrap, topic, PARTITIONS), what=f"kafka-python({codec})->confluent")


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_confluent_to_kcat(broker, codec):
    """kcat's header output is text, so these records carry no headers."""
    topic = unique_topic(f"ck2kcat-{codec}")
    create_topic(broker.bootstrap, topic, PARTITIONS)
    sent = gen_records(360, PARTITIONS, seed=11, headers=False)
    ck_produce(broker.bootstrap, topic, sent, **{"compression.type": codec})
    got = [r for p in range(PARTITIONS) for r in kcat_read(broker.bootstrap, topic, p)]
    assert_same(sent, got, what=f"confluent({codec})->kcat")


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_binary_values(broker, codec, tmp_path):
    """kcat -P with files: arbitrary binary values (null keys), read back by all three clients."""
    import random
    rng = random.Random(3)
    topic = unique_topic(f"kcat-{codec}")
    create_topic(broker.bootstrap, topic, 3)
    sent = []
    for p in range(3):
        payloads = [rng.randbytes(rng.randint(1, 2000)) for _ in range(40)]
        hdrs = (("origin", b"kcat"), ("part", str(p).encode()))
        kcat_produce_files(broker.bootstrap, topic, p, payloads, tmp_path, codec=codec, headers=hdrs)
        sent += [Rec(p, None, v, hdrs) for v in payloads]
    opts = dict(with_ts=False)
    assert_same(sent, [r for p in range(3) for r in kcat_read(broker.bootstrap, topic, p)],
                what=f"kcat({codec})->kcat", **opts)
    assert_same(sent, ck_read(broker.bootstrap, topic, 3), what=f"kcat({codec})->confluent", **opts)
    assert_same(sent, kp_read(broker.bootstrap, topic, 3), what=f"kcat({codec})->kafka-python", **opts)


def test_kcat_keyed(broker):
    topic = unique_topic("kcat-keyed")
    create_topic(broker.bootstrap, topic, 2)
    sent = []
    for p in range(2):
        pairs = [(f"key-{p}-{i}".encode(), f"value {i} \x01\xfe".encode("latin-1")) for i in range(100)]
        kcat_produce_keyed(broker.bootstrap, topic, p, pairs, codec="lz4")
        sent += [Rec(p, k, v) for k, v in pairs]
    assert_same(sent, ck_read(broker.bootstrap, topic, 2), what="kcat keyed->confluent", with_ts=False)
    assert_same(sent, kcat_read(broker.bootstrap, topic, 0) + kcat_read(broker.bootstrap, topic, 1),
                what="kcat keyed->kcat", with_ts=False)


def test_large_records_and_batches(broker):
    """Values near 512 KiB and a few thousand tiny ones on one partition."""
    topic = unique_topic("sizes")
    create_topic(broker.bootstrap, topic, 2)
    import random
    rng = random.Random(5)
    sent = [Rec(0, b"big%d" % i, rng.randbytes(500_000 + i)) for i in range(6)]
    sent += [Rec(1, None, b"%d" % i) for i in range(5000)]
    ck_produce(broker.bootstrap, topic, sent, **{"compression.type": "none"})
    assert_same(sent, ck_read(broker.bootstrap, topic, 2), what="sizes confluent", with_ts=False)
    assert_same(sent, kp_read(broker.bootstrap, topic, 2), what="sizes kafka-python", with_ts=False)
