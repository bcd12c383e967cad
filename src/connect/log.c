/*
 * log.c - samsa-connect's named loggers, the model behind GET|PUT /admin/loggers.
 *
 * Kafka Connect lets an operator change log4j levels per logger namespace at run time
 * (KIP-495). Samsa keeps a flat table of dotted logger names ("samsa.connect.herder",
 * "samsa.connect.task.my-conn"); each either has its own level or inherits the level
 * of its nearest ancestor that has one, else root's. The effective level is cached in
 * each entry and recomputed for all entries when any level is set, so the check on
 * the logging path is one load. Lines go out through the project's sm_log_write with
 * the logger's last name part as the tag.
 *
 * Any thread: the table is guarded by one mutex; levels are read without it (an int
 * that is written whole).
 */
#define _GNU_SOURCE
#include "cn.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CN_MAX_LOGGERS 1024

struct cn_logger {
    char *name;
    int level;          /* explicitly set level, or -1 */
    volatile int eff;   /* effective level */
    int64_t modified_ms; /* when level was set, or 0 */
    const char *tag;    /* last component of name */
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static cn_logger_t g_root = {(char *)"root", SAMSA_LOG_INFO, SAMSA_LOG_INFO, 0, "connect"};
static cn_logger_t *g_loggers[CN_MAX_LOGGERS];
static int g_count;

static const char *const level_names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF"};

int cn_log_level_parse(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i <= CN_LOG_OFF; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "FATAL") == 0)
        return SAMSA_LOG_ERROR;
    if (strcasecmp(s, "WARNING") == 0)
        return SAMSA_LOG_WARN;
    if (strcasecmp(s, "ALL") == 0)
        return SAMSA_LOG_TRACE;
    return -1;
}

void cn_log_init(void)
{
    const char *env = getenv("SAMSA_LOG_LEVEL");
    int l = cn_log_level_parse(env);
    if (l >= 0)
        g_root.level = g_root.eff = l;
    sm_log_set_level(SM_LOG_TRACE); /* our own check decides */
}

/* Effective level of name: its own, else the nearest ancestor's, else root's. g_mu held. */
static int effective_level(const char *name)
{
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; i < g_count; i++) {
        cn_logger_t *l = g_loggers[i];
        if (l->level < 0)
            continue;
        size_t n = strlen(l->name);
        if (strncmp(name, l->name, n) == 0 && (name[n] == 0 || name[n] == '.') &&
            (best < 0 || n > best_len)) {
            best = l->level;
            best_len = n;
        }
    }
    return best >= 0 ? best : g_root.level;
}

static void recompute_all(void)
{
    g_root.eff = g_root.level;
    for (int i = 0; i < g_count; i++)
        g_loggers[i]->eff = effective_level(g_loggers[i]->name);
}

static cn_logger_t *find_locked(const char *name)
{
    if (strcmp(name, "root") == 0)
        return &g_root;
    for (int i = 0; i < g_count; i++)
        if (strcmp(g_loggers[i]->name, name) == 0)
            return g_loggers[i];
    return NULL;
}

static cn_logger_t *add_locked(const char *name)
{
    if (g_count >= CN_MAX_LOGGERS)
        return &g_root;
    cn_logger_t *l = calloc(1, sizeof *l);
    if (!l || !(l->name = strdup(name))) {
        fprintf(stderr, "samsa-connect: out of memory\n");
        abort();
    }
    l->level = -1;
    const char *dot = strrchr(l->name, '.');
    l->tag = dot ? dot + 1 : l->name;
    g_loggers[g_count++] = l;
    l->eff = effective_level(name);
    return l;
}

cn_logger_t *cn_logger(const char *name)
{
    pthread_mutex_lock(&g_mu);
    cn_logger_t *l = find_locked(name);
    if (!l)
        l = add_locked(name);
    pthread_mutex_unlock(&g_mu);
    return l;
}

bool cn_log_enabled(const cn_logger_t *lg, int level)
{
    return level >= (lg ? lg : &g_root)->eff;
}

void cn_logv(cn_logger_t *lg, int level, const char *fmt, va_list ap)
{
    if (!lg)
        lg = &g_root;
    if (level < lg->eff)
        return;
    char msg[1800];
    vsnprintf(msg, sizeof msg, fmt, ap);
    sm_log_write((sm_log_level_t)level, lg->tag, "%s", msg);
}

void cn_logf(cn_logger_t *lg, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cn_logv(lg, level, fmt, ap);
    va_end(ap);
}

static json_t *entry_json(const cn_logger_t *l)
{
    int lv = l->level >= 0 ? l->level : l->eff;
    json_t *o = json_object();
    json_object_set_new(o, "level", json_string(level_names[lv]));
    json_object_set_new(o, "last_modified",
                        l->modified_ms ? json_integer(l->modified_ms) : json_null());
    return o;
}

json_t *cn_log_list(void)
{
    json_t *out = json_object();
    pthread_mutex_lock(&g_mu);
    json_object_set_new(out, "root", entry_json(&g_root));
    for (int i = 0; i < g_count; i++)
        json_object_set_new(out, g_loggers[i]->name, entry_json(g_loggers[i]));
    pthread_mutex_unlock(&g_mu);
    return out;
}

json_t *cn_log_get(const char *name)
{
    pthread_mutex_lock(&g_mu);
    cn_logger_t *l = find_locked(name);
    json_t *o = l ? entry_json(l) : NULL;
    pthread_mutex_unlock(&g_mu);
    return o;
}

json_t *cn_log_set(const char *ns, int level)
{
    json_t *affected = json_array();
    int64_t now = cn_wall_ms();
    pthread_mutex_lock(&g_mu);
    if (strcmp(ns, "root") == 0) {
        /* Like log4j: setting root sets every logger. */
        g_root.level = level;
        g_root.modified_ms = now;
        json_array_append_new(affected, json_string("root"));
        for (int i = 0; i < g_count; i++) {
            g_loggers[i]->level = -1;
            json_array_append_new(affected, json_string(g_loggers[i]->name));
        }
    } else {
        if (!find_locked(ns))
            add_locked(ns);
        size_t n = strlen(ns);
        for (int i = 0; i < g_count; i++) {
            cn_logger_t *l = g_loggers[i];
            if (strncmp(l->name, ns, n) == 0 && (l->name[n] == 0 || l->name[n] == '.')) {
                l->level = level;
                l->modified_ms = now;
                json_array_append_new(affected, json_string(l->name));
            }
        }
    }
    recompute_all();
    pthread_mutex_unlock(&g_mu);
    return affected;
}
