/*
 * meta_snapshot.c - metadata image snapshots (meta_snapshot.h).
 */
#include "meta_snapshot.h"

#include "batch.h"
#include "log.h"
#include "meta_delta.h"
#include "storage/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG "meta"
#define RECORDS_PER_BATCH 2000
#define CONTROL_SNAPSHOT_HEADER 3
#define CONTROL_SNAPSHOT_FOOTER 4
#define MAX_SNAPSHOT_BYTES (1ll << 31)

/* ------------------------------------------------------------- records */

static void add_broker(recs_t *r, const sm_broker_meta_t *b)
{
    sm_register_broker_record_t rec;
    sm_register_broker_record_init(&rec);
    rec.broker_id = b->id;
    rec.broker_epoch = b->epoch;
    sm_register_broker_record_broker_endpoint_t *eps =
        sm_xcalloc((size_t)b->nendpoints + 1, sizeof *eps);
    for (int i = 0; i < b->nendpoints; i++) {
        sm_register_broker_record_broker_endpoint_init(&eps[i]);
        eps[i].name = sm_str(b->endpoints[i].name);
        eps[i].host = sm_str(b->endpoints[i].host);
        eps[i].port = (uint16_t)b->endpoints[i].port;
        eps[i].security_protocol = b->endpoints[i].security_protocol;
    }
    rec.end_points = eps;
    rec.end_points_count = b->nendpoints;
    rec.rack = b->rack ? sm_str(b->rack) : (sm_str_t){NULL, -1};
    rec.fenced = b->fenced;
    rec.in_controlled_shutdown = b->in_controlled_shutdown;
    RECS_ADD(r, SM_METADATA_REGISTER_BROKER_RECORD, 1, sm_register_broker_record, &rec);
    free(eps);
}

static void add_topic(recs_t *r, const sm_topic_meta_t *t)
{
    sm_topic_record_t tr;
    sm_topic_record_init(&tr);
    tr.name = sm_str(t->name);
    tr.topic_id = t->id;
    RECS_ADD(r, SM_METADATA_TOPIC_RECORD, 0, sm_topic_record, &tr);
    for (int i = 0; i < t->nconfigs; i++)
        sm_meta_add_config_rec(r, 2 /* TOPIC */, t->name, t->configs[i].key, t->configs[i].value);
    for (int32_t p = 0; p < t->npartitions; p++) {
        const sm_partition_meta_t *pm = &t->partitions[p];
        sm_partition_record_t pr;
        sm_partition_record_init(&pr);
        pr.partition_id = p;
        pr.topic_id = t->id;
        pr.replicas = pm->replicas;
        pr.replicas_count = pm->nreplicas;
        pr.isr = pm->isr;
        pr.isr_count = pm->nisr;
        pr.removing_replicas = pm->removing;
        pr.removing_replicas_count = pm->nremoving;
        pr.adding_replicas = pm->adding;
        pr.adding_replicas_count = pm->nadding;
        pr.leader = pm->leader;
        pr.leader_epoch = pm->leader_epoch;
        pr.partition_epoch = pm->partition_epoch;
        RECS_ADD(r, SM_METADATA_PARTITION_RECORD, 0, sm_partition_record, &pr);
    }
}

void sm_meta_image_records(const sm_meta_image_t *img, recs_t *r)
{
    if (img->metadata_version > 0) {
        sm_feature_level_record_t f;
        sm_feature_level_record_init(&f);
        f.name = sm_str("metadata.version");
        f.feature_level = img->metadata_version;
        RECS_ADD(r, SM_METADATA_FEATURE_LEVEL_RECORD, 0, sm_feature_level_record, &f);
    }
    if (img->next_producer_id > 0) {
        sm_producer_ids_record_t pid;
        sm_producer_ids_record_init(&pid);
        pid.broker_id = img->controller_id;
        pid.broker_epoch = -1;
        pid.next_producer_id = img->next_producer_id;
        RECS_ADD(r, SM_METADATA_PRODUCER_IDS_RECORD, 0, sm_producer_ids_record, &pid);
    }
    for (int i = 0; i < img->nbrokers; i++)
        add_broker(r, &img->brokers[i]);
    for (int i = 0; i < img->ncontrollers; i++)
        sm_meta_add_controller_rec(r, &img->controllers[i]);
    for (int i = 0; i < img->nbroker_configs; i++) {
        const sm_meta_broker_configs_t *bc = &img->broker_configs[i];
        char node[16] = "";
        if (bc->node >= 0)
            snprintf(node, sizeof node, "%d", bc->node);
        for (int k = 0; k < bc->n; k++)
            sm_meta_add_config_rec(r, 4 /* BROKER */, node, bc->kv[k].key, bc->kv[k].value);
    }
    for (int i = 0; i < img->ntopics; i++)
        add_topic(r, img->topics[i]);
}

