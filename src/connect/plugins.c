/*
 * plugins.c - the connector plugin registry: built-in connectors plus shared objects
 * found on plugin.path (dlopen), all described by connect_plugin.h's ABI.
 *
 * plugin.path is a comma-separated list of directories or .so files. A directory is
 * searched for *.so files in itself and in its immediate subdirectories (Kafka's
 * layout: one directory per plugin). Each shared object must export
 * SAMSA_CONNECT_ENTRY; every description it returns is checked (ABI major version,
 * struct size, class name, type, task entry points) and registered, or logged and
 * skipped. A class name already registered is skipped with a warning (first wins, and
 * the built-ins come first). Shared objects are never unloaded: a description's
 * strings and functions must stay valid for the life of the worker.
 *
 * Built at start-up on the main thread and read-only afterwards: any thread may look
 * up plugins then.
 */
#define _GNU_SOURCE
#include "cn.h"
#include "smt.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CN_MAX_PLUGINS 256

typedef struct cn_plugin_entry {
    const samsa_connect_plugin_t *p;
    char *location; /* "builtin" or the .so path */
} cn_plugin_entry_t;

struct cn_plugins {
    cn_plugin_entry_t e[CN_MAX_PLUGINS];
    int n;
    void *handles[CN_MAX_PLUGINS];
    int nh;
    cn_logger_t *log;
};

static const char *simple_name(const char *c)
{
    const char *dot = strrchr(c, '.');
    return dot ? dot + 1 : c;
}

static bool plugin_ok(cn_plugins_t *ps, const samsa_connect_plugin_t *p, const char *where)
{
    if (SAMSA_CONNECT_ABI_MAJOR(p->abi_version) != SAMSA_CONNECT_ABI_MAJOR(SAMSA_CONNECT_ABI_VERSION)) {
        CN_WARN(ps->log, "%s: plugin ABI version %#x is not %#x; skipped", where, p->abi_version,
                SAMSA_CONNECT_ABI_VERSION);
        return false;
    }
    if (p->struct_size < offsetof(samsa_connect_plugin_t, task_stop) + sizeof p->task_stop) {
        CN_WARN(ps->log, "%s: plugin description is too small (%u bytes); skipped", where,
                p->struct_size);
        return false;
    }
    if (!p->class_name || !*p->class_name || !p->task_start || !p->task_stop ||
        (p->type != SAMSA_CONNECT_SOURCE && p->type != SAMSA_CONNECT_SINK) ||
        (p->type == SAMSA_CONNECT_SOURCE && !p->source_poll) ||
        (p->type == SAMSA_CONNECT_SINK && (!p->sink_put || !p->sink_flush)) ||
        (p->config_def_count && !p->config_defs)) {
        CN_WARN(ps->log, "%s: plugin %s is incomplete (class, type or task functions missing); skipped",
                where, p->class_name ? p->class_name : "(no class name)");
        return false;
    }
    return true;
}

static void add(cn_plugins_t *ps, const samsa_connect_plugin_t *p, const char *where)
{
    if (!plugin_ok(ps, p, where))
        return;
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->e[i].p->class_name, p->class_name) == 0) {
            CN_WARN(ps->log, "%s: connector class %s is already registered from %s; skipped", where,
                    p->class_name, ps->e[i].location);
            return;
        }
    if (ps->n >= CN_MAX_PLUGINS) {
        CN_WARN(ps->log, "%s: more than %d connector plugins; %s skipped", where, CN_MAX_PLUGINS,
                p->class_name);
        return;
    }
    ps->e[ps->n].p = p;
    ps->e[ps->n].location = strdup(where);
    ps->n++;
    CN_INFO(ps->log, "Added plugin '%s' (%s, version %s) from %s", p->class_name,
            p->type == SAMSA_CONNECT_SOURCE ? "source" : "sink", p->version ? p->version : "?", where);
}

static void load_so(cn_plugins_t *ps, const char *path)
{
    if (ps->nh >= CN_MAX_PLUGINS)
        return;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        CN_WARN(ps->log, "plugin %s: %s; skipped", path, dlerror());
        return;
    }
    samsa_connect_entry_fn fn;
    *(void **)&fn = dlsym(h, SAMSA_CONNECT_ENTRY);
    if (!fn) {
        CN_WARN(ps->log, "plugin %s: no %s symbol; skipped", path, SAMSA_CONNECT_ENTRY);
        dlclose(h);
        return;
    }
    const samsa_connect_plugin_t *const *list = fn(SAMSA_CONNECT_ABI_VERSION);
    if (!list) {
        CN_WARN(ps->log, "plugin %s: refused runtime ABI %#x; skipped", path, SAMSA_CONNECT_ABI_VERSION);
        dlclose(h);
        return;
    }
    ps->handles[ps->nh++] = h;
    for (int i = 0; list[i] && i < CN_MAX_PLUGINS; i++)
        add(ps, list[i], path);
}

