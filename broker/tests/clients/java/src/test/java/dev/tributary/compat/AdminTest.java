package dev.tributary.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

/** AdminClient: topic lifecycle, configs, cluster description and ListOffsets. */
class AdminTest {
    static final long T = 30;

    @Test
    void topicLifecycle() throws Exception {
        String topic = Cluster.topic("java-admin");
        try (Admin admin = Admin.create(Cluster.props(Map.of()))) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1).configs(Map.of("retention.ms", "7200000"))))
                    .all().get(T, TimeUnit.SECONDS);
            ExecutionException dup = assertThrows(ExecutionException.class, () -> admin.createTopics(
                    List.of(new NewTopic(topic, 3, (short) 1))).all().get(T, TimeUnit.SECONDS));
            assertInstanceOf(TopicExistsException.class, dup.getCause(), "creating an existing topic");

            TopicDescription d = describe(admin, topic);
            assertEquals(3, d.partitions().size(), "partitions after create");
            d.partitions().forEach(p -> assertTrue(p.leader() != null && p.leader().id() >= 0, "leader of " + p));

            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            assertEquals("7200000", config(admin, res).get("retention.ms").value(), "retention.ms set at creation");
            admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                    new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET)))).all().get(T, TimeUnit.SECONDS);
            assertEquals("3600000", config(admin, res).get("retention.ms").value(), "retention.ms after alter");
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, config(admin, res).get("retention.ms").source());

            ExecutionException bad = assertThrows(ExecutionException.class, () -> admin.incrementalAlterConfigs(Map.of(res,
                    List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET))))
                    .all().get(T, TimeUnit.SECONDS));
            assertInstanceOf(InvalidConfigurationException.class, bad.getCause(), "non-numeric retention.ms");

            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(6))).all().get(T, TimeUnit.SECONDS);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (describe(admin, topic).partitions().size() != 6 && System.nanoTime() < deadline) {
                Thread.sleep(200);
            }
            assertEquals(6, describe(admin, topic).partitions().size(), "partitions after createPartitions 3 -> 6");

            admin.deleteTopics(List.of(topic)).all().get(T, TimeUnit.SECONDS);
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (admin.listTopics().names().get(T, TimeUnit.SECONDS).contains(topic) && System.nanoTime() < deadline) {
                Thread.sleep(200);
            }
            assertFalse(admin.listTopics().names().get(T, TimeUnit.SECONDS).contains(topic), "topic listed after delete");
            ExecutionException gone = assertThrows(ExecutionException.class,
                    () -> admin.describeTopics(List.of(topic)).allTopicNames().get(T, TimeUnit.SECONDS));
            assertInstanceOf(UnknownTopicOrPartitionException.class, gone.getCause(), "describing a deleted topic");
        }
    }

    @Test
    void invalidTopicConfigIsRejected() throws Exception {
        String topic = Cluster.topic("java-badcfg");
        try (Admin admin = Admin.create(Cluster.props(Map.of()))) {
            ExecutionException e = assertThrows(ExecutionException.class, () -> admin.createTopics(List.of(
                    new NewTopic(topic, 1, (short) 1).configs(Map.of("cleanup.policy", "bogus")))).all().get(T, TimeUnit.SECONDS));
            assertInstanceOf(InvalidConfigurationException.class, e.getCause(), "cleanup.policy=bogus");
            assertFalse(admin.listTopics().names().get(T, TimeUnit.SECONDS).contains(topic), "topic created despite bad config");
        }
    }

    @Test
    void describeCluster() throws Exception {
        try (Admin admin = Admin.create(Cluster.props(Map.of()))) {
            DescribeClusterResult c = admin.describeCluster();
            Collection<Node> nodes = c.nodes().get(T, TimeUnit.SECONDS);
            assertEquals(1, nodes.size(), "single-node cluster: " + nodes);
            Node n = nodes.iterator().next();
            assertEquals(Cluster.bootstrap(), n.host() + ":" + n.port(), "advertised listener of the only node");
            assertEquals(n.id(), c.controller().get(T, TimeUnit.SECONDS).id(), "controller is the only node");
            String id = c.clusterId().get(T, TimeUnit.SECONDS);
            assertTrue(id != null && !id.isBlank(), "cluster id");
        }
    }

    /**
     * The 4.x AdminClient describes topics with DescribeTopicPartitions (KIP-966) when the broker
     * advertises it, following the response cursor: with two partitions per response, two topics of
     * five and three partitions take four round trips and must come back whole and in order.
     */
    @Test
    void describeTopicsPagesThroughPartitions() throws Exception {
        String wide = Cluster.topic("java-pages-wide");
        String narrow = Cluster.topic("java-pages-narrow");
        try (Admin admin = Admin.create(Cluster.props(Map.of()))) {
            admin.createTopics(List.of(new NewTopic(wide, 5, (short) 1), new NewTopic(narrow, 3, (short) 1)))
                    .all().get(T, TimeUnit.SECONDS);
            awaitLeaders(admin, wide, 5);
            awaitLeaders(admin, narrow, 3);
            DescribeTopicsOptions options = new DescribeTopicsOptions()
                    .partitionSizeLimitPerResponse(2)
                    .includeAuthorizedOperations(true);
            Map<String, TopicDescription> described = admin.describeTopics(List.of(wide, narrow), options)
                    .allTopicNames().get(T, TimeUnit.SECONDS);
            for (var expected : Map.of(wide, 5, narrow, 3).entrySet()) {
                TopicDescription d = described.get(expected.getKey());
                List<Integer> indexes = d.partitions().stream().map(TopicPartitionInfo::partition).toList();
                List<Integer> all = java.util.stream.IntStream.range(0, expected.getValue()).boxed().toList();
                assertEquals(all, indexes, "partitions of " + d.name() + " across pages");
                d.partitions().forEach(p -> assertTrue(p.leader() != null && p.leader().id() >= 0, "leader of " + p));
                assertTrue(d.authorizedOperations() != null && d.authorizedOperations().contains(AclOperation.READ),
                        "authorized operations of " + d.name() + ": " + d.authorizedOperations());
            }
            ExecutionException unknown = assertThrows(ExecutionException.class, () -> admin.describeTopics(
                    List.of(Cluster.topic("java-pages-missing")), options).allTopicNames().get(T, TimeUnit.SECONDS));
            assertInstanceOf(UnknownTopicOrPartitionException.class, unknown.getCause(), "describing a missing topic");
            admin.deleteTopics(List.of(wide, narrow)).all().get(T, TimeUnit.SECONDS);
        }
    }

    /** DescribeCluster v2 (KIP-1073): asking for fenced brokers lists the live one, not fenced. */
    @Test
    void describeClusterWithFencedBrokers() throws Exception {
        try (Admin admin = Admin.create(Cluster.props(Map.of()))) {
            Collection<Node> nodes = admin.describeCluster(new DescribeClusterOptions().includeFencedBrokers(true))
                    .nodes().get(T, TimeUnit.SECONDS);
            assertEquals(1, nodes.size(), "single-node cluster: " + nodes);
            assertFalse(nodes.iterator().next().isFenced(), "the only broker is live");
        }
    }

    @Test
    void listOffsets() throws Exception {
        String topic = Cluster.topic("java-offsets");
        long base = System.currentTimeMillis() - 86_400_000L;
        try (Admin admin = Admin.create(Cluster.props(Map.of()))) {
            admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get(T, TimeUnit.SECONDS);
            awaitLeaders(admin, topic, 2);
            Map<String, Object> pc = Map.of("acks", "all", "linger.ms", "0",
                    "key.serializer", StringSerializer.class.getName(), "value.serializer", StringSerializer.class.getName());
            try (KafkaProducer<String, String> p = new KafkaProducer<>(Cluster.props(pc))) {
                List<java.util.concurrent.Future<?>> fs = new ArrayList<>();
                for (int i = 0; i < 50; i++) {
                    fs.add(p.send(new ProducerRecord<>(topic, 0, base + i * 1000L, "k" + i, "v" + i)));
                    if (i % 10 == 9) {
                        p.flush();
                    }
                }
                for (var f : fs) {
                    f.get(T, TimeUnit.SECONDS);
                }
            }
            TopicPartition tp0 = new TopicPartition(topic, 0);
            TopicPartition tp1 = new TopicPartition(topic, 1);
            assertEquals(0, offset(admin, tp0, OffsetSpec.earliest()), "earliest");
            assertEquals(50, offset(admin, tp0, OffsetSpec.latest()), "latest");
            assertEquals(0, offset(admin, tp1, OffsetSpec.latest()), "latest of an empty partition");
            assertEquals(0, offset(admin, tp0, OffsetSpec.forTimestamp(base - 10)), "forTimestamp before the first");
            assertEquals(20, offset(admin, tp0, OffsetSpec.forTimestamp(base + 20_000)), "forTimestamp exact");
            assertEquals(21, offset(admin, tp0, OffsetSpec.forTimestamp(base + 20_001)), "forTimestamp between");
            assertEquals(-1, offset(admin, tp0, OffsetSpec.forTimestamp(base + 50_000)), "forTimestamp after the last");
            ListOffsetsResultInfo max = admin.listOffsets(Map.of(tp0, OffsetSpec.maxTimestamp())).partitionResult(tp0)
                    .get(T, TimeUnit.SECONDS);
            assertEquals(49, max.offset(), "maxTimestamp offset");
            assertEquals(base + 49_000, max.timestamp(), "maxTimestamp timestamp");
        }
    }

    /** Waits (bounded) until the topic has {@code partitions} partitions, each with a leader. */
    static void awaitLeaders(Admin admin, String topic, int partitions) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        TopicDescription d = null;
        while (System.nanoTime() < deadline) {
            try {
                d = describe(admin, topic);
                if (d.partitions().size() == partitions
                        && d.partitions().stream().allMatch(p -> p.leader() != null && p.leader().id() >= 0)) {
                    // The leader must also serve the partition (Kafka briefly answers NOT_LEADER after creation,
                    // which makes an idempotent producer's first batches retry): ListOffsets goes to the leader.
                    Map<TopicPartition, OffsetSpec> all = new java.util.HashMap<>();
                    for (int p = 0; p < partitions; p++) {
                        all.put(new TopicPartition(topic, p), OffsetSpec.latest());
                    }
                    admin.listOffsets(all).all().get(T, TimeUnit.SECONDS);
                    return;
                }
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
                    throw e;
                }
            }
            Thread.sleep(100);
        }
        throw new AssertionError("topic " + topic + " without " + partitions + " led partitions after 20s: " + d);
    }

    static long offset(Admin admin, TopicPartition tp, OffsetSpec spec) throws Exception {
        return admin.listOffsets(Map.of(tp, spec)).partitionResult(tp).get(T, TimeUnit.SECONDS).offset();
    }

    static TopicDescription describe(Admin admin, String topic) throws Exception {
        return admin.describeTopics(List.of(topic)).allTopicNames().get(T, TimeUnit.SECONDS).get(topic);
    }

    static Map<String, ConfigEntry> config(Admin admin, ConfigResource res) throws Exception {
        Config c = admin.describeConfigs(List.of(res)).all().get(T, TimeUnit.SECONDS).get(res);
        Map<String, ConfigEntry> m = new java.util.HashMap<>();
        c.entries().forEach(e -> m.put(e.name(), e));
        return m;
    }
}
