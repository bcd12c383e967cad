/*
 * test_meta.c - Kafka Uuids, meta.properties formatting, and the metadata
 * controller: topic create/delete, partitions, configs, listener calls,
 * replay after reopen (identical image incl. topic ids), torn-tail recovery
 * and corruption detection of the metadata log; dynamic broker configs
 * (broker ConfigRecords replayed into the image's layers, resolution order
 * topic -> dynamic per-broker -> dynamic default -> static -> default).
 */
#include "config.h"
#include "meta.h"
#include "meta_delta.h"
#include "sm_proto_gen.h"
#include "meta_log.h"
#include "meta_props.h"
#include "sm_test.h"
#include "sm_test_fs.h"
#include "uuid.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_root[256];


static void make_root(void)
{
    snprintf(g_root, sizeof g_root, "/tmp/samsa-test-meta-%d", (int)getpid());
    sm_test_rm_rf(g_root);
    mkdir(g_root, 0755);
}

/* ------------------------------------------------------------------ uuid */

static void test_uuid(void)
{
    sm_uuid_t one = {{0}};
    one.b[15] = 1;
    char s[SM_UUID_STR_LEN + 1];
    CHECK(strcmp(sm_uuid_to_str(&one, s), "AAAAAAAAAAAAAAAAAAAAAQ") == 0);
    sm_uuid_t all;
    memset(all.b, 0xff, 16);
    CHECK(strcmp(sm_uuid_to_str(&all, s), "_____________________w") == 0);
    sm_uuid_t back;
    CHECK_EQ(sm_uuid_parse("AAAAAAAAAAAAAAAAAAAAAQ", 22, &back), SM_OK);
    CHECK(sm_uuid_eq(&back, &one));
    CHECK_EQ(sm_uuid_parse("AAAAAAAAAAAAAAAAAAAAAQ==", 24, &back), SM_OK);
    CHECK_EQ(sm_uuid_parse("AAAAAAAAAAAAAAAAAAAAA", 21, &back), SM_ERR_PARSE);
    CHECK_EQ(sm_uuid_parse("AAAAAAAAAAAAAAAAAAAA+Q", 22, &back), SM_ERR_PARSE);
    CHECK_EQ(sm_uuid_parse("AAAAAAAAAAAAAAAAAAAAAR", 22, &back), SM_ERR_PARSE); /* non-canonical */
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        sm_uuid_t u, v;
        sm_uuid_random(&u);
        sm_uuid_to_str(&u, s);
        bad += s[0] == '-' || sm_uuid_is_zero(u) || (u.b[6] >> 4) != 4;
        bad += sm_uuid_parse(s, strlen(s), &v) != SM_OK || !sm_uuid_eq(&u, &v);
    }
    CHECK_EQ(bad, 0);
}

/* ------------------------------------------------------- meta.properties */

static void test_meta_props(void)
{
    char dir[300], cid[SM_CLUSTER_ID_SIZE], cid2[SM_CLUSTER_ID_SIZE], err[512];
    snprintf(dir, sizeof dir, "%s/props/a", g_root);
    CHECK_EQ(sm_meta_props_ensure(dir, 3, NULL, cid, err, sizeof err), SM_OK);
    CHECK_EQ(strlen(cid), 22);
    sm_meta_props_t p;
    CHECK_EQ(sm_meta_props_read(dir, &p, err, sizeof err), SM_OK);
    CHECK_EQ(p.version, 1);
    CHECK_EQ(p.node_id, 3);
    CHECK(strcmp(p.cluster_id, cid) == 0);
    CHECK_EQ(strlen(p.directory_id), 22);
    /* second start: same id back */
    CHECK_EQ(sm_meta_props_ensure(dir, 3, NULL, cid2, err, sizeof err), SM_OK);
    CHECK(strcmp(cid, cid2) == 0);
    CHECK_EQ(sm_meta_props_ensure(dir, 3, cid, cid2, err, sizeof err), SM_OK);
    /* wrong node id: error naming both */
    CHECK_EQ(sm_meta_props_ensure(dir, 4, NULL, cid2, err, sizeof err), SM_ERR_INVALID);
    CHECK(strstr(err, "node.id=3") && strstr(err, "node.id=4"));
    /* wrong cluster */
    CHECK_EQ(sm_meta_props_ensure(dir, 3, "AAAAAAAAAAAAAAAAAAAAAQ", cid2, err, sizeof err),
             SM_ERR_INVALID);
    CHECK(strstr(err, cid) && strstr(err, "AAAAAAAAAAAAAAAAAAAAAQ"));
    /* a second dir formatted with the first one's id */
    char dir2[300];
    snprintf(dir2, sizeof dir2, "%s/props/b", g_root);
    CHECK_EQ(sm_meta_props_ensure(dir2, 3, cid, cid2, err, sizeof err), SM_OK);
    CHECK(strcmp(cid, cid2) == 0);
    /* a Kafka-written file (other key order, extra comment, v0 broker.id) */
    char dir3[300], path[400];
    snprintf(dir3, sizeof dir3, "%s/props/c", g_root);
    mkdir(dir3, 0755);
    snprintf(path, sizeof path, "%s/meta.properties", dir3);
    FILE *f = fopen(path, "w");
    fputs("#\n#Thu Jan 01 00:00:00 UTC 2026\nversion=0\nbroker.id=5\ncluster.id=abc\n", f);
    fclose(f);
    CHECK_EQ(sm_meta_props_ensure(dir3, 5, NULL, cid2, err, sizeof err), SM_OK);
    CHECK(strcmp(cid2, "abc") == 0);
    f = fopen(path, "w");
    fputs("version=1\nnode.id=x\ncluster.id=abc\n", f);
    fclose(f);
    CHECK_EQ(sm_meta_props_ensure(dir3, 5, NULL, cid2, err, sizeof err), SM_ERR_INVALID);
    CHECK(strstr(err, "meta.properties:2") != NULL);
    f = fopen(path, "w");
    fputs("version=1\ncluster.id=abc\n", f);
    fclose(f);
    CHECK_EQ(sm_meta_props_ensure(dir3, 5, NULL, cid2, err, sizeof err), SM_ERR_INVALID);
    CHECK(strstr(err, "node.id") != NULL);
}

