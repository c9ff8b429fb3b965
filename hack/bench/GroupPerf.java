// Consumer-group benchmark (classic protocol): N KafkaConsumer members (one thread each) with the same
// group.id, subscribed to one topic, then one extra member joining the stable group.
//
// Used by hack/bench.sh for Tributary and Apache Kafka alike. Compile against the kafka-clients jar:
//   javac -d CLASSES -cp "$(hack/kafka-ref.sh classpath)" hack/bench/GroupPerf.java
//   java -cp "CLASSES:$(hack/kafka-ref.sh classpath)" GroupPerf \
//       --bootstrap-server 127.0.0.1:9092 --topic T --num-records N [--members 10] [--group G] \
//       [--timeout-ms 60000] [--max-ms 600000] [--settle-ms 1000] [--command-property k=v ...]
//
// Client config: kafka-clients defaults plus bootstrap.servers, byte-array deserializers, group.id,
// group.protocol=classic, partition.assignment.strategy=RangeAssignor (eager: every rebalance is one
// JoinGroup/SyncGroup round with all members) and auto.offset.reset=earliest (a new group must read the
// pre-filled topic); session/heartbeat/poll timeouts and auto-commit are the defaults
// (session.timeout.ms=45000, heartbeat.interval.ms=3000, enable.auto.commit=true). Every
// --command-property k=v is applied last (it may override those).
//
// Phases (System.nanoTime; "stable" = every expected member has an assignment from onPartitionsAssigned, all of
// the same generation, distinct member ids, and the union of the assignments covers every partition of the
// topic exactly once):
//   1. join:      N members are constructed (no network I/O), then released together; t0 = release, just
//                 before the first subscribe(). join_ms = t0 -> stable. Assigned partitions are paused in the
//                 rebalance listener during this phase, so no records are fetched before the group is stable.
//   2. consume:   all members resume (wakeup() interrupts their poll); consume_ms = resume -> the poll that
//                 delivered the last of the N distinct records. Every record is checked against a per-partition
//                 bitmap of offsets: duplicates = records delivered more than once (across all members).
//                 records/s and MB/s = distinct records (bytes) / consume_ms.
//   3. rebalance: one extra member (N+1) is constructed, t1 = just before its subscribe();
//                 rebalance_ms = t1 -> stable with N+1 members and a generation newer than phase 1's.
//                 The members keep polling for --settle-ms afterwards; redelivered = records delivered again
//                 after phase 2 (non-zero if committed offsets were not honoured).
// MB = 1024 * 1024 bytes; bytes = key + value sizes.
//
// Output: exactly one machine-readable line on stdout (diagnostics, with timestamps relative to t0, go to stderr):
//   group-perf members=N partitions=P assignor=range join_ms=J join_generation=G records=R bytes=B
//       duplicates=D consume_ms=C records_per_sec=X mb_per_sec=Y end_offsets=S rebalance_ms=RB
//       rebalance_generation=G2 redelivered=RD member_errors=E status=ok|join_timeout|no_progress|
//       rebalance_timeout|max_time|error
// (values not measured are -1; status is the first failure.)
// Exit status: 0 if status=ok, duplicates=0 and records=N; 2 otherwise; 1 on bad arguments / setup errors.

