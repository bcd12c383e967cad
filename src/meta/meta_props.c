/*
 * meta_props.c - reading, writing and checking meta.properties (see
 * meta_props.h). The parser accepts the subset of properties syntax that
 * Kafka itself writes (key=value lines, '#' / '!' comments); anything else in
 * the file is an error naming the line, since a damaged identity file must
 * never be guessed at. Blocking file I/O through the storage seam; any thread.
 */
#include "meta_props.h"

#include "file.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TAG "meta"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool parse_int(const char *s, int32_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

static bool valid_uuid_str(const char *s)
{
    sm_uuid_t u;
    return sm_uuid_parse(s, strlen(s), &u) == SM_OK;
}

sm_err_t sm_meta_props_read(const char *log_dir, sm_meta_props_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->version = -1;
    out->node_id = -1;
    char *path = sm_xasprintf("%s/%s", log_dir, SM_META_PROPS_FILE);
    int fd;
    sm_err_t rc;
    char buf[4096];
    size_t got = 0;
    int broker_id = -1;
    /* probe first so a missing file (the normal first start) is not
     * logged as an I/O failure by the file layer */
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        rc = SM_ERR_NOT_FOUND;
        set_err(err, errlen, "%s does not exist", path);
        goto out;
    }
    if ((rc = sm_file_open(path, O_RDONLY, &fd))) {
        set_err(err, errlen, "cannot open %s: %s", path, sm_err_str(rc));
        goto out;
    }
    rc = sm_file_pread(fd, buf, sizeof buf - 1, 0, &got);
    sm_file_close(fd);
    if (rc) {
        set_err(err, errlen, "cannot read %s", path);
        goto out;
    }
    if (got == sizeof buf - 1) {
        set_err(err, errlen, "%s: file too large for a meta.properties", path);
        rc = SM_ERR_PARSE;
        goto out;
    }
    buf[got] = 0;
    int lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        size_t n = strlen(line);
        while (n && isspace((unsigned char)line[n - 1]))
            line[--n] = 0;
        while (isspace((unsigned char)*line))
            line++;
        if (!*line || *line == '#' || *line == '!')
            continue;
        char *eq = strchr(line, '=');
        if (!eq) {
            set_err(err, errlen, "%s:%d: expected key=value", path, lineno);
            rc = SM_ERR_PARSE;
            goto out;
        }
        *eq = 0;
        const char *key = line, *val = eq + 1;
        bool ok = true;
        if (strcmp(key, "version") == 0) {
            int32_t v;
            ok = parse_int(val, &v) && (v == 0 || v == 1);
            out->version = v;
        } else if (strcmp(key, "node.id") == 0) {
            ok = parse_int(val, &out->node_id) && out->node_id >= 0;
        } else if (strcmp(key, "broker.id") == 0) {
            ok = parse_int(val, &broker_id) && broker_id >= 0;
        } else if (strcmp(key, "cluster.id") == 0) {
            ok = strlen(val) < sizeof out->cluster_id && *val;
            if (ok)
                snprintf(out->cluster_id, sizeof out->cluster_id, "%s", val);
        } else if (strcmp(key, "directory.id") == 0) {
            ok = valid_uuid_str(val);
            if (ok)
                snprintf(out->directory_id, sizeof out->directory_id, "%s", val);
        } /* other keys: kept by Kafka for forward compatibility, ignored */
        if (!ok) {
            set_err(err, errlen, "%s:%d: invalid value %s for %s", path, lineno, val, key);
            rc = SM_ERR_INVALID;
            goto out;
        }
    }
    if (out->version < 0) {
        set_err(err, errlen, "%s: missing version", path);
        rc = SM_ERR_INVALID;
        goto out;
    }
    if (out->node_id < 0 && out->version == 0)
        out->node_id = broker_id;
    if (out->node_id < 0) {
        set_err(err, errlen, "%s: missing node.id", path);
        rc = SM_ERR_INVALID;
        goto out;
    }
    if (!out->cluster_id[0]) {
        set_err(err, errlen, "%s: missing cluster.id", path);
        rc = SM_ERR_INVALID;
        goto out;
    }
    rc = SM_OK;
out:
    free(path);
    return rc;
}

sm_err_t sm_meta_props_write(const char *log_dir, int32_t node_id, const char *cluster_id,
                             char *err, size_t errlen)
{
    if (!valid_uuid_str(cluster_id)) {
        set_err(err, errlen, "cluster id %s is not a valid Kafka Uuid (22 base64url chars)",
                cluster_id);
        return SM_ERR_INVALID;
    }
    sm_err_t rc = sm_file_mkdirs(log_dir);
    if (rc) {
        set_err(err, errlen, "cannot create log directory %s: %s", log_dir, sm_err_str(rc));
        return rc;
    }
    sm_uuid_t dir_id;
    sm_uuid_random(&dir_id);
    char dir_str[SM_CLUSTER_ID_SIZE];
    char *text = sm_xasprintf("#\n#Written by samsa\ncluster.id=%s\ndirectory.id=%s\n"
                              "node.id=%d\nversion=1\n",
                              cluster_id, sm_uuid_to_str(&dir_id, dir_str), node_id);
    rc = sm_file_write_atomic(log_dir, SM_META_PROPS_FILE, text, strlen(text));
    free(text);
    if (rc)
        set_err(err, errlen, "cannot write %s/%s: %s", log_dir, SM_META_PROPS_FILE,
                sm_err_str(rc));
    return rc;
}

sm_err_t sm_meta_props_ensure(const char *log_dir, int32_t node_id, const char *cluster_id_or_NULL,
                              char *cluster_id_out, char *err, size_t errlen)
{
    sm_meta_props_t props;
    sm_err_t rc = sm_meta_props_read(log_dir, &props, err, errlen);
    if (rc == SM_ERR_NOT_FOUND) {
        char fresh[SM_CLUSTER_ID_SIZE];
        const char *cid = cluster_id_or_NULL;
        if (!cid) {
            sm_uuid_t u;
            sm_uuid_random(&u);
            cid = sm_uuid_to_str(&u, fresh);
        }
        if ((rc = sm_meta_props_write(log_dir, node_id, cid, err, errlen)))
            return rc;
        SM_INFO(TAG, "formatted %s: cluster.id=%s node.id=%d", log_dir, cid, node_id);
        snprintf(cluster_id_out, SM_CLUSTER_ID_SIZE, "%s", cid);
        return SM_OK;
    }
    if (rc)
        return rc;
    if (props.node_id != node_id) {
        set_err(err, errlen,
                "%s/%s has node.id=%d but this node is configured with node.id=%d; "
                "the directory belongs to another node",
                log_dir, SM_META_PROPS_FILE, props.node_id, node_id);
        return SM_ERR_INVALID;
    }
    if (cluster_id_or_NULL && strcmp(cluster_id_or_NULL, props.cluster_id) != 0) {
        set_err(err, errlen,
                "%s/%s has cluster.id=%s but the expected cluster.id is %s; the directory "
                "belongs to another cluster",
                log_dir, SM_META_PROPS_FILE, props.cluster_id, cluster_id_or_NULL);
        return SM_ERR_INVALID;
    }
    snprintf(cluster_id_out, SM_CLUSTER_ID_SIZE, "%s", props.cluster_id);
    return SM_OK;
}
