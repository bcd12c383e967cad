/*
 * dist.c - distributed mode (Kafka's DistributedHerder): workers sharing one
 * group.id share the connectors and tasks kept in three compacted topics.
 *
 *   config.storage.topic (1 partition)  connector-<c>      {"properties":{...}} | tombstone
 *                                       target-state-<c>   {"state":"STARTED|PAUSED","state.v2":"STARTED|PAUSED|STOPPED"}
 *                                       task-<c>-<n>       {"properties":{...}}
 *                                       commit-<c>         {"tasks":N}  (task configs 0..N-1 take effect)
 *                                       restart-connector-<c> {"include-tasks":b,"only-failed":b}
 *   status.storage.topic                status-connector-<c>, status-task-<c>-<n>
 *                                       {"state","trace","worker_id","generation"}
 *   offset.storage.topic                ["<c>",{partition}] -> {offset}   (offsets.c)
 *
 * One herder thread per worker runs the group membership (group.c) and applies the
 * assignment:
 *
 *            join() ok: apply_assignment()
 *   JOINING ----------------------------------> MEMBER --- heartbeat every
 *    ^  |  failed: retry in 250 ms (out of       |         heartbeat.interval.ms
 *    |  |  the group a whole session: stop all)  |
 *    |  +---------------+                        |
 *    +-------------------------------------------+ heartbeat says rebalance (or error);
 *                                                  this member gave work back;
 *                                                  leader: connectors or task counts
 *                                                  changed, or held work's delay ended
 *
 * The leader (the member the broker chose) reads the config topic to its end and
 * assigns; every member receives the whole assignment (so any worker knows the
 * leader's and each task's owner's REST URL). Two protocols (connect.protocol):
 * incremental cooperative (default: members keep their work, see assign_coop) and
 * eager (a member stops everything before joining, then connectors and tasks are
 * dealt round-robin). A member that misses its session timeout (kill -9) is removed
 * by the broker and the others rebalance.
 *
 * Who writes what: REST writes (create, reconfigure, pause/resume/stop, delete,
 * restart requests, offsets) are done by the leader (rest.c forwards them there);
 * the worker owning a connector computes its task configs (plugin->task_configs)
 * and writes them with their commit record, and writes the connector's status;
 * each task's thread writes its own status (generation-stamped, so a stale owner's
 * record does not replace a newer owner's).
 *
 * Threads: the config and status topics' reader threads apply records under d->mu;
 * REST threads read snapshots under d->mu and serialize writes on d->write_mu; the
 * herder thread owns the group client and calls into herder.c (which has its own
 * mutex) to start and stop local tasks.
 */
#define _GNU_SOURCE
#include "cn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CN_DIST_PROTOCOL_EAGER "samsa-eager-v0"
#define CN_DIST_PROTOCOL_COOP "samsa-cooperative-v1"
#define CN_DIST_IO_MS 30000

struct cn_dist {
    cn_worker_t *w;
    cn_logger_t *log;
    const char *group_id, *cfg_topic, *off_topic, *st_topic;
    int64_t session_ms, heartbeat_ms, rebalance_ms;
    char url[400]; /* this worker's REST base, http://<worker_id> */
    cn_kblog_t *cfg, *st;
    cn_group_t *group;
    pthread_mutex_t mu; /* guards the snapshot and membership fields below */
    pthread_cond_t cv;
    pthread_mutex_t write_mu; /* one REST write at a time */
    /* config topic snapshot */
    json_t *conns;   /* name -> config */
    json_t *targets; /* name -> "STARTED" | "PAUSED" | "STOPPED" */
    json_t *tasks;   /* name -> [task config, ...] (committed) */
    json_t *pending; /* name -> {"n": task config} (not committed yet) */
    json_t *restarts;/* [{"name","include","only"}] for the herder thread */
    bool cfg_loaded; /* restart records read at start-up are history, not requests */
    int64_t cfg_offset;
    uint64_t cfg_version;
    json_t *statuses; /* status topic key -> value */
    /* membership */
    int32_t generation;
    bool leader;
    char leader_url[400];
    json_t *assignment; /* the members map of the current assignment, or NULL */
    char member_id[512];
    volatile int stopping;
    volatile int ready;
    pthread_t thread;
    bool thread_started;
    /* herder thread only */
    bool cooperative;       /* connect.protocol: incremental cooperative, else eager */
    int64_t delay_ms;       /* scheduled.rebalance.max.delay.ms */
    bool rejoin_after_apply;/* this member gave something back: a follow-up round */
    int64_t last_ok_ms;     /* last successful join or heartbeat */
    int64_t next_rebalance_ms; /* leader: when delayed (lost) work must be assigned */
    json_t *prev_members;   /* leader: the previous assignment's members map */
    json_t *lost;           /* leader: item key -> deadline of work of departed members */
    json_t *shape;          /* leader: name -> task count the assignment covered */
    json_t *written_status; /* name -> connector state this worker wrote last */
    json_t *local_names;    /* names applied to herder.c last time */
};

