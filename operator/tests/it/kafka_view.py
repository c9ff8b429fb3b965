"""What a real Kafka client (confluent-kafka, librdkafka) sees of a topic; used by the operator's Topic test.

Usage: kafka_view.py BOOTSTRAP describe TOPIC      -> JSON {"exists", "partitions", "config": {overrides}}
       kafka_view.py BOOTSTRAP produce TOPIC PART  -> produces one record to PART, exits 0 once acknowledged
"""
import json
import sys

from confluent_kafka import KafkaException, Producer
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


def produce(bootstrap, topic, partition):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": TIMEOUT_S * 1000})
    errors = []
    producer.produce(topic, b"it", partition=partition, on_delivery=lambda err, _msg: err and errors.append(err))
    if producer.flush(TIMEOUT_S) != 0 or errors:
        raise SystemExit(f"produce to {topic}[{partition}] failed: {errors or 'not acknowledged'}")


def main():
    bootstrap, command, topic = sys.argv[1:4]
    try:
        if command == "describe":
            print(json.dumps(describe(bootstrap, topic)))
        elif command == "produce":
            produce(bootstrap, topic, int(sys.argv[4]))
        else:
            raise SystemExit(f"unknown command {command}")
    except KafkaException as error:
        raise SystemExit(f"{command} {topic}: {error}")


if __name__ == "__main__":
    main()
