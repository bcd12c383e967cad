/*
 * offsets.c - standalone mode's source offset store: offset.storage.file.filename.
 *
 * Kafka's standalone worker keeps source offsets in a file of serialized Java maps;
 * Samsa keeps the same information as JSON, readable and editable by hand:
 *
 *   {"version": 1,
 *    "offsets": {"<connector>": [{"partition": {...}, "offset": {...}}, ...], ...}}
 *
 * In memory each connector's partitions are keyed by the partition's canonical text
 * (compact, keys sorted), so {"a":1,"b":2} and {"b":2,"a":1} are one partition.
 *
 * Durability: a flush writes "<file>.tmp", fsyncs it, renames it over the file and
 * fsyncs the directory, so after a crash the file holds either the old or the new
 * offsets, never a torn mix. Tasks call put() only for records the broker acknowledged
 * (task_source.c), then flush(), so a stored offset never runs ahead of the topic.
 *
 * Any thread: one mutex guards the map; flush writes outside it from a snapshot.
 *
 * Distributed mode keeps the same map over the offsets topic (cn_offsets_open_topic):
 * a reader thread (kblog.c) applies every record of the topic to the map, put() also
 * marks the key dirty, flush() writes the dirty keys and waits for the broker, get()
 * first reads the topic to its end. Record key: ["<connector>",{partition}] (compact
 * JSON, partition keys sorted); value: the offset object as JSON, or a tombstone when
 * the offset was removed. That is what Kafka's JsonConverter (schemas.enable=false)
 * writes, so Kafka's tools and Samsa read each other's offsets.
 */
#define _GNU_SOURCE
#include "cn.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cn_offsets {
    pthread_mutex_t mu;
    pthread_mutex_t flush_mu; /* one writer of the file at a time */
    char *path;
    json_t *map; /* {"conn": {"<partition text>": {"partition","offset"}}} */
    uint64_t version, flushed_version;
    cn_kblog_t *log; /* distributed mode: the offsets topic */
    json_t *dirty;   /* distributed mode: {"<record key>": offset|null} written at flush */
};

static void put_locked(cn_offsets_t *o, const char *conn, json_t *partition, json_t *offset, const char *k);

static char *canon(json_t *partition)
{
    return json_dumps(partition, JSON_COMPACT | JSON_SORT_KEYS);
}

cn_offsets_t *cn_offsets_open(const char *path, char *err, size_t err_len)
{
    cn_offsets_t *o = calloc(1, sizeof *o);
    if (!o)
        abort();
    pthread_mutex_init(&o->mu, NULL);
    pthread_mutex_init(&o->flush_mu, NULL);
    o->path = strdup(path);
    o->map = json_object();
    if (access(path, F_OK) != 0)
        return o;
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    json_t *all = json_object_get(doc, "offsets");
    if (!doc || !json_is_object(all)) {
        snprintf(err, err_len, "offset file %s:%d: %s", path, je.line,
                 doc ? "no \"offsets\" object" : je.text);
        json_decref(doc);
        cn_offsets_close(o);
        return NULL;
    }
    const char *conn;
    json_t *list;
    json_object_foreach(all, conn, list) {
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e) {
            json_t *p = json_object_get(e, "partition"), *off = json_object_get(e, "offset");
            if (json_is_object(p) && json_is_object(off))
                cn_offsets_put(o, conn, p, off);
        }
    }
    json_decref(doc);
    o->flushed_version = o->version;
    return o;
}

void cn_offsets_close(cn_offsets_t *o)
{
    if (!o)
        return;
    cn_kblog_close(o->log);
    json_decref(o->dirty);
    json_decref(o->map);
    free(o->path);
    pthread_mutex_destroy(&o->mu);
    pthread_mutex_destroy(&o->flush_mu);
    free(o);
}

