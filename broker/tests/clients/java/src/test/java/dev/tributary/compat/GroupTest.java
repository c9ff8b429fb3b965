package dev.tributary.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupSubscribedToTopicException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

/**
 * Consumer groups with the classic protocol (JoinGroup/SyncGroup/Heartbeat, OffsetCommit/OffsetFetch,
 * OffsetDelete), Kafka semantics. Members are polled round-robin from the test thread; every wait has a deadline.
 */
class GroupTest {
    static final int PARTITIONS = 6;
    static final long T = 30;
    static final Duration ASSIGN_TIMEOUT = Duration.ofSeconds(60);

    static String group(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 10);
    }

    static KafkaConsumer<String, String> consumer(String group, Map<String, Object> extra) {
        Map<String, Object> c = new HashMap<>(Map.of(
                "group.id", group, "group.protocol", "classic",
                "partition.assignment.strategy", "org.apache.kafka.clients.consumer.RangeAssignor",
                "session.timeout.ms", "6000", "heartbeat.interval.ms", "500",
                "enable.auto.commit", "false", "auto.offset.reset", "earliest",
                "key.deserializer", StringDeserializer.class.getName(),
                "value.deserializer", StringDeserializer.class.getName()));
        c.putAll(extra);
        return new KafkaConsumer<>(Cluster.props(c));
    }

    static void createTopic(String topic, int partitions) throws Exception {
        try (Admin admin = Admin.create(Cluster.props(Map.of()))) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(T, TimeUnit.SECONDS);
            AdminTest.awaitLeaders(admin, topic, partitions);
        }
    }

    /** Produces n records "v<i>" to partition i % partitions, i from start. */
    static void produce(String topic, int start, int n, int partitions) throws Exception {
        Map<String, Object> pc = Map.of("acks", "all", "linger.ms", "5",
                "key.serializer", StringSerializer.class.getName(), "value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> p = new KafkaProducer<>(Cluster.props(pc))) {
            List<java.util.concurrent.Future<?>> fs = new ArrayList<>();
            for (int i = start; i < start + n; i++) {
                fs.add(p.send(new ProducerRecord<>(topic, i % partitions, "k" + i, "v" + i)));
            }
            p.flush();
            for (var f : fs) {
                f.get(T, TimeUnit.SECONDS);
            }
        }
    }

    /** Members polled round-robin; records each one read are kept. */
    static final class Members {
        final List<KafkaConsumer<String, String>> cs = new ArrayList<>();
        final List<List<ConsumerRecord<String, String>>> got = new ArrayList<>();

        KafkaConsumer<String, String> add(KafkaConsumer<String, String> c) {
            cs.add(c);
            got.add(new ArrayList<>());
            return c;
        }

        void pump() {
            for (int i = 0; i < cs.size(); i++) {
                for (ConsumerRecord<String, String> r : cs.get(i).poll(Duration.ofMillis(30))) {
                    got.get(i).add(r);
                }
            }
        }

        List<Set<Integer>> assignments() {
            return cs.stream().map(c -> c.assignment().stream().map(TopicPartition::partition)
                    .collect(Collectors.toCollection(java.util.TreeSet::new))).collect(Collectors.toList());
        }

        int total() {
            return got.stream().mapToInt(List::size).sum();
        }

        void close() {
            for (var c : cs) {
                c.close(Duration.ofSeconds(10));
            }
            cs.clear();
        }
    }

    static boolean exactCover(List<Set<Integer>> as, int partitions) {
        List<Integer> flat = new ArrayList<>();
        as.forEach(flat::addAll);
        flat.sort(null);
        List<Integer> all = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            all.add(p);
        }
        return flat.equals(all);
    }

    /** Pumps until every member has `each` partitions, covering all exactly once, unchanged for 1.5 s. */
    static List<Set<Integer>> awaitAssignment(Runnable pump, Supplier<List<Set<Integer>>> current, int each, String what) {
        long deadline = System.nanoTime() + ASSIGN_TIMEOUT.toNanos();
        List<Set<Integer>> seen = null;
        long since = 0;
        while (System.nanoTime() < deadline) {
            pump.run();
            List<Set<Integer>> a = current.get();
            if (exactCover(a, PARTITIONS) && a.stream().allMatch(s -> s.size() == each)) {
                if (!a.equals(seen)) {
                    seen = a;
                    since = System.nanoTime();
                } else if (System.nanoTime() - since > TimeUnit.MILLISECONDS.toNanos(1500)) {
                    return a;
                }
            } else {
                seen = null;
            }
        }
        throw new AssertionError(what + ": no stable assignment of " + each + " partitions each within "
                + ASSIGN_TIMEOUT + "; last " + current.get());
    }

    @Test
    void threeMembersSplitSixPartitionsAndANewMemberResumesAtCommittedOffsets() throws Exception {
        String topic = Cluster.topic("jgroup");
        String group = group("jsplit");
        createTopic(topic, PARTITIONS);
        Members m = new Members();
        try {
            for (int i = 0; i < 3; i++) {
                m.add(consumer(group, Map.of())).subscribe(List.of(topic));
            }
            awaitAssignment(m::pump, m::assignments, 2, "3 members");
            produce(topic, 0, 600, PARTITIONS);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (m.total() < 600 && System.nanoTime() < deadline) {
                m.pump();
            }
            assertEquals(600, m.total(), "records read by the 3 members");
            for (int i = 0; i < 3; i++) {
                assertEquals(200, m.got.get(i).size(), "member " + i + " reads its 2 partitions");
                // "Processed" up to offset 50 of each of its partitions; commit that synchronously.
                Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
                for (TopicPartition tp : m.cs.get(i).assignment()) {
                    offs.put(tp, new OffsetAndMetadata(50, "member-" + i));
                }
                m.cs.get(i).commitSync(offs, Duration.ofSeconds(T));
                assertEquals(offs, m.cs.get(i).committed(offs.keySet(), Duration.ofSeconds(T)), "OffsetFetch after commit");
            }
        } finally {
            m.close();
        }
        produce(topic, 600, 120, PARTITIONS);
        try (KafkaConsumer<String, String> c = consumer(group, Map.of())) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            int want = PARTITIONS * 50 + 120;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            long lingerUntil = Long.MAX_VALUE;
            while (System.nanoTime() < Math.min(deadline, lingerUntil)) {
                c.poll(Duration.ofMillis(100)).forEach(got::add);
                if (got.size() >= want && lingerUntil == Long.MAX_VALUE) {
                    lingerUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
                }
            }
            Map<Integer, List<Long>> offs = new TreeMap<>();
            for (var r : got) {
                offs.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r.offset());
            }
            for (int p = 0; p < PARTITIONS; p++) {
                List<Long> o = offs.getOrDefault(p, List.of());
                List<Long> expect = new ArrayList<>();
                for (long x = 50; x < 120; x++) {
                    expect.add(x);
                }
                assertEquals(expect, o, "partition " + p + ": offsets read by the new member (committed 50, end 120)");
            }
            assertEquals(want, got.size());
        }
    }

    @Test
    void staticMemberRestartGetsItsPartitionsBackWithoutRebalance() throws Exception {
        String topic = Cluster.topic("jstatic");
        String group = group("jstatic");
        createTopic(topic, PARTITIONS);
        Members m = new Members();
        List<AtomicInteger> assignedCalls = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) {
                KafkaConsumer<String, String> c = consumer(group, Map.of("group.instance.id", group + "-s" + i,
                        "session.timeout.ms", "30000"));
                AtomicInteger calls = new AtomicInteger();
                assignedCalls.add(calls);
                c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                    @Override
                    public void onPartitionsRevoked(Collection<TopicPartition> parts) {}

                    @Override
                    public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                        calls.incrementAndGet();
                    }
                });
                m.add(c);
            }
            List<Set<Integer>> before = awaitAssignment(m::pump, m::assignments, 2, "3 static members");
            int[] gens = new int[3];
            int[] callsBefore = new int[3];
            for (int i = 0; i < 3; i++) {
                gens[i] = m.cs.get(i).groupMetadata().generationId();
                callsBefore[i] = assignedCalls.get(i).get();
            }
            assertTrue(gens[0] > 0 && gens[0] == gens[1] && gens[1] == gens[2], "one generation: " + List.of(gens[0], gens[1], gens[2]));

            // Member 1 goes away without LeaveGroup (a static member's close() does not leave) and comes back.
            m.cs.get(1).close(Duration.ofSeconds(10));
            KafkaConsumer<String, String> back = consumer(group, Map.of("group.instance.id", group + "-s1",
                    "session.timeout.ms", "30000"));
            m.cs.set(1, back);
            back.subscribe(List.of(topic));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (back.assignment().isEmpty() && System.nanoTime() < deadline) {
                m.pump();
            }
            assertEquals(before.get(1), m.assignments().get(1), "the restarted static member's partitions");
            // Let the others heartbeat for a while: a rebalance would reach them within a few intervals.
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(4);
            while (System.nanoTime() < until) {
                m.pump();
            }
            assertEquals(before, m.assignments(), "assignments after the static member's return");
            for (int i : new int[] {0, 2}) {
                assertEquals(callsBefore[i], assignedCalls.get(i).get(), "member " + i + " saw a rebalance");
                assertEquals(gens[i], m.cs.get(i).groupMetadata().generationId(), "member " + i + " generation");
            }
            assertEquals(gens[0], back.groupMetadata().generationId(), "generation of the returning static member");
            try (Admin admin = Admin.create(Cluster.props(Map.of()))) {
                ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).describedGroups().get(group)
                        .get(T, TimeUnit.SECONDS);
                assertEquals(GroupState.STABLE, d.groupState());
                assertEquals(Set.of(group + "-s0", group + "-s1", group + "-s2"),
                        d.members().stream().map(x -> x.groupInstanceId().orElse("")).collect(Collectors.toSet()));
            }
        } finally {
            m.close();
        }
    }

    @Test
    void offsetDeleteOnlyWhenTheGroupDoesNotSubscribeTheTopic() throws Exception {
        String topic = Cluster.topic("joffdel");
        String group = group("joffdel");
        createTopic(topic, 2);
        TopicPartition tp0 = new TopicPartition(topic, 0);
        TopicPartition tp1 = new TopicPartition(topic, 1);
        try (Admin admin = Admin.create(Cluster.props(Map.of()))) {
            try (KafkaConsumer<String, String> c = consumer(group, Map.of())) {
                c.subscribe(List.of(topic));
                long deadline = System.nanoTime() + ASSIGN_TIMEOUT.toNanos();
                while (c.assignment().size() < 2 && System.nanoTime() < deadline) {
                    c.poll(Duration.ofMillis(100));
                }
                assertEquals(Set.of(tp0, tp1), c.assignment());
                c.commitSync(Map.of(tp0, new OffsetAndMetadata(0), tp1, new OffsetAndMetadata(0)), Duration.ofSeconds(T));
                ExecutionException e = assertThrows(ExecutionException.class, () -> admin
                        .deleteConsumerGroupOffsets(group, Set.of(tp0)).all().get(T, TimeUnit.SECONDS));
                assertInstanceOf(GroupSubscribedToTopicException.class, e.getCause(),
                        "OffsetDelete of a topic the group's members subscribe to");
            }
            admin.deleteConsumerGroupOffsets(group, Set.of(tp0)).all().get(T, TimeUnit.SECONDS);
            Map<TopicPartition, OffsetAndMetadata> left = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get(T, TimeUnit.SECONDS);
            assertEquals(Set.of(tp1), left.keySet(), "offsets left after OffsetDelete of partition 0: " + left);
            assertEquals(0, left.get(tp1).offset());
            // Deleting an offset that is not there (anymore) is not an error in Kafka.
            admin.deleteConsumerGroupOffsets(group, Set.of(tp0)).all().get(T, TimeUnit.SECONDS);
        }
    }
}
