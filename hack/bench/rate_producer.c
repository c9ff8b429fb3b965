/*
 * Fixed-rate producers on librdkafka, for the latency rows of hack/bench-light.sh.
 *
 * Why not rdkafka_performance -r -l: its rate limit busy-waits in the application thread, which starves
 * librdkafka's own threads when the client is pinned to one core (delivery reports then wait up to a second
 * on any broker), and its latency mode reads the send time back from a payload buffer that every queued
 * record shares (sendflags 0: no copy).
 *
 * Each producer is its own client instance (rd_kafka_t: own connections, own batches) driven by its own
 * thread: at every wake-up it sends the records whose scheduled time has come, then serves delivery reports
 * until the next one is due. A record's latency runs from its produce call to its delivery report; the send
 * time travels in the record's opaque pointer as an index, not in the payload.
 *
 * Usage: rate_producer BROKERS TOPIC PRODUCERS RATE_PER_PRODUCER SECONDS SIZE ACKS LATENCY_FILE [PROP=VALUE...]
 * (PROP=VALUE: more librdkafka producer properties, e.g. linger.ms=0)
 * Prints one line: producers=N records=N acked=N failed=N seconds=S rps=R; writes every acknowledged
 * record's latency in microseconds to LATENCY_FILE, one per line. Exit 1 when a record failed.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rdkafka.h"

struct producer {
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        int64_t *sent_us;    /* send time of record i */
        int64_t *latency_us; /* -1 until its delivery report */
        long records;
        long acked, failed;
        double rate;
        int size;
        int warmed;
};

static int64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        struct producer *p = opaque;
        intptr_t i = (intptr_t)m->_private;
        (void)rk;
        if (i < 0) { /* the warm-up record */
                p->warmed = m->err ? -1 : 1;
                return;
        }
        if (m->err) {
                p->failed++;
                fprintf(stderr, "record %ld: %s\n", (long)i, rd_kafka_err2str(m->err));
                return;
        }
        p->latency_us[i] = now_us() - p->sent_us[i];
        p->acked++;
}

static void *run(void *arg) {
        struct producer *p = arg;
        char *payload = calloc(1, (size_t)p->size);
        int64_t start = now_us();
        long next = 0;
        while (next < p->records) {
                int64_t now = now_us();
                while (next < p->records && start + (int64_t)(next * 1e6 / p->rate) <= now) {
                        p->sent_us[next] = now_us();
                        while (rd_kafka_produce(p->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload,
                                                (size_t)p->size, NULL, 0, (void *)(intptr_t)next) == -1) {
                                if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                        fprintf(stderr, "produce: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
                                        exit(2);
                                }
                                rd_kafka_poll(p->rk, 1);
                        }
                        next++;
                }
                int64_t due = start + (int64_t)(next * 1e6 / p->rate);
                int wait_ms = (int)((due - now_us() + 999) / 1000);
                rd_kafka_poll(p->rk, wait_ms > 0 ? wait_ms : 0);
        }
        while (p->acked + p->failed < p->records && rd_kafka_outq_len(p->rk) > 0)
                rd_kafka_poll(p->rk, 100);
        rd_kafka_flush(p->rk, 30000);
        free(payload);
        return NULL;
}

int main(int argc, char **argv) {
        if (argc < 9) {
                fprintf(stderr,
                        "usage: %s BROKERS TOPIC PRODUCERS RATE_PER_PRODUCER SECONDS SIZE ACKS LATENCY_FILE "
                        "[PROP=VALUE...]\n",
                        argv[0]);
                return 2;
        }
        const char *brokers = argv[1], *topic = argv[2], *acks = argv[7], *out = argv[8];
        int n = atoi(argv[3]), size = atoi(argv[6]);
        double rate = atof(argv[4]), seconds = atof(argv[5]);
        if (n < 1 || rate <= 0 || seconds <= 0 || size < 1) {
                fprintf(stderr, "PRODUCERS, RATE, SECONDS and SIZE must be positive\n");
                return 2;
        }
        struct producer *ps = calloc((size_t)n, sizeof(*ps));
        char errstr[512];
        for (int j = 0; j < n; j++) {
                struct producer *p = &ps[j];
                rd_kafka_conf_t *conf = rd_kafka_conf_new();
                if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) ||
                    rd_kafka_conf_set(conf, "acks", acks, errstr, sizeof(errstr))) {
                        fprintf(stderr, "%s\n", errstr);
                        return 2;
                }
                for (int a = 9; a < argc; a++) {
                        char *prop = strdup(argv[a]), *value = strchr(prop, '=');
                        if (!value) {
                                fprintf(stderr, "%s: not PROP=VALUE\n", argv[a]);
                                return 2;
                        }
                        *value++ = '\0';
                        if (rd_kafka_conf_set(conf, prop, value, errstr, sizeof(errstr))) {
                                fprintf(stderr, "%s\n", errstr);
                                return 2;
                        }
                        free(prop);
                }
                rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
                rd_kafka_conf_set_opaque(conf, p);
                p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
                if (!p->rk) {
                        fprintf(stderr, "%s\n", errstr);
                        return 2;
                }
                p->rkt = rd_kafka_topic_new(p->rk, topic, NULL);
                p->records = (long)(rate * seconds);
                p->rate = rate;
                p->size = size;
                p->sent_us = calloc((size_t)p->records, sizeof(int64_t));
                p->latency_us = malloc((size_t)p->records * sizeof(int64_t));
                for (long i = 0; i < p->records; i++)
                        p->latency_us[i] = -1;
        }
        /* Warm-up: one acknowledged record per producer (connections, metadata, batches) before timing. */
        char one = 0;
        for (int j = 0; j < n; j++)
                rd_kafka_produce(ps[j].rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, &one, 1, NULL, 0,
                                 (void *)(intptr_t)-1);
        int64_t warm_deadline = now_us() + 30 * 1000000LL;
        for (int j = 0; j < n; j++) {
                while (!ps[j].warmed && now_us() < warm_deadline)
                        rd_kafka_poll(ps[j].rk, 10);
                if (ps[j].warmed != 1) {
                        fprintf(stderr, "producer %d: warm-up record not acknowledged\n", j);
                        return 1;
                }
        }
        pthread_t *threads = calloc((size_t)n, sizeof(pthread_t));
        int64_t t0 = now_us();
        for (int j = 0; j < n; j++)
                if (pthread_create(&threads[j], NULL, run, &ps[j])) {
                        fprintf(stderr, "pthread_create: %s\n", strerror(errno));
                        return 2;
                }
        for (int j = 0; j < n; j++)
                pthread_join(threads[j], NULL);
        double elapsed = (double)(now_us() - t0) / 1e6;
        FILE *f = fopen(out, "w");
        if (!f) {
                fprintf(stderr, "%s: %s\n", out, strerror(errno));
                return 2;
        }
        long records = 0, acked = 0, failed = 0;
        for (int j = 0; j < n; j++) {
                records += ps[j].records;
                acked += ps[j].acked;
                failed += ps[j].failed;
                for (long i = 0; i < ps[j].records; i++)
                        if (ps[j].latency_us[i] >= 0)
                                fprintf(f, "%" PRId64 "\n", ps[j].latency_us[i]);
                rd_kafka_topic_destroy(ps[j].rkt);
                rd_kafka_destroy(ps[j].rk);
        }
        fclose(f);
        printf("producers=%d records=%ld acked=%ld failed=%ld seconds=%.3f rps=%.1f\n", n, records, acked,
               failed, elapsed, (double)acked / elapsed);
        return failed || acked != records ? 1 : 0;
}
