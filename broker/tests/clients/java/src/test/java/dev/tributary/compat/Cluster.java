package dev.tributary.compat;

import java.util.Map;
import java.util.Properties;
import java.util.UUID;

/** Bootstrap address and client factories; the broker is started by broker/tests/clients/run.sh. */
final class Cluster {
    private Cluster() {}

    static String bootstrap() {
        String bs = System.getProperty("KAFKA_BOOTSTRAP");
        if (bs == null || bs.isBlank()) {
            bs = System.getenv("KAFKA_BOOTSTRAP");
        }
        if (bs == null || bs.isBlank()) {
            throw new IllegalStateException(
                    "KAFKA_BOOTSTRAP is required (-DKAFKA_BOOTSTRAP=127.0.0.1:PORT); broker/tests/clients/run.sh starts a broker");
        }
        return bs.trim();
    }

    static Properties props(Map<String, Object> extra) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap());
        p.putAll(extra);
        return p;
    }

    static String topic(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 10);
    }
}
