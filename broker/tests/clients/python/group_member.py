"""A confluent-kafka group member run as a child process by test_groups.py, so a test can kill it
with SIGKILL (no LeaveGroup, no clean close).

Usage: python group_member.py CONF_JSON TOPIC LIFETIME_S
Prints one JSON line {"assignment": [partitions...], "member": id} whenever its assignment changes,
and {"record": [partition, offset]} for each record it reads. Exits (closing cleanly) after LIFETIME_S.
"""

import json
import sys
import time

from confluent_kafka import Consumer, KafkaError


def main() -> None:
    conf, topic, lifetime = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    c = Consumer(conf)
    c.subscribe([topic])
    last = None
    end = time.monotonic() + lifetime
    try:
        while time.monotonic() < end:
            m = c.poll(0.1)
            if m is not None:
                if m.error() is None:
                    print(json.dumps({"record": [m.partition(), m.offset()]}), flush=True)
                elif m.error().code() != KafkaError._PARTITION_EOF:
                    print(json.dumps({"error": str(m.error())}), flush=True)
            a = sorted(tp.partition for tp in c.assignment())
            if a != last:
                print(json.dumps({"assignment": a, "member": c.memberid()}), flush=True)
                last = a
    finally:
        c.close()


if __name__ == "__main__":
    main()