static int derror(json_t **out, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int derror(json_t **out, int status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    *out = json_pack("{s:i, s:s}", "error_code", status, "message", msg);
    return status;
}

static const char *target_name(cn_target_t t)
{
    return t == CN_TARGET_PAUSED ? "PAUSED" : t == CN_TARGET_STOPPED ? "STOPPED" : "STARTED";
}

static cn_target_t target_parse(const char *s)
{
    if (s && strcmp(s, "PAUSED") == 0)
        return CN_TARGET_PAUSED;
    if (s && strcmp(s, "STOPPED") == 0)
        return CN_TARGET_STOPPED;
    return CN_TARGET_STARTED;
}

/* ------------------------------------------------------------ the config topic */

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static void apply_task(cn_dist_t *d, const char *rest, json_t *v)
{
    const char *dash = strrchr(rest, '-');
    json_t *props = json_object_get(v, "properties");
    if (!dash || !json_is_object(props))
        return;
    char name[1024];
    snprintf(name, sizeof name, "%.*s", (int)(dash - rest), rest);
    json_t *p = json_object_get(d->pending, name);
    if (!p) {
        p = json_object();
        json_object_set_new(d->pending, name, p);
    }
    json_object_set(p, dash + 1, props);
}

static void apply_commit(cn_dist_t *d, const char *name, json_t *v)
{
    json_t *n = json_object_get(v, "tasks");
    if (!json_is_integer(n) || json_integer_value(n) < 0)
        return;
    json_t *p = json_object_get(d->pending, name);
    json_t *arr = json_array();
    for (json_int_t i = 0; i < json_integer_value(n); i++) {
        char k[32];
        snprintf(k, sizeof k, "%lld", (long long)i);
        json_t *tc = json_object_get(p, k);
        if (!tc) {
            /* An incomplete commit (its task records were compacted away or lost):
             * ignored, as Kafka ignores inconsistent task configs. */
            CN_WARN(d->log, "Ignoring commit of %lld task(s) of %s: task %lld missing", (long long)json_integer_value(n),
                    name, (long long)i);
            json_decref(arr);
            return;
        }
        json_array_append(arr, tc);
    }
    json_object_set_new(d->tasks, name, arr);
    json_object_del(d->pending, name);
}

/* Reader thread of the config topic. */
static void cfg_apply(void *arg, const void *key, size_t klen, const void *val, size_t vlen, int32_t part,
                      int64_t offset)
{
    (void)part;
    cn_dist_t *d = arg;
    if (!key)
        return;
    char *k = strndup(key, klen);
    json_t *v = val ? json_loadb(val, vlen, 0, NULL) : NULL;
    pthread_mutex_lock(&d->mu);
    if (has_prefix(k, "connector-")) {
        const char *name = k + 10;
        json_t *props = json_object_get(v, "properties");
        if (!val) {
            json_object_del(d->conns, name);
            json_object_del(d->targets, name);
            json_object_del(d->tasks, name);
            json_object_del(d->pending, name);
        } else if (json_is_object(props)) {
            json_object_set(d->conns, name, props);
            if (!json_object_get(d->targets, name))
                json_object_set_new(d->targets, name, json_string("STARTED"));
        }
    } else if (has_prefix(k, "target-state-")) {
        const char *name = k + 13;
        const char *st = json_string_value(json_object_get(v, "state.v2"));
        if (!st)
            st = json_string_value(json_object_get(v, "state"));
        if (!val)
            json_object_del(d->targets, name);
        else if (st)
            json_object_set_new(d->targets, name, json_string(target_name(target_parse(st))));
    } else if (has_prefix(k, "task-") && v) {
        apply_task(d, k + 5, v);
    } else if (has_prefix(k, "commit-") && v) {
        apply_commit(d, k + 7, v);
    } else if (has_prefix(k, "restart-connector-") && v && d->cfg_loaded) {
        json_array_append_new(d->restarts,
                              json_pack("{s:s, s:b, s:b}", "name", k + 18, "include",
                                        json_is_true(json_object_get(v, "include-tasks")), "only",
                                        json_is_true(json_object_get(v, "only-failed"))));
    }
    d->cfg_offset = offset;
    d->cfg_version++;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    json_decref(v);
    free(k);
}

/* Reader thread of the status topic. A record of another worker with an older
 * generation does not replace the current one (a stale owner writing late). */
static void st_apply(void *arg, const void *key, size_t klen, const void *val, size_t vlen, int32_t part,
                     int64_t offset)
{
    (void)part;
    (void)offset;
    cn_dist_t *d = arg;
    if (!key)
        return;
    char *k = strndup(key, klen);
    json_t *v = val ? json_loadb(val, vlen, 0, NULL) : NULL;
    pthread_mutex_lock(&d->mu);
    if (!val) {
        json_object_del(d->statuses, k);
    } else if (json_is_object(v)) {
        json_t *cur = json_object_get(d->statuses, k);
        const char *cw = json_string_value(json_object_get(cur, "worker_id"));
        const char *nw = json_string_value(json_object_get(v, "worker_id"));
        bool stale = cur && cw && nw && strcmp(cw, nw) != 0 &&
                     json_integer_value(json_object_get(cur, "generation")) >
                         json_integer_value(json_object_get(v, "generation"));
        if (!stale)
            json_object_set(d->statuses, k, v);
    }
    pthread_mutex_unlock(&d->mu);
    json_decref(v);
    free(k);
}

/* Write config records (NULL value: tombstone) and read them back. */
static int cfg_write(cn_dist_t *d, size_t n, const char *const *keys, const char *const *vals, char *err,
                     size_t len)
{
    if (cn_kblog_send(d->cfg, n, keys, vals, true, err, len) != 0)
        return -1;
    if (cn_kblog_read_to_end(d->cfg, CN_DIST_IO_MS) != 0) {
        snprintf(err, len, "timed out reading back the config topic");
        return -1;
    }
    return 0;
}

static void status_put(cn_dist_t *d, const char *key, cn_state_t s, const char *trace)
{
    pthread_mutex_lock(&d->mu);
    int32_t gen = d->generation;
    pthread_mutex_unlock(&d->mu);
    json_t *v = json_pack("{s:s, s:o, s:s, s:i}", "state", cn_state_name(s), "trace",
                          trace ? json_string(trace) : json_null(), "worker_id", d->w->cfg.worker_id, "generation",
                          (int)gen);
    char *text = json_dumps(v, JSON_COMPACT);
    pthread_mutex_lock(&d->mu);
    json_object_set(d->statuses, key, v); /* seen at once by this worker's REST reads */
    pthread_mutex_unlock(&d->mu);
    char err[256];
    const char *keys[1] = {key}, *vals[1] = {text};
    if (cn_kblog_send(d->st, 1, keys, vals, false, err, sizeof err) != 0)
        CN_WARN(d->log, "Cannot write status %s: %s", key, err);
    free(text);
    json_decref(v);
}

void cn_dist_task_status(cn_dist_t *d, const char *conn, int task, cn_state_t s, const char *trace)
{
    char key[1200];
    snprintf(key, sizeof key, "status-task-%s-%d", conn, task);
    status_put(d, key, s, trace);
}

/* ------------------------------------------------------------ assignment */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted connector names of the snapshot (caller holds d->mu; strings borrowed). */
static const char **sorted_names(json_t *obj, size_t *n)
{
    *n = json_object_size(obj);
    const char **names = calloc(*n + 1, sizeof *names);
    if (!names)
        abort();
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
        names[i++] = k;
    qsort(names, *n, sizeof *names, cmp_str);
    return names;
}

/* Group leader, eager protocol: connectors, then tasks, round-robin over the members
 * sorted by id (Kafka's eager assignor does the same). Every member gets the whole map. */
static void assign_eager(void *arg, int n, const char *const *ids, const char *const *metas, char **out)
{
    cn_dist_t *d = arg;
    const char **order = calloc((size_t)n + 1, sizeof *order);
    if (!order)
        abort();
    json_t *members = json_object();
    for (int i = 0; i < n; i++) {
        order[i] = ids[i];
        json_t *m = json_loads(metas[i], 0, NULL);
        json_object_set_new(members, ids[i],
                            json_pack("{s:s, s:[], s:[]}", "url",
                                      json_string_value(json_object_get(m, "url")) ? json_string_value(json_object_get(m, "url")) : "",
                                      "connectors", "tasks"));
        json_decref(m);
    }
    qsort(order, (size_t)n, sizeof *order, cmp_str);
    pthread_mutex_lock(&d->mu);
    size_t nc;
    const char **names = sorted_names(d->conns, &nc);
    json_t *shape = json_object();
    int next = 0;
    for (size_t i = 0; i < nc && n > 0; i++)
        json_array_append_new(json_object_get(json_object_get(members, order[next++ % n]), "connectors"),
                              json_string(names[i]));
    for (size_t i = 0; i < nc; i++) {
        size_t nt = json_array_size(json_object_get(d->tasks, names[i]));
        json_object_set_new(shape, names[i], json_integer((json_int_t)nt));
        for (size_t t = 0; t < nt && n > 0; t++)
            json_array_append_new(json_object_get(json_object_get(members, order[next++ % n]), "tasks"),
                                  json_pack("[s,i]", names[i], (int)t));
    }
    int64_t offset = d->cfg_offset;
    pthread_mutex_unlock(&d->mu);
    free(names);
    json_decref(d->shape);
    d->shape = shape;
    json_t *blob = json_pack("{s:i, s:s, s:s, s:I, s:o}", "version", 0, "leader", cn_group_member_id(d->group),
                             "leader_url", d->url, "config_offset", (json_int_t)offset, "members", members);
    char *text = json_dumps(blob, JSON_COMPACT);
    json_decref(blob);
    for (int i = 0; i < n; i++)
        out[i] = strdup(text);
    free(text);
    free(order);
    CN_INFO(d->log, "Assigned %zu connector(s) and their tasks to %d worker(s)", nc, n);
}

/* ------------------------------------------------ incremental cooperative assignment
 *
 * Each member's metadata lists what it runs. The leader (KIP-415's idea, simplified):
 *   1. every member keeps what it runs and still exists (first claim wins);
 *   2. quotas: floor(total/n) each, one more for the (total % n) most loaded members;
 *      a member above its quota gives back its excess: "revoked", assigned to nobody
 *      in this round; it stops them and joins again at once, and the follow-up round
 *      hands them to members below quota (so no item ever runs on two workers);
 *   3. unowned items (new, or of departed members) go to the least loaded members,
 *      except the work of departed members, held back for
 *      scheduled.rebalance.max.delay.ms in case the worker comes back, unless a new
 *      worker joined meanwhile (it gets them); the leader rebalances at the deadline.
 * Connectors and tasks are balanced separately. Items are JSON: "name" for a
 * connector, ["name", n] for a task; their compact text is their identity. */

typedef struct coop_member {
    const char *id;
    json_t *owned_c, *owned_t; /* from the metadata (borrowed) */
    json_t *meta;
    json_t *conns, *tasks, *rev_c, *rev_t; /* the answer */
} coop_member_t;

static char *item_key(json_t *item) { return json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY); }

static int cmp_member(const void *a, const void *b)
{
    return strcmp(((const coop_member_t *)a)->id, ((const coop_member_t *)b)->id);
}