static bool ends_with_so(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".so") == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Load the .so files of dir (sorted, for a stable order); depth 0 also descends into
 * subdirectories once. */
static void scan_dir(cn_plugins_t *ps, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d) {
        CN_WARN(ps->log, "plugin.path entry %s cannot be read; skipped", dir);
        return;
    }
    char *names[512];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 512) {
        if (de->d_name[0] == '.')
            continue;
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode) && depth == 0)
                scan_dir(ps, path, 1);
            else if (S_ISREG(st.st_mode) && ends_with_so(names[i]))
                load_so(ps, path);
        }
        free(names[i]);
    }
}

cn_plugins_t *cn_plugins_new(const char *plugin_path)
{
    cn_plugins_t *ps = calloc(1, sizeof *ps);
    if (!ps)
        abort();
    ps->log = cn_logger("samsa.connect.plugins");
    add(ps, &cn_file_source_plugin, "builtin");
    add(ps, &cn_file_sink_plugin, "builtin");
    add(ps, &cn_jdbc_source_plugin, "builtin");
    add(ps, &cn_jdbc_sink_plugin, "builtin");
    if (!plugin_path)
        return ps;
    char *copy = strdup(plugin_path), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t n = strlen(tok);
        while (n && tok[n - 1] == ' ')
            tok[--n] = 0;
        if (!n)
            continue;
        struct stat st;
        if (stat(tok, &st) != 0)
            CN_WARN(ps->log, "plugin.path entry %s does not exist; skipped", tok);
        else if (S_ISDIR(st.st_mode))
            scan_dir(ps, tok, 0);
        else
            load_so(ps, tok);
    }
    free(copy);
    return ps;
}

void cn_plugins_free(cn_plugins_t *ps)
{
    if (!ps)
        return;
    for (int i = 0; i < ps->n; i++)
        free(ps->e[i].location);
    /* Shared objects stay loaded until exit: a plugin's strings may still be referenced. */
    free(ps);
}

const samsa_connect_plugin_t *cn_plugins_find(cn_plugins_t *ps, const char *name)
{
    if (!name || !*name)
        return NULL;
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->e[i].p->class_name, name) == 0)
            return ps->e[i].p;
    for (int i = 0; i < ps->n; i++) {
        const samsa_connect_plugin_t *p = ps->e[i].p;
        if (p->aliases)
            for (int k = 0; p->aliases[k]; k++)
                if (strcmp(p->aliases[k], name) == 0)
                    return p;
        const char *s = simple_name(p->class_name);
        if (strcmp(s, name) == 0)
            return p;
        size_t sl = strlen(s), nl = strlen(name);
        if (sl > 9 && strcmp(s + sl - 9, "Connector") == 0 && nl == sl - 9 &&
            strncmp(s, name, nl) == 0)
            return p;
    }
    return NULL;
}

json_t *cn_plugins_list(cn_plugins_t *ps, bool connectors_only)
{
    json_t *a = json_array();
    for (int i = 0; i < ps->n; i++) {
        const samsa_connect_plugin_t *p = ps->e[i].p;
        json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "class", p->class_name, "type",
                                           p->type == SAMSA_CONNECT_SOURCE ? "source" : "sink",
                                           "version", p->version ? p->version : CN_VERSION));
    }
    if (!connectors_only) {
        for (int i = 0; cn_converter_classes[i]; i++) {
            json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "class", cn_converter_classes[i],
                                               "type", "converter", "version", CN_VERSION));
            json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "class", cn_converter_classes[i],
                                               "type", "header_converter", "version", CN_VERSION));
        }
        json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "class",
                                           "org.apache.kafka.connect.storage.SimpleHeaderConverter",
                                           "type", "header_converter", "version", CN_VERSION));
        cn_smt_plugins_list(a);
    }
    return a;
}

char *cn_plugins_names(cn_plugins_t *ps)
{
    size_t cap = 1;
    for (int i = 0; i < ps->n; i++)
        cap += strlen(ps->e[i].p->class_name) + 2;
    char *s = calloc(1, cap);
    if (!s)
        abort();
    for (int i = 0; i < ps->n; i++) {
        if (i)
            strcat(s, ", ");
        strcat(s, ps->e[i].p->class_name);
    }
    return s;
}
