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
};

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
    json_decref(o->map);
    free(o->path);
    pthread_mutex_destroy(&o->mu);
    pthread_mutex_destroy(&o->flush_mu);
    free(o);
}

json_t *cn_offsets_get(cn_offsets_t *o, const char *conn, json_t *partition)
{
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
    pthread_mutex_unlock(&o->mu);
    free(k);
}

void cn_offsets_reset(cn_offsets_t *o, const char *conn)
{
    pthread_mutex_lock(&o->mu);
    if (json_object_get(o->map, conn)) {
        json_object_del(o->map, conn);
        o->version++;
    }
    pthread_mutex_unlock(&o->mu);
}

json_t *cn_offsets_list(cn_offsets_t *o, const char *conn)
{
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

int cn_offsets_flush(cn_offsets_t *o, char *err, size_t err_len)
{
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