/* Items of the previous assignment held by members no longer in the group. */
static json_t *departed_items(cn_dist_t *d, coop_member_t *m, int n, bool tasks)
{
    json_t *out = json_object();
    const char *id;
    json_t *pm;
    json_object_foreach(d->prev_members, id, pm) {
        bool present = false;
        for (int i = 0; i < n; i++)
            present |= strcmp(m[i].id, id) == 0;
        if (present)
            continue;
        size_t k;
        json_t *it;
        json_array_foreach(json_object_get(pm, tasks ? "tasks" : "connectors"), k, it) {
            char *key = item_key(it);
            json_object_set_new(out, key, json_true());
            free(key);
        }
    }
    return out;
}

static void coop_balance(cn_dist_t *d, coop_member_t *m, int n, json_t *items, bool tasks, bool new_member,
                         int64_t now)
{
    size_t total = json_array_size(items);
    json_t *exists = json_object(), *owner = json_object();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        char *k = item_key(it);
        json_object_set_new(exists, k, json_true());
        free(k);
    }
    int *load = calloc((size_t)n + 1, sizeof *load), *quota = calloc((size_t)n + 1, sizeof *quota);
    int *rank = calloc((size_t)n + 1, sizeof *rank);
    if (!load || !quota || !rank)
        abort();
    for (int j = 0; j < n; j++) {
        json_t *mine = tasks ? m[j].tasks : m[j].conns;
        json_array_foreach(tasks ? m[j].owned_t : m[j].owned_c, i, it) {
            char *k = item_key(it);
            if (json_object_get(exists, k) && !json_object_get(owner, k)) {
                json_object_set_new(owner, k, json_integer(j));
                json_array_append(mine, it);
                load[j]++;
            }
            free(k);
        }
    }
    /* The most loaded members get the larger quotas: fewest revocations. */
    for (int j = 0; j < n; j++)
        rank[j] = j;
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (load[rank[b]] > load[rank[a]]) {
                int t = rank[a];
                rank[a] = rank[b];
                rank[b] = t;
            }
    for (int r = 0; r < n; r++)
        quota[rank[r]] = (int)(total / (size_t)n) + ((size_t)r < total % (size_t)n ? 1 : 0);
    for (int j = 0; j < n; j++) {
        json_t *mine = tasks ? m[j].tasks : m[j].conns, *rev = tasks ? m[j].rev_t : m[j].rev_c;
        while (load[j] > quota[j]) {
            size_t last = json_array_size(mine) - 1;
            json_array_append(rev, json_array_get(mine, last));
            json_array_remove(mine, last);
            load[j]--;
        }
    }
    /* Forget held work that no longer exists (a deleted connector). */
    const char *lk;
    json_t *lv;
    void *iter;
    json_object_foreach_safe(d->lost, iter, lk, lv) {
        (void)lv;
        if ((lk[0] == '[') == tasks && !json_object_get(exists, lk))
            json_object_del(d->lost, lk);
    }
    json_t *departed = departed_items(d, m, n, tasks);
    json_array_foreach(items, i, it) {
        char *k = item_key(it);
        if (json_object_get(owner, k)) {
            json_object_del(d->lost, k);
            free(k);
            continue;
        }
        if (d->delay_ms > 0 && !new_member) {
            json_t *dl = json_object_get(d->lost, k);
            if (!dl && json_object_get(departed, k)) {
                dl = json_integer(now + d->delay_ms);
                json_object_set_new(d->lost, k, dl);
            }
            if (dl && json_integer_value(dl) > now) {
                if (!d->next_rebalance_ms || json_integer_value(dl) < d->next_rebalance_ms)
                    d->next_rebalance_ms = json_integer_value(dl);
                free(k);
                continue; /* held for the departed worker */
            }
        }
        json_object_del(d->lost, k);
        int best = 0;
        for (int j = 1; j < n; j++)
            if (load[j] - quota[j] < load[best] - quota[best])
                best = j;
        json_array_append(tasks ? m[best].tasks : m[best].conns, it);
        load[best]++;
        free(k);
    }
    json_decref(departed);
    json_decref(exists);
    json_decref(owner);
    free(load);
    free(quota);
    free(rank);
}

static void assign_coop(cn_dist_t *d, int n, const char *const *ids, const char *const *metas, char **out)
{
    coop_member_t *m = calloc((size_t)n + 1, sizeof *m);
    if (!m)
        abort();
    bool new_member = false;
    for (int i = 0; i < n; i++) {
        m[i].id = ids[i];
        m[i].meta = json_loads(metas[i], 0, NULL);
        m[i].owned_c = json_object_get(m[i].meta, "connectors");
        m[i].owned_t = json_object_get(m[i].meta, "tasks");
        m[i].conns = json_array();
        m[i].tasks = json_array();
        m[i].rev_c = json_array();
        m[i].rev_t = json_array();
        new_member |= d->prev_members && !json_object_get(d->prev_members, ids[i]);
    }
    qsort(m, (size_t)n, sizeof *m, cmp_member);
    json_t *conns = json_array(), *tasks = json_array(), *shape = json_object();
    pthread_mutex_lock(&d->mu);
    size_t nc;
    const char **names = sorted_names(d->conns, &nc);
    for (size_t i = 0; i < nc; i++) {
        size_t nt = json_array_size(json_object_get(d->tasks, names[i]));
        json_array_append_new(conns, json_string(names[i]));
        json_object_set_new(shape, names[i], json_integer((json_int_t)nt));
        for (size_t t = 0; t < nt; t++)
            json_array_append_new(tasks, json_pack("[s,i]", names[i], (int)t));
    }
    int64_t offset = d->cfg_offset;
    pthread_mutex_unlock(&d->mu);
    free(names);
    json_decref(d->shape);
    d->shape = shape;
    if (!d->lost)
        d->lost = json_object();
    d->next_rebalance_ms = 0;
    int64_t now = cn_now_ms();
    coop_balance(d, m, n, conns, false, new_member, now);
    coop_balance(d, m, n, tasks, true, new_member, now);
    json_t *members = json_object();
    int revoking = 0;
    for (int i = 0; i < n; i++) {
        const char *url = json_string_value(json_object_get(m[i].meta, "url"));
        revoking += json_array_size(m[i].rev_c) + json_array_size(m[i].rev_t) > 0;
        json_object_set_new(members, m[i].id,
                            json_pack("{s:s, s:o, s:o, s:o, s:o}", "url", url ? url : "", "connectors", m[i].conns,
                                      "tasks", m[i].tasks, "revoked_connectors", m[i].rev_c, "revoked_tasks",
                                      m[i].rev_t));
        json_decref(m[i].meta);
    }
    free(m);
    json_t *blob = json_pack("{s:i, s:s, s:s, s:I, s:O}", "version", 1, "leader", cn_group_member_id(d->group),
                             "leader_url", d->url, "config_offset", (json_int_t)offset, "members", members);
    char *text = json_dumps(blob, JSON_COMPACT);
    json_decref(blob);
    for (int i = 0; i < n; i++)
        out[i] = strdup(text);
    free(text);
    json_decref(d->prev_members);
    d->prev_members = members;
    CN_INFO(d->log, "Assigned %zu connector(s) and %zu task(s) to %d worker(s) (%d giving some back, %zu held for departed workers)",
            nc, json_array_size(tasks), n, revoking, json_object_size(d->lost));
    json_decref(conns);
    json_decref(tasks);
}

static void assign_cb(void *arg, int n, const char *const *ids, const char *const *metas, char **out)
{
    cn_dist_t *d = arg;
    json_int_t max_offset = -1;
    for (int i = 0; i < n; i++) {
        json_t *m = json_loads(metas[i], 0, NULL);
        json_int_t off = json_integer_value(json_object_get(m, "config_offset"));
        if (off > max_offset)
            max_offset = off;
        json_decref(m);
    }
    pthread_mutex_lock(&d->mu);
    bool behind = d->cfg_offset < max_offset;
    pthread_mutex_unlock(&d->mu);
    if (behind) /* another member has read further: assign from at least that config */
        cn_kblog_read_to_end(d->cfg, CN_DIST_IO_MS);
    if (d->cooperative)
        assign_coop(d, n, ids, metas, out);
    else
        assign_eager(d, n, ids, metas, out);
}

