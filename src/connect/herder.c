/*
 * herder.c - connectors and tasks in standalone mode: their configs, target states,
 * states, and the REST operations on them (Kafka's StandaloneHerder).
 *
 * Each connector has a target state, set by the user, and a state, which is where it
 * got:
 *
 *      POST/PUT config            PUT /pause              PUT /stop
 *   --------------------> RUNNING <---------> PAUSED  ----------------> STOPPED
 *                           |  ^   PUT /resume   |                        |
 *      bad config or        |  |                 |  PUT /resume           |
 *      task_configs error   v  | restart         |  (tasks recreated)     |
 *                          FAILED <--------------+------------------------+
 *
 *  - RUNNING/PAUSED: its task configs are computed (plugin->task_configs) and one
 *    task thread runs per config; pausing keeps the tasks and tells them to stop
 *    polling (sources) or to pause their consumers (sinks).
 *  - STOPPED (KIP-875): no tasks and no task configs; offsets may be altered or reset.
 *  - FAILED: the connector's config could not be validated or split; restart retries.
 *  - A task is UNASSIGNED until its thread started it, then RUNNING or PAUSED, FAILED
 *    when its plugin or Kafka client failed (with a trace); it stays FAILED until
 *    restarted. RESTARTING appears only in the answer to a restart with includeTasks
 *    or onlyFailed, as Kafka.
 *
 * Locking: h->mu is held for every operation, including joining task threads (task
 * threads never take it). A task's state is read under the task's own mutex.
 *
 * Distributed mode (dist.c): the REST operations below hand over to dist.c, which
 * keeps connectors in the config topic; this file then only runs the tasks this
 * worker was assigned (cn_herder_reconcile: c->tasks[i] is NULL for a task that
 * runs elsewhere) and reports their states to the status topic.
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

struct cn_connector {
    char *name;
    json_t *config;
    const samsa_connect_plugin_t *plugin; /* NULL while the class is unknown */
    cn_target_t target;
    cn_state_t state;
    char *trace;
    json_t *task_configs; /* array of config objects */
    cn_task_t **tasks;
    int ntasks;
    pthread_mutex_t topics_mu;
    json_t *topics; /* active topics: {"name": true} */
    cn_connector_t *next;
};

struct cn_herder {
    cn_worker_t *w;
    pthread_mutex_t mu;
    cn_connector_t *head;
    cn_logger_t *log;
};

const char *cn_state_name(cn_state_t s)
{
    switch (s) {
    case CN_UNASSIGNED: return "UNASSIGNED";
    case CN_RUNNING: return "RUNNING";
    case CN_PAUSED: return "PAUSED";
    case CN_STOPPED: return "STOPPED";
    case CN_FAILED: return "FAILED";
    case CN_RESTARTING: return "RESTARTING";
    }
    return "UNASSIGNED";
}

json_t *cn_error(int status, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:i, s:s}", "error_code", status, "message", msg);
}

