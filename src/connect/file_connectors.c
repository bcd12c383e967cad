/*
 * file_connectors.c - the built-in FileStream connectors, Kafka's
 * org.apache.kafka.connect.file.FileStreamSourceConnector and ...FileStreamSinkConnector
 * (aliases FileStreamSource and FileStreamSink), on the plugin ABI like any plugin.
 *
 * Source ("file", "topic", "batch.size" = 2000): tails the file like Kafka's: each line
 * (ended by '\n'; a '\r' before it is dropped) becomes a record whose value is the line
 * as a string (schema string), with source partition {"filename": <file>} and source
 * offset {"position": <byte offset after the line>}. On start it seeks to the stored
 * position, so a restarted task goes on after the last line whose record the broker
 * acknowledged. A missing file is waited for. A last line without its '\n' is held
 * back until the line is complete. Without "file" it reads standard input and keeps
 * no offsets, as Kafka.
 *
 * Sink ("file"; standard output without it): appends each record's value and a '\n'
 * (strings and bytes as they are, other values as JSON text, a null value as "null").
 * Lines are buffered and written whole (never a torn line, even when the worker is
 * killed); flush() hands the buffered lines to the kernel, which is what Kafka's
 * flush does: the lines survive a crash of the worker, not of the machine.
 *
 * Runs on the task's thread; all state is in the task object.
 */
#define _GNU_SOURCE
#include "cn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILE_READ_CHUNK (256 * 1024)
#define FILE_MAX_LINE (64 * 1024 * 1024)

static const char *const source_aliases[] = {"FileStreamSource", NULL};
static const char *const sink_aliases[] = {"FileStreamSink", NULL};

static const samsa_connect_config_def_t source_defs[] = {
    {"file", SAMSA_CONFIG_STRING, NULL, 0, 0, SAMSA_IMPORTANCE_HIGH,
     "Source filename. If not specified, the standard input will be used"},
    {"topic", SAMSA_CONFIG_STRING, NULL, 1, 1, SAMSA_IMPORTANCE_HIGH, "The topic to publish data to"},
    {"batch.size", SAMSA_CONFIG_INT, "2000", 0, 0, SAMSA_IMPORTANCE_LOW,
     "The maximum number of records the source task can read from the file each time it is polled"},
};

