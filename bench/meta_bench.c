/*
 * meta_bench.c - the metadata image at scale: how long a node takes to
 * rebuild an image of N partitions from the metadata records that made it
 * (what a start without a snapshot replays), to write a snapshot of it, and
 * to load that snapshot (what a start with one does).
 *
 *   meta_bench [partitions] [topics] [dir]     defaults 100000 100 /tmp
 *
 * The records are the ones the controller writes when it creates the topics
 * (a TopicRecord, one PartitionRecord per partition, across three brokers),
 * replayed through the same delta code the controller and every broker
 * use. Prints one line per phase and a JSON line (median of 5 runs each).
 */
#include "meta_delta.h"
#include "meta_internal.h"
#include "meta_snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUNS 5

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

static void build_records(recs_t *r, int partitions, int topics)
{
    for (int b = 1; b <= 3; b++) {
        sm_register_broker_record_t rec;
        sm_register_broker_record_init(&rec);
        rec.broker_id = b;
        rec.broker_epoch = b;
        sm_register_broker_record_broker_endpoint_t ep;
        sm_register_broker_record_broker_endpoint_init(&ep);
        ep.name = sm_str("PLAINTEXT");
        ep.host = sm_str("127.0.0.1");
        ep.port = (uint16_t)(9091 + b);
        rec.end_points = &ep;
        rec.end_points_count = 1;
        rec.rack = (sm_str_t){NULL, -1};
        rec.fenced = false;
        RECS_ADD(r, SM_METADATA_REGISTER_BROKER_RECORD, 1, sm_register_broker_record, &rec);
    }
    int per = partitions / topics;
    for (int t = 0; t < topics; t++) {
        char name[64];
        snprintf(name, sizeof name, "bench-topic-%05d", t);
        sm_uuid_t id;
        sm_uuid_random(&id);
        sm_topic_record_t tr;
        sm_topic_record_init(&tr);
        tr.name = sm_str(name);
        tr.topic_id = id;
        RECS_ADD(r, SM_METADATA_TOPIC_RECORD, 0, sm_topic_record, &tr);
        for (int p = 0; p < per; p++) {
            int32_t replica = 1 + (t * per + p) % 3;
            sm_partition_record_t pr;
            sm_partition_record_init(&pr);
            pr.partition_id = p;
            pr.topic_id = id;
            pr.replicas = &replica;
            pr.replicas_count = 1;
            pr.isr = &replica;
            pr.isr_count = 1;
            pr.removing_replicas_count = 0;
            pr.adding_replicas_count = 0;
            pr.leader = replica;
            RECS_ADD(r, SM_METADATA_PARTITION_RECORD, 0, sm_partition_record, &pr);
        }
    }
}

static sm_meta_image_t *replay(const recs_t *r)
{
    sm_meta_delta_t *d = sm_meta_delta_new(NULL, "bench", 1, 1);
    size_t start = 0;
    for (int i = 0; i < r->n; i++) {
        const char *why = NULL;
        if (sm_meta_delta_replay(d, i, r->buf.mem + start, r->ends[i] - start, &why) != SM_OK) {
            fprintf(stderr, "replay failed at %d: %s\n", i, why ? why : "");
            exit(1);
        }
        start = r->ends[i];
    }
    return sm_meta_delta_freeze(d);
}

int main(int argc, char **argv)
{
    int partitions = argc > 1 ? atoi(argv[1]) : 100000;
    int topics = argc > 2 ? atoi(argv[2]) : 100;
    const char *parent = argc > 3 ? argv[3] : "/tmp";
    if (partitions < 1 || topics < 1 || topics > partitions) {
        fprintf(stderr, "usage: meta_bench [partitions] [topics] [dir]\n");
        return 2;
    }
    char *dir = sm_xasprintf("%s/meta-bench-%d", parent, (int)getpid());
    if (mkdir(dir, 0755) != 0) {
        fprintf(stderr, "cannot create %s\n", dir);
        return 1;
    }
    recs_t r;
    recs_init(&r);
    build_records(&r, partitions, topics);
    double t_replay[RUNS], t_write[RUNS], t_load[RUNS];
    int64_t bytes = 0;
    for (int run = 0; run < RUNS; run++) {
        int64_t t0 = sm_now_mono_us();
        sm_meta_image_t *img = replay(&r);
        t_replay[run] = (double)(sm_now_mono_us() - t0) / 1000.0;
        char err[256];
        t0 = sm_now_mono_us();
        if (sm_meta_snapshot_write(dir, img, 1, &bytes, err, sizeof err) != SM_OK) {
            fprintf(stderr, "snapshot write: %s\n", err);
            return 1;
        }
        t_write[run] = (double)(sm_now_mono_us() - t0) / 1000.0;
        sm_meta_image_t *back = NULL;
        sm_snapshot_id_t id;
        t0 = sm_now_mono_us();
        if (sm_meta_snapshot_load(dir, "bench", &back, &id, err, sizeof err) != SM_OK) {
            fprintf(stderr, "snapshot load: %s\n", err);
            return 1;
        }
        t_load[run] = (double)(sm_now_mono_us() - t0) / 1000.0;
        int np = 0;
        for (int i = 0; i < back->ntopics; i++)
            np += back->topics[i]->npartitions;
        if (back->ntopics != img->ntopics || np != partitions / topics * topics) {
            fprintf(stderr, "snapshot round trip lost data: %d topics, %d partitions\n",
                    back->ntopics, np);
            return 1;
        }
        sm_meta_snapshot_clean(dir, (sm_snapshot_id_t){INT64_MAX, INT32_MAX}, -1);
        sm_meta_image_put(back);
        sm_meta_image_put(img);
    }
    double rp = median(t_replay, RUNS), wr = median(t_write, RUNS), ld = median(t_load, RUNS);
    printf("records: %d (%zu bytes), partitions %d in %d topics\n", r.n, r.buf.len,
           partitions / topics * topics, topics);
    printf("replay of the records into an image: %.1f ms (median of %d)\n", rp, RUNS);
    printf("snapshot write (encode, write, fsync, rename): %.1f ms, %lld bytes\n", wr,
           (long long)bytes);
    printf("snapshot load (read, replay): %.1f ms\n", ld);
    printf("{\"partitions\": %d, \"records\": %d, \"record_bytes\": %zu, \"replay_ms\": %.2f, "
           "\"snapshot_write_ms\": %.2f, \"snapshot_bytes\": %lld, \"snapshot_load_ms\": %.2f}\n",
           partitions / topics * topics, r.n, r.buf.len, rp, wr, (long long)bytes, ld);
    recs_free(&r);
    rmdir(dir);
    free(dir);
    return 0;
}