/* Leader: did the set of connectors or a task count change since the assignment? */
static bool shape_changed(cn_dist_t *d)
{
    if (!d->shape)
        return true;
    pthread_mutex_lock(&d->mu);
    bool changed = json_object_size(d->shape) != json_object_size(d->conns);
    const char *k;
    json_t *v;
    json_object_foreach(d->conns, k, v) {
        json_t *s = json_object_get(d->shape, k);
        if (!s || (size_t)json_integer_value(s) != json_array_size(json_object_get(d->tasks, k)))
            changed = true;
    }
    pthread_mutex_unlock(&d->mu);
    return changed;
}

/* ------------------------------------------------------------ applying it */

/* Task configs of a connector this worker owns; NULL with *trace on failure. */
static json_t *compute_task_configs(cn_dist_t *d, const char *name, json_t *config, char **trace)
{
    const samsa_connect_plugin_t *plugin = cn_plugins_find(d->w->plugins, cn_cfg_str(config, "connector.class"));
    int nerr = 0;
    json_t *infos = cn_validate(d->w, plugin, config, &nerr);
    if (nerr || !plugin) {
        *trace = cn_validate_message(infos, nerr);
        json_decref(infos);
        return NULL;
    }
    json_decref(infos);
    int64_t max_tasks = 1;
    cn_cfg_i64(config, "tasks.max", 1, &max_tasks);
    json_t *tcs;
    if (plugin->task_configs) {
        cn_ctx_t ctx;
        cn_ctx_init(&ctx, CN_CTX_CONFIG, d->w, name, plugin);
        samsa_connect_config_t pc = cn_plugin_config(config);
        char err[1024] = "";
        int rc = plugin->task_configs(&ctx.base, &pc, (int)max_tasks, err, sizeof err);
        cn_plugin_config_free(&pc);
        tcs = json_incref(ctx.task_configs);
        cn_ctx_done(&ctx);
        if (rc != 0) {
            if (asprintf(trace, "The connector %s failed to generate task configurations: %s", name,
                         err[0] ? err : "(no reason given)") < 0)
                abort();
            json_decref(tcs);
            return NULL;
        }
    } else {
        tcs = json_pack("[O]", config);
    }
    bool enforce = true;
    cn_cfg_bool(config, "tasks.max.enforce", true, &enforce);
    if ((int64_t)json_array_size(tcs) > max_tasks && enforce) {
        if (asprintf(trace,
                     "The connector %s has generated %zu tasks, which is greater than %lld, the maximum number of tasks it is configured to create.",
                     name, json_array_size(tcs), (long long)max_tasks) < 0)
            abort();
        json_decref(tcs);
        return NULL;
    }
    return tcs;
}

static void write_task_configs(cn_dist_t *d, const char *name, json_t *tcs)
{
    size_t n = json_array_size(tcs);
    char **keys = calloc(n + 2, sizeof *keys), **vals = calloc(n + 2, sizeof *vals);
    if (!keys || !vals)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (asprintf(&keys[i], "task-%s-%zu", name, i) < 0)
            abort();
        json_t *v = json_pack("{s:O}", "properties", json_array_get(tcs, i));
        vals[i] = json_dumps(v, JSON_COMPACT);
        json_decref(v);
    }
    if (asprintf(&keys[n], "commit-%s", name) < 0 || asprintf(&vals[n], "{\"tasks\":%zu}", n) < 0)
        abort();
    char err[512];
    if (cn_kblog_send(d->cfg, n + 1, (const char *const *)keys, (const char *const *)vals, true, err, sizeof err) != 0)
        CN_ERROR(d->log, "Cannot write the task configs of %s: %s", name, err);
    else
        CN_INFO(d->log, "Wrote %zu task config(s) of connector %s", n, name);
    for (size_t i = 0; i <= n; i++) {
        free(keys[i]);
        free(vals[i]);
    }
    free(keys);
    free(vals);
}

static void conn_status(cn_dist_t *d, const char *name, cn_state_t s, const char *trace)
{
    const char *was = json_string_value(json_object_get(d->written_status, name));
    if (was && strcmp(was, cn_state_name(s)) == 0)
        return;
    json_object_set_new(d->written_status, name, json_string(cn_state_name(s)));
    char key[1200];
    snprintf(key, sizeof key, "status-connector-%s", name);
    status_put(d, key, s, trace);
}

/* The work of the worker owning connector name: its task configs and status. */
static void connector_work(cn_dist_t *d, const char *name, json_t *config, cn_target_t target, json_t *committed)
{
    if (target == CN_TARGET_STOPPED) {
        conn_status(d, name, CN_STOPPED, NULL);
        return;
    }
    char *trace = NULL;
    json_t *tcs = compute_task_configs(d, name, config, &trace);
    if (!tcs) {
        CN_WARN(d->log, "Connector %s failed: %s", name, trace);
        conn_status(d, name, CN_FAILED, trace);
        free(trace);
        return;
    }
    if (!json_equal(tcs, committed)) {
        /* Read back at once, so the next pass compares with what was written. */
        write_task_configs(d, name, tcs);
        cn_kblog_read_to_end(d->cfg, CN_DIST_IO_MS);
    }
    json_decref(tcs);
    conn_status(d, name, target == CN_TARGET_PAUSED ? CN_PAUSED : CN_RUNNING, NULL);
}

static bool json_array_has_str(json_t *a, const char *s)
{
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e)
        if (json_is_string(e) && strcmp(json_string_value(e), s) == 0)
            return true;
    return false;
}

/* Make the local tasks match the snapshot and this worker's assignment. */
static void apply_assignment(cn_dist_t *d)
{
    pthread_mutex_lock(&d->mu);
    json_t *conns = json_deep_copy(d->conns), *targets = json_deep_copy(d->targets);
    json_t *tasks = json_deep_copy(d->tasks);
    json_t *mine = json_deep_copy(json_object_get(d->assignment, d->member_id));
    pthread_mutex_unlock(&d->mu);
    json_t *my_conns = json_object_get(mine, "connectors"), *my_tasks = json_object_get(mine, "tasks");

    const char *name;
    json_t *cfg, *tmp;
    void *iter;
    json_object_foreach_safe(d->local_names, iter, name, tmp) {
        if (!json_object_get(conns, name)) {
            cn_herder_reconcile(d->w->herder, name, NULL, CN_TARGET_STARTED, NULL, NULL);
            json_object_del(d->written_status, name);
            json_object_del(d->local_names, name);
        }
    }
    json_object_foreach(conns, name, cfg) {
        size_t n = json_array_size(json_object_get(tasks, name));
        bool *own = calloc(n + 1, sizeof *own);
        if (!own)
            abort();
        size_t i;
        json_t *e;
        json_array_foreach(my_tasks, i, e) {
            const char *c = json_string_value(json_array_get(e, 0));
            json_int_t id = json_integer_value(json_array_get(e, 1));
            if (c && strcmp(c, name) == 0 && id >= 0 && (size_t)id < n)
                own[id] = true;
        }
        cn_target_t target = target_parse(json_string_value(json_object_get(targets, name)));
        json_t *committed = json_object_get(tasks, name) ? json_object_get(tasks, name) : NULL;
        json_t *empty = committed ? NULL : json_array();
        cn_herder_reconcile(d->w->herder, name, cfg, target, committed ? committed : empty, own);
        free(own);
        json_object_set_new(d->local_names, name, json_true());
        if (json_array_has_str(my_conns, name)) {
            connector_work(d, name, cfg, target, committed ? committed : empty);
        } else {
            /* Another worker's now: if it comes back, its status is written again. */
            json_object_del(d->written_status, name);
        }
        json_decref(empty);
    }
    json_decref(conns);
    json_decref(targets);
    json_decref(tasks);
    json_decref(mine);
}

/* Restart requests read from the config topic: each worker restarts what it runs. */
static void handle_restarts(cn_dist_t *d, json_t *reqs)
{
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        bool include = json_is_true(json_object_get(r, "include")), only = json_is_true(json_object_get(r, "only"));
        pthread_mutex_lock(&d->mu);
        json_t *mine = json_object_get(d->assignment, d->member_id);
        bool own_conn = json_array_has_str(json_object_get(mine, "connectors"), name);
        size_t n = json_array_size(json_object_get(d->tasks, name));
        pthread_mutex_unlock(&d->mu);
        if (own_conn) {
            /* Its status is written again (connector_work recomputes the task configs). */
            json_object_del(d->written_status, name);
        }
        if (include)
            for (size_t t = 0; t < n; t++)
                if (cn_herder_restart_local(d->w->herder, name, (int)t, only))
                    CN_INFO(d->log, "Restarted task %s-%zu", name, t);
    }
}