static const samsa_connect_config_def_t sink_defs[] = {
    {"file", SAMSA_CONFIG_STRING, NULL, 0, 0, SAMSA_IMPORTANCE_HIGH,
     "Destination filename. If not specified, the standard output will be used"},
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ source */

typedef struct fsrc {
    char *filename; /* NULL: stdin */
    char *topic;
    int batch_size;
    int fd;
    bool warned_missing;
    char *partition; /* {"filename":...} or NULL for stdin */
    int64_t pos;     /* stream position of buf[0] */
    char *buf;
    size_t len, cap;
} fsrc_t;

static void src_validate(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg)
{
    const char *t = samsa_connect_config_get(cfg, "topic");
    if (t && strchr(t, ','))
        ctx->rt->config_error(ctx, "topic", "FileStreamSourceConnector takes a single topic");
    const char *b = samsa_connect_config_get(cfg, "batch.size");
    if (b && atoi(b) < 1)
        ctx->rt->config_error(ctx, "batch.size", "Value must be at least 1");
}

static int src_task_configs(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg,
                            int max_tasks, char *err, size_t err_len)
{
    (void)max_tasks;
    samsa_connect_kv_t kv[3];
    size_t n = 0;
    static const char *const keys[] = {"file", "topic", "batch.size"};
    for (int i = 0; i < 3; i++) {
        const char *v = samsa_connect_config_get(cfg, keys[i]);
        if (v)
            kv[n++] = (samsa_connect_kv_t){keys[i], v};
    }
    samsa_connect_config_t tc = {kv, n};
    /* Only one input stream: one task, whatever tasks.max says (as Kafka). */
    if (ctx->rt->add_task_config(ctx, &tc) != 0) {
        snprintf(err, err_len, "cannot add task config");
        return -1;
    }
    return 0;
}

static void src_free(fsrc_t *s)
{
    if (s->fd > 0)
        close(s->fd);
    free(s->filename);
    free(s->topic);
    free(s->partition);
    free(s->buf);
    free(s);
}

static int src_start(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg, void **out,
                     char *err, size_t err_len)
{
    fsrc_t *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    const char *file = samsa_connect_config_get(cfg, "file");
    const char *topic = samsa_connect_config_get(cfg, "topic");
    const char *bs = samsa_connect_config_get(cfg, "batch.size");
    if (!topic || !*topic) {
        snprintf(err, err_len, "Missing required configuration \"topic\" which has no default value.");
        free(s);
        return -1;
    }
    s->filename = file && *file ? strdup(file) : NULL;
    s->topic = strdup(topic);
    s->batch_size = bs ? atoi(bs) : 2000;
    if (s->batch_size < 1)
        s->batch_size = 1;
    s->fd = -1;
    s->cap = FILE_READ_CHUNK * 2;
    s->buf = malloc(s->cap);
    if (!s->buf)
        abort();
    if (s->filename) {
        json_t *p = json_pack("{s:s}", "filename", s->filename);
        s->partition = json_dumps(p, JSON_COMPACT);
        json_decref(p);
    } else {
        s->fd = 0; /* stdin */
    }
    *out = s;
    (void)ctx;
    return 0;
}

/* Open the file and seek to the stored position. false while it does not exist. */
static bool src_open(fsrc_t *s, samsa_connect_context_t *ctx, char *err, size_t err_len, int *rc)
{
    *rc = 0;
    int fd = open(s->filename, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (!s->warned_missing)
            ctx->rt->log(ctx, SAMSA_LOG_WARN, "Couldn't find file %s for FileStreamSourceTask, sleeping to wait for it to be created",
                         s->filename);
        s->warned_missing = true;
        if (errno != ENOENT) {
            snprintf(err, err_len, "Error while trying to open file %s: %s", s->filename, strerror(errno));
            *rc = -1;
        }
        return false;
    }
    s->pos = 0;
    const char *off = ctx->rt->offset(ctx, s->partition);
    if (off) {
        json_t *o = json_loads(off, 0, NULL);
        json_t *p = json_object_get(o, "position");
        if (json_is_integer(p) && json_integer_value(p) >= 0) {
            s->pos = json_integer_value(p);
            if (lseek(fd, (off_t)s->pos, SEEK_SET) < 0) {
                snprintf(err, err_len, "cannot seek %s to %lld: %s", s->filename, (long long)s->pos,
                         strerror(errno));
                json_decref(o);
                close(fd);
                *rc = -1;
                return false;
            }
            ctx->rt->log(ctx, SAMSA_LOG_DEBUG, "Found previous offset, trying to skip to file offset %lld",
                         (long long)s->pos);
        } else if (o) {
            json_decref(o);
            close(fd);
            snprintf(err, err_len, "Offset position is the incorrect type");
            *rc = -1;
            return false;
        }
        json_decref(o);
    }
    s->fd = fd;
    s->len = 0;
    return true;
}

static int src_poll(void *task, samsa_connect_context_t *ctx, char *err, size_t err_len)
{
    fsrc_t *s = task;
    if (s->fd < 0) {
        int rc;
        if (!src_open(s, ctx, err, err_len, &rc)) {
            for (int i = 0; i < 10 && rc == 0 && !ctx->rt->should_yield(ctx); i++)
                sleep_ms(100);
            return rc;
        }
    }
    static const char value_schema[] = "{\"type\":\"string\",\"optional\":false}";
    int emitted = 0;
    for (;;) {
        /* Emit complete lines from the buffer. */
        size_t start = 0;
        while (emitted < s->batch_size) {
            char *nl = memchr(s->buf + start, '\n', s->len - start);
            if (!nl)
                break;
            size_t line_len = (size_t)(nl - (s->buf + start));
            size_t consumed = line_len + 1;
            if (line_len && s->buf[start + line_len - 1] == '\r')
                line_len--;
            char offset[64];
            snprintf(offset, sizeof offset, "{\"position\":%lld}",
                     (long long)(s->pos + (int64_t)start + (int64_t)consumed));
            samsa_connect_source_record_t rec = {
                .source_partition = s->partition,
                .source_offset = s->partition ? offset : NULL,
                .topic = s->topic,
                .kafka_partition = -1,
                .key = {SAMSA_VALUE_NULL, NULL, 0, NULL},
                .value = {SAMSA_VALUE_STRING, s->buf + start, line_len, value_schema},
                .timestamp_ms = -1,
            };
            if (ctx->rt->emit(ctx, &rec) != 0) {
                snprintf(err, err_len, "the worker refused a record from %s",
                         s->filename ? s->filename : "stdin");
                return -1;
            }
            emitted++;
            start += consumed;
        }
        if (start) {
            memmove(s->buf, s->buf + start, s->len - start);
            s->len -= start;
            s->pos += (int64_t)start;
        }
        if (emitted >= s->batch_size || (emitted && s->len == 0))
            return 0;
        /* Read more. */
        if (s->cap - s->len < FILE_READ_CHUNK) {
            if (s->cap >= FILE_MAX_LINE) {
                snprintf(err, err_len, "a line of %s is longer than %d bytes",
                         s->filename ? s->filename : "stdin", FILE_MAX_LINE);
                return -1;
            }
            s->cap *= 2;
            s->buf = realloc(s->buf, s->cap);
            if (!s->buf)
                abort();
        }
        ssize_t r = read(s->fd, s->buf + s->len, s->cap - s->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, err_len, "Error while reading from file %s: %s",
                     s->filename ? s->filename : "stdin", strerror(errno));
            return -1;
        }
        if (r == 0) {
            if (emitted)
                return 0;
            /* Nothing new: wait a little for the file to grow. */
            for (int i = 0; i < 2 && !ctx->rt->should_yield(ctx); i++)
                sleep_ms(50);
            return 0;
        }
        s->len += (size_t)r;
    }
}

