package dev.tributary.faults;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.UnknownServerException;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The fault harness's idempotent acks=all producer on Apache kafka-clients: the Java counterpart of
 * `workload.py produce` (same arguments, same delivery-report lines in --out, same one-line JSON summary on
 * stdout), so hack/cluster.sh runs both clients side by side and one checker reads both histories.
 *
 * <p>Record values are the JSON the checker parses ({id, tag, p, seq, client}); the key is the tag, so a Java
 * producer's keys never collide with a confluent-kafka producer's when their tags differ.
 *
 * <p>Exit status as workload.py: 0 fine, 1 an anomaly (a fatal producer error, records still pending after
 * the flush timeout, or with --no-errors any failed delivery), 2 a usage error.
 */
public final class FaultsProducer {
  private static final String CLIENT = "java";

  private String bootstrap;
  private String topic;
  private int partitions = 3;
  private Integer onlyPartition;
  private long recordsPerPartition = 1000;
  private double rate = 200;
  private double durationSeconds = 60;
  private double flushTimeoutSeconds = 90;
  private int deliveryTimeoutMs = 60000;
  private boolean noErrors;
  private Path stopFile;
  private String tag;
  private Path out;

  private final AtomicLong acked = new AtomicLong();
  private final AtomicLong failed = new AtomicLong();
  private final Map<String, Long> errors = new TreeMap<>();
  private final List<String> fatal = new ArrayList<>();
  private BufferedWriter reports;
  private long t0Nanos;
  // Reports that arrive after the flush deadline (a forced close fails what is left) are not written: the
  // summary counts those records as pending, as workload.py does for what librdkafka's flush left.
  private volatile boolean reporting = true;

  public static void main(String[] args) {
    FaultsProducer producer = new FaultsProducer();
    try {
      producer.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("FaultsProducer: " + e.getMessage());
      System.exit(2);
    }
    try {
      System.exit(producer.run());
    } catch (IOException e) {
      System.err.println("FaultsProducer: " + e);
      System.exit(2);
    }
  }

  private void parse(String[] args) {
    for (int i = 0; i < args.length; i++) {
      String flag = args[i];
      if (flag.equals("--no-errors")) {
        noErrors = true;
        continue;
      }
      if (i + 1 >= args.length) {
        throw new IllegalArgumentException(flag + " needs a value");
      }
      String value = args[++i];
      switch (flag) {
        case "--bootstrap" -> bootstrap = value;
        case "--topic" -> topic = value;
        case "--partitions" -> partitions = Integer.parseInt(value);
        case "--partition" -> onlyPartition = Integer.parseInt(value);
        case "--records" -> recordsPerPartition = Long.parseLong(value);
        case "--rate" -> rate = Double.parseDouble(value);
        case "--duration" -> durationSeconds = Double.parseDouble(value);
        case "--flush-timeout" -> flushTimeoutSeconds = Double.parseDouble(value);
        case "--delivery-timeout-ms" -> deliveryTimeoutMs = Integer.parseInt(value);
        case "--stop-file" -> stopFile = Path.of(value);
        case "--tag" -> tag = value;
        case "--out" -> out = Path.of(value);
        default -> throw new IllegalArgumentException("unknown argument " + flag);
      }
    }
    if (bootstrap == null || topic == null || out == null || tag == null) {
      throw new IllegalArgumentException("--bootstrap, --topic, --tag and --out are required");
    }
  }