/* ------------------------------------------------------------ controller */

static sm_config_t g_cfg;

static void load_cfg(const char *logdir, const char *extra)
{
    char ov1[400], ov2[200];
    snprintf(ov1, sizeof ov1, "log.dirs=%s", logdir);
    snprintf(ov2, sizeof ov2, "%s", extra ? extra : "num.partitions=2");
    char *ovs[] = {ov1, "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093",
                   ov2};
    char err[512];
    sm_err_t rc = sm_config_load(NULL, ovs, 3, &g_cfg, err, sizeof err);
    if (rc)
        fprintf(stderr, "config: %s\n", err);
    SM_ASSERT(rc == SM_OK);
}

typedef struct calls {
    int n;
    int null_old;
    int64_t last_old_offset, last_new_offset;
    int last_ntopics;
} calls_t;

static void listener(void *ctx, const sm_meta_image_t *old_img, const sm_meta_image_t *new_img)
{
    calls_t *c = ctx;
    c->n++;
    if (!old_img)
        c->null_old++;
    c->last_old_offset = old_img ? old_img->offset : -2;
    c->last_new_offset = new_img->offset;
    c->last_ntopics = new_img->ntopics;
}

/* Compare two images field by field (except broker epochs, which a restart
 * changes by re-registering). */
static bool images_equal(const sm_meta_image_t *a, const sm_meta_image_t *b)
{
    if (a->ntopics != b->ntopics || a->nbrokers != b->nbrokers ||
        a->metadata_version != b->metadata_version || a->next_producer_id != b->next_producer_id)
        return false;
    for (int i = 0; i < a->ntopics; i++) {
        const sm_topic_meta_t *x = a->topics[i], *y = b->topics[i];
        if (strcmp(x->name, y->name) || !sm_uuid_eq(&x->id, &y->id) ||
            x->npartitions != y->npartitions || x->nconfigs != y->nconfigs ||
            x->internal != y->internal)
            return false;
        for (int k = 0; k < x->nconfigs; k++)
            if (strcmp(x->configs[k].key, y->configs[k].key) ||
                strcmp(x->configs[k].value, y->configs[k].value))
                return false;
        for (int p = 0; p < x->npartitions; p++) {
            const sm_partition_meta_t *px = &x->partitions[p], *py = &y->partitions[p];
            if (px->partition != py->partition || px->leader != py->leader ||
                px->leader_epoch != py->leader_epoch ||
                px->partition_epoch != py->partition_epoch || px->nreplicas != py->nreplicas ||
                px->nisr != py->nisr)
                return false;
            for (int r = 0; r < px->nreplicas; r++)
                if (px->replicas[r] != py->replicas[r])
                    return false;
        }
    }
    return true;
}