static void src_stop(void *task, samsa_connect_context_t *ctx)
{
    (void)ctx;
    if (task)
        src_free(task);
}

const samsa_connect_plugin_t cn_file_source_plugin = {
    .abi_version = SAMSA_CONNECT_ABI_VERSION,
    .struct_size = sizeof(samsa_connect_plugin_t),
    .class_name = "org.apache.kafka.connect.file.FileStreamSourceConnector",
    .aliases = source_aliases,
    .version = CN_VERSION,
    .type = SAMSA_CONNECT_SOURCE,
    .config_defs = source_defs,
    .config_def_count = sizeof source_defs / sizeof *source_defs,
    .validate = src_validate,
    .task_configs = src_task_configs,
    .task_start = src_start,
    .source_poll = src_poll,
    .task_stop = src_stop,
};

/* ------------------------------------------------------------------ sink */

#define SINK_BUF (1 << 20)

typedef struct fsink {
    int fd;
    bool is_stdout;
    char *filename;
    char *buf; /* whole lines not yet written */
    size_t len, cap;
} fsink_t;

static int sink_task_configs(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg,
                             int max_tasks, char *err, size_t err_len)
{
    const char *file = samsa_connect_config_get(cfg, "file");
    samsa_connect_kv_t kv[1] = {{"file", file}};
    samsa_connect_config_t tc = {kv, file ? 1u : 0u};
    for (int i = 0; i < max_tasks; i++)
        if (ctx->rt->add_task_config(ctx, &tc) != 0) {
            snprintf(err, err_len, "cannot add task config");
            return -1;
        }
    return 0;
}

