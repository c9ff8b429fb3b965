"""What a real Kafka client (confluent-kafka, librdkafka) sees of a topic; used by the operator's Topic test.

Usage: kafka_view.py BOOTSTRAP describe TOPIC      -> JSON {"exists", "partitions", "config": {overrides}}
       kafka_view.py BOOTSTRAP produce TOPIC PART  -> produces one record to PART, exits 0 once acknowledged
       kafka_view.py BOOTSTRAP config TOPIC KEY     -> the topic's effective value of KEY
       kafka_view.py BOOTSTRAP produce-until TOPIC STOPFILE ACKFILE
           -> an idempotent acks=all producer writes numbered records (one every 10 ms, at most 20000, at most
              300 s) until STOPFILE exists; appends each acknowledged value to ACKFILE; prints JSON
              {"acknowledged", "failed", "longest_stall_ms"} (the longest time between two acknowledgements)
       kafka_view.py BOOTSTRAP consume-all TOPIC GROUP ACKFILE
           -> a consumer group member reads TOPIC from the start until every value in ACKFILE was seen (at most
              60 s); prints JSON {"expected", "missing", "first_missing"}
       kafka_view.py BOOTSTRAP commit TOPIC GROUP OFFSET -> commits OFFSET of partition 0 for GROUP
       kafka_view.py BOOTSTRAP committed TOPIC GROUP     -> the offset GROUP committed for partition 0 (-1001: none)
"""
import json
import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource

TIMEOUT_S = 10


def describe(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # All topics, not list_topics(topic=...): a request naming the topic would auto-create it.
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return {"exists": False}
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)
    overrides = {
        name: entry.value
        for name, entry in configs.items()
        if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    }
    return {"exists": True, "partitions": len(found.partitions), "config": overrides}


def config(bootstrap, topic, key):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)
    return configs[key].value


def produce(bootstrap, topic, partition):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": TIMEOUT_S * 1000})
    errors = []
    producer.produce(topic, b"it", partition=partition, on_delivery=lambda err, _msg: err and errors.append(err))
    if producer.flush(TIMEOUT_S) != 0 or errors:
        raise SystemExit(f"produce to {topic}[{partition}] failed: {errors or 'not acknowledged'}")


def produce_until(bootstrap, topic, stop_file, ack_file):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 120000,
    })
    state = {"acknowledged": 0, "failed": 0, "last": time.monotonic(), "longest": 0.0}
    acked = open(ack_file, "a", encoding="utf-8")

    def delivered(err, msg):
        if err is not None:
            state["failed"] += 1
            return
        now = time.monotonic()
        state["longest"] = max(state["longest"], now - state["last"])
        state["last"] = now
        state["acknowledged"] += 1
        acked.write(msg.value().decode() + "\n")

    started = time.monotonic()
    for i in range(20000):
        if os.path.exists(stop_file) or time.monotonic() - started > 300:
            break
        producer.produce(topic, f"r-{i}".encode(), on_delivery=delivered)
        producer.poll(0.01)
    producer.flush(120)
    acked.close()
    return {
        "acknowledged": state["acknowledged"],
        "failed": state["failed"],
        "longest_stall_ms": int(state["longest"] * 1000),
    }


def consume_all(bootstrap, topic, group, ack_file):
    with open(ack_file, encoding="utf-8") as f:
        expected = {line.strip() for line in f if line.strip()}
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
    })
    consumer.subscribe([topic])
    missing = set(expected)
    deadline = time.monotonic() + 60
    while missing and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error() is not None:
            continue
        missing.discard(msg.value().decode())
    consumer.close()
    return {"expected": len(expected), "missing": len(missing), "first_missing": sorted(missing)[:5]}


def group_client(bootstrap, group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})


def commit(bootstrap, topic, group, offset):
    consumer = group_client(bootstrap, group)
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


def committed(bootstrap, topic, group):
    consumer = group_client(bootstrap, group)
    try:
        return consumer.committed([TopicPartition(topic, 0)], timeout=TIMEOUT_S)[0].offset
    finally:
        consumer.close()


def main():
    bootstrap, command, topic = sys.argv[1:4]
    try:
        if command == "describe":
            print(json.dumps(describe(bootstrap, topic)))
        elif command == "produce":
            produce(bootstrap, topic, int(sys.argv[4]))
        elif command == "config":
            print(config(bootstrap, topic, sys.argv[4]))
        elif command == "produce-until":
            print(json.dumps(produce_until(bootstrap, topic, sys.argv[4], sys.argv[5])))
        elif command == "consume-all":
            print(json.dumps(consume_all(bootstrap, topic, sys.argv[4], sys.argv[5])))
        elif command == "commit":
            commit(bootstrap, topic, sys.argv[4], int(sys.argv[5]))
        elif command == "committed":
            print(committed(bootstrap, topic, sys.argv[4]))
        else:
            raise SystemExit(f"unknown command {command}")
    except KafkaException as error:
        raise SystemExit(f"{command} {topic}: {error}")


if __name__ == "__main__":
    main()