static void test_controller(void)
{
    char logdir[300], err[512];
    snprintf(logdir, sizeof logdir, "%s/ctl", g_root);
    load_cfg(logdir, NULL);
    sm_meta_t *m;
    CHECK_EQ(sm_meta_open(&g_cfg, "AAAAAAAAAAAAAAAAAAAAAQ", &m), SM_OK);
    calls_t calls = {0};
    sm_meta_set_listener(m, listener, &calls);
    CHECK_EQ(calls.n, 1);
    CHECK_EQ(calls.null_old, 1);

    sm_meta_image_t *img0 = sm_meta_image_get(m);
    CHECK_EQ(img0->nbrokers, 1);
    CHECK(strcmp(img0->cluster_id, "AAAAAAAAAAAAAAAAAAAAAQ") == 0);
    CHECK_EQ(img0->controller_id, 1);
    CHECK_EQ(img0->metadata_version, 19);
    const sm_broker_meta_t *b = sm_meta_image_broker(img0, 1);
    CHECK(b && strcmp(b->host, "127.0.0.1") == 0 && b->port == 19092 && !b->fenced);
    CHECK(b && b->nendpoints == 1 && strcmp(b->endpoints[0].name, "PLAINTEXT") == 0);
    CHECK(b && sm_meta_broker_endpoint(b, "PLAINTEXT") && !sm_meta_broker_endpoint(b, "CONTROLLER"));
    CHECK_EQ(img0->ntopics, 0);

    /* create with the default partition count and a config */
    sm_uuid_t id;
    sm_topic_kv_t cfgs[] = {{"retention.ms", "60000"}, {"cleanup.policy", "compact"}};
    CHECK_EQ(sm_meta_create_topic(m, "orders", -1, -1, cfgs, 2, false, &id, err, sizeof err),
             SM_OK);
    CHECK_EQ(calls.n, 2);
    CHECK_EQ(calls.last_ntopics, 1);
    sm_meta_image_t *img1 = sm_meta_image_get(m);
    CHECK(img1 != img0);
    CHECK_EQ(img0->ntopics, 0); /* old snapshot unchanged */
    const sm_topic_meta_t *t = sm_meta_image_topic(img1, "orders", 6);
    CHECK(t != NULL);
    if (t) {
        CHECK(sm_uuid_eq(&t->id, &id));
        CHECK(sm_meta_image_topic_by_id(img1, &id) == t);
        CHECK_EQ(t->npartitions, 2);
        CHECK_EQ(t->partitions[1].partition, 1);
        CHECK_EQ(t->partitions[1].leader, 1);
        CHECK_EQ(t->partitions[1].leader_epoch, 0);
        CHECK_EQ(t->partitions[1].nreplicas, 1);
        CHECK_EQ(t->partitions[1].nisr, 1);
        CHECK(!t->internal);
        CHECK_EQ(t->nconfigs, 2);
        CHECK(strcmp(t->configs[0].key, "cleanup.policy") == 0); /* sorted */
        CHECK(sm_meta_topic_config(t, "retention.ms") &&
              strcmp(sm_meta_topic_config(t, "retention.ms"), "60000") == 0);
        sm_log_config_t lc;
        sm_meta_topic_log_config(&g_cfg, t->configs, t->nconfigs, &lc);
        CHECK_EQ(lc.retention_ms, 60000);
        CHECK_EQ(lc.segment_bytes, 1073741824);
    }
    CHECK(calls.last_old_offset == img0->offset && calls.last_new_offset == img1->offset);

    /* errors */
    CHECK_EQ(sm_meta_create_topic(m, "orders", 1, 1, NULL, 0, false, NULL, err, sizeof err),
             SM_ERR_EXISTS);
    CHECK_EQ(sm_meta_last_fail(), SM_META_FAIL_TOPIC_EXISTS);
    const char *bad_names[] = {"", ".", "..", "a b", "x/y", "caf\xc3\xa9", "__cluster_metadata"};
    for (size_t i = 0; i < SM_ARRAY_LEN(bad_names); i++) {
        CHECK_EQ(sm_meta_create_topic(m, bad_names[i], 1, 1, NULL, 0, false, NULL, err,
                                      sizeof err), SM_ERR_INVALID);
        CHECK_EQ(sm_meta_last_fail(), SM_META_FAIL_TOPIC_NAME);
    }
    char longname[300];
    memset(longname, 'a', 250);
    longname[250] = 0;
    CHECK_EQ(sm_meta_create_topic(m, longname, 1, 1, NULL, 0, false, NULL, err, sizeof err),
             SM_ERR_INVALID);
    longname[249] = 0;
    CHECK_EQ(sm_meta_create_topic(m, longname, 1, 1, NULL, 0, true, NULL, err, sizeof err), SM_OK);
    CHECK_EQ(sm_meta_create_topic(m, "my.topic", 1, 1, NULL, 0, false, NULL, err, sizeof err),
             SM_OK);
    CHECK_EQ(sm_meta_create_topic(m, "my_topic", 1, 1, NULL, 0, false, NULL, err, sizeof err),
             SM_ERR_INVALID);
    CHECK(strstr(err, "collides") != NULL);
    CHECK_EQ(sm_meta_create_topic(m, "p0", 0, 1, NULL, 0, false, NULL, err, sizeof err),
             SM_ERR_INVALID);
    CHECK_EQ(sm_meta_last_fail(), SM_META_FAIL_PARTITIONS);
    CHECK_EQ(sm_meta_create_topic(m, "rf3", 1, 3, NULL, 0, false, NULL, err, sizeof err),
             SM_ERR_INVALID);
    CHECK_EQ(sm_meta_last_fail(), SM_META_FAIL_REPLICATION_FACTOR);
    CHECK(strstr(err, "only 1 broker") != NULL);
    sm_topic_kv_t badcfg[] = {{"retention.ms", "soon"}};
    CHECK_EQ(sm_meta_create_topic(m, "c1", 1, 1, badcfg, 1, false, NULL, err, sizeof err),
             SM_ERR_INVALID);
    CHECK_EQ(sm_meta_last_fail(), SM_META_FAIL_CONFIG);
    CHECK(strstr(err, "retention.ms") && strstr(err, "soon"));
    sm_topic_kv_t unkcfg[] = {{"retention.msec", "1"}};
    CHECK_EQ(sm_meta_create_topic(m, "c1", 1, 1, unkcfg, 1, false, NULL, err, sizeof err),
             SM_ERR_INVALID);
    CHECK(strstr(err, "retention.msec") != NULL);
    /* validate_only writes nothing */
    int before = calls.n;
    CHECK_EQ(sm_meta_create_topic(m, "dry", 4, 1, NULL, 0, true, &id, err, sizeof err), SM_OK);
    CHECK_EQ(calls.n, before);
    sm_meta_image_t *tmp = sm_meta_image_get(m);
    CHECK(sm_meta_image_topic(tmp, "dry", 3) == NULL);
    sm_meta_image_put(tmp);

    /* partitions */
    CHECK_EQ(sm_meta_create_partitions(m, "orders", 5, false, err, sizeof err), SM_OK);
    CHECK_EQ(sm_meta_create_partitions(m, "orders", 4, false, err, sizeof err), SM_ERR_INVALID);
    CHECK(strstr(err, "5") != NULL);
    CHECK_EQ(sm_meta_create_partitions(m, "orders", 5, false, err, sizeof err), SM_ERR_INVALID);
    CHECK_EQ(sm_meta_create_partitions(m, "nope", 5, false, err, sizeof err), SM_ERR_NOT_FOUND);
    CHECK_EQ(sm_meta_create_partitions(m, "orders", 9, true, err, sizeof err), SM_OK);

    /* configs: set one, delete one, then replace all */
    sm_topic_kv_t set1[] = {{"segment.bytes", "1048576"}};
    const char *del1[] = {"cleanup.policy"};
    CHECK_EQ(sm_meta_alter_topic_configs(m, "orders", set1, 1, del1, 1, false, false, err,
                                         sizeof err), SM_OK);
    sm_meta_image_t *img2 = sm_meta_image_get(m);
    t = sm_meta_image_topic(img2, "orders", 6);
    CHECK(t && t->npartitions == 5 && t->nconfigs == 2);
    CHECK(t && !sm_meta_topic_config(t, "cleanup.policy"));
    CHECK(t && sm_meta_topic_config(t, "segment.bytes"));
    CHECK(t && t->partitions[4].leader == 1 && t->partitions[4].nreplicas == 1);
    /* untouched topics are shared between images */
    CHECK(sm_meta_image_topic(img2, "my.topic", 8) == sm_meta_image_topic(img1, "my.topic", 8) ||
          sm_meta_image_topic(img1, "my.topic", 8) == NULL);
    sm_meta_image_put(img2);
    sm_topic_kv_t set2[] = {{"max.message.bytes", "2000"}};
    CHECK_EQ(sm_meta_alter_topic_configs(m, "orders", set2, 1, NULL, 0, true, false, err,
                                         sizeof err), SM_OK);
    sm_topic_kv_t set3[] = {{"max.message.bytes", "-5"}};
    CHECK_EQ(sm_meta_alter_topic_configs(m, "orders", set3, 1, NULL, 0, false, false, err,
                                         sizeof err), SM_ERR_INVALID);
    CHECK_EQ(sm_meta_alter_topic_configs(m, "nope", set2, 1, NULL, 0, false, false, err,
                                         sizeof err), SM_ERR_NOT_FOUND);
    img2 = sm_meta_image_get(m);
    t = sm_meta_image_topic(img2, "orders", 6);
    CHECK(t && t->nconfigs == 1 && strcmp(t->configs[0].key, "max.message.bytes") == 0);
    sm_meta_image_put(img2);

    /* delete, by name and by id */
    CHECK_EQ(sm_meta_create_topic(m, "gone", 1, 1, NULL, 0, false, &id, err, sizeof err), SM_OK);
    CHECK_EQ(sm_meta_delete_topic(m, "", &id, err, sizeof err), SM_OK);
    CHECK_EQ(sm_meta_delete_topic(m, "gone", NULL, err, sizeof err), SM_ERR_NOT_FOUND);
    CHECK_EQ(sm_meta_last_fail(), SM_META_FAIL_UNKNOWN_TOPIC);
    CHECK_EQ(sm_meta_create_topic(m, "gone", 3, 1, NULL, 0, false, NULL, err, sizeof err), SM_OK);
    CHECK_EQ(sm_meta_delete_topic(m, "my.topic", NULL, err, sizeof err), SM_OK);
    CHECK_EQ(sm_meta_create_topic(m, "my_topic", 1, 1, NULL, 0, false, NULL, err, sizeof err),
             SM_OK); /* no collision once my.topic is gone */

    /* internal topic: rf capped, existing is success */
    sm_topic_kv_t icfg[] = {{"cleanup.policy", "compact"}};
    sm_uuid_t iid, iid2;
    CHECK_EQ(sm_meta_create_internal_topic(m, "__consumer_offsets", 3, 3, icfg, 1, &iid), SM_OK);
    CHECK_EQ(sm_meta_create_internal_topic(m, "__consumer_offsets", 3, 3, icfg, 1, &iid2), SM_OK);
    CHECK(sm_uuid_eq(&iid, &iid2));
    int64_t pid1, pid2;
    CHECK_EQ(sm_meta_allocate_producer_ids(m, 1, 1000, &pid1), SM_OK);
    CHECK_EQ(sm_meta_allocate_producer_ids(m, 1, 1000, &pid2), SM_OK);
    CHECK_EQ(pid2, pid1 + 1000);

    sm_meta_image_t *last = sm_meta_image_get(m);
    const sm_topic_meta_t *co = sm_meta_image_topic(last, "__consumer_offsets", 18);
    CHECK(co && co->internal && co->npartitions == 3 && co->partitions[0].nreplicas == 1);
    CHECK_EQ(last->ntopics, 4); /* __consumer_offsets, gone, my_topic, orders */
    CHECK(last->ntopics == 4 && strcmp(last->topics[0]->name, "__consumer_offsets") == 0 &&
          strcmp(last->topics[3]->name, "orders") == 0);
    int ncalls = calls.n;
    sm_meta_close(m);

    /* images outlive the controller */
    CHECK(sm_meta_image_topic(img1, "orders", 6) != NULL);
    sm_meta_image_put(img0);
    sm_meta_image_put(img1);

    /* reopen: the same image, same ids */
    CHECK_EQ(sm_meta_open(&g_cfg, "AAAAAAAAAAAAAAAAAAAAAQ", &m), SM_OK);
    calls_t c2 = {0};
    sm_meta_set_listener(m, listener, &c2);
    CHECK_EQ(c2.n, 1);
    sm_meta_image_t *re = sm_meta_image_get(m);
    CHECK(images_equal(last, re));
    CHECK(re->offset > last->offset); /* re-registration appended */
    int64_t pid3;
    CHECK_EQ(sm_meta_allocate_producer_ids(m, 1, 10, &pid3), SM_OK);
    CHECK_EQ(pid3, pid2 + 1000);
    sm_meta_image_put(re);
    sm_meta_image_put(last);
    last = sm_meta_image_get(m);
    sm_meta_close(m);
    CHECK(ncalls > 10);

    /* a torn write at the end is cut off; the rest replays */
    char seg[400];
    snprintf(seg, sizeof seg, "%s/__cluster_metadata-0/00000000000000000000.log", logdir);
    struct stat st;
    CHECK_EQ(stat(seg, &st), 0);
    off_t good_size = st.st_size;
    int fd = open(seg, O_WRONLY | O_APPEND);
    const char junk[] = "\0\0\0\0\0\0\0\x99\0\0\0\x40partial";
    CHECK_EQ(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    CHECK_EQ(sm_meta_open(&g_cfg, "AAAAAAAAAAAAAAAAAAAAAQ", &m), SM_OK);
    re = sm_meta_image_get(m);
    CHECK(images_equal(last, re));
    sm_meta_image_put(re);
    sm_meta_close(m);
    CHECK_EQ(stat(seg, &st), 0);
    CHECK(st.st_size > good_size); /* truncated, then a new registration batch */

    /* damage in the middle is refused */
    fd = open(seg, O_RDWR);
    char byte;
    CHECK_EQ(pread(fd, &byte, 1, 200), 1);
    byte ^= 0x5a;
    CHECK_EQ(pwrite(fd, &byte, 1, 200), 1);
    close(fd);
    CHECK_EQ(sm_meta_open(&g_cfg, "AAAAAAAAAAAAAAAAAAAAAQ", &m), SM_ERR_CORRUPT);

    sm_meta_image_put(last);
    sm_config_free(&g_cfg);
}

/* The metadata log rolls segments and replays across them. */
static void test_segments(void)
{
    char logdir[300], err[512];
    snprintf(logdir, sizeof logdir, "%s/roll", g_root);
    load_cfg(logdir, "metadata.log.segment.bytes=600");
    sm_meta_t *m;
    CHECK_EQ(sm_meta_open(&g_cfg, "AAAAAAAAAAAAAAAAAAAAAQ", &m), SM_OK);
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%02d", i);
        CHECK_EQ(sm_meta_create_topic(m, name, 2, 1, NULL, 0, false, NULL, err, sizeof err),
                 SM_OK);
    }
    sm_meta_image_t *a = sm_meta_image_get(m);
    sm_meta_close(m);
    char seg0[400];
    snprintf(seg0, sizeof seg0, "%s/__cluster_metadata-0/00000000000000000000.log", logdir);
    struct stat st;
    CHECK_EQ(stat(seg0, &st), 0);
    CHECK(st.st_size <= 600 + 400);
    CHECK_EQ(sm_meta_open(&g_cfg, "AAAAAAAAAAAAAAAAAAAAAQ", &m), SM_OK);
    sm_meta_image_t *b = sm_meta_image_get(m);
    CHECK(images_equal(a, b));
    CHECK_EQ(b->ntopics, 20);
    sm_meta_image_put(a);
    sm_meta_image_put(b);
    sm_meta_close(m);
    sm_config_free(&g_cfg);
}