static int sink_start(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg, void **out,
                      char *err, size_t err_len)
{
    (void)ctx;
    fsink_t *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    const char *file = samsa_connect_config_get(cfg, "file");
    if (file && *file) {
        s->filename = strdup(file);
        s->fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (s->fd < 0) {
            snprintf(err, err_len, "Couldn't find or create file '%s' for FileStreamSinkTask: %s", file,
                     strerror(errno));
            free(s->filename);
            free(s);
            return -1;
        }
    } else {
        s->fd = 1;
        s->is_stdout = true;
    }
    s->cap = SINK_BUF;
    s->buf = malloc(s->cap);
    if (!s->buf)
        abort();
    *out = s;
    return 0;
}

/* Write the buffered lines. Only whole lines are ever written, so a worker killed at
 * any moment leaves no torn line for the redelivered records to be appended to. */
static int sink_drain(fsink_t *s, char *err, size_t err_len)
{
    size_t off = 0;
    while (off < s->len) {
        ssize_t w = write(s->fd, s->buf + off, s->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, err_len, "cannot write to %s: %s", s->filename ? s->filename : "stdout",
                     strerror(errno));
            memmove(s->buf, s->buf + off, s->len - off);
            s->len -= off;
            return -1;
        }
        off += (size_t)w;
    }
    s->len = 0;
    return 0;
}

static int sink_line(fsink_t *s, const char *p, size_t n, char *err, size_t err_len)
{
    if (s->len + n + 1 > s->cap) {
        if (sink_drain(s, err, err_len) != 0)
            return -1;
        if (n + 1 > s->cap) {
            s->cap = n + 1;
            s->buf = realloc(s->buf, s->cap);
            if (!s->buf)
                abort();
        }
    }
    if (n)
        memcpy(s->buf + s->len, p, n);
    s->buf[s->len + n] = '\n';
    s->len += n + 1;
    return 0;
}

static int sink_put(void *task, samsa_connect_context_t *ctx, const samsa_connect_sink_record_t *recs,
                    size_t n, char *err, size_t err_len)
{
    (void)ctx;
    fsink_t *s = task;
    for (size_t i = 0; i < n; i++) {
        const samsa_connect_value_t *v = &recs[i].value;
        int rc = v->kind == SAMSA_VALUE_NULL ? sink_line(s, "null", 4, err, err_len)
                                             : sink_line(s, v->data, v->len, err, err_len);
        if (rc != 0)
            return -1;
    }
    /* one write per batch: lines reach the file as they arrive, not only at the
     * next offset flush (Kafka's sink writes each record through its stream) */
    return sink_drain(s, err, err_len);
}

static int sink_flush(void *task, samsa_connect_context_t *ctx, char *err, size_t err_len)
{
    (void)ctx;
    return sink_drain(task, err, err_len);
}

static void sink_stop(void *task, samsa_connect_context_t *ctx)
{
    (void)ctx;
    fsink_t *s = task;
    if (!s)
        return;
    char err[256];
    if (sink_drain(s, err, sizeof err) != 0)
        ctx->rt->log(ctx, SAMSA_LOG_WARN, "%s", err);
    if (!s->is_stdout)
        close(s->fd);
    free(s->filename);
    free(s->buf);
    free(s);
}

const samsa_connect_plugin_t cn_file_sink_plugin = {
    .abi_version = SAMSA_CONNECT_ABI_VERSION,
    .struct_size = sizeof(samsa_connect_plugin_t),
    .class_name = "org.apache.kafka.connect.file.FileStreamSinkConnector",
    .aliases = sink_aliases,
    .version = CN_VERSION,
    .type = SAMSA_CONNECT_SINK,
    .config_defs = sink_defs,
    .config_def_count = sizeof sink_defs / sizeof *sink_defs,
    .task_configs = sink_task_configs,
    .task_start = sink_start,
    .sink_put = sink_put,
    .sink_flush = sink_flush,
    .task_stop = sink_stop,
};
