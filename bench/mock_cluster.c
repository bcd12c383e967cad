/*
 * mock_cluster.c - librdkafka's in-memory mock cluster in a process of its
 * own, the reference broker for side-by-side benchmarks (bench/run.sh).
 *
 *   mock_cluster [brokers]   prints "bootstrap=HOST:PORT[,...]" on stdout,
 *                            then serves until SIGTERM/SIGINT or stdin EOF.
 *
 * The mock keeps every message in memory and never touches the disk, so it
 * is an upper bound on what a protocol implementation can do on this
 * machine with librdkafka's own code.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    int brokers = argc > 1 ? atoi(argv[1]) : 1;
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "mock_cluster: %s\n", err);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "mock_cluster: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers > 0 ? brokers : 1);
    if (!mc) {
        fprintf(stderr, "mock_cluster: cannot create the mock cluster\n");
        return 1;
    }
    printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop)
        usleep(100 * 1000);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