/* Readers on other threads always see whole images while topics appear. */
typedef struct reader_arg {
    sm_meta_t *m;
    volatile int *stop;
    int bad, seen_max;
} reader_arg_t;

static void *reader_main(void *p)
{
    reader_arg_t *a = p;
    while (!__atomic_load_n(a->stop, __ATOMIC_ACQUIRE)) {
        sm_meta_image_t *img = sm_meta_image_get(a->m);
        for (int i = 0; i < img->ntopics; i++) {
            const sm_topic_meta_t *t = img->topics[i];
            if (t->npartitions != 3 || sm_meta_image_topic(img, t->name, strlen(t->name)) != t)
                a->bad++;
        }
        if (img->ntopics < a->seen_max)
            a->bad++; /* images only grow here */
        a->seen_max = img->ntopics;
        sm_meta_image_put(img);
    }
    return NULL;
}

static void test_concurrent_readers(void)
{
    char logdir[300], err[512];
    snprintf(logdir, sizeof logdir, "%s/conc", g_root);
    load_cfg(logdir, NULL);
    sm_meta_t *m;
    CHECK_EQ(sm_meta_open(&g_cfg, "AAAAAAAAAAAAAAAAAAAAAQ", &m), SM_OK);
    volatile int stop = 0;
    reader_arg_t args[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (reader_arg_t){.m = m, .stop = &stop};
        pthread_create(&th[i], NULL, reader_main, &args[i]);
    }
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof name, "c%02d", i);
        CHECK_EQ(sm_meta_create_topic(m, name, 3, 1, NULL, 0, false, NULL, err, sizeof err), SM_OK);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(args[i].bad, 0);
    }
    sm_meta_close(m);
    sm_config_free(&g_cfg);
}