static int error(json_t **out, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int error(json_t **out, int status, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    *out = json_pack("{s:i, s:s}", "error_code", status, "message", msg);
    return status;
}

/* ------------------------------------------------------------------ tasks */

static void task_condattr(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

void cn_task_set_state(cn_task_t *t, cn_state_t s, const char *trace)
{
    pthread_mutex_lock(&t->mu);
    t->state = s;
    free(t->trace);
    t->trace = trace ? strdup(trace) : NULL;
    pthread_mutex_unlock(&t->mu);
    if (t->w->dist)
        cn_dist_task_status(t->w->dist, t->conn->name, t->id, s, trace);
}

void cn_task_wait(cn_task_t *t, int64_t ms)
{
    struct timespec ts;
    cn_deadline_ts(&ts, ms);
    pthread_mutex_lock(&t->mu);
    if (!t->want_stop)
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    pthread_mutex_unlock(&t->mu);
}

char cn_task_wanted(cn_task_t *t)
{
    pthread_mutex_lock(&t->mu);
    char c = t->want_stop ? 's' : t->want_pause ? 'p' : 'r';
    pthread_mutex_unlock(&t->mu);
    return c;
}

void cn_task_topic_active(cn_task_t *t, const char *topic)
{
    cn_connector_t *c = t->conn;
    pthread_mutex_lock(&c->topics_mu);
    if (!json_object_get(c->topics, topic))
        json_object_set_new(c->topics, topic, json_true());
    pthread_mutex_unlock(&c->topics_mu);
}

static cn_task_t *task_start(cn_herder_t *h, cn_connector_t *c, int id, json_t *config)
{
    cn_task_t *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->w = h->w;
    t->conn = c;
    t->plugin = c->plugin;
    t->id = id;
    snprintf(t->name, sizeof t->name, "%s-%d", c->name, id);
    t->config = json_incref(config);
    t->conn_config = json_deep_copy(c->config);
    pthread_mutex_init(&t->mu, NULL);
    task_condattr(&t->cv);
    t->want_pause = c->target == CN_TARGET_PAUSED;
    t->state = CN_UNASSIGNED;
    void *(*fn)(void *) = c->plugin->type == SAMSA_CONNECT_SINK ? cn_sink_task_main : cn_source_task_main;
    int rc = pthread_create(&t->thread, NULL, fn, t);
    if (rc != 0) {
        t->state = CN_FAILED;
        t->trace = strdup("cannot create the task's thread");
        CN_ERROR(h->log, "task %s: pthread_create: %s", t->name, strerror(rc));
    } else {
        t->thread_started = true;
        CN_INFO(h->log, "Starting task %s", t->name);
    }
    return t;
}

static void task_stop(cn_herder_t *h, cn_task_t *t)
{
    if (t->thread_started) {
        pthread_mutex_lock(&t->mu);
        t->want_stop = true;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
        CN_INFO(h->log, "Stopped task %s", t->name);
    }
    json_decref(t->config);
    json_decref(t->conn_config);
    free(t->trace);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}

static void set_want_pause(cn_task_t *t, bool pause)
{
    pthread_mutex_lock(&t->mu);
    t->want_pause = pause;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void stop_tasks(cn_herder_t *h, cn_connector_t *c)
{
    /* Ask all first so they wind down together, then join each. */
    for (int i = 0; i < c->ntasks; i++) {
        cn_task_t *t = c->tasks[i];
        if (!t)
            continue;
        pthread_mutex_lock(&t->mu);
        t->want_stop = true;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
    }
    for (int i = 0; i < c->ntasks; i++)
        if (c->tasks[i])
            task_stop(h, c->tasks[i]);
    free(c->tasks);
    c->tasks = NULL;
    c->ntasks = 0;
}

static void start_tasks(cn_herder_t *h, cn_connector_t *c)
{
    size_t n = json_array_size(c->task_configs);
    c->tasks = calloc(n ? n : 1, sizeof *c->tasks);
    if (!c->tasks)
        abort();
    for (size_t i = 0; i < n; i++)
        c->tasks[i] = task_start(h, c, (int)i, json_array_get(c->task_configs, i));
    c->ntasks = (int)n;
}

/* ------------------------------------------------------------------ connectors */

static cn_connector_t *find(cn_herder_t *h, const char *name)
{
    for (cn_connector_t *c = h->head; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static void set_failed(cn_connector_t *c, const char *trace)
{
    c->state = CN_FAILED;
    free(c->trace);
    c->trace = strdup(trace);
}

/* Compute task configs. NULL (with the connector FAILED) on error. */
static json_t *generate_task_configs(cn_herder_t *h, cn_connector_t *c)
{
    c->plugin = cn_plugins_find(h->w->plugins, cn_cfg_str(c->config, "connector.class"));
    int nerr = 0;
    json_t *infos = cn_validate(h->w, c->plugin, c->config, &nerr);
    if (nerr || !c->plugin) {
        char *msg = cn_validate_message(infos, nerr);
        set_failed(c, msg);
        free(msg);
        json_decref(infos);
        return NULL;
    }
    json_decref(infos);
    int64_t max_tasks = 1;
    cn_cfg_i64(c->config, "tasks.max", 1, &max_tasks);
    json_t *tcs;
    if (c->plugin->task_configs) {
        cn_ctx_t ctx;
        cn_ctx_init(&ctx, CN_CTX_CONFIG, h->w, c->name, c->plugin);
        samsa_connect_config_t pc = cn_plugin_config(c->config);
        char err[1024] = "";
        int rc = c->plugin->task_configs(&ctx.base, &pc, (int)max_tasks, err, sizeof err);
        cn_plugin_config_free(&pc);
        tcs = json_incref(ctx.task_configs);
        cn_ctx_done(&ctx);
        if (rc != 0) {
            char trace[1200];
            snprintf(trace, sizeof trace, "The connector %s failed to generate task configurations: %s",
                     c->name, err[0] ? err : "(no reason given)");
            set_failed(c, trace);
            json_decref(tcs);
            return NULL;
        }
    } else {
        tcs = json_pack("[O]", c->config);
    }
    bool enforce = true;
    cn_cfg_bool(c->config, "tasks.max.enforce", true, &enforce);
    if ((int64_t)json_array_size(tcs) > max_tasks && enforce) {
        char trace[512];
        snprintf(trace, sizeof trace,
                 "The connector %s has generated %zu tasks, which is greater than %lld, the maximum number of tasks it is configured to create.",
                 c->name, json_array_size(tcs), (long long)max_tasks);
        set_failed(c, trace);
        json_decref(tcs);
        return NULL;
    }
    return tcs;
}

/* (Re)start the connector towards its target state. Tasks are recreated when their
 * configs changed or restart_tasks is set. */
static void conn_start(cn_herder_t *h, cn_connector_t *c, bool restart_tasks)
{
    c->plugin = cn_plugins_find(h->w->plugins, cn_cfg_str(c->config, "connector.class"));
    if (c->target == CN_TARGET_STOPPED) {
        stop_tasks(h, c);
        json_array_clear(c->task_configs);
        c->state = CN_STOPPED;
        free(c->trace);
        c->trace = NULL;
        CN_INFO(h->log, "Connector %s is STOPPED", c->name);
        return;
    }
    json_t *tcs = generate_task_configs(h, c);
    if (!tcs) {
        CN_WARN(h->log, "Connector %s failed: %s", c->name, c->trace);
        stop_tasks(h, c);
        return;
    }
    c->state = c->target == CN_TARGET_PAUSED ? CN_PAUSED : CN_RUNNING;
    free(c->trace);
    c->trace = NULL;
    if (restart_tasks || !json_equal(tcs, c->task_configs) || c->ntasks != (int)json_array_size(tcs)) {
        stop_tasks(h, c);
        json_decref(c->task_configs);
        c->task_configs = tcs;
        start_tasks(h, c);
    } else {
        json_decref(tcs);
    }
    CN_INFO(h->log, "Connector %s is %s with %d task(s)", c->name, cn_state_name(c->state), c->ntasks);
}

static void conn_free(cn_connector_t *c)
{
    free(c->name);
    json_decref(c->config);
    free(c->trace);
    json_decref(c->task_configs);
    json_decref(c->topics);
    pthread_mutex_destroy(&c->topics_mu);
    free(c->tasks);
    free(c);
}

static const char *conn_type(cn_connector_t *c)
{
    if (!c->plugin)
        return "unknown";
    return c->plugin->type == SAMSA_CONNECT_SINK ? "sink" : "source";
}

static json_t *info_json(cn_connector_t *c)
{
    json_t *tasks = json_array();
    for (size_t i = 0; i < json_array_size(c->task_configs); i++)
        json_array_append_new(tasks, json_pack("{s:s, s:i}", "connector", c->name, "task", (int)i));
    return json_pack("{s:s, s:O, s:o, s:s}", "name", c->name, "config", c->config, "tasks", tasks,
                     "type", conn_type(c));
}

static json_t *task_status_json(cn_herder_t *h, cn_task_t *t, bool restarting)
{
    pthread_mutex_lock(&t->mu);
    json_t *o = json_pack("{s:i, s:s, s:s}", "id", t->id, "state",
                          cn_state_name(restarting ? CN_RESTARTING : t->state), "worker_id",
                          h->w->cfg.worker_id);
    if (t->state == CN_FAILED && t->trace && !restarting)
        json_object_set_new(o, "trace", json_string(t->trace));
    pthread_mutex_unlock(&t->mu);
    return o;
}

static cn_state_t task_state(cn_task_t *t)
{
    pthread_mutex_lock(&t->mu);
    cn_state_t s = t->state;
    pthread_mutex_unlock(&t->mu);
    return s;
}

/* restart_tasks: NULL or a bool per task marking RESTARTING. */
static json_t *status_json(cn_herder_t *h, cn_connector_t *c, bool restart_conn, const bool *restart_tasks)
{
    json_t *conn = json_pack("{s:s, s:s}", "state",
                             cn_state_name(restart_conn ? CN_RESTARTING : c->state), "worker_id",
                             h->w->cfg.worker_id);
    if (c->state == CN_FAILED && c->trace && !restart_conn)
        json_object_set_new(conn, "trace", json_string(c->trace));
    json_t *tasks = json_array();
    for (int i = 0; i < c->ntasks; i++)
        json_array_append_new(tasks, task_status_json(h, c->tasks[i], restart_tasks && restart_tasks[i]));
    return json_pack("{s:s, s:o, s:o, s:s}", "name", c->name, "connector", conn, "tasks", tasks, "type",
                     conn_type(c));
}

/* ------------------------------------------------------------------ operations */

cn_herder_t *cn_herder_new(cn_worker_t *w)
{
    cn_herder_t *h = calloc(1, sizeof *h);
    if (!h)
        abort();
    h->w = w;
    pthread_mutex_init(&h->mu, NULL);
    h->log = cn_logger("samsa.connect.herder");
    return h;
}

void cn_herder_free(cn_herder_t *h)
{
    if (!h)
        return;
    cn_herder_stop_all(h);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

int cn_h_list(cn_herder_t *h, bool expand_status, bool expand_info, json_t **out)
{
    if (h->w->dist)
        return cn_d_list(h->w->dist, expand_status, expand_info, out);
    pthread_mutex_lock(&h->mu);
    if (!expand_status && !expand_info) {
        *out = json_array();
        for (cn_connector_t *c = h->head; c; c = c->next)
            json_array_append_new(*out, json_string(c->name));
    } else {
        *out = json_object();
        for (cn_connector_t *c = h->head; c; c = c->next) {
            json_t *e = json_object();
            if (expand_status)
                json_object_set_new(e, "status", status_json(h, c, false, NULL));
            if (expand_info)
                json_object_set_new(e, "info", info_json(c));
            json_object_set_new(*out, c->name, e);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return 200;
}

bool cn_parse_initial_state(const char *s, cn_target_t *target)
{
    *target = CN_TARGET_STARTED;
    if (!s || strcasecmp(s, "RUNNING") == 0)
        return true;
    if (strcasecmp(s, "PAUSED") == 0)
        *target = CN_TARGET_PAUSED;
    else if (strcasecmp(s, "STOPPED") == 0)
        *target = CN_TARGET_STOPPED;
    else
        return false;
    return true;
}

int cn_h_put_config(cn_herder_t *h, const char *name, json_t *config, const char *initial_state,
                    bool allow_replace, json_t **out)
{
    if (h->w->dist)
        return cn_d_put_config(h->w->dist, name, config, initial_state, allow_replace, out);
    cn_target_t target;
    if (!cn_parse_initial_state(initial_state, &target))
        return error(out, 400, "Invalid initial_state '%s': expected one of RUNNING, PAUSED, STOPPED",
                     initial_state);
    if (!cn_cfg_str(config, "connector.class")) {
        char *text = json_dumps(config, JSON_COMPACT);
        int st = error(out, 400, "Connector config %s contains no connector type", text);
        free(text);
        return st;
    }
    const samsa_connect_plugin_t *plugin = cn_plugins_find(h->w->plugins, cn_cfg_str(config, "connector.class"));
    int nerr = 0;
    json_t *infos = cn_validate(h->w, plugin, config, &nerr);
    if (nerr) {
        char *msg = cn_validate_message(infos, nerr);
        json_decref(infos);
        int st = error(out, 400, "%s", msg);
        free(msg);
        return st;
    }
    json_decref(infos);

    pthread_mutex_lock(&h->mu);
    cn_connector_t *c = find(h, name);
    int status;
    if (c) {
        if (!allow_replace) {
            pthread_mutex_unlock(&h->mu);
            return error(out, 409, "Connector %s already exists", name);
        }
        CN_INFO(h->log, "Reconfiguring connector %s", name);
        stop_tasks(h, c);
        json_decref(c->config);
        c->config = json_deep_copy(config);
        conn_start(h, c, true);
        status = 200;
    } else {
        c = calloc(1, sizeof *c);
        if (!c)
            abort();
        c->name = strdup(name);
        c->config = json_deep_copy(config);
        c->target = target;
        c->task_configs = json_array();
        c->topics = json_object();
        pthread_mutex_init(&c->topics_mu, NULL);
        cn_connector_t **pp = &h->head;
        while (*pp)
            pp = &(*pp)->next;
        *pp = c;
        CN_INFO(h->log, "Creating connector %s of type %s", name, cn_cfg_str(config, "connector.class"));
        conn_start(h, c, true);
        status = 201;
    }
    *out = info_json(c);
    pthread_mutex_unlock(&h->mu);
    return status;
}

json_t *cn_config_patched(json_t *config, json_t *patch)
{
    json_t *merged = json_deep_copy(config);
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v) {
        if (json_is_null(v))
            json_object_del(merged, k);
        else
            json_object_set(merged, k, v);
    }
    return merged;
}

int cn_h_patch_config(cn_herder_t *h, const char *name, json_t *patch, json_t **out)
{
    if (h->w->dist)
        return cn_d_patch_config(h->w->dist, name, patch, out);
    pthread_mutex_lock(&h->mu);
    cn_connector_t *c = find(h, name);
    if (!c) {
        pthread_mutex_unlock(&h->mu);
        return error(out, 404, "Connector %s not found", name);
    }
    json_t *merged = cn_config_patched(c->config, patch);
    pthread_mutex_unlock(&h->mu);
    int st;
    const char *pname = cn_cfg_str(merged, "name");
    if (pname && strcmp(pname, name) != 0)
        st = error(out, 400, "Connector name configuration (%s) doesn't match connector name in the URL (%s)",
                   pname, name);
    else {
        json_object_set_new(merged, "name", json_string(name));
        st = cn_h_put_config(h, name, merged, NULL, true, out);
    }
    json_decref(merged);
    return st;
}

#define LOOKUP(h, name, out)                                                                       \
    pthread_mutex_lock(&(h)->mu);                                                                  \
    cn_connector_t *c = find((h), (name));                                                         \
    if (!c) {                                                                                      \
        pthread_mutex_unlock(&(h)->mu);                                                            \
        return error((out), 404, "Connector %s not found", (name));                                \
    }

int cn_h_info(cn_herder_t *h, const char *name, json_t **out)
{
    if (h->w->dist)
        return cn_d_info(h->w->dist, name, out);
    LOOKUP(h, name, out);
    *out = info_json(c);
    pthread_mutex_unlock(&h->mu);
    return 200;
}

int cn_h_config(cn_herder_t *h, const char *name, json_t **out)
{
    if (h->w->dist)
        return cn_d_config(h->w->dist, name, out);
    LOOKUP(h, name, out);
    *out = json_deep_copy(c->config);
    pthread_mutex_unlock(&h->mu);
    return 200;
}

int cn_h_status(cn_herder_t *h, const char *name, json_t **out)
{
    if (h->w->dist)
        return cn_d_status(h->w->dist, name, out);
    LOOKUP(h, name, out);
    *out = status_json(h, c, false, NULL);
    pthread_mutex_unlock(&h->mu);
    return 200;
}

static cn_task_t *restart_task(cn_herder_t *h, cn_connector_t *c, int i)
{
    task_stop(h, c->tasks[i]);
    c->tasks[i] = task_start(h, c, i, json_array_get(c->task_configs, (size_t)i));
    return c->tasks[i];
}

int cn_h_restart(cn_herder_t *h, const char *name, bool include_tasks, bool only_failed, json_t **out)
{
    if (h->w->dist)
        return cn_d_restart(h->w->dist, name, include_tasks, only_failed, out);
    pthread_mutex_lock(&h->mu);
    cn_connector_t *c = find(h, name);
    if (!c) {
        pthread_mutex_unlock(&h->mu);
        if (include_tasks || only_failed)
            return error(out, 404, "Unknown connector: %s", name);
        return error(out, 404, "Connector %s not found", name);
    }
    if (!include_tasks && !only_failed) {
        CN_INFO(h->log, "Restarting connector %s", name);
        conn_start(h, c, false);
        pthread_mutex_unlock(&h->mu);
        *out = NULL;
        return 204;
    }
    bool restart_conn = !only_failed || c->state == CN_FAILED;
    int n = c->ntasks;
    bool *rt = calloc((size_t)(n ? n : 1), sizeof *rt);
    if (!rt)
        abort();
    for (int i = 0; i < n; i++)
        rt[i] = include_tasks && (!only_failed || task_state(c->tasks[i]) == CN_FAILED);
    *out = status_json(h, c, restart_conn, rt);
    CN_INFO(h->log, "Restarting connector %s (connector: %s, includeTasks=%d, onlyFailed=%d)", name,
            restart_conn ? "yes" : "no", include_tasks, only_failed);
    if (restart_conn)
        conn_start(h, c, false);
    for (int i = 0; i < n && i < c->ntasks; i++)
        if (rt[i])
            restart_task(h, c, i);
    free(rt);
    pthread_mutex_unlock(&h->mu);
    return 202;
}

int cn_h_pause(cn_herder_t *h, const char *name, json_t **out)
{
    if (h->w->dist)
        return cn_d_target(h->w->dist, name, CN_TARGET_PAUSED, out);
    LOOKUP(h, name, out);
    if (c->target != CN_TARGET_STOPPED) {
        c->target = CN_TARGET_PAUSED;
        if (c->state == CN_RUNNING)
            c->state = CN_PAUSED;
        for (int i = 0; i < c->ntasks; i++)
            set_want_pause(c->tasks[i], true);
        CN_INFO(h->log, "Paused connector %s", name);
    } else {
        /* Kafka moves a stopped connector to PAUSED: tasks are started paused. */
        c->target = CN_TARGET_PAUSED;
        conn_start(h, c, true);
    }
    pthread_mutex_unlock(&h->mu);
    *out = NULL;
    return 202;
}

int cn_h_resume(cn_herder_t *h, const char *name, json_t **out)
{
    if (h->w->dist)
        return cn_d_target(h->w->dist, name, CN_TARGET_STARTED, out);
    LOOKUP(h, name, out);
    cn_target_t old = c->target;
    c->target = CN_TARGET_STARTED;
    if (old == CN_TARGET_STOPPED) {
        conn_start(h, c, true);
    } else {
        if (c->state == CN_PAUSED)
            c->state = CN_RUNNING;
        for (int i = 0; i < c->ntasks; i++)
            set_want_pause(c->tasks[i], false);
    }
    CN_INFO(h->log, "Resumed connector %s", name);
    pthread_mutex_unlock(&h->mu);
    *out = NULL;
    return 202;
}

int cn_h_stop(cn_herder_t *h, const char *name, json_t **out)
{
    if (h->w->dist)
        return cn_d_target(h->w->dist, name, CN_TARGET_STOPPED, out);
    LOOKUP(h, name, out);
    c->target = CN_TARGET_STOPPED;
    conn_start(h, c, true);
    pthread_mutex_unlock(&h->mu);
    *out = NULL;
    return 204;
}

void cn_tasks_json_add(json_t *out, bool legacy_map, const char *name, size_t i, json_t *tc)
{
    if (legacy_map) {
        char key[1200];
        snprintf(key, sizeof key, "%s-%zu", name, i);
        json_object_set(out, key, tc);
    } else {
        json_array_append_new(out, json_pack("{s:{s:s, s:i}, s:O}", "id", "connector", name, "task",
                                             (int)i, "config", tc));
    }
}

int cn_h_tasks(cn_herder_t *h, const char *name, bool legacy_map, json_t **out)
{
    if (h->w->dist)
        return cn_d_tasks(h->w->dist, name, legacy_map, out);
    LOOKUP(h, name, out);
    *out = legacy_map ? json_object() : json_array();
    size_t i;
    json_t *tc;
    json_array_foreach(c->task_configs, i, tc) {
        cn_tasks_json_add(*out, legacy_map, c->name, i, tc);
    }
    pthread_mutex_unlock(&h->mu);
    return 200;
}

int cn_parse_task_id(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < 0 || v > 1000000)
        return -1;
    return (int)v;
}

int cn_h_task_status(cn_herder_t *h, const char *name, const char *task, json_t **out)
{
    if (h->w->dist)
        return cn_d_task_status(h->w->dist, name, task, out);
    int id = cn_parse_task_id(task);
    if (id < 0)
        return error(out, 404, "HTTP 404 Not Found");
    LOOKUP(h, name, out);
    if (id >= c->ntasks) {
        pthread_mutex_unlock(&h->mu);
        return error(out, 404, "No status found for task %s-%d", name, id);
    }
    *out = task_status_json(h, c->tasks[id], false);
    pthread_mutex_unlock(&h->mu);
    return 200;
}

int cn_h_task_restart(cn_herder_t *h, const char *name, const char *task, json_t **out)
{
    if (h->w->dist)
        return cn_d_task_restart(h->w->dist, name, task, out);
    int id = cn_parse_task_id(task);
    if (id < 0)
        return error(out, 404, "HTTP 404 Not Found");
    LOOKUP(h, name, out);
    if (id >= c->ntasks) {
        pthread_mutex_unlock(&h->mu);
        return error(out, 404, "Task %s-%d not found", name, id);
    }
    CN_INFO(h->log, "Restarting task %s-%d", name, id);
    restart_task(h, c, id);
    pthread_mutex_unlock(&h->mu);
    *out = NULL;
    return 204;
}

int cn_h_topics(cn_herder_t *h, const char *name, bool reset, json_t **out)
{
    LOOKUP(h, name, out);
    pthread_mutex_lock(&c->topics_mu);
    if (reset) {
        json_object_clear(c->topics);
        *out = NULL;
    } else {
        json_t *list = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(c->topics, k, v)
            json_array_append_new(list, json_string(k));
        *out = json_pack("{s:{s:o}}", c->name, "topics", list);
    }
    pthread_mutex_unlock(&c->topics_mu);
    pthread_mutex_unlock(&h->mu);
    return reset ? 202 : 200;
}

static bool is_sink(cn_herder_t *h, cn_connector_t *c)
{
    const samsa_connect_plugin_t *p = c->plugin ? c->plugin
                                                : cn_plugins_find(h->w->plugins, cn_cfg_str(c->config, "connector.class"));
    return p && p->type == SAMSA_CONNECT_SINK;
}

static void group_id(cn_connector_t *c, char *buf, size_t len)
{
    /* consumer.override.group.id may name another group, as in Kafka. */
    const char *g = cn_cfg_str(c->config, "consumer.override.group.id");
    if (g)
        snprintf(buf, len, "%s", g);
    else
        snprintf(buf, len, "connect-%s", c->name);
}

int cn_h_offsets(cn_herder_t *h, const char *name, json_t **out)
{
    if (h->w->dist)
        return cn_d_offsets(h->w->dist, name, out);
    LOOKUP(h, name, out);
    if (is_sink(h, c)) {
        char group[400], err[512];
        group_id(c, group, sizeof group);
        pthread_mutex_unlock(&h->mu);
        json_t *list = NULL;
        if (cn_group_offsets_list(h->w, group, &list, err, sizeof err) != 0)
            return error(out, 500, "Failed to retrieve consumer group offsets for sink connector %s: %s", name, err);
        *out = json_pack("{s:o}", "offsets", list);
        return 200;
    }
    *out = json_pack("{s:o}", "offsets", cn_offsets_list(h->w->offsets, name));
    pthread_mutex_unlock(&h->mu);
    return 200;
}

static bool modify_check(cn_herder_t *h, cn_connector_t *c, const char *name, json_t **out, int *st)
{
    if (c->target != CN_TARGET_STOPPED || c->ntasks != 0) {
        pthread_mutex_unlock(&h->mu);
        *st = error(out, 400,
                    "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/%s/stop' endpoint",
                    name);
        return false;
    }
    return true;
}

/* Check one sink offset entry; on success fill topic, partition, offset (-1: delete). */
static bool sink_entry(json_t *e, const char **topic, int *partition, int64_t *offset, char *err, size_t len)
{
    json_t *p = json_object_get(e, "partition"), *o = json_object_get(e, "offset");
    json_t *t = json_object_get(p, "kafka_topic"), *pa = json_object_get(p, "kafka_partition");
    if (!json_is_object(p) || !json_is_string(t) || !json_is_integer(pa) || json_integer_value(pa) < 0) {
        snprintf(err, len, "Partitions for sink connectors must contain a string 'kafka_topic' and a non-negative integer 'kafka_partition'");
        return false;
    }
    *topic = json_string_value(t);
    *partition = (int)json_integer_value(pa);
    if (!o || json_is_null(o)) {
        *offset = -1;
        return true;
    }
    json_t *ko = json_object_get(o, "kafka_offset");
    if (!json_is_object(o) || !json_is_integer(ko) || json_integer_value(ko) < 0) {
        snprintf(err, len, "Offsets for sink connectors must contain a non-negative integer 'kafka_offset', or be null");
        return false;
    }
    *offset = json_integer_value(ko);
    return true;
}

int cn_h_offsets_alter(cn_herder_t *h, const char *name, json_t *body, json_t **out)
{
    json_t *offsets = json_object_get(body, "offsets");
    if (!json_is_array(offsets) || json_array_size(offsets) == 0)
        return error(out, 400, "Partitions / offsets need to be provided for an alter offsets request");
    size_t i;
    json_t *e;
    json_array_foreach(offsets, i, e) {
        json_t *p = json_object_get(e, "partition"), *o = json_object_get(e, "offset");
        if (!json_is_object(p))
            return error(out, 400, "Partitions / offsets need to be provided for an alter offsets request");
        if (o && !json_is_object(o) && !json_is_null(o))
            return error(out, 400, "Offsets must be JSON objects or null");
    }
    if (h->w->dist)
        return cn_d_offsets_alter(h->w->dist, name, body, out);
    LOOKUP(h, name, out);
    int st = 0;
    if (!modify_check(h, c, name, out, &st))
        return st;
    if (is_sink(h, c)) {
        char group[400], err[512];
        json_array_foreach(offsets, i, e) {
            const char *topic;
            int part;
            int64_t off;
            if (!sink_entry(e, &topic, &part, &off, err, sizeof err)) {
                pthread_mutex_unlock(&h->mu);
                return error(out, 400, "%s", err);
            }
        }
        group_id(c, group, sizeof group);
        if (cn_group_offsets_alter(h->w, group, offsets, err, sizeof err) != 0) {
            pthread_mutex_unlock(&h->mu);
            return error(out, 500, "Failed to alter consumer group offsets for connector %s: %s", name, err);
        }
    } else {
        json_array_foreach(offsets, i, e)
            cn_offsets_put(h->w->offsets, name, json_object_get(e, "partition"), json_object_get(e, "offset"));
        char err[512];
        if (cn_offsets_flush(h->w->offsets, err, sizeof err) != 0) {
            pthread_mutex_unlock(&h->mu);
            return error(out, 500, "Failed to write offsets for connector %s: %s", name, err);
        }
    }
    CN_INFO(h->log, "Altered offsets of connector %s", name);
    pthread_mutex_unlock(&h->mu);
    *out = json_pack("{s:s}", "message", "The offsets for this connector have been altered successfully");
    return 200;
}

int cn_h_offsets_reset(cn_herder_t *h, const char *name, json_t **out)
{
    if (h->w->dist)
        return cn_d_offsets_reset(h->w->dist, name, out);
    LOOKUP(h, name, out);
    int st = 0;
    if (!modify_check(h, c, name, out, &st))
        return st;
    char err[512];
    if (is_sink(h, c)) {
        char group[400];
        group_id(c, group, sizeof group);
        if (cn_group_delete(h->w, group, err, sizeof err) != 0) {
            pthread_mutex_unlock(&h->mu);
            return error(out, 500, "Failed to reset consumer group offsets for connector %s: %s", name, err);
        }
    } else {
        cn_offsets_reset(h->w->offsets, name);
        if (cn_offsets_flush(h->w->offsets, err, sizeof err) != 0) {
            pthread_mutex_unlock(&h->mu);
            return error(out, 500, "Failed to write offsets for connector %s: %s", name, err);
        }
    }
    CN_INFO(h->log, "Reset offsets of connector %s", name);
    pthread_mutex_unlock(&h->mu);
    *out = json_pack("{s:s}", "message", "The offsets for this connector have been reset successfully");
    return 200;
}

int cn_h_delete(cn_herder_t *h, const char *name, json_t **out)
{
    if (h->w->dist)
        return cn_d_delete(h->w->dist, name, out);
    pthread_mutex_lock(&h->mu);
    cn_connector_t **pp = &h->head;
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next;
    cn_connector_t *c = *pp;
    if (!c) {
        pthread_mutex_unlock(&h->mu);
        return error(out, 404, "Connector %s not found", name);
    }
    stop_tasks(h, c);
    *pp = c->next;
    CN_INFO(h->log, "Deleted connector %s", name);
    conn_free(c);
    pthread_mutex_unlock(&h->mu);
    *out = NULL;
    return 204;
}

int cn_h_validate(cn_herder_t *h, const char *plugin_name, json_t *config, json_t **out)
{
    const char *cls = cn_cfg_str(config, "connector.class");
    const samsa_connect_plugin_t *p = cn_plugins_find(h->w->plugins, plugin_name);
    if (cls && cn_plugins_find(h->w->plugins, cls) != p)
        return error(out, 400, "Included connector type %s does not match request type %s", cls, plugin_name);
    if (!p) {
        char *names = cn_plugins_names(h->w->plugins);
        int st = error(out, 400,
                       "Failed to find any class that implements Connector and which name matches %s, available connectors are: %s",
                       plugin_name, names);
        free(names);
        return st;
    }
    json_t *cfg = json_deep_copy(config);
    if (!cls)
        json_object_set_new(cfg, "connector.class", json_string(plugin_name));
    int nerr;
    *out = cn_validate(h->w, p, cfg, &nerr);
    json_decref(cfg);
    return 200;
}

int cn_h_plugin_config(cn_herder_t *h, const char *plugin_name, json_t **out)
{
    const samsa_connect_plugin_t *p = cn_plugins_find(h->w->plugins, plugin_name);
    if (!p)
        return error(out, 404, "Unknown plugin %s.", plugin_name);
    *out = cn_plugin_config_defs(p);
    return 200;
}

/* ------------------------------------------------------------ distributed mode */

bool cn_config_is_sink(cn_worker_t *w, json_t *config)
{
    const samsa_connect_plugin_t *p = cn_plugins_find(w->plugins, cn_cfg_str(config, "connector.class"));
    return p && p->type == SAMSA_CONNECT_SINK;
}

int cn_h_sink_offsets(cn_herder_t *h, const char *name, json_t *config, bool alter, bool reset, json_t *body,
                      json_t **out)
{
    char group[400], err[512];
    const char *g = cn_cfg_str(config, "consumer.override.group.id");
    if (g)
        snprintf(group, sizeof group, "%s", g);
    else
        snprintf(group, sizeof group, "connect-%s", name);
    if (reset) {
        if (cn_group_delete(h->w, group, err, sizeof err) != 0)
            return error(out, 500, "Failed to reset consumer group offsets for connector %s: %s", name, err);
        *out = json_pack("{s:s}", "message", "The offsets for this connector have been reset successfully");
        return 200;
    }
    if (alter) {
        json_t *offsets = json_object_get(body, "offsets");
        size_t i;
        json_t *e;
        json_array_foreach(offsets, i, e) {
            const char *topic;
            int part;
            int64_t off;
            if (!sink_entry(e, &topic, &part, &off, err, sizeof err))
                return error(out, 400, "%s", err);
        }
        if (cn_group_offsets_alter(h->w, group, offsets, err, sizeof err) != 0)
            return error(out, 500, "Failed to alter consumer group offsets for connector %s: %s", name, err);
        *out = json_pack("{s:s}", "message", "The offsets for this connector have been altered successfully");
        return 200;
    }
    json_t *list = NULL;
    if (cn_group_offsets_list(h->w, group, &list, err, sizeof err) != 0)
        return error(out, 500, "Failed to retrieve consumer group offsets for sink connector %s: %s", name, err);
    *out = json_pack("{s:o}", "offsets", list);
    return 200;
}

static cn_connector_t *conn_new(cn_herder_t *h, const char *name, json_t *config)
{
    cn_connector_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->name = strdup(name);
    c->config = json_deep_copy(config);
    c->task_configs = json_array();
    c->topics = json_object();
    pthread_mutex_init(&c->topics_mu, NULL);
    cn_connector_t **pp = &h->head;
    while (*pp)
        pp = &(*pp)->next;
    *pp = c;
    return c;
}

void cn_herder_reconcile(cn_herder_t *h, const char *name, json_t *config, cn_target_t target, json_t *task_configs,
                         const bool *mine)
{
    pthread_mutex_lock(&h->mu);
    cn_connector_t **pp = &h->head;
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next;
    cn_connector_t *c = *pp;
    if (!config) {
        if (c) {
            stop_tasks(h, c);
            *pp = c->next;
            conn_free(c);
        }
        pthread_mutex_unlock(&h->mu);
        return;
    }
    if (!c)
        c = conn_new(h, name, config);
    size_t n = json_array_size(task_configs);
    if (!json_equal(c->config, config) || !json_equal(c->task_configs, task_configs) || (size_t)c->ntasks != n) {
        /* New configs: every local task of it starts again with them. */
        stop_tasks(h, c);
        json_decref(c->config);
        c->config = json_deep_copy(config);
        json_decref(c->task_configs);
        c->task_configs = json_deep_copy(task_configs);
        c->tasks = calloc(n ? n : 1, sizeof *c->tasks);
        if (!c->tasks)
            abort();
        c->ntasks = (int)n;
    }
    c->plugin = cn_plugins_find(h->w->plugins, cn_cfg_str(config, "connector.class"));
    c->target = target;
    c->state = target == CN_TARGET_STOPPED ? CN_STOPPED : target == CN_TARGET_PAUSED ? CN_PAUSED : CN_RUNNING;
    for (int i = 0; i < c->ntasks; i++) {
        bool want = mine && mine[i] && target != CN_TARGET_STOPPED && c->plugin;
        if (want && !c->tasks[i])
            c->tasks[i] = task_start(h, c, i, json_array_get(c->task_configs, (size_t)i));
        else if (!want && c->tasks[i]) {
            task_stop(h, c->tasks[i]);
            c->tasks[i] = NULL;
        }
        if (c->tasks[i])
            set_want_pause(c->tasks[i], target == CN_TARGET_PAUSED);
    }
    pthread_mutex_unlock(&h->mu);
}

void cn_herder_stop_all(cn_herder_t *h)
{
    pthread_mutex_lock(&h->mu);
    /* Ask every task of every connector to stop first, so they flush in parallel. */
    for (cn_connector_t *c = h->head; c; c = c->next)
        for (int i = 0; i < c->ntasks; i++) {
            cn_task_t *t = c->tasks[i];
            if (!t)
                continue;
            pthread_mutex_lock(&t->mu);
            t->want_stop = true;
            pthread_cond_broadcast(&t->cv);
            pthread_mutex_unlock(&t->mu);
        }
    while (h->head) {
        cn_connector_t *c = h->head;
        h->head = c->next;
        stop_tasks(h, c);
        conn_free(c);
    }
    pthread_mutex_unlock(&h->mu);
}

bool cn_herder_restart_local(cn_herder_t *h, const char *conn, int id, bool only_failed)
{
    pthread_mutex_lock(&h->mu);
    cn_connector_t *c = find(h, conn);
    bool here = c && id >= 0 && id < c->ntasks && c->tasks[id];
    if (here && (!only_failed || task_state(c->tasks[id]) == CN_FAILED)) {
        CN_INFO(h->log, "Restarting task %s-%d", conn, id);
        restart_task(h, c, id);
    }
    pthread_mutex_unlock(&h->mu);
    return here;
}