/* ------------------------------------------------------------- writing */

static void control_batch(sm_wbuf_t *w, int64_t base, int32_t epoch, int16_t type,
                          const uint8_t *value, size_t vlen, int64_t ts)
{
    uint8_t key[4] = {0, 0, (uint8_t)(type >> 8), (uint8_t)type};
    sm_record_in_t rec = {.key = key, .key_len = 4, .value = value,
                          .value_len = (int32_t)vlen, .timestamp = ts};
    sm_batch_params_t bp = {.base_offset = base, .leader_epoch = epoch,
                            .attributes = SM_BATCH_ATTR_CONTROL, .producer_id = -1,
                            .producer_epoch = -1, .base_sequence = -1};
    sm_batch_encode(w, &bp, &rec, 1);
}

/* The whole file's bytes: header, data batches, footer. */
static void encode_snapshot(const sm_meta_image_t *img, int32_t epoch, int64_t ts, sm_wbuf_t *w)
{
    /* SnapshotHeaderRecord v0 (flexible): Version int16, LastContainedLogTimestamp
     * int64, no tagged fields. SnapshotFooterRecord v0: Version int16. */
    uint8_t header[11] = {0};
    for (int i = 0; i < 8; i++)
        header[2 + i] = (uint8_t)((uint64_t)ts >> (56 - 8 * i));
    uint8_t footer[3] = {0, 0, 0};
    int64_t off = 0;
    control_batch(w, off++, epoch, CONTROL_SNAPSHOT_HEADER, header, sizeof header, ts);
    recs_t r;
    recs_init(&r);
    sm_meta_image_records(img, &r);
    size_t start = 0;
    for (int i = 0; i < r.n; i += RECORDS_PER_BATCH) {
        int n = r.n - i < RECORDS_PER_BATCH ? r.n - i : RECORDS_PER_BATCH;
        sm_record_in_t *in = sm_xcalloc((size_t)n, sizeof *in);
        for (int k = 0; k < n; k++) {
            size_t end = r.ends[i + k];
            in[k] = (sm_record_in_t){.key = NULL, .key_len = -1, .value = r.buf.mem + start,
                                     .value_len = (int32_t)(end - start), .timestamp = ts};
            start = end;
        }
        sm_batch_params_t bp = {.base_offset = off, .leader_epoch = epoch, .attributes = 0,
                                .producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
        sm_batch_encode(w, &bp, in, n);
        free(in);
        off += n;
    }
    recs_free(&r);
    control_batch(w, off, epoch, CONTROL_SNAPSHOT_FOOTER, footer, sizeof footer, ts);
}

sm_err_t sm_meta_snapshot_write(const char *dir, const sm_meta_image_t *img, int32_t epoch,
                                int64_t *bytes, char *err, size_t errlen)
{
    if (img->offset < 0 || epoch < 0) {
        snprintf(err, errlen, "nothing to snapshot (offset %" PRId64 ", epoch %d)", img->offset,
                 epoch);
        return SM_ERR_INVALID;
    }
    sm_snapshot_id_t id = {img->offset + 1, epoch};
    char name[SM_SNAPSHOT_NAME_MAX + 32], part[sizeof name];
    char unique[24];
    snprintf(unique, sizeof unique, "%08x", (unsigned)(sm_now_mono_us() & 0xffffffffu));
    sm_snapshot_name_format(name, sizeof name, id, SM_SNAPSHOT_COMPLETE, NULL);
    sm_snapshot_name_format(part, sizeof part, id, SM_SNAPSHOT_PARTIAL, unique);
    size_t plen = strlen(dir) + sizeof name + 2;
    char *final_path = sm_xmalloc(plen), *part_path = sm_xmalloc(plen);
    snprintf(final_path, plen, "%s/%s", dir, name);
    snprintf(part_path, plen, "%s/%s", dir, part);
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    encode_snapshot(img, epoch, sm_now_wall_ms(), &w);
    int fd = -1;
    sm_err_t rc = sm_file_open(part_path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, &fd);
    if (rc == SM_OK)
        rc = sm_file_pwrite(fd, w.mem, w.len, 0);
    if (rc == SM_OK)
        rc = sm_file_datasync(fd);
    if (fd >= 0)
        sm_file_close(fd);
    if (rc == SM_OK)
        rc = sm_file_rename(part_path, final_path);
    if (rc == SM_OK)
        rc = sm_file_sync_dir(dir);
    if (rc != SM_OK) {
        snprintf(err, errlen, "%s: %s", part_path, sm_err_str(rc));
        (void)sm_file_unlink(part_path);
    } else if (bytes) {
        *bytes = (int64_t)w.len;
    }
    sm_wbuf_free(&w);
    free(final_path);
    free(part_path);
    return rc;
}

/* ------------------------------------------------------------- reading */

bool sm_meta_snapshot_newest(const char *dir, sm_snapshot_id_t *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        sm_snapshot_id_t id;
        sm_snapshot_kind_t kind;
        if (!sm_snapshot_name_parse(e->d_name, &id, &kind) || kind != SM_SNAPSHOT_COMPLETE)
            continue;
        if (!found || id.end_offset > out->end_offset ||
            (id.end_offset == out->end_offset && id.epoch > out->epoch)) {
            *out = id;
            found = true;
        }
    }
    closedir(d);
    return found;
}