static void wait_ms(cn_dist_t *d, int64_t ms)
{
    struct timespec ts;
    cn_deadline_ts(&ts, ms);
    pthread_mutex_lock(&d->mu);
    if (!d->stopping)
        pthread_cond_timedwait(&d->cv, &d->mu, &ts);
    pthread_mutex_unlock(&d->mu);
}

/* Give back everything this worker runs (eager rebalance, or lost membership). */
static void release_all(cn_dist_t *d)
{
    cn_herder_stop_all(d->w->herder);
    pthread_mutex_lock(&d->mu);
    json_decref(d->assignment);
    d->assignment = NULL;
    pthread_mutex_unlock(&d->mu);
    json_object_clear(d->written_status);
    json_object_clear(d->local_names);
}

static bool join(cn_dist_t *d)
{
    /* Eager: give everything back first. Cooperative: keep running what we have and
     * say so in the metadata, unless the coordinator forgot us (then it may already
     * run elsewhere). */
    if (!d->cooperative || !cn_group_member_id(d->group)[0])
        release_all(d);
    pthread_mutex_lock(&d->mu);
    d->leader = false;
    d->leader_url[0] = 0;
    json_t *owned = json_deep_copy(json_object_get(d->assignment, d->member_id));
    if (d->assignment) {
        json_decref(d->prev_members);
        d->prev_members = json_incref(d->assignment);
    }
    json_decref(d->assignment);
    d->assignment = NULL;
    pthread_mutex_unlock(&d->mu);
    cn_kblog_read_to_end(d->cfg, CN_DIST_IO_MS);
    pthread_mutex_lock(&d->mu);
    json_t *meta = json_pack("{s:i, s:s, s:I}", "version", d->cooperative ? 1 : 0, "url", d->url, "config_offset",
                             (json_int_t)d->cfg_offset);
    pthread_mutex_unlock(&d->mu);
    if (d->cooperative) {
        json_t *c = json_object_get(owned, "connectors"), *t = json_object_get(owned, "tasks");
        json_object_set_new(meta, "connectors", c ? json_incref(c) : json_array());
        json_object_set_new(meta, "tasks", t ? json_incref(t) : json_array());
    }
    char *mt = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    cn_group_result_t r;
    char err[512] = "";
    int rc = cn_group_join(d->group, d->cooperative ? CN_DIST_PROTOCOL_COOP : CN_DIST_PROTOCOL_EAGER, mt, assign_cb, d,
                           &r, err, sizeof err);
    if (rc != 0 && d->cooperative && owned) {
        /* Keep what we run for now, and say so at the next attempt. */
        pthread_mutex_lock(&d->mu);
        d->assignment = json_pack("{s:O}", d->member_id, owned);
        pthread_mutex_unlock(&d->mu);
    }
    json_decref(owned);
    free(mt);
    if (rc != 0) {
        CN_WARN(d->log, "Joining group %s failed: %s; retrying", d->group_id, err);
        return false;
    }
    json_t *blob = json_loads(r.assignment, 0, NULL);
    free(r.assignment);
    json_t *members = json_object_get(blob, "members");
    if (!json_is_object(members)) {
        CN_WARN(d->log, "Group %s: the leader sent an assignment this worker cannot read; joining again", d->group_id);
        json_decref(blob);
        return false;
    }
    pthread_mutex_lock(&d->mu);
    d->generation = r.generation;
    d->leader = r.leader;
    snprintf(d->member_id, sizeof d->member_id, "%s", cn_group_member_id(d->group));
    const char *lu = json_string_value(json_object_get(blob, "leader_url"));
    snprintf(d->leader_url, sizeof d->leader_url, "%s", lu ? lu : "");
    d->assignment = json_incref(members);
    json_t *mine = json_object_get(members, d->member_id);
    size_t nc = json_array_size(json_object_get(mine, "connectors")), nt = json_array_size(json_object_get(mine, "tasks"));
    size_t nrev = json_array_size(json_object_get(mine, "revoked_connectors")) +
                  json_array_size(json_object_get(mine, "revoked_tasks"));
    d->rejoin_after_apply = nrev > 0;
    pthread_mutex_unlock(&d->mu);
    d->last_ok_ms = cn_now_ms();
    json_decref(blob);
    /* The leader assigned from the config it had read; read at least as far. */
    cn_kblog_read_to_end(d->cfg, CN_DIST_IO_MS);
    CN_INFO(d->log, "Joined group %s generation %d as %s (leader %s): %zu connector(s), %zu task(s)%s", d->group_id,
            r.generation, r.leader ? "leader" : "member", d->leader_url, nc, nt,
            nrev ? ", giving some back" : "");
    return true;
}

static void *dist_main(void *arg)
{
    cn_dist_t *d = arg;
    bool need_join = true;
    int64_t next_hb = 0;
    uint64_t applied = 0;
    while (!d->stopping) {
        if (need_join) {
            if (!join(d)) {
                if (d->cooperative && cn_now_ms() - d->last_ok_ms > d->session_ms) {
                    /* Out of the group for a whole session: our work may be running
                     * elsewhere already. */
                    release_all(d);
                }
                wait_ms(d, 250); /* mostly a concurrent rebalance: soon again */
                continue;
            }
            need_join = false;
            next_hb = cn_now_ms() + d->heartbeat_ms;
            applied = (uint64_t)-1;
        }
        if (cn_now_ms() >= next_hb) {
            int rc = cn_group_heartbeat(d->group);
            if (rc != 0) {
                CN_INFO(d->log, "Group %s is rebalancing", d->group_id);
                need_join = true;
                continue;
            }
            d->last_ok_ms = cn_now_ms();
            next_hb = cn_now_ms() + d->heartbeat_ms;
        }
        pthread_mutex_lock(&d->mu);
        uint64_t v = d->cfg_version;
        json_t *reqs = d->restarts;
        d->restarts = json_array();
        bool leader = d->leader;
        pthread_mutex_unlock(&d->mu);
        if (v != applied) {
            if (leader && shape_changed(d)) {
                json_decref(reqs);
                CN_INFO(d->log, "Connectors or task counts changed: rebalancing group %s", d->group_id);
                need_join = true;
                continue;
            }
            apply_assignment(d);
            applied = v;
            d->ready = 1;
            d->w->started = 1;
        }

        if (json_array_size(reqs)) {
            handle_restarts(d, reqs);
            apply_assignment(d);
        }
        json_decref(reqs);
        if (d->rejoin_after_apply) {
            /* What we gave back is stopped: the follow-up round can hand it out. */
            d->rejoin_after_apply = false;
            need_join = true;
            continue;
        }
        if (leader && d->next_rebalance_ms && cn_now_ms() >= d->next_rebalance_ms) {
            CN_INFO(d->log, "The delay for departed workers' work ran out: rebalancing group %s", d->group_id);
            d->next_rebalance_ms = 0;
            need_join = true;
            continue;
        }
        int64_t left = next_hb - cn_now_ms();
        wait_ms(d, left < 1 ? 1 : left > 500 ? 500 : left);
    }
    cn_herder_stop_all(d->w->herder);
    cn_group_leave(d->group);
    return NULL;
}

/* ------------------------------------------------------------ start and stop */

static bool key_i64(json_t *p, const char *key, int64_t dflt, int64_t *out, char *err, size_t len)
{
    if (!cn_cfg_i64(p, key, dflt, out) || *out < -1) {
        snprintf(err, len, "Invalid value %s for configuration %s", cn_cfg_str(p, key), key);
        return false;
    }
    return true;
}