/* A controller-only node registers no broker, so topics cannot be placed. */
static void test_controller_only(void)
{
    char logdir[300], ov1[400], err[512];
    snprintf(logdir, sizeof logdir, "%s/conly", g_root);
    snprintf(ov1, sizeof ov1, "log.dirs=%s", logdir);
    char *ovs[] = {ov1, "process.roles=controller", "listeners=CONTROLLER://127.0.0.1:19093"};
    sm_config_t c;
    CHECK_EQ(sm_config_load(NULL, ovs, 3, &c, err, sizeof err), SM_OK);
    sm_meta_t *m;
    CHECK_EQ(sm_meta_open(&c, "AAAAAAAAAAAAAAAAAAAAAQ", &m), SM_OK);
    sm_meta_image_t *img = sm_meta_image_get(m);
    CHECK_EQ(img->nbrokers, 0);
    CHECK_EQ(img->metadata_version, 19);
    sm_meta_image_put(img);
    CHECK_EQ(sm_meta_create_topic(m, "t", 1, -1, NULL, 0, false, NULL, err, sizeof err),
             SM_ERR_INVALID);
    CHECK_EQ(sm_meta_last_fail(), SM_META_FAIL_REPLICATION_FACTOR);
    sm_meta_close(m);
    sm_config_free(&c);
}