  private Properties config() {
    Properties conf = new Properties();
    conf.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    conf.put(ProducerConfig.CLIENT_ID_CONFIG, "faults-" + tag);
    conf.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    conf.put(ProducerConfig.ACKS_CONFIG, "all");
    conf.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "5");
    // retries stays at Kafka's default (Integer.MAX_VALUE): delivery.timeout.ms bounds a record instead.
    conf.put(ProducerConfig.LINGER_MS_CONFIG, "5");
    conf.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, Integer.toString(deliveryTimeoutMs));
    // The client rejects delivery.timeout.ms < linger.ms + request.timeout.ms.
    conf.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, Integer.toString(Math.min(30000, deliveryTimeoutMs - 5)));
    conf.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    conf.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    return conf;
  }

  private int run() throws IOException {
    reports = Files.newBufferedWriter(out, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
        StandardOpenOption.APPEND);
    t0Nanos = System.nanoTime();
    List<Integer> targets = new ArrayList<>();
    if (onlyPartition != null) {
      targets.add(onlyPartition);
    } else {
      for (int p = 0; p < partitions; p++) {
        targets.add(p);
      }
    }
    long total = recordsPerPartition * targets.size();
    long[] seq = new long[Math.max(partitions, onlyPartition == null ? 0 : onlyPartition + 1)];
    long intervalNanos = rate > 0 ? (long) (1e9 / rate) : 0;
    long produced = 0;
    KafkaProducer<String, String> producer = new KafkaProducer<>(config());
    long nextAt = System.nanoTime();
    while (produced < total && elapsedSeconds() < durationSeconds && !hasFatal()) {
      if (stopFile != null && produced % 50 == 0 && Files.exists(stopFile)) {
        break;
      }
      int p = targets.get((int) (produced % targets.size()));
      long s = seq[p];
      String id = tag + "-" + p + "-" + s;
      String value = "{\"id\":" + quote(id) + ",\"tag\":" + quote(tag) + ",\"p\":" + p + ",\"seq\":" + s
          + ",\"client\":\"" + CLIENT + "\"}";
      try {
        producer.send(new ProducerRecord<>(topic, p, tag, value),
            (metadata, error) -> onDelivery(id, p, s, metadata, error));
      } catch (KafkaException e) {
        // send() throws only once the producer is in a fatal state (API errors go to the callback).
        fatal(e.toString());
        break;
      }
      seq[p]++;
      produced++;
      if (intervalNanos > 0) {
        nextAt += intervalNanos;
        long delay = nextAt - System.nanoTime();
        if (delay > 0) {
          sleepNanos(delay);
        }
      }
    }
    double produceSeconds = elapsedSeconds();
    long deadline = System.nanoTime() + (long) (flushTimeoutSeconds * 1e9);
    while (acked.get() + failed.get() < produced && System.nanoTime() < deadline) {
      sleepNanos(20_000_000);
    }
    long sent = recordsSent(producer);
    long pending;
    synchronized (this) {
      reporting = false;
      pending = produced - acked.get() - failed.get();
      reports.close();
    }
    producer.close(pending > 0 ? Duration.ZERO : Duration.ofSeconds(5));

    StringBuilder summary = new StringBuilder("{");
    summary.append("\"acked\": ").append(acked.get());
    summary.append(", \"client\": \"").append(CLIENT).append('"');
    summary.append(", \"errors\": {");
    synchronized (this) {
      String sep = "";
      for (Map.Entry<String, Long> e : errors.entrySet()) {
        summary.append(sep).append(quote(e.getKey())).append(": ").append(e.getValue());
        sep = ", ";
      }
      summary.append("}, \"failed\": ").append(failed.get());
      summary.append(", \"fatal\": [");
      sep = "";
      for (String f : fatal) {
        summary.append(sep).append(quote(f));
        sep = ", ";
      }
    }
    summary.append("], \"pending\": ").append(pending);
    summary.append(", \"produce_s\": ").append(round1(produceSeconds));
    summary.append(", \"produced\": ").append(produced);
    // Records the client put into Produce requests: 0 with records pending means none left the client
    // (it never got a producer id or a leader), which the harness tells apart from unanswered requests.
    summary.append(", \"sent\": ").append(sent);
    summary.append(", \"tag\": ").append(quote(tag));
    summary.append(", \"total_s\": ").append(round1(elapsedSeconds()));
    summary.append('}');
    System.out.println(summary);
    System.out.flush();
    boolean bad = hasFatal() || pending > 0 || (noErrors && failed.get() > 0);
    if (bad) {
      System.err.println("FaultsProducer: anomalies: fatal=" + fatal + " pending=" + pending + " failed="
          + failed.get() + " " + errors);
    }
    return bad ? 1 : 0;
  }

  // Runs on the producer's I/O thread, in send order per partition.
  private void onDelivery(String id, int partition, long seq, RecordMetadata metadata, Exception error) {
    String t = round3(elapsedSeconds());
    synchronized (this) {
      if (!reporting) {
        return;
      }
      String line;
      if (error == null) {
        acked.incrementAndGet();
        line = "{\"id\": " + quote(id) + ", \"p\": " + metadata.partition() + ", \"off\": " + metadata.offset()
            + ", \"seq\": " + seq + ", \"client\": \"" + CLIENT + "\", \"t\": " + t + "}";
      } else {
        failed.incrementAndGet();
        String name = errorName(error);
        errors.merge(name, 1L, Long::sum);
        // With a correct broker (acks=all, min ISR 2, no unclean election) the idempotent producer never
        // loses its sequence; librdkafka raises these as fatal and so does the harness here. A plain
        // KafkaException (no protocol error) is what the client fails its batches with once it has gone
        // into its fatal state (e.g. an unexpected InitProducerId error).
        boolean fatalError = error instanceof OutOfOrderSequenceException || error instanceof ProducerFencedException
            || !(error instanceof ApiException);
        if (fatalError && fatal.size() < 5) {
          fatal.add(name + ": " + error.getMessage());
        }
        line = "{\"id\": " + quote(id) + ", \"p\": " + partition + ", \"seq\": " + seq + ", \"client\": \""
            + CLIENT + "\", \"err\": " + quote(name) + ", \"code\": " + Errors.forException(error).code()
            + ", \"retriable\": " + (error instanceof RetriableException) + ", \"fatal\": " + fatalError + ", \"msg\": "
            + quote(error.getClass().getSimpleName() + ": " + error.getMessage()) + ", \"t\": " + t + "}";
      }
      try {
        reports.write(line);
        reports.newLine();
        reports.flush();
      } catch (IOException e) {
        fatal.add("writing " + out + ": " + e);
      }
    }
  }

  /** The client's producer-metrics record-send-total (records in Produce requests, retries included). */
  private static long recordsSent(KafkaProducer<String, String> producer) {
    for (Map.Entry<MetricName, ? extends Metric> e : producer.metrics().entrySet()) {
      if (e.getKey().group().equals("producer-metrics") && e.getKey().name().equals("record-send-total")
          && e.getValue().metricValue() instanceof Number n) {
        return n.longValue();
      }
    }
    return -1;
  }

  /** The Kafka protocol error name (NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT, ...), else the class name. */
  private static String errorName(Exception error) {
    Errors code = Errors.forException(error);
    if (code == Errors.UNKNOWN_SERVER_ERROR && !(error instanceof UnknownServerException)) {
      return error.getClass().getSimpleName();
    }
    return code.name();
  }

  private synchronized void fatal(String what) {
    fatal.add(what);
    System.err.println("FaultsProducer: FATAL producer error: " + what);
  }

  private synchronized boolean hasFatal() {
    return !fatal.isEmpty();
  }

  private double elapsedSeconds() {
    return (System.nanoTime() - t0Nanos) / 1e9;
  }

  private static String round1(double v) {
    return String.format(java.util.Locale.ROOT, "%.1f", v);
  }

  private static String round3(double v) {
    return String.format(java.util.Locale.ROOT, "%.3f", v);
  }

  private static void sleepNanos(long nanos) {
    try {
      Thread.sleep(nanos / 1_000_000, (int) (nanos % 1_000_000));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static String quote(String s) {
    StringBuilder b = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> {
          if (c < 0x20) {
            b.append(String.format("\\u%04x", (int) c));
          } else {
            b.append(c);
          }
        }
      }
    }
    return b.append('"').toString();
  }
}