cn_dist_t *cn_dist_start(cn_worker_t *w, char *err, size_t len)
{
    json_t *p = w->cfg.props;
    static const char *const required[] = {"group.id", "config.storage.topic", "offset.storage.topic",
                                           "status.storage.topic"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!cn_cfg_str(p, required[i]) || !*cn_cfg_str(p, required[i])) {
            snprintf(err, len, "Missing required configuration \"%s\" which has no default value.", required[i]);
            return NULL;
        }
    cn_dist_t *d = calloc(1, sizeof *d);
    if (!d)
        abort();
    d->w = w;
    d->log = cn_logger("samsa.connect.herder");
    d->group_id = cn_cfg_str(p, "group.id");
    d->cfg_topic = cn_cfg_str(p, "config.storage.topic");
    d->off_topic = cn_cfg_str(p, "offset.storage.topic");
    d->st_topic = cn_cfg_str(p, "status.storage.topic");
    int64_t cfg_rf, off_rf, st_rf, off_parts, st_parts, delay;
    if (!key_i64(p, "session.timeout.ms", 10000, &d->session_ms, err, len) ||
        !key_i64(p, "heartbeat.interval.ms", 3000, &d->heartbeat_ms, err, len) ||
        !key_i64(p, "rebalance.timeout.ms", 60000, &d->rebalance_ms, err, len) ||
        !key_i64(p, "scheduled.rebalance.max.delay.ms", 300000, &delay, err, len) ||
        !key_i64(p, "config.storage.replication.factor", 3, &cfg_rf, err, len) ||
        !key_i64(p, "offset.storage.replication.factor", 3, &off_rf, err, len) ||
        !key_i64(p, "status.storage.replication.factor", 3, &st_rf, err, len) ||
        !key_i64(p, "offset.storage.partitions", 25, &off_parts, err, len) ||
        !key_i64(p, "status.storage.partitions", 5, &st_parts, err, len)) {
        free(d);
        return NULL;
    }
    d->delay_ms = delay < 0 ? 0 : delay;
    const char *proto = cn_cfg_str(p, "connect.protocol");
    if (!proto || strcasecmp(proto, "sessioned") == 0 || strcasecmp(proto, "compatible") == 0)
        d->cooperative = true;
    else if (strcasecmp(proto, "eager") != 0) {
        snprintf(err, len, "Invalid value %s for configuration connect.protocol: expected eager, compatible or sessioned",
                 proto);
        free(d);
        return NULL;
    }
    if (off_parts < 1 || st_parts < 1 || d->heartbeat_ms < 1 || d->session_ms < 1) {
        snprintf(err, len, "offset.storage.partitions, status.storage.partitions, heartbeat.interval.ms and session.timeout.ms must be positive");
        free(d);
        return NULL;
    }
    snprintf(d->url, sizeof d->url, "http://%s", w->cfg.worker_id);
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->write_mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &a);
    pthread_condattr_destroy(&a);
    d->conns = json_object();
    d->targets = json_object();
    d->tasks = json_object();
    d->pending = json_object();
    d->restarts = json_array();
    d->statuses = json_object();
    d->written_status = json_object();
    d->local_names = json_object();
    d->generation = -1;
    CN_INFO(d->log, "Distributed worker %s: group %s, topics %s, %s, %s", w->cfg.worker_id, d->group_id,
            d->cfg_topic, d->off_topic, d->st_topic);
    /* Kafka's config topic has exactly one partition: the order of its records is
     * the order of the config changes. */
    w->offsets = cn_offsets_open_topic(w, d->off_topic, (int)off_parts, (int)off_rf, err, len);
    if (!w->offsets)
        goto fail;
    d->st = cn_kblog_open(w, d->st_topic, (int)st_parts, (int)st_rf, st_apply, d, err, len);
    if (!d->st)
        goto fail;
    d->cfg = cn_kblog_open(w, d->cfg_topic, 1, (int)cfg_rf, cfg_apply, d, err, len);
    if (!d->cfg)
        goto fail;
    if (cn_kblog_partitions(d->cfg) != 1) {
        snprintf(err, len, "config.storage.topic %s must have exactly one partition, it has %d", d->cfg_topic,
                 cn_kblog_partitions(d->cfg));
        goto fail;
    }
    pthread_mutex_lock(&d->mu);
    d->cfg_loaded = true;
    pthread_mutex_unlock(&d->mu);
    CN_INFO(d->log, "Read %zu connector(s) from %s", json_object_size(d->conns), d->cfg_topic);
    char cid[400];
    snprintf(cid, sizeof cid, "connect-%s", w->cfg.worker_id);
    d->group = cn_group_new(w->cfg.bootstrap, d->group_id, cid, (int)d->session_ms, (int)d->rebalance_ms);
    cn_group_set_cancel(d->group, &d->stopping);
    if (pthread_create(&d->thread, NULL, dist_main, d) != 0) {
        snprintf(err, len, "cannot start the herder thread");
        goto fail;
    }
    d->thread_started = true;
    return d;
fail:
    cn_dist_stop(d);
    return NULL;
}

void cn_dist_stop(cn_dist_t *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    if (d->thread_started)
        pthread_join(d->thread, NULL);
    cn_group_free(d->group);
    cn_kblog_close(d->cfg);
    cn_kblog_close(d->st);
    json_decref(d->conns);
    json_decref(d->targets);
    json_decref(d->tasks);
    json_decref(d->pending);
    json_decref(d->restarts);
    json_decref(d->statuses);
    json_decref(d->assignment);
    json_decref(d->shape);
    json_decref(d->prev_members);
    json_decref(d->lost);
    json_decref(d->written_status);
    json_decref(d->local_names);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->write_mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}

bool cn_dist_ready(cn_dist_t *d) { return d && d->ready; }

bool cn_dist_leader_url(cn_dist_t *d, char *url, size_t len, bool *is_leader)
{
    pthread_mutex_lock(&d->mu);
    *is_leader = d->leader && d->assignment;
    snprintf(url, len, "%s", d->assignment ? d->leader_url : "");
    pthread_mutex_unlock(&d->mu);
    return !*is_leader && url[0];
}

bool cn_dist_task_owner_url(cn_dist_t *d, const char *conn, int task, char *url, size_t len)
{
    bool found = false;
    pthread_mutex_lock(&d->mu);
    const char *id;
    json_t *m;
    json_object_foreach(d->assignment, id, m) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(m, "tasks"), i, e) {
            const char *c = json_string_value(json_array_get(e, 0));
            if (c && strcmp(c, conn) == 0 && json_integer_value(json_array_get(e, 1)) == task &&
                strcmp(id, d->member_id) != 0) {
                snprintf(url, len, "%s", json_string_value(json_object_get(m, "url")));
                found = url[0] != 0;
            }
        }
    }
    pthread_mutex_unlock(&d->mu);
    return found;
}

/* ------------------------------------------------------------ REST reads */

static const char *conn_type(cn_dist_t *d, json_t *config)
{
    const samsa_connect_plugin_t *p = cn_plugins_find(d->w->plugins, cn_cfg_str(config, "connector.class"));
    if (!p)
        return "unknown";
    return p->type == SAMSA_CONNECT_SINK ? "sink" : "source";
}

/* Under d->mu. */
static json_t *info_locked(cn_dist_t *d, const char *name)
{
    json_t *cfg = json_object_get(d->conns, name);
    json_t *tasks = json_array();
    size_t n = json_array_size(json_object_get(d->tasks, name));
    for (size_t i = 0; i < n; i++)
        json_array_append_new(tasks, json_pack("{s:s, s:i}", "connector", name, "task", (int)i));
    return json_pack("{s:s, s:O, s:o, s:s}", "name", name, "config", cfg, "tasks", tasks, "type", conn_type(d, cfg));
}

static json_t *one_status(json_t *st, int id)
{
    json_t *o = id >= 0 ? json_pack("{s:i}", "id", id) : json_object();
    const char *state = json_string_value(json_object_get(st, "state"));
    json_object_set_new(o, "state", json_string(state ? state : "UNASSIGNED"));
    const char *wid = json_string_value(json_object_get(st, "worker_id"));
    json_object_set_new(o, "worker_id", json_string(wid ? wid : ""));
    json_t *trace = json_object_get(st, "trace");
    if (state && strcmp(state, "FAILED") == 0 && json_is_string(trace))
        json_object_set(o, "trace", trace);
    return o;
}