/* Replay must reject, never crash on, damaged record values. */
static void test_replay_garbage(void)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_uuid_t id;
    sm_uuid_random(&id);
    size_t ends[3];
    sm_wbuf_uvarint(&w, 1);
    sm_wbuf_uvarint(&w, SM_METADATA_TOPIC_RECORD);
    sm_wbuf_uvarint(&w, 0);
    sm_topic_record_t tr;
    sm_topic_record_init(&tr);
    tr.name = sm_str("fuzz");
    tr.topic_id = id;
    sm_topic_record_encode(&w, 0, &tr);
    ends[0] = w.len;
    sm_wbuf_uvarint(&w, 1);
    sm_wbuf_uvarint(&w, SM_METADATA_PARTITION_RECORD);
    sm_wbuf_uvarint(&w, 0);
    sm_partition_record_t pr;
    sm_partition_record_init(&pr);
    int32_t reps[2] = {1, 2};
    pr.partition_id = 3;
    pr.topic_id = id;
    pr.replicas = reps;
    pr.replicas_count = 2;
    pr.isr = reps;
    pr.isr_count = 2;
    pr.removing_replicas_count = pr.adding_replicas_count = 0;
    pr.leader = 2;
    sm_partition_record_encode(&w, 0, &pr);
    ends[1] = w.len;
    sm_wbuf_uvarint(&w, 1);
    sm_wbuf_uvarint(&w, SM_METADATA_CONFIG_RECORD);
    sm_wbuf_uvarint(&w, 0);
    sm_config_record_t cr;
    sm_config_record_init(&cr);
    cr.resource_type = 2;
    cr.resource_name = sm_str("fuzz");
    cr.name = sm_str("retention.ms");
    cr.value = sm_str("5");
    sm_config_record_encode(&w, 0, &cr);
    ends[2] = w.len;

    /* intact: applies */
    const char *why = NULL;
    sm_meta_delta_t *d = sm_meta_delta_new(NULL, "c", 1, 1);
    size_t start = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(sm_meta_delta_replay(d, i, w.mem + start, ends[i] - start, &why), SM_OK);
        start = ends[i];
    }
    sm_meta_image_t *img = sm_meta_delta_freeze(d);
    const sm_topic_meta_t *t = sm_meta_image_topic(img, "fuzz", 4);
    CHECK(t && t->npartitions == 4 && t->partitions[3].leader == 2 && t->partitions[0].leader == -1);
    CHECK(t && t->nconfigs == 1);
    sm_meta_image_put(img);

    /* partition of an unknown topic, and a duplicate topic, are corrupt */
    d = sm_meta_delta_new(NULL, "c", 1, 1);
    CHECK_EQ(sm_meta_delta_replay(d, 0, w.mem + ends[0], ends[1] - ends[0], &why), SM_ERR_CORRUPT);
    CHECK_EQ(sm_meta_delta_replay(d, 1, w.mem, ends[0], &why), SM_OK);
    CHECK_EQ(sm_meta_delta_replay(d, 2, w.mem, ends[0], &why), SM_ERR_CORRUPT);
    sm_meta_delta_free(d);

    /* every truncation and many byte flips: an error or a success, no crash */
    unsigned seed = 12345;
    int errors = 0;
    for (int round = 0; round < 3000; round++) {
        uint8_t buf[256];
        size_t n = w.len < sizeof buf ? w.len : sizeof buf;
        memcpy(buf, w.mem, n);
        size_t cut = round < (int)n ? (size_t)round : n;
        if (round >= (int)n) {
            for (int k = 0; k < 3; k++) {
                seed = seed * 1103515245u + 12345u;
                buf[(seed >> 8) % n] ^= (uint8_t)(seed >> 16);
            }
        }
        d = sm_meta_delta_new(NULL, "c", 1, 1);
        start = 0;
        for (int i = 0; i < 3; i++) {
            size_t end = ends[i] < cut ? ends[i] : cut;
            if (end <= start)
                break;
            if (sm_meta_delta_replay(d, i, buf + start, end - start, &why) != SM_OK) {
                errors++;
                break;
            }
            start = ends[i];
        }
        sm_meta_image_put(sm_meta_delta_freeze(d));
    }
    CHECK(errors > 100);
    sm_wbuf_free(&w);
}

