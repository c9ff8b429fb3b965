// Group-free consumer throughput: KafkaConsumer.assign() of every partition of a topic + seekToBeginning,
// no group.id (so no FindCoordinator / JoinGroup / offset commits), reading exactly --num-records records.
//
// Used by hack/bench.sh so that the same consumer measurement runs against Tributary (no consumer groups
// yet) and Apache Kafka. Compile against the kafka-clients jar:
//   javac -d CLASSES -cp "$(hack/kafka-ref.sh classpath)" hack/bench/AssignConsumerPerf.java
//   java -cp "CLASSES:$(hack/kafka-ref.sh classpath)" AssignConsumerPerf \
//       --bootstrap-server 127.0.0.1:9092 --topic T --num-records N [--timeout-ms 60000] [--max-ms 600000] \
//       [--command-property k=v ...]
//
// Client config: kafka-clients defaults plus bootstrap.servers and byte-array deserializers; every
// --command-property k=v is applied last (it may override those). The consumer is never given a group.id
// unless one is passed explicitly.
//
// Timing (System.nanoTime): t0 is taken after the KafkaConsumer is constructed (no network I/O yet), so
// elapsed_ms covers metadata (partitionsFor), connection set-up, offset reset (ListOffsets) and the fetches
// up to the poll that delivered the last needed record (after an early stop: the last record read). first_record_ms is t0 -> the first non-empty poll.
// fetch_* is the steady phase after that poll: records of the later polls / (last poll - first poll), which
// leaves out connection set-up and client warm-up (compare ConsumerPerformance's fetch.* columns).
// MB = 1024 * 1024 bytes (as in ProducerPerformance/ConsumerPerformance); bytes = key + value sizes.
//
// Records beyond N in the last poll are not counted; end_offsets shows whether the topic holds more.
// Output: exactly one machine-readable line on stdout (diagnostics go to stderr):
//   assign-consumer-perf records=R bytes=B elapsed_ms=E records_per_sec=X mb_per_sec=Y first_record_ms=F
//       fetch_ms=M fetch_records_per_sec=X2 fetch_mb_per_sec=Y2 partitions=P end_offsets=S
//       status=ok|no_progress|max_time
// (fetch_* are -1 when everything arrived in the first poll)
// (end_offsets = sum of the partitions' end offsets, read after the measurement; -1 if unavailable).
// Exit status: 0 when at least --num-records records were read, 2 when the run stopped early (no progress
// for --timeout-ms, or --max-ms in total), 1 on errors (bad arguments, unknown topic, client exceptions).

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public final class AssignConsumerPerf {
    private static final String USAGE =
        "usage: AssignConsumerPerf --bootstrap-server HOST:PORT --topic TOPIC --num-records N\n"
            + "         [--timeout-ms MS]   stop after MS without a new record (default 60000)\n"
            + "         [--max-ms MS]       stop after MS in total (default 600000)\n"
            + "         [--command-property k=v [k=v ...]]  consumer config overrides (repeatable)\n";

    private static void usage(String problem) {
        if (problem != null) {
            System.err.println("AssignConsumerPerf: " + problem);
        }
        System.err.print(USAGE);
        System.exit(problem == null ? 0 : 1);
    }

    private static long parseLong(String name, String value) {
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            usage(name + " needs a number, got " + value);
            return 0; // unreachable
        }
    }

    public static void main(String[] args) {
        String bootstrap = null;
        String topic = null;
        long numRecords = -1;
        long idleMs = 60_000;
        long maxMs = 600_000;
        Properties overrides = new Properties();

        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                usage(null);
            }
            if (a.equals("--command-property")) {
                int taken = 0;
                while (i + 1 < args.length && !args[i + 1].startsWith("--")) {
                    String kv = args[++i];
                    int eq = kv.indexOf('=');
                    if (eq <= 0) {
                        usage("--command-property expects k=v, got " + kv);
                    }
                    overrides.setProperty(kv.substring(0, eq), kv.substring(eq + 1));
                    taken++;
                }
                if (taken == 0) {
                    usage("--command-property expects k=v");
                }
                continue;
            }
            if (i + 1 >= args.length) {
                usage("missing value for " + a);
            }
            String v = args[++i];
            switch (a) {
                case "--bootstrap-server": bootstrap = v; break;
                case "--topic": topic = v; break;
                case "--num-records": numRecords = parseLong(a, v); break;
                case "--timeout-ms": idleMs = parseLong(a, v); break;
                case "--max-ms": maxMs = parseLong(a, v); break;
                default: usage("unknown option " + a);
            }
        }
        if (bootstrap == null || topic == null || numRecords < 0) {
            usage("--bootstrap-server, --topic and --num-records are required");
        }
        if (idleMs <= 0 || maxMs <= 0) {
            usage("--timeout-ms and --max-ms must be positive");
        }

        Properties props = new Properties();
        props.setProperty(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.setProperty(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.setProperty(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.putAll(overrides);

        try {
            System.exit(run(props, topic, numRecords, idleMs, maxMs));
        } catch (Exception e) {
            System.err.println("AssignConsumerPerf: failed: " + e);
            e.printStackTrace(System.err);
            System.exit(1);
        }
    }

    private static int run(Properties props, String topic, long numRecords, long idleMs, long maxMs) {
        final long idleNs = idleMs * 1_000_000L;
        final long maxNs = maxMs * 1_000_000L;
        long records = 0;
        long bytes = 0;
        long firstNs = -1;
        long firstRecords = 0;
        long firstBytes = 0;
        long lastNs;
        long endOffsets = -1;
        String status = "ok";
        List<TopicPartition> partitions = new ArrayList<>();

        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            final long t0 = System.nanoTime();
            // Metadata; an empty answer (topic not known yet) is retried until the no-progress timeout.
            for (int attempt = 0; ; attempt++) {
                long left = idleNs - (System.nanoTime() - t0);
                if (left <= 0) {
                    System.err.println("AssignConsumerPerf: no partitions for topic " + topic + " within "
                        + idleMs + " ms");
                    return 1;
                }
                List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofNanos(left));
                if (infos != null && !infos.isEmpty()) {
                    for (PartitionInfo p : infos) {
                        partitions.add(new TopicPartition(p.topic(), p.partition()));
                    }
                    break;
                }
                if (attempt >= 600) {
                    System.err.println("AssignConsumerPerf: no partitions for topic " + topic);
                    return 1;
                }
                sleepQuietly(100);
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);

            long lastProgressNs = System.nanoTime();
            lastNs = lastProgressNs;
            while (records < numRecords) {
                long now = System.nanoTime();
                if (now - lastProgressNs >= idleNs) {
                    status = "no_progress";
                    break;
                }
                if (now - t0 >= maxNs) {
                    status = "max_time";
                    break;
                }
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(100));
                if (batch.isEmpty()) {
                    continue;
                }
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    if (records >= numRecords) {
                        break; // exactly N: the rest of the last poll is not counted
                    }
                    records++;
                    bytes += Math.max(0, r.serializedKeySize()) + Math.max(0, r.serializedValueSize());
                }
                lastProgressNs = System.nanoTime();
                lastNs = lastProgressNs;
                if (firstNs < 0) {
                    firstNs = lastProgressNs;
                    firstRecords = records;
                    firstBytes = bytes;
                }
            }
            // Outside the timed section: how many records the partitions hold, to cross-check the count.
            try {
                long sum = 0;
                for (Map.Entry<TopicPartition, Long> e
                        : consumer.endOffsets(partitions, Duration.ofSeconds(10)).entrySet()) {
                    sum += e.getValue();
                }
                endOffsets = sum;
            } catch (Exception e) {
                System.err.println("AssignConsumerPerf: endOffsets failed: " + e);
            }

            double elapsedNs = Math.max(1, lastNs - t0);
            double secs = elapsedNs / 1e9;
            long fetchMs = -1;
            double fetchRps = -1;
            double fetchMbps = -1;
            if (firstNs >= 0 && records > firstRecords && lastNs > firstNs) {
                double fetchSecs = (lastNs - firstNs) / 1e9;
                fetchMs = Math.round((lastNs - firstNs) / 1e6);
                fetchRps = (records - firstRecords) / fetchSecs;
                fetchMbps = (bytes - firstBytes) / 1048576.0 / fetchSecs;
            }
            System.out.println(String.format(Locale.ROOT,
                "assign-consumer-perf records=%d bytes=%d elapsed_ms=%d records_per_sec=%.1f mb_per_sec=%.2f"
                    + " first_record_ms=%d fetch_ms=%d fetch_records_per_sec=%.1f fetch_mb_per_sec=%.2f"
                    + " partitions=%d end_offsets=%d status=%s",
                records, bytes, Math.round(elapsedNs / 1e6), records / secs, bytes / 1048576.0 / secs,
                firstNs < 0 ? -1 : Math.round((firstNs - t0) / 1e6), fetchMs, fetchRps, fetchMbps,
                partitions.size(), endOffsets, status));
            System.out.flush();
            if (!status.equals("ok")) {
                System.err.println("AssignConsumerPerf: stopped early (" + status + ") after " + records + " of "
                    + numRecords + " records");
                return 2;
            }
            return 0;
        }
    }

    private static void sleepQuietly(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