/* Under d->mu. restarting: NULL or marks from a restart request. */
static json_t *status_locked(cn_dist_t *d, const char *name, bool restart_conn, const bool *restart_tasks)
{
    char key[1200];
    snprintf(key, sizeof key, "status-connector-%s", name);
    json_t *conn = one_status(json_object_get(d->statuses, key), -1);
    if (restart_conn) {
        json_object_set_new(conn, "state", json_string("RESTARTING"));
        json_object_del(conn, "trace");
    }
    json_t *tasks = json_array();
    size_t n = json_array_size(json_object_get(d->tasks, name));
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof key, "status-task-%s-%zu", name, i);
        json_t *t = one_status(json_object_get(d->statuses, key), (int)i);
        if (restart_tasks && restart_tasks[i]) {
            json_object_set_new(t, "state", json_string("RESTARTING"));
            json_object_del(t, "trace");
        }
        json_array_append_new(tasks, t);
    }
    return json_pack("{s:s, s:o, s:o, s:s}", "name", name, "connector", conn, "tasks", tasks, "type",
                     conn_type(d, json_object_get(d->conns, name)));
}

#define DLOOKUP(d, name, out)                                                                      \
    pthread_mutex_lock(&(d)->mu);                                                                  \
    if (!json_object_get((d)->conns, (name))) {                                                    \
        pthread_mutex_unlock(&(d)->mu);                                                            \
        return derror((out), 404, "Connector %s not found", (name));                               \
    }

int cn_d_list(cn_dist_t *d, bool expand_status, bool expand_info, json_t **out)
{
    pthread_mutex_lock(&d->mu);
    const char *name;
    json_t *v;
    if (!expand_status && !expand_info) {
        *out = json_array();
        json_object_foreach(d->conns, name, v)
            json_array_append_new(*out, json_string(name));
    } else {
        *out = json_object();
        json_object_foreach(d->conns, name, v) {
            json_t *e = json_object();
            if (expand_status)
                json_object_set_new(e, "status", status_locked(d, name, false, NULL));
            if (expand_info)
                json_object_set_new(e, "info", info_locked(d, name));
            json_object_set_new(*out, name, e);
        }
    }
    pthread_mutex_unlock(&d->mu);
    return 200;
}

int cn_d_info(cn_dist_t *d, const char *name, json_t **out)
{
    DLOOKUP(d, name, out);
    *out = info_locked(d, name);
    pthread_mutex_unlock(&d->mu);
    return 200;
}

int cn_d_config(cn_dist_t *d, const char *name, json_t **out)
{
    DLOOKUP(d, name, out);
    *out = json_deep_copy(json_object_get(d->conns, name));
    pthread_mutex_unlock(&d->mu);
    return 200;
}

int cn_d_status(cn_dist_t *d, const char *name, json_t **out)
{
    DLOOKUP(d, name, out);
    *out = status_locked(d, name, false, NULL);
    pthread_mutex_unlock(&d->mu);
    return 200;
}

int cn_d_tasks(cn_dist_t *d, const char *name, bool legacy_map, json_t **out)
{
    DLOOKUP(d, name, out);
    *out = legacy_map ? json_object() : json_array();
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(d->tasks, name), i, tc) {
        cn_tasks_json_add(*out, legacy_map, name, i, tc);
    }
    pthread_mutex_unlock(&d->mu);
    return 200;
}

int cn_d_task_status(cn_dist_t *d, const char *name, const char *task, json_t **out)
{
    int id = cn_parse_task_id(task);
    if (id < 0)
        return derror(out, 404, "HTTP 404 Not Found");
    DLOOKUP(d, name, out);
    if ((size_t)id >= json_array_size(json_object_get(d->tasks, name))) {
        pthread_mutex_unlock(&d->mu);
        return derror(out, 404, "No status found for task %s-%d", name, id);
    }
    char key[1200];
    snprintf(key, sizeof key, "status-task-%s-%d", name, id);
    *out = one_status(json_object_get(d->statuses, key), id);
    pthread_mutex_unlock(&d->mu);
    return 200;
}

/* ------------------------------------------------------------ REST writes (leader) */

static int not_leader(cn_dist_t *d, json_t **out)
{
    bool leader;
    char url[400];
    cn_dist_leader_url(d, url, sizeof url, &leader);
    if (leader)
        return 0;
    return derror(out, 409, "Cannot complete request because of a conflicting operation (e.g. worker rebalance)");
}

static char *target_value(cn_target_t t)
{
    /* "state" stays readable by workers that know only STARTED and PAUSED. */
    json_t *v = json_pack("{s:s, s:s}", "state", t == CN_TARGET_STARTED ? "STARTED" : "PAUSED", "state.v2",
                          target_name(t));
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    return s;
}

int cn_d_put_config(cn_dist_t *d, const char *name, json_t *config, const char *initial_state, bool allow_replace,
                    json_t **out)
{
    int st;
    cn_target_t target;
    if (!cn_parse_initial_state(initial_state, &target))
        return derror(out, 400, "Invalid initial_state '%s': expected one of RUNNING, PAUSED, STOPPED",
                      initial_state);
    if (!cn_cfg_str(config, "connector.class")) {
        char *text = json_dumps(config, JSON_COMPACT);
        st = derror(out, 400, "Connector config %s contains no connector type", text);
        free(text);
        return st;
    }
    const samsa_connect_plugin_t *plugin = cn_plugins_find(d->w->plugins, cn_cfg_str(config, "connector.class"));
    int nerr = 0;
    json_t *infos = cn_validate(d->w, plugin, config, &nerr);
    if (nerr) {
        char *msg = cn_validate_message(infos, nerr);
        json_decref(infos);
        st = derror(out, 400, "%s", msg);
        free(msg);
        return st;
    }
    json_decref(infos);
    if ((st = not_leader(d, out)))
        return st;
    pthread_mutex_lock(&d->write_mu);
    cn_kblog_read_to_end(d->cfg, CN_DIST_IO_MS);
    pthread_mutex_lock(&d->mu);
    bool exists = json_object_get(d->conns, name) != NULL;
    pthread_mutex_unlock(&d->mu);
    if (exists && !allow_replace) {
        pthread_mutex_unlock(&d->write_mu);
        return derror(out, 409, "Connector %s already exists", name);
    }
    char *ck = NULL, *tk = NULL, *tv = NULL;
    json_t *cv = json_pack("{s:O}", "properties", config);
    char *cvs = json_dumps(cv, JSON_COMPACT);
    json_decref(cv);
    if (asprintf(&ck, "connector-%s", name) < 0 || asprintf(&tk, "target-state-%s", name) < 0)
        abort();
    const char *keys[2], *vals[2];
    size_t n = 0;
    if (!exists && initial_state) {
        tv = target_value(target);
        keys[n] = tk;
        vals[n++] = tv;
    }
    keys[n] = ck;
    vals[n++] = cvs;
    char err[512];
    int rc = cfg_write(d, n, keys, vals, err, sizeof err);
    free(ck);
    free(tk);
    free(tv);
    free(cvs);
    pthread_mutex_unlock(&d->write_mu);
    if (rc != 0)
        return derror(out, 500, "Failed to write connector %s to the config topic: %s", name, err);
    CN_INFO(d->log, "%s connector %s", exists ? "Reconfigured" : "Created", name);
    pthread_mutex_lock(&d->mu);
    *out = info_locked(d, name);
    pthread_mutex_unlock(&d->mu);
    return exists ? 200 : 201;
}

int cn_d_patch_config(cn_dist_t *d, const char *name, json_t *patch, json_t **out)
{
    DLOOKUP(d, name, out);
    json_t *merged = cn_config_patched(json_object_get(d->conns, name), patch);
    pthread_mutex_unlock(&d->mu);
    int st;
    const char *pname = cn_cfg_str(merged, "name");
    if (pname && strcmp(pname, name) != 0) {
        st = derror(out, 400, "Connector name configuration (%s) doesn't match connector name in the URL (%s)", pname,
                    name);
    } else {
        json_object_set_new(merged, "name", json_string(name));
        st = cn_d_put_config(d, name, merged, NULL, true, out);
    }
    json_decref(merged);
    return st;
}