import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public final class GroupPerf {
    private static final String USAGE =
        "usage: GroupPerf --bootstrap-server HOST:PORT --topic TOPIC --num-records N\n"
            + "         [--members N]       members of the initial group (default 10)\n"
            + "         [--group ID]        group.id (default group-perf-<millis>)\n"
            + "         [--timeout-ms MS]   bound of each phase without progress (default 60000)\n"
            + "         [--max-ms MS]       bound of the whole run (default 600000)\n"
            + "         [--settle-ms MS]    polling after the +1 rebalance, to catch redeliveries (default 1000)\n"
            + "         [--command-property k=v [k=v ...]]  consumer config overrides (repeatable)\n";

    enum Phase { JOIN, CONSUME, REBALANCE, STOP }

    private static void usage(String problem) {
        if (problem != null) {
            System.err.println("GroupPerf: " + problem);
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
        String group = "group-perf-" + System.currentTimeMillis();
        long numRecords = -1;
        long members = 10;
        long idleMs = 60_000;
        long maxMs = 600_000;
        long settleMs = 1_000;
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
                case "--group": group = v; break;
                case "--num-records": numRecords = parseLong(a, v); break;
                case "--members": members = parseLong(a, v); break;
                case "--timeout-ms": idleMs = parseLong(a, v); break;
                case "--max-ms": maxMs = parseLong(a, v); break;
                case "--settle-ms": settleMs = parseLong(a, v); break;
                default: usage("unknown option " + a);
            }
        }
        if (bootstrap == null || topic == null || numRecords < 0) {
            usage("--bootstrap-server, --topic and --num-records are required");
        }
        if (idleMs <= 0 || maxMs <= 0 || settleMs < 0 || members < 1 || members > 1000) {
            usage("--timeout-ms and --max-ms must be positive, --members 1..1000, --settle-ms >= 0");
        }

        Properties props = new Properties();
        props.setProperty(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.setProperty(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.setProperty(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.setProperty(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.setProperty("group.protocol", "classic");
        props.setProperty(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName());
        props.setProperty(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.putAll(overrides);

        try {
            System.exit(new GroupPerf(props, topic, (int) members, numRecords, idleMs, maxMs, settleMs).run());
        } catch (Exception e) {
            System.err.println("GroupPerf: failed: " + e);
            e.printStackTrace(System.err);
            System.exit(1);
        }
    }

    // --- shared state -------------------------------------------------------------------------------
    private final Properties props;
    private final String topic;
    private final int numMembers;
    private final long numRecords;
    private final long idleNs;
    private final long maxNs;
    private final long settleMs;

    private final Object lock = new Object();
    private volatile Phase phase = Phase.JOIN;
    private volatile long tBase = System.nanoTime(); // reset in run() when the members are released
    private int numPartitions;
    private BitSet[] seen;
    private final List<Member> group = new ArrayList<>(); // members that must be in the stable group (under lock)
    private int minGeneration = -1;       // stable needs a generation > this (under lock)
    private long stableNs = -1;           // set when the condition first holds (under lock)
    private int stableGeneration = -1;
    private final AtomicLong distinct = new AtomicLong();
    private final AtomicLong distinctBytes = new AtomicLong();
    private final AtomicLong duplicates = new AtomicLong();
    private final AtomicLong redelivered = new AtomicLong();
    private final AtomicLong memberErrors = new AtomicLong();
    private volatile long lastProgressNs;
    private volatile long doneNs = -1;

    GroupPerf(Properties props, String topic, int numMembers, long numRecords, long idleMs, long maxMs,
              long settleMs) {
        this.props = props;
        this.topic = topic;
        this.numMembers = numMembers;
        this.numRecords = numRecords;
        this.idleNs = idleMs * 1_000_000L;
        this.maxNs = maxMs * 1_000_000L;
        this.settleMs = settleMs;
    }

    private void diag(String msg) {
        System.err.println(String.format(Locale.ROOT, "GroupPerf [+%d ms] %s",
            (System.nanoTime() - tBase) / 1_000_000L, msg));
    }

    /** Caller holds lock. */
    private void checkStable() {
        if (stableNs >= 0) {
            return;
        }
        int gen = -2;
        Set<String> ids = new HashSet<>();
        int[] owners = new int[numPartitions];
        for (Member m : group) {
            if (m.assigned == null || m.generation <= minGeneration) {
                return;
            }
            if (gen == -2) {
                gen = m.generation;
            } else if (gen != m.generation) {
                return;
            }
            if (!ids.add(m.memberId)) {
                return;
            }
            for (TopicPartition tp : m.assigned) {
                if (!tp.topic().equals(topic) || tp.partition() < 0 || tp.partition() >= numPartitions) {
                    return;
                }
                owners[tp.partition()]++;
            }
        }
        for (int c : owners) {
            if (c != 1) {
                return;
            }
        }
        stableNs = System.nanoTime();
        stableGeneration = gen;
        lock.notifyAll();
    }

    private void record(ConsumerRecords<byte[], byte[]> batch) {
        long newRecords = 0;
        long newBytes = 0;
        long dups = 0;
        for (ConsumerRecord<byte[], byte[]> r : batch) {
            int p = r.partition();
            long off = r.offset();
            boolean dup;
            if (p < 0 || p >= numPartitions || off < 0 || off > Integer.MAX_VALUE) {
                dup = false; // not trackable; counted as new
            } else {
                BitSet bs = seen[p];
                synchronized (bs) {
                    dup = bs.get((int) off);
                    if (!dup) {
                        bs.set((int) off);
                    }
                }
            }
            if (dup) {
                dups++;
            } else {
                newRecords++;
                newBytes += Math.max(0, r.serializedKeySize()) + Math.max(0, r.serializedValueSize());
            }
        }
        if (dups > 0) {
            Phase ph = phase;
            (ph == Phase.JOIN || ph == Phase.CONSUME ? duplicates : redelivered).addAndGet(dups);
        }
        distinctBytes.addAndGet(newBytes);
        long total = distinct.addAndGet(newRecords);
        long now = System.nanoTime();
        lastProgressNs = now;
        if (total >= numRecords && doneNs < 0) {
            synchronized (lock) {
                if (doneNs < 0) {
                    doneNs = now;
                    lock.notifyAll();
                }
            }
        }
    }

    // --- one member ---------------------------------------------------------------------------------
    final class Member implements Runnable, ConsumerRebalanceListener {
        final int index;
        final KafkaConsumer<byte[], byte[]> consumer;
        final CountDownLatch release = new CountDownLatch(1);
        // under lock:
        Set<TopicPartition> assigned;
        int generation = -1;
        String memberId = "";
        volatile boolean resumed;
        volatile boolean finished;

        Member(int index) {
            this.index = index;
            Properties p = new Properties();
            p.putAll(props);
            p.putIfAbsent(ConsumerConfig.CLIENT_ID_CONFIG, "group-perf-" + index);
            this.consumer = new KafkaConsumer<>(p);
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            synchronized (lock) {
                assigned = null;
            }
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            diag("member " + index + " lost its partitions " + partitions.size());
            synchronized (lock) {
                assigned = null;
            }
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            if (phase == Phase.JOIN) {
                consumer.pause(partitions); // nothing is fetched before the whole group is stable
            }
            int gen = consumer.groupMetadata().generationId();
            String id = consumer.groupMetadata().memberId();
            diag("member " + index + " generation " + gen + " assigned " + partitions.size() + " partitions");
            synchronized (lock) {
                assigned = new HashSet<>(partitions);
                generation = gen;
                memberId = id;
                checkStable();
            }
        }

        @Override
        public void run() {
            long errors = 0;
            try {
                release.await();
                consumer.subscribe(List.of(topic), this);
                while (phase != Phase.STOP && System.nanoTime() - tBase < maxNs) {
                    try {
                        if (phase != Phase.JOIN && !resumed) {
                            consumer.resume(consumer.paused());
                            resumed = true;
                        }
                        ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(100));
                        if (!batch.isEmpty()) {
                            record(batch);
                        }
                    } catch (WakeupException e) {
                        // phase change
                    } catch (Exception e) {
                        memberErrors.incrementAndGet();
                        if (++errors <= 5) {
                            diag("member " + index + " poll failed: " + e);
                        }
                        Thread.sleep(100);
                    }
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (Exception e) {
                memberErrors.incrementAndGet();
                diag("member " + index + " failed: " + e);
            } finally {
                try {
                    consumer.close(Duration.ofSeconds(5));
                } catch (Exception e) {
                    diag("member " + index + " close failed: " + e);
                }
                finished = true;
            }
        }
    }

    private Thread start(Member m) {
        Thread t = new Thread(m, "group-perf-" + m.index);
        t.setDaemon(true);
        t.start();
        return t;
    }

    /** Waits (holding nothing) until stableNs is set or the bound passes; returns false on timeout. */
    private boolean awaitStable(long startNs) throws InterruptedException {
        synchronized (lock) {
            while (stableNs < 0) {
                long now = System.nanoTime();
                long left = Math.min(startNs + idleNs, tBase + maxNs) - now;
                if (left <= 0) {
                    return false;
                }
                lock.wait(Math.max(1, Math.min(200, left / 1_000_000L)));
            }
            return true;
        }
    }

    private void dumpMembers(String why) {
        synchronized (lock) {
            diag(why + ": minimum generation " + (minGeneration + 1));
            for (Member m : group) {
                diag("  member " + m.index + " id=" + m.memberId + " generation=" + m.generation + " assigned="
                    + (m.assigned == null ? "none" : m.assigned.size() + " partitions"));
            }
        }
    }

    int run() throws Exception {
        // Topic metadata and end offsets, with a group-less consumer (no coordinator involved).
        long endOffsets = -1;
        Properties probeProps = new Properties();
        probeProps.putAll(props);
        probeProps.remove(ConsumerConfig.GROUP_ID_CONFIG);
        probeProps.remove("group.protocol");
        probeProps.remove(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG);
        probeProps.setProperty(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        List<TopicPartition> partitions = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> probe = new KafkaConsumer<>(probeProps)) {
            long start = System.nanoTime();
            for (int attempt = 0; attempt < 600; attempt++) {
                long left = idleNs - (System.nanoTime() - start);
                if (left <= 0) {
                    break;
                }
                List<PartitionInfo> infos = probe.partitionsFor(topic, Duration.ofNanos(left));
                if (infos != null && !infos.isEmpty()) {
                    for (PartitionInfo p : infos) {
                        partitions.add(new TopicPartition(p.topic(), p.partition()));
                    }
                    break;
                }
                Thread.sleep(100);
            }
            if (partitions.isEmpty()) {
                System.err.println("GroupPerf: no partitions for topic " + topic);
                return 1;
            }
            long sum = 0;
            for (Map.Entry<TopicPartition, Long> e : probe.endOffsets(partitions, Duration.ofSeconds(30)).entrySet()) {
                sum += e.getValue();
            }
            endOffsets = sum;
        }
        for (TopicPartition tp : partitions) {
            numPartitions = Math.max(numPartitions, tp.partition() + 1);
        }
        if (numPartitions != partitions.size()) {
            System.err.println("GroupPerf: partition ids of " + topic + " are not 0.." + (partitions.size() - 1));
            return 1;
        }
        seen = new BitSet[numPartitions];
        for (int i = 0; i < numPartitions; i++) {
            seen[i] = new BitSet();
        }
        if (endOffsets < numRecords) {
            System.err.println("GroupPerf: warning: end offsets of " + topic + " sum to " + endOffsets + ", fewer than "
                + numRecords + " records");
        }

        String status = "ok";
        long joinMs = -1;
        int joinGeneration = -1;
        long consumeMs = -1;
        long rebalanceMs = -1;
        int rebalanceGeneration = -1;
        List<Thread> threads = new ArrayList<>();

        // Phase 1: join.
        synchronized (lock) {
            for (int i = 0; i < numMembers; i++) {
                group.add(new Member(i));
            }
        }
        for (Member m : group) {
            threads.add(start(m));
        }
        tBase = System.nanoTime();
        final long tJoin = tBase;
        for (Member m : group) {
            m.release.countDown();
        }
        if (awaitStable(tJoin)) {
            synchronized (lock) {
                joinMs = Math.round((stableNs - tJoin) / 1e6);
                joinGeneration = stableGeneration;
            }
            diag("group of " + numMembers + " stable in generation " + joinGeneration + " after " + joinMs + " ms");
        } else {
            status = System.nanoTime() - tBase >= maxNs ? "max_time" : "join_timeout";
            dumpMembers("join did not complete");
        }

        // Phase 2: consume.
        if (status.equals("ok")) {
            final long tConsume = System.nanoTime();
            lastProgressNs = tConsume;
            phase = Phase.CONSUME;
            for (Member m : group) {
                m.consumer.wakeup();
            }
            synchronized (lock) {
                while (doneNs < 0) {
                    long now = System.nanoTime();
                    if (now - lastProgressNs >= idleNs) {
                        status = "no_progress";
                        break;
                    }
                    if (now - tBase >= maxNs) {
                        status = "max_time";
                        break;
                    }
                    lock.wait(50);
                }
            }
            long end = doneNs >= 0 ? doneNs : lastProgressNs;
            consumeMs = Math.round((end - tConsume) / 1e6);
            diag("consumed " + distinct.get() + " distinct records (" + duplicates.get() + " duplicates) in "
                + consumeMs + " ms" + (status.equals("ok") ? "" : ", stopped: " + status));
        }

        // Phase 3: one more member (also after a failed consume phase: the group itself is stable).
        if (joinGeneration >= 0 && !status.equals("max_time")) {
            Member extra = new Member(numMembers);
            synchronized (lock) {
                minGeneration = joinGeneration;
                stableNs = -1;
                stableGeneration = -1;
                group.add(extra);
            }
            phase = Phase.REBALANCE;
            threads.add(start(extra));
            final long tRebalance = System.nanoTime();
            extra.release.countDown();
            if (awaitStable(tRebalance)) {
                synchronized (lock) {
                    rebalanceMs = Math.round((stableNs - tRebalance) / 1e6);
                    rebalanceGeneration = stableGeneration;
                }
                diag("group of " + (numMembers + 1) + " stable in generation " + rebalanceGeneration + " after "
                    + rebalanceMs + " ms");
                Thread.sleep(settleMs);
            } else {
                if (status.equals("ok")) {
                    status = System.nanoTime() - tBase >= maxNs ? "max_time" : "rebalance_timeout";
                }
                dumpMembers("rebalance did not complete");
            }
        }

        // Stop: members leave the group (close) in parallel, bounded.
        phase = Phase.STOP;
        synchronized (lock) {
            for (Member m : group) {
                m.consumer.wakeup();
            }
        }
        long stopBy = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        for (Thread t : threads) {
            t.join(Math.max(1, (stopBy - System.nanoTime()) / 1_000_000L));
        }

        long records = distinct.get();
        long bytes = distinctBytes.get();
        double secs = Math.max(1, consumeMs) / 1e3;
        boolean consumed = consumeMs >= 0;
        System.out.println(String.format(Locale.ROOT,
            "group-perf members=%d partitions=%d assignor=range join_ms=%d join_generation=%d records=%d bytes=%d"
                + " duplicates=%d consume_ms=%d records_per_sec=%s mb_per_sec=%s end_offsets=%d rebalance_ms=%d"
                + " rebalance_generation=%d redelivered=%d member_errors=%d status=%s",
            numMembers, numPartitions, joinMs, joinGeneration, records, bytes, duplicates.get(), consumeMs,
            consumed ? String.format(Locale.ROOT, "%.1f", records / secs) : "-1",
            consumed ? String.format(Locale.ROOT, "%.2f", bytes / 1048576.0 / secs) : "-1",
            endOffsets, rebalanceMs, rebalanceGeneration, redelivered.get(), memberErrors.get(), status));
        System.out.flush();
        return status.equals("ok") && duplicates.get() == 0 && records == numRecords ? 0 : 2;
    }
}
