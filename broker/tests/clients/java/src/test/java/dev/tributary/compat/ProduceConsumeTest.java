package dev.tributary.compat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Idempotent acks=all producer and an assign()-only consumer (no group): byte-for-byte round trip. */
class ProduceConsumeTest {
    static final int PARTITIONS = 12;
    static final int RECORDS = 2400;

    record Sent(int partition, byte[] key, byte[] value, List<Header> headers, long ts, long offset) {}

    @ParameterizedTest
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void roundTripManyPartitions(String codec) throws Exception {
        String topic = Cluster.topic("java-" + codec);
        try (Admin admin = Admin.create(Cluster.props(Map.of()))) {
            admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all().get(30, TimeUnit.SECONDS);
            AdminTest.awaitLeaders(admin, topic, PARTITIONS);
        }
        Random rnd = new Random(codec.hashCode());
        long baseTs = System.currentTimeMillis() - 3_600_000L;
        List<Sent> sent = new ArrayList<>();
        Map<String, Object> pc = new HashMap<>(Map.of(
                "acks", "all", "enable.idempotence", "true", "compression.type", codec, "linger.ms", "5", "delivery.timeout.ms", "30000", "request.timeout.ms", "10000",
                "key.serializer", ByteArraySerializer.class.getName(),
                "value.serializer", ByteArraySerializer.class.getName()));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Cluster.props(pc))) {
            List<Future<RecordMetadata>> futures = new ArrayList<>();
            for (int i = 0; i < RECORDS; i++) {
                int p = i % PARTITIONS;
                byte[] key = i % 13 == 0 ? null : i % 13 == 1 ? new byte[0] : bytes(rnd, 1, 40);
                byte[] value = i % 17 == 0 ? null : i % 17 == 1 ? new byte[0] : bytes(rnd, 1, 400);
                List<Header> headers = new ArrayList<>();
                if (i % 3 == 0) {
                    headers.add(new RecordHeader("h-" + (i % 5), bytes(rnd, 0, 20)));
                    headers.add(new RecordHeader("trace", ("t" + i).getBytes()));
                }
                long ts = baseTs + i;
                futures.add(producer.send(new ProducerRecord<>(topic, p, ts, key, value, headers)));
                sent.add(new Sent(p, key, value, headers, ts, -1));
            }
            producer.flush();
            for (int i = 0; i < futures.size(); i++) {
                RecordMetadata md = futures.get(i).get(30, TimeUnit.SECONDS);
                assertEquals(sent.get(i).partition(), md.partition(), "acked partition of record " + i);
            }
        }

        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> got = readAll(topic, PARTITIONS);
        Map<Integer, List<Sent>> want = new HashMap<>();
        for (Sent s : sent) {
            want.computeIfAbsent(s.partition(), k -> new ArrayList<>()).add(s);
        }
        for (int p = 0; p < PARTITIONS; p++) {
            List<Sent> w = want.getOrDefault(p, List.of());
            List<ConsumerRecord<byte[], byte[]>> g = got.getOrDefault(p, List.of());
            assertEquals(w.size(), g.size(), codec + ": partition " + p + " record count");
            for (int i = 0; i < w.size(); i++) {
                Sent s = w.get(i);
                ConsumerRecord<byte[], byte[]> r = g.get(i);
                String where = codec + ": partition " + p + " record #" + i + " offset " + r.offset();
                assertEquals(i, r.offset(), where + ": offsets must be contiguous from 0");
                assertArrayEquals(s.key(), r.key(), where + ": key");
                assertArrayEquals(s.value(), r.value(), where + ": value");
                assertEquals(s.ts(), r.timestamp(), where + ": timestamp");
                Header[] hs = r.headers().toArray();
                assertEquals(s.headers().size(), hs.length, where + ": header count");
                for (int h = 0; h < hs.length; h++) {
                    assertEquals(s.headers().get(h).key(), hs[h].key(), where + ": header key " + h);
                    assertArrayEquals(s.headers().get(h).value(), hs[h].value(), where + ": header value " + h);
                }
            }
        }
    }

    static byte[] bytes(Random rnd, int lo, int hi) {
        byte[] b = new byte[lo + rnd.nextInt(hi - lo + 1)];
        rnd.nextBytes(b);
        return b;
    }

    /** assign() + seekToBeginning, no group; reads each partition up to its end offset (bounded). */
    static Map<Integer, List<ConsumerRecord<byte[], byte[]>>> readAll(String topic, int partitions) {
        Map<String, Object> cc = Map.of(
                "key.deserializer", ByteArrayDeserializer.class.getName(),
                "value.deserializer", ByteArrayDeserializer.class.getName(),
                "enable.auto.commit", "false");
        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> out = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(Cluster.props(cc))) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> ends = consumer.endOffsets(tps, Duration.ofSeconds(30));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (System.nanoTime() < deadline
                    && tps.stream().anyMatch(tp -> consumer.position(tp) < ends.get(tp))) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    out.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
                }
            }
            for (TopicPartition tp : tps) {
                assertTrue(consumer.position(tp) >= ends.get(tp),
                        tp + " not read to its end offset " + ends.get(tp) + " within 60s (at " + consumer.position(tp) + ")");
            }
        }
        return out;
    }
}
