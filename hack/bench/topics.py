"""Topic operator benchmark driver: applies N Topic manifests with kubectl and measures how long until every
topic is usable in Kafka (confluent-kafka sees it with all partitions) and until every Topic reports Ready.

Usage: topics.py --bootstrap HOST:PORT --namespace NS --cluster NAME --count N [--partitions P] [--prefix bench]
Prints one JSON line with the figures. Bounded by --timeout seconds.
"""
import argparse
import json
import subprocess
import sys
import time

from confluent_kafka.admin import AdminClient


def manifests(args):
    docs = []
    for i in range(args.count):
        docs.append(
            json.dumps(
                {
                    "apiVersion": "tributary.dev/v1alpha1",
                    "kind": "Topic",
                    "metadata": {"name": f"{args.prefix}-{i:05d}", "namespace": args.namespace},
                    "spec": {
                        "clusterRef": {"name": args.cluster},
                        "partitions": args.partitions,
                        "replicationFactor": 1,
                        "config": {"retention.ms": "3600000"},
                    },
                }
            )
        )
    return {"apiVersion": "v1", "kind": "List", "items": [json.loads(d) for d in docs]}


def kafka_usable(admin, names, partitions):
    # All topics (never list_topics(topic=...), which could auto-create).
    topics = admin.list_topics(timeout=10).topics
    return sum(
        1
        for name in names
        if name in topics and topics[name].error is None and len(topics[name].partitions) == partitions
    )


def ready_count(args):
    out = subprocess.run(
        ["kubectl", "get", "topics.tributary.dev", "-n", args.namespace, "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    count = 0
    for item in json.loads(out)["items"]:
        if not item["metadata"]["name"].startswith(args.prefix + "-"):
            continue
        for condition in item.get("status", {}).get("conditions", []):
            if condition["type"] == "Ready" and condition["status"] == "True":
                count += 1
    return count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    names = [f"{args.prefix}-{i:05d}" for i in range(args.count)]
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    kafka_usable(admin, [], args.partitions)  # connect before the clock starts

    body = json.dumps(manifests(args))
    start = time.monotonic()
    subprocess.run(
        ["kubectl", "apply", "--server-side", "--field-manager=bench", "-f", "-"],
        input=body,
        check=True,
        capture_output=True,
        text=True,
    )
    applied = time.monotonic() - start
    deadline = start + args.timeout
    usable = None
    while time.monotonic() < deadline:
        if kafka_usable(admin, names, args.partitions) == args.count:
            usable = time.monotonic() - start
            break
        time.sleep(0.02 if args.count == 1 else 0.2)
    ready = None
    while usable is not None and time.monotonic() < deadline:
        if ready_count(args) == args.count:
            ready = time.monotonic() - start
            break
        time.sleep(0.05 if args.count == 1 else 0.5)

    delete_start = time.monotonic()
    deleted = None
    subprocess.run(
        ["kubectl", "delete", "topics.tributary.dev", "-n", args.namespace, "--all", "--wait=false"],
        check=True,
        capture_output=True,
        text=True,
    )
    while time.monotonic() < delete_start + args.timeout:
        if kafka_usable(admin, names, args.partitions) == 0:
            deleted = time.monotonic() - delete_start
            break
        time.sleep(0.02 if args.count == 1 else 0.2)

    print(
        json.dumps(
            {
                "topics": args.count,
                "kubectl_apply_s": round(applied, 3),
                "usable_in_kafka_s": usable and round(usable, 3),
                "all_ready_s": ready and round(ready, 3),
                "deleted_from_kafka_s": deleted and round(deleted, 3),
            }
        )
    )
    return 0 if usable is not None and ready is not None else 1


if __name__ == "__main__":
    sys.exit(main())