int cn_d_target(cn_dist_t *d, const char *name, cn_target_t target, json_t **out)
{
    DLOOKUP(d, name, out);
    pthread_mutex_unlock(&d->mu);
    int st;
    if ((st = not_leader(d, out)))
        return st;
    pthread_mutex_lock(&d->write_mu);
    char *tk = NULL, *ck = NULL, *tv = target_value(target);
    if (asprintf(&tk, "target-state-%s", name) < 0 || asprintf(&ck, "commit-%s", name) < 0)
        abort();
    /* Stopping also removes the task configs (KIP-875), after the target state: a
     * worker reading the empty commit while the connector still looked started
     * would write its task configs back. */
    const char *keys[2] = {tk, ck}, *vals[2] = {tv, "{\"tasks\":0}"};
    bool stop = target == CN_TARGET_STOPPED;
    char err[512];
    int rc = cfg_write(d, stop ? 2 : 1, keys, vals, err, sizeof err);
    free(tk);
    free(ck);
    free(tv);
    pthread_mutex_unlock(&d->write_mu);
    if (rc != 0)
        return derror(out, 500, "Failed to write the target state of %s: %s", name, err);
    CN_INFO(d->log, "Target state of connector %s is now %s", name, target_name(target));
    *out = NULL;
    return stop ? 204 : 202;
}

int cn_d_delete(cn_dist_t *d, const char *name, json_t **out)
{
    DLOOKUP(d, name, out);
    size_t n = json_array_size(json_object_get(d->tasks, name));
    pthread_mutex_unlock(&d->mu);
    int st;
    if ((st = not_leader(d, out)))
        return st;
    pthread_mutex_lock(&d->write_mu);
    char *ck = NULL, *tk = NULL;
    if (asprintf(&ck, "connector-%s", name) < 0 || asprintf(&tk, "target-state-%s", name) < 0)
        abort();
    const char *keys[2] = {ck, tk}, *vals[2] = {NULL, NULL};
    char err[512];
    int rc = cfg_write(d, 2, keys, vals, err, sizeof err);
    free(ck);
    free(tk);
    pthread_mutex_unlock(&d->write_mu);
    if (rc != 0)
        return derror(out, 500, "Failed to delete connector %s: %s", name, err);
    /* Its statuses go too, so a connector created later under the name starts clean. */
    for (size_t i = 0; i <= n; i++) {
        char key[1200];
        if (i == n)
            snprintf(key, sizeof key, "status-connector-%s", name);
        else
            snprintf(key, sizeof key, "status-task-%s-%zu", name, i);
        const char *k1[1] = {key}, *v1[1] = {NULL};
        cn_kblog_send(d->st, 1, k1, v1, false, err, sizeof err);
    }
    CN_INFO(d->log, "Deleted connector %s", name);
    *out = NULL;
    return 204;
}

int cn_d_restart(cn_dist_t *d, const char *name, bool include_tasks, bool only_failed, json_t **out)
{
    pthread_mutex_lock(&d->mu);
    if (!json_object_get(d->conns, name)) {
        pthread_mutex_unlock(&d->mu);
        if (include_tasks || only_failed)
            return derror(out, 404, "Unknown connector: %s", name);
        return derror(out, 404, "Connector %s not found", name);
    }
    pthread_mutex_unlock(&d->mu);
    int st;
    if ((st = not_leader(d, out)))
        return st;
    char *k = NULL;
    if (asprintf(&k, "restart-connector-%s", name) < 0)
        abort();
    json_t *v = json_pack("{s:b, s:b}", "include-tasks", include_tasks, "only-failed", only_failed);
    char *vs = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    const char *keys[1] = {k}, *vals[1] = {vs};
    char err[512];
    pthread_mutex_lock(&d->mu);
    /* The answer shows what will restart, from the statuses before the request. */
    size_t n = json_array_size(json_object_get(d->tasks, name));
    bool *rt = calloc(n + 1, sizeof *rt);
    if (!rt)
        abort();
    char key[1200];
    snprintf(key, sizeof key, "status-connector-%s", name);
    const char *cs = json_string_value(json_object_get(json_object_get(d->statuses, key), "state"));
    bool restart_conn = !only_failed || (cs && strcmp(cs, "FAILED") == 0);
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof key, "status-task-%s-%zu", name, i);
        const char *ts = json_string_value(json_object_get(json_object_get(d->statuses, key), "state"));
        rt[i] = include_tasks && (!only_failed || (ts && strcmp(ts, "FAILED") == 0));
    }
    json_t *answer = status_locked(d, name, restart_conn, rt);
    pthread_mutex_unlock(&d->mu);
    free(rt);
    int rc = cfg_write(d, 1, keys, vals, err, sizeof err);
    free(k);
    free(vs);
    if (rc != 0) {
        json_decref(answer);
        return derror(out, 500, "Failed to write the restart request of %s: %s", name, err);
    }
    if (!include_tasks && !only_failed) {
        json_decref(answer);
        *out = NULL;
        return 204;
    }
    *out = answer;
    return 202;
}

int cn_d_task_restart(cn_dist_t *d, const char *name, const char *task, json_t **out)
{
    int id = cn_parse_task_id(task);
    if (id < 0)
        return derror(out, 404, "HTTP 404 Not Found");
    DLOOKUP(d, name, out);
    size_t n = json_array_size(json_object_get(d->tasks, name));
    pthread_mutex_unlock(&d->mu);
    if ((size_t)id >= n)
        return derror(out, 404, "Task %s-%d not found", name, id);
    if (!cn_herder_restart_local(d->w->herder, name, id, false))
        return derror(out, 409, "Task %s-%d is not assigned to any worker right now (rebalance in progress)", name, id);
    *out = NULL;
    return 204;
}

static json_t *conn_config(cn_dist_t *d, const char *name, json_t **out, int *st)
{
    pthread_mutex_lock(&d->mu);
    json_t *c = json_deep_copy(json_object_get(d->conns, name));
    pthread_mutex_unlock(&d->mu);
    if (!c)
        *st = derror(out, 404, "Connector %s not found", name);
    return c;
}

int cn_d_offsets(cn_dist_t *d, const char *name, json_t **out)
{
    int st = 0;
    json_t *cfg = conn_config(d, name, out, &st);
    if (!cfg)
        return st;
    if (cn_config_is_sink(d->w, cfg))
        st = cn_h_sink_offsets(d->w->herder, name, cfg, false, false, NULL, out);
    else {
        *out = json_pack("{s:o}", "offsets", cn_offsets_list(d->w->offsets, name));
        st = 200;
    }
    json_decref(cfg);
    return st;
}

/* Offsets change only for a STOPPED connector without tasks (KIP-875). */
static bool stopped(cn_dist_t *d, const char *name)
{
    pthread_mutex_lock(&d->mu);
    bool ok = target_parse(json_string_value(json_object_get(d->targets, name))) == CN_TARGET_STOPPED &&
              json_array_size(json_object_get(d->tasks, name)) == 0;
    pthread_mutex_unlock(&d->mu);
    return ok;
}

static int offsets_change(cn_dist_t *d, const char *name, json_t *body, bool reset, json_t **out)
{
    int st = 0;
    json_t *cfg = conn_config(d, name, out, &st);
    if (!cfg)
        return st;
    if ((st = not_leader(d, out))) {
        json_decref(cfg);
        return st;
    }
    if (!stopped(d, name)) {
        json_decref(cfg);
        return derror(out, 400,
                      "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/%s/stop' endpoint",
                      name);
    }
    if (cn_config_is_sink(d->w, cfg)) {
        st = cn_h_sink_offsets(d->w->herder, name, cfg, !reset, reset, body, out);
        json_decref(cfg);
        return st;
    }
    json_decref(cfg);
    if (reset) {
        cn_offsets_list(d->w->offsets, name); /* reads the topic to its end */
        cn_offsets_reset(d->w->offsets, name);
    } else {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(body, "offsets"), i, e)
            cn_offsets_put(d->w->offsets, name, json_object_get(e, "partition"), json_object_get(e, "offset"));
    }
    char err[512];
    if (cn_offsets_flush(d->w->offsets, err, sizeof err) != 0)
        return derror(out, 500, "Failed to write offsets for connector %s: %s", name, err);
    CN_INFO(d->log, "%s offsets of connector %s", reset ? "Reset" : "Altered", name);
    *out = json_pack("{s:s}", "message",
                     reset ? "The offsets for this connector have been reset successfully"
                           : "The offsets for this connector have been altered successfully");
    return 200;
}

int cn_d_offsets_alter(cn_dist_t *d, const char *name, json_t *body, json_t **out)
{
    return offsets_change(d, name, body, false, out);
}

int cn_d_offsets_reset(cn_dist_t *d, const char *name, json_t **out)
{
    return offsets_change(d, name, NULL, true, out);
}