json_t *cn_offsets_get(cn_offsets_t *o, const char *conn, json_t *partition)
{
    if (o->log && cn_kblog_read_to_end(o->log, 30000) != 0)
        CN_WARN(cn_logger("samsa.connect.worker"), "offsets topic: could not read to the end; offsets may be stale");
    char *k = canon(partition);
    pthread_mutex_lock(&o->mu);
    json_t *e = json_object_get(json_object_get(o->map, conn), k);
    json_t *off = json_deep_copy(json_object_get(e, "offset"));
    pthread_mutex_unlock(&o->mu);
    free(k);
    return off;
}

void cn_offsets_put(cn_offsets_t *o, const char *conn, json_t *partition, json_t *offset)
{
    char *k = canon(partition);
    pthread_mutex_lock(&o->mu);
    put_locked(o, conn, partition, offset, k);
    if (o->dirty) {
        json_t *key = json_pack("[sO]", conn, partition);
        char *kt = json_dumps(key, JSON_COMPACT | JSON_SORT_KEYS);
        /* The value is kept here, not re-read from the map at flush: the reader
         * thread may still apply an older record of this key to the map. */
        json_object_set_new(o->dirty, kt, offset ? json_incref(offset) : json_null());
        free(kt);
        json_decref(key);
    }
    pthread_mutex_unlock(&o->mu);
    free(k);
}

static void put_locked(cn_offsets_t *o, const char *conn, json_t *partition, json_t *offset, const char *k)
{
    json_t *m = json_object_get(o->map, conn);
    if (!m) {
        m = json_object();
        json_object_set_new(o->map, conn, m);
    }
    if (offset && !json_is_null(offset))
        json_object_set_new(m, k, json_pack("{s:O, s:O}", "partition", partition, "offset", offset));
    else
        json_object_del(m, k);
    o->version++;
}

void cn_offsets_reset(cn_offsets_t *o, const char *conn)
{
    if (o->log) {
        /* Tombstones for every partition, written at the next flush. */
        json_t *list = cn_offsets_list(o, conn);
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
            cn_offsets_put(o, conn, json_object_get(e, "partition"), NULL);
        json_decref(list);
        return;
    }
    pthread_mutex_lock(&o->mu);
    if (json_object_get(o->map, conn)) {
        json_object_del(o->map, conn);
        o->version++;
    }
    pthread_mutex_unlock(&o->mu);
}

json_t *cn_offsets_list(cn_offsets_t *o, const char *conn)
{
    if (o->log)
        cn_kblog_read_to_end(o->log, 30000);
    json_t *a = json_array();
    pthread_mutex_lock(&o->mu);
    const char *k;
    json_t *e;
    json_object_foreach(json_object_get(o->map, conn), k, e)
        json_array_append_new(a, json_deep_copy(e));
    pthread_mutex_unlock(&o->mu);
    return a;
}

static int fsync_dir(const char *path)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int flush_topic(cn_offsets_t *o, char *err, size_t err_len);

int cn_offsets_flush(cn_offsets_t *o, char *err, size_t err_len)
{
    if (o->log)
        return flush_topic(o, err, err_len);
    pthread_mutex_lock(&o->flush_mu);
    pthread_mutex_lock(&o->mu);
    if (o->version == o->flushed_version) {
        pthread_mutex_unlock(&o->mu);
        pthread_mutex_unlock(&o->flush_mu);
        return 0;
    }
    uint64_t version = o->version;
    json_t *all = json_object();
    const char *conn;
    json_t *m;
    json_object_foreach(o->map, conn, m) {
        json_t *list = json_array();
        const char *k;
        json_t *e;
        json_object_foreach(m, k, e)
            json_array_append(list, e);
        json_object_set_new(all, conn, list);
    }
    json_t *doc = json_pack("{s:i, s:o}", "version", 1, "offsets", all);
    char *text = json_dumps(doc, JSON_INDENT(1));
    pthread_mutex_unlock(&o->mu);
    json_decref(doc);

    int rc = -1;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", o->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
            close(fd);
            goto done;
        }
        off += (size_t)w;
    }
    if (write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
        close(fd);
        goto done;
    }
    close(fd);
    if (rename(tmp, o->path) != 0) {
        snprintf(err, err_len, "rename %s: %s", o->path, strerror(errno));
        goto done;
    }
    fsync_dir(o->path);
    pthread_mutex_lock(&o->mu);
    if (version > o->flushed_version)
        o->flushed_version = version;
    pthread_mutex_unlock(&o->mu);
    rc = 0;