static sm_err_t read_file(const char *path, uint8_t **buf, size_t *len)
{
    int fd;
    sm_err_t rc = sm_file_open(path, O_RDONLY | O_CLOEXEC, &fd);
    if (rc)
        return rc;
    int64_t size = 0;
    rc = sm_file_size(fd, &size);
    if (rc == SM_OK && (size < 0 || size > MAX_SNAPSHOT_BYTES))
        rc = SM_ERR_TOO_LARGE;
    *buf = NULL;
    if (rc == SM_OK) {
        *buf = sm_xmalloc((size_t)size + 1);
        size_t got = 0;
        rc = sm_file_pread(fd, *buf, (size_t)size, 0, &got);
        if (rc == SM_OK && got != (size_t)size)
            rc = SM_ERR_CORRUPT;
        *len = (size_t)size;
    }
    sm_file_close(fd);
    if (rc) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

static sm_err_t control_type(const sm_batch_info_t *info, const uint8_t *p, size_t len,
                             int16_t *type)
{
    sm_record_iter_t it;
    sm_record_t rec;
    if (!(info->attributes & SM_BATCH_ATTR_CONTROL) || sm_record_iter_init(&it, p, len) ||
        sm_record_iter_next(&it, &rec) || rec.key_len < 4)
        return SM_ERR_CORRUPT;
    *type = (int16_t)((rec.key[2] << 8) | rec.key[3]);
    return SM_OK;
}

/* Replay the file's records into d. */
static sm_err_t replay_snapshot(sm_meta_delta_t *d, const uint8_t *buf, size_t len,
                                int64_t last_offset, const char **why)
{
    size_t at = 0;
    bool header = false, footer = false;
    while (at < len) {
        sm_batch_info_t info;
        if (sm_batch_validate(buf + at, len - at, &info, why) != SM_OK)
            return SM_ERR_CORRUPT;
        const uint8_t *p = buf + at;
        size_t blen = (size_t)sm_batch_total_size(&info);
        at += blen;
        if (footer) {
            *why = "records after the snapshot footer";
            return SM_ERR_CORRUPT;
        }
        if (info.attributes & SM_BATCH_ATTR_CONTROL) {
            int16_t type;
            if (control_type(&info, p, blen, &type) != SM_OK) {
                *why = "malformed control batch";
                return SM_ERR_CORRUPT;
            }
            if (type == CONTROL_SNAPSHOT_HEADER && !header)
                header = true;
            else if (type == CONTROL_SNAPSHOT_FOOTER && header)
                footer = true;
            else {
                *why = "unexpected control record";
                return SM_ERR_CORRUPT;
            }
            continue;
        }
        if (!header) {
            *why = "no snapshot header";
            return SM_ERR_CORRUPT;
        }
        sm_record_iter_t it;
        if (sm_record_iter_init(&it, p, blen) != SM_OK) {
            *why = "compressed or malformed batch";
            return SM_ERR_CORRUPT;
        }
        sm_record_t rec;
        sm_err_t rc;
        while ((rc = sm_record_iter_next(&it, &rec)) == SM_OK) {
            if (!rec.value) {
                *why = "record without a value";
                return SM_ERR_CORRUPT;
            }
            /* every record is "at" the snapshot's last offset: the image
             * ends there */
            if (d && sm_meta_delta_replay(d, last_offset, rec.value, (size_t)rec.value_len, why))
                return SM_ERR_CORRUPT;
        }
        if (rc != SM_ERR_NOT_FOUND) {
            *why = "malformed record";
            return SM_ERR_CORRUPT;
        }
    }
    if (!footer) {
        *why = "no snapshot footer (cut short?)";
        return SM_ERR_CORRUPT;
    }
    return SM_OK;
}

sm_err_t sm_meta_snapshot_load(const char *dir, const char *cluster_id, sm_meta_image_t **out,
                               sm_snapshot_id_t *id, char *err, size_t errlen)
{
    *out = NULL;
    if (!sm_meta_snapshot_newest(dir, id))
        return SM_ERR_NOT_FOUND;
    char name[SM_SNAPSHOT_NAME_MAX + 8];
    sm_snapshot_name_format(name, sizeof name, *id, SM_SNAPSHOT_COMPLETE, NULL);
    size_t plen = strlen(dir) + sizeof name + 2;
    char *path = sm_xmalloc(plen);
    snprintf(path, plen, "%s/%s", dir, name);
    uint8_t *buf = NULL;
    size_t len = 0;
    sm_err_t rc = read_file(path, &buf, &len);
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, sm_err_str(rc));
        free(path);
        return rc == SM_ERR_NOT_FOUND ? SM_ERR_IO : rc;
    }
    sm_meta_delta_t *d = sm_meta_delta_new(NULL, cluster_id, -1, id->epoch);
    const char *why = NULL;
    rc = id->end_offset > 0 ? replay_snapshot(d, buf, len, id->end_offset - 1, &why)
                            : SM_ERR_CORRUPT;
    free(buf);
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, why ? why : "empty snapshot");
        sm_meta_delta_free(d);
        free(path);
        return SM_ERR_CORRUPT;
    }
    *out = sm_meta_delta_freeze(d);
    (*out)->offset = id->end_offset - 1; /* an image with no records still ends there */
    free(path);
    return SM_OK;
}

bool sm_meta_snapshot_valid(const uint8_t *bytes, size_t len, const char **why)
{
    *why = NULL;
    return len > 0 && replay_snapshot(NULL, bytes, len, 0, why) == SM_OK;
}

int sm_meta_snapshot_clean(const char *dir, sm_snapshot_id_t keep, int64_t keep_end)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    size_t dlen = strlen(dir);
    while ((e = readdir(d))) {
        sm_snapshot_id_t id;
        sm_snapshot_kind_t kind;
        if (!sm_snapshot_name_parse(e->d_name, &id, &kind))
            continue;
        bool older = id.end_offset < keep.end_offset ||
                     (id.end_offset == keep.end_offset && id.epoch < keep.epoch);
        if (kind == SM_SNAPSHOT_COMPLETE && (!older || id.end_offset == keep_end))
            continue;
        size_t plen = dlen + strlen(e->d_name) + 2;
        char *path = sm_xmalloc(plen);
        snprintf(path, plen, "%s/%s", dir, e->d_name);
        if (sm_file_unlink(path) == SM_OK)
            removed++;
        free(path);
    }
    closedir(d);
    return removed;
}