/* ------------------------------------------------- dynamic broker configs */

static const char *resolved(const sm_config_dynamic_t *dyn, const sm_topic_kv_t *ov, int nov,
                            const char *key, sm_config_source_t *src)
{
    static char buf[64];
    if (sm_topic_config_resolve_dynamic(&g_cfg, dyn, key, ov, nov, buf, sizeof buf, src, NULL))
        return "?";
    return buf;
}

static void test_dynamic_broker_configs(void)
{
    char logdir[300], err[512];
    snprintf(logdir, sizeof logdir, "%s/dyn", g_root);
    load_cfg(logdir, "log.segment.bytes=2000000");
    sm_meta_t *m;
    CHECK_EQ(sm_meta_open(&g_cfg, "AAAAAAAAAAAAAAAAAAAAAQ", &m), SM_OK);
    calls_t calls = {0};
    sm_meta_set_listener(m, listener, &calls);
    sm_config_source_t src;
    sm_config_dynamic_t dyn;

    /* static layer only */
    sm_meta_image_t *img = sm_meta_image_get(m);
    sm_meta_image_dynamic(img, 1, &dyn);
    CHECK_EQ(dyn.nnode + dyn.ncluster, 0);
    CHECK(strcmp(resolved(&dyn, NULL, 0, "segment.bytes", &src), "2000000") == 0);
    CHECK_EQ(src, SM_CONFIG_SOURCE_STATIC_BROKER);
    sm_meta_image_put(img);

    /* which keys are dynamic */
    CHECK(sm_config_is_dynamic("log.retention.ms"));
    CHECK(sm_config_is_dynamic("log.segment.bytes"));
    CHECK(sm_config_is_dynamic("message.max.bytes"));
    CHECK(!sm_config_is_dynamic("log.retention.hours"));
    CHECK(!sm_config_is_dynamic("num.partitions"));
    CHECK(!sm_config_is_dynamic("log.message.format.version"));

    /* refusals write nothing */
    int64_t before = calls.last_new_offset;
    int ncalls = calls.n;
    sm_config_kv_t bad1[] = {{"num.partitions", "3"}};
    CHECK_EQ(sm_meta_alter_broker_configs(m, "", bad1, 1, NULL, 0, false, false, err, sizeof err),
             SM_ERR_INVALID);
    CHECK_EQ(sm_meta_last_fail(), SM_META_FAIL_CONFIG);
    CHECK(strstr(err, "Cannot update these configs dynamically: num.partitions") != NULL);
    sm_config_kv_t bad2[] = {{"log.segment.bytes", "lots"}};
    CHECK_EQ(sm_meta_alter_broker_configs(m, "", bad2, 1, NULL, 0, false, false, err, sizeof err),
             SM_ERR_INVALID);
    CHECK(strstr(err, "log.segment.bytes") != NULL);
    sm_config_kv_t bad3[] = {{"no.such.key", "1"}};
    CHECK_EQ(sm_meta_alter_broker_configs(m, "", bad3, 1, NULL, 0, false, false, err, sizeof err),
             SM_ERR_INVALID);
    sm_config_kv_t good[] = {{"log.segment.bytes", "3000000"}};
    CHECK_EQ(sm_meta_alter_broker_configs(m, "x1", good, 1, NULL, 0, false, false, err,
                                          sizeof err), SM_ERR_INVALID);
    CHECK_EQ(sm_meta_alter_broker_configs(m, "", good, 1, NULL, 0, false, true, err, sizeof err),
             SM_OK); /* validate_only */
    CHECK_EQ(calls.n, ncalls);
    CHECK_EQ(calls.last_new_offset, before);

    /* cluster default, then this node */
    CHECK_EQ(sm_meta_alter_broker_configs(m, "", good, 1, NULL, 0, false, false, err, sizeof err),
             SM_OK);
    CHECK_EQ(calls.n, ncalls + 1);
    sm_config_kv_t node_set[] = {{"log.segment.bytes", "4000000"}, {"log.retention.ms", "5000"}};
    CHECK_EQ(sm_meta_alter_broker_configs(m, "1", node_set, 2, NULL, 0, false, false, err,
                                          sizeof err), SM_OK);
    sm_config_kv_t other[] = {{"log.retention.ms", "7000"}};
    CHECK_EQ(sm_meta_alter_broker_configs(m, "2", other, 1, NULL, 0, false, false, err,
                                          sizeof err), SM_OK); /* another node: not ours */
    img = sm_meta_image_get(m);
    sm_meta_image_dynamic(img, 1, &dyn);
    CHECK_EQ(dyn.ncluster, 1);
    CHECK_EQ(dyn.nnode, 2);
    CHECK(dyn.nnode == 2 && strcmp(dyn.node[0].key, "log.retention.ms") == 0); /* sorted */
    CHECK(strcmp(resolved(&dyn, NULL, 0, "segment.bytes", &src), "4000000") == 0);
    CHECK_EQ(src, SM_CONFIG_SOURCE_DYNAMIC_BROKER);
    CHECK(strcmp(resolved(&dyn, NULL, 0, "retention.ms", &src), "5000") == 0);
    sm_topic_kv_t ov[] = {{"segment.bytes", "5000000"}};
    CHECK(strcmp(resolved(&dyn, ov, 1, "segment.bytes", &src), "5000000") == 0);
    CHECK_EQ(src, SM_CONFIG_SOURCE_TOPIC);
    sm_log_config_t lc;
    sm_meta_topic_log_config_dynamic(&g_cfg, &dyn, NULL, 0, &lc);
    CHECK_EQ(lc.segment_bytes, 4000000);
    CHECK_EQ(lc.retention_ms, 5000);
    const char *bv = sm_config_get_dynamic(&g_cfg, &dyn, "log.segment.bytes", &src);
    CHECK(bv && strcmp(bv, "4000000") == 0);
    CHECK_EQ(src, SM_CONFIG_SOURCE_DYNAMIC_BROKER);
    sm_config_dynamic_t dyn_other;
    sm_meta_image_dynamic(img, 3, &dyn_other); /* a node without its own layer */
    CHECK(strcmp(resolved(&dyn_other, NULL, 0, "segment.bytes", &src), "3000000") == 0);
    CHECK_EQ(src, SM_CONFIG_SOURCE_DYNAMIC_DEFAULT);
    CHECK(!sm_meta_dynamic_equal(&dyn, &dyn_other));
    CHECK(sm_meta_dynamic_equal(&dyn, &dyn));
    sm_meta_image_put(img);

    /* delete the node's key: back to the cluster default; replace_all */
    const char *del[] = {"log.segment.bytes"};
    CHECK_EQ(sm_meta_alter_broker_configs(m, "1", NULL, 0, del, 1, false, false, err, sizeof err),
             SM_OK);
    img = sm_meta_image_get(m);
    sm_meta_image_dynamic(img, 1, &dyn);
    CHECK(strcmp(resolved(&dyn, NULL, 0, "segment.bytes", &src), "3000000") == 0);
    CHECK_EQ(src, SM_CONFIG_SOURCE_DYNAMIC_DEFAULT);
    sm_meta_image_put(img);
    sm_config_kv_t roll[] = {{"log.roll.ms", "60000"}};
    CHECK_EQ(sm_meta_alter_broker_configs(m, "", roll, 1, NULL, 0, true, false, err, sizeof err),
             SM_OK); /* legacy AlterConfigs: log.segment.bytes default removed */
    img = sm_meta_image_get(m);
    sm_meta_image_dynamic(img, 1, &dyn);
    CHECK(strcmp(resolved(&dyn, NULL, 0, "segment.bytes", &src), "2000000") == 0);
    CHECK_EQ(src, SM_CONFIG_SOURCE_STATIC_BROKER);
    CHECK(strcmp(resolved(&dyn, NULL, 0, "segment.ms", &src), "60000") == 0);
    CHECK_EQ(src, SM_CONFIG_SOURCE_DYNAMIC_DEFAULT);
    CHECK(strcmp(resolved(&dyn, NULL, 0, "retention.ms", &src), "5000") == 0);
    sm_meta_image_t *keep = img;

    /* replay after reopen rebuilds the same layers */
    sm_meta_close(m);
    CHECK_EQ(sm_meta_open(&g_cfg, "AAAAAAAAAAAAAAAAAAAAAQ", &m), SM_OK);
    img = sm_meta_image_get(m);
    sm_config_dynamic_t dyn2;
    sm_meta_image_dynamic(img, 1, &dyn2);
    CHECK(sm_meta_dynamic_equal(&dyn, &dyn2));
    CHECK_EQ(dyn2.nnode, 1);
    CHECK_EQ(dyn2.ncluster, 1);
    CHECK_EQ(img->nbroker_configs, 3);
    CHECK(img->nbroker_configs == 3 && img->broker_configs[0].node == -1 &&
          img->broker_configs[2].node == 2);
    sm_meta_image_put(img);
    sm_meta_image_put(keep);
    sm_meta_close(m);
}

int main(void)
{
    make_root();
    RUN(test_uuid);
    RUN(test_meta_props);
    RUN(test_controller);
    RUN(test_segments);
    RUN(test_concurrent_readers);
    RUN(test_replay_garbage);
    RUN(test_controller_only);
    RUN(test_dynamic_broker_configs);
    if (!sm_test_failed)
        sm_test_rm_rf(g_root);
    TEST_MAIN_END();
}