done:
    free(text);
    pthread_mutex_unlock(&o->flush_mu);
    return rc;
}

/* ------------------------------------------------------- the offsets topic */

/* Reader thread: one record of the offsets topic into the map. */
static void apply_record(void *arg, const void *key, size_t klen, const void *val, size_t vlen, int32_t partition,
                         int64_t offset)
{
    (void)partition;
    (void)offset;
    cn_offsets_t *o = arg;
    json_t *k = key ? json_loadb(key, klen, 0, NULL) : NULL;
    json_t *v = val ? json_loadb(val, vlen, JSON_DECODE_ANY, NULL) : NULL;
    const char *conn = json_string_value(json_array_get(k, 0));
    json_t *p = json_array_get(k, 1);
    if (json_is_array(k) && conn && json_is_object(p) && (!v || json_is_object(v) || json_is_null(v))) {
        char *c = canon(p);
        pthread_mutex_lock(&o->mu);
        put_locked(o, conn, p, v, c);
        pthread_mutex_unlock(&o->mu);
        free(c);
    }
    json_decref(k);
    json_decref(v);
}

cn_offsets_t *cn_offsets_open_topic(cn_worker_t *w, const char *topic, int partitions, int rf, char *err,
                                    size_t err_len)
{
    cn_offsets_t *o = calloc(1, sizeof *o);
    if (!o)
        abort();
    pthread_mutex_init(&o->mu, NULL);
    pthread_mutex_init(&o->flush_mu, NULL);
    o->path = strdup(topic);
    o->map = json_object();
    o->dirty = json_object();
    o->log = cn_kblog_open(w, topic, partitions, rf, apply_record, o, err, err_len);
    if (!o->log) {
        cn_offsets_close(o);
        return NULL;
    }
    return o;
}

static int flush_topic(cn_offsets_t *o, char *err, size_t err_len)
{
    pthread_mutex_lock(&o->flush_mu);
    pthread_mutex_lock(&o->mu);
    size_t n = json_object_size(o->dirty), i = 0;
    char **keys = calloc(n + 1, sizeof *keys), **vals = calloc(n + 1, sizeof *vals);
    if (!keys || !vals)
        abort();
    const char *kt;
    json_t *off;
    json_object_foreach(o->dirty, kt, off) {
        keys[i] = strdup(kt);
        vals[i] = json_is_object(off) ? json_dumps(off, JSON_COMPACT) : NULL;
        i++;
    }
    json_t *batch = o->dirty;
    o->dirty = json_object();
    pthread_mutex_unlock(&o->mu);
    int rc = n ? cn_kblog_send(o->log, n, (const char *const *)keys, (const char *const *)vals, true, err, err_len)
               : 0;
    for (i = 0; i < n; i++) {
        free(keys[i]);
        free(vals[i]);
    }
    free(keys);
    free(vals);
    if (rc != 0) {
        /* Written again at the next flush, unless a newer value came meanwhile. */
        pthread_mutex_lock(&o->mu);
        json_t *v;
        json_object_foreach(batch, kt, v)
            if (!json_object_get(o->dirty, kt))
                json_object_set(o->dirty, kt, v);
        pthread_mutex_unlock(&o->mu);
    }
    json_decref(batch);
    pthread_mutex_unlock(&o->flush_mu);
    return rc;
}
