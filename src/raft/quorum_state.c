/*
 * quorum_state.c - reading and writing Kafka's quorum-state file (format: quorum_state.h).
 *
 * The JSON layout follows Kafka's FileQuorumStateStore: the QuorumStateData fields of the
 * version, in schema order (ClusterId v0, LeaderId, LeaderEpoch, VotedId, VotedDirectoryId
 * v1+, AppliedOffset v0, CurrentVoters v0), then "data_version". A Uuid is written in
 * Kafka's text form (URL-safe base64 without padding, 22 characters); the small codec here
 * matches src/meta/uuid.c, which src/raft may not include.
 */
#include "quorum_state.h"

#include "json.h"
#include "log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMP_SUFFIX ".tmp"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 16 bytes -> 22 characters + NUL */
static void uuid_to_text(const sm_uuid_t *u, char out[23])
{
    size_t o = 0;
    for (int i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)u->b[i] << 16;
        if (i + 1 < 16)
            v |= (uint32_t)u->b[i + 1] << 8;
        if (i + 2 < 16)
            v |= u->b[i + 2];
        int chars = i + 2 < 16 ? 4 : 2; /* the last group holds one byte: 2 characters */
        for (int k = 0; k < chars; k++)
            out[o++] = b64url[(v >> (18 - 6 * k)) & 63];
    }
    out[o] = '\0';
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

/* 22 characters (or 24 ending in "==") -> 16 bytes; false if malformed. */
static bool uuid_from_text(const char *s, size_t len, sm_uuid_t *u)
{
    if (len == 24 && s[22] == '=' && s[23] == '=')
        len = 22;
    if (len != 22)
        return false;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < 22; i++) {
        int v = b64val(s[i]);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            u->b[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* 22 * 6 = 132 bits: 4 trailing bits that must be zero (canonical form) */
    return o == 16 && (acc & 0xf) == 0;
}

void sm_quorum_state_init(sm_quorum_state_t *s)
{
    memset(s, 0, sizeof *s);
    s->data_version = 1;
    s->leader_id = -1;
    s->leader_epoch = 0;
    s->voted_id = -1;
    s->current_voters_count = -1;
}

void sm_quorum_state_free(sm_quorum_state_t *s)
{
    free(s->cluster_id);
    free(s->current_voters);
    sm_quorum_state_init(s);
}

static void put(sm_wbuf_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sm_wbuf_t *w, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    SM_ASSERT(n >= 0 && (size_t)n < sizeof buf);
    sm_wbuf_bytes(w, buf, (size_t)n);
}

void sm_quorum_state_format(const sm_quorum_state_t *s, int16_t version, sm_wbuf_t *w)
{
    SM_ASSERT(version == 0 || version == 1);
    put(w, "{");
    if (version == 0) {
        put(w, "\"clusterId\":");
        const char *cid = s->cluster_id ? s->cluster_id : "";
        sm_json_write_str(w, cid, strlen(cid));
        put(w, ",");
    }
    put(w, "\"leaderId\":%" PRId32 ",\"leaderEpoch\":%" PRId32 ",\"votedId\":%" PRId32, s->leader_id,
        s->leader_epoch, s->voted_id);
    if (version >= 1) {
        char u[23];
        uuid_to_text(&s->voted_directory_id, u);
        put(w, ",\"votedDirectoryId\":\"%s\"", u);
    }
    if (version == 0) {
        put(w, ",\"appliedOffset\":%" PRId64 ",\"currentVoters\":", s->applied_offset);
        if (s->current_voters_count < 0) {
            put(w, "null");
        } else {
            put(w, "[");
            for (int32_t i = 0; i < s->current_voters_count; i++)
                put(w, "%s{\"voterId\":%" PRId32 "}", i ? "," : "", s->current_voters[i]);
            put(w, "]");
        }
    }
    put(w, ",\"data_version\":%d}", version);
}

/* ---------------------------------------------------------------- strict reading */

typedef struct reader {
    const char *text;
    size_t len;
    const char *file;
    char *why;
    size_t why_cap;
} reader_t;

static sm_err_t bad(const reader_t *r, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static sm_err_t bad(const reader_t *r, size_t off, const char *fmt, ...)
{
    if (r->why && r->why_cap) {
        int line, col;
        sm_json_line_col(r->text, r->len, off, &line, &col);
        int n = snprintf(r->why, r->why_cap, "%s: line %d, column %d: ", r->file, line, col);
        if (n >= 0 && (size_t)n < r->why_cap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(r->why + n, r->why_cap - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return SM_ERR_CORRUPT;
}

static const char *article(const char *word) { return strchr("aeiou", word[0]) ? "an" : "a"; }

/* The member `name` of obj, required (in data_version `version`; -1: in every version), of
 * type t; duplicates refused. */
static sm_err_t member(const reader_t *r, const sm_json_t *obj, const char *name, sm_json_type_t t,
                       int16_t version, const sm_json_t **out)
{
    const sm_json_t *m = sm_json_member(obj, name);
    if (!m && version < 0)
        return bad(r, obj->off, "missing field \"%s\"", name);
    if (!m)
        return bad(r, obj->off, "missing field \"%s\" (required in data_version %d)", name, version);
    if (sm_json_member_count(obj, name) > 1) {
        for (const sm_json_t *d = m->next; d; d = d->next)
            if (d->key_len == m->key_len && memcmp(d->key, m->key, m->key_len) == 0)
                return bad(r, d->off, "field \"%s\" appears twice", name);
    }
    if (m->type != t) {
        const char *want = t == SM_JSON_NUMBER ? "integer" : sm_json_type_name(t);
        const char *have = sm_json_type_name(m->type);
        return bad(r, m->off, "field \"%s\" must be %s %s, not %s %s", name, article(want), want,
                   article(have), have);
    }
    *out = m;
    return SM_OK;
}

static sm_err_t int_member(const reader_t *r, const sm_json_t *obj, const char *name, int64_t lo,
                           int64_t hi, int16_t version, int64_t *out)
{
    const sm_json_t *m;
    sm_err_t err = member(r, obj, name, SM_JSON_NUMBER, version, &m);
    if (err)
        return err;
    if (!m->is_int)
        return bad(r, m->off, "field \"%s\" must be an integer", name);
    if (m->i < lo || m->i > hi)
        return bad(r, m->off, "field \"%s\" is %" PRId64 ", outside [%" PRId64 ", %" PRId64 "]",
                   name, m->i, lo, hi);
    *out = m->i;
    return SM_OK;
}

static sm_err_t parse_voters(const reader_t *r, const sm_json_t *arr, sm_quorum_state_t *out)
{
    if (arr->type == SM_JSON_NULL) {
        out->current_voters_count = -1;
        return SM_OK;
    }
    out->current_voters = sm_xcalloc(arr->count ? arr->count : 1, sizeof(int32_t));
    out->current_voters_count = 0;
    for (const sm_json_t *v = arr->child; v; v = v->next) {
        if (v->type != SM_JSON_OBJECT)
            return bad(r, v->off, "each of \"currentVoters\" must be an object, not %s %s",
                       article(sm_json_type_name(v->type)), sm_json_type_name(v->type));
        int64_t id;
        sm_err_t err = int_member(r, v, "voterId", 0, INT32_MAX, 0, &id);
        if (err)
            return err;
        out->current_voters[out->current_voters_count++] = (int32_t)id;
    }
    return SM_OK;
}

sm_err_t sm_quorum_state_parse(const char *text, size_t len, const char *file,
                               sm_quorum_state_t *out, char *why, size_t why_cap)
{
    reader_t r = {text, len, file ? file : SM_QUORUM_STATE_FILE, why, why_cap};
    sm_quorum_state_init(out);
    if (why && why_cap)
        why[0] = '\0';
    if (len > SM_QUORUM_STATE_MAX_BYTES)
        return bad(&r, 0, "%zu bytes, more than a quorum-state file may have (%d)", len,
                   SM_QUORUM_STATE_MAX_BYTES);
    sm_arena_t a;
    sm_arena_init(&a);
    const sm_json_t *root;
    sm_json_err_t jerr;
    sm_err_t err = SM_OK;
    if (sm_json_parse(text, len, &a, &root, &jerr) != SM_OK) {
        err = bad(&r, jerr.off, "not valid JSON: %s", jerr.msg);
        goto out;
    }
    if (root->type != SM_JSON_OBJECT) {
        err = bad(&r, root->off, "expected a JSON object, found %s %s",
                  article(sm_json_type_name(root->type)), sm_json_type_name(root->type));
        goto out;
    }
    int64_t ver, v;
    if ((err = int_member(&r, root, "data_version", INT16_MIN, INT16_MAX, -1, &ver)))
        goto out;
    if (ver != 0 && ver != 1) {
        err = bad(&r, sm_json_member(root, "data_version")->off,
                  "unknown data_version %" PRId64 " (this build reads 0 and 1)", ver);
        goto out;
    }
    out->data_version = (int16_t)ver;
    int16_t dv = out->data_version;
    if ((err = int_member(&r, root, "leaderId", -1, INT32_MAX, dv, &v)))
        goto out;
    out->leader_id = (int32_t)v;
    if ((err = int_member(&r, root, "leaderEpoch", 0, INT32_MAX, dv, &v)))
        goto out;
    out->leader_epoch = (int32_t)v;
    if ((err = int_member(&r, root, "votedId", -1, INT32_MAX, dv, &v)))
        goto out;
    out->voted_id = (int32_t)v;
    if (dv >= 1) {
        const sm_json_t *m;
        if ((err = member(&r, root, "votedDirectoryId", SM_JSON_STRING, dv, &m)))
            goto out;
        if (!uuid_from_text(m->str, m->str_len, &out->voted_directory_id)) {
            err = bad(&r, m->off, "field \"votedDirectoryId\" is not a Kafka Uuid (22 characters "
                                  "of URL-safe base64)");
            goto out;
        }
    } else {
        const sm_json_t *m;
        if ((err = member(&r, root, "clusterId", SM_JSON_STRING, dv, &m)))
            goto out;
        out->cluster_id = sm_xstrndup(m->str, m->str_len);
        if ((err = int_member(&r, root, "appliedOffset", INT64_MIN, INT64_MAX, dv, &v)))
            goto out;
        out->applied_offset = v;
        m = sm_json_member(root, "currentVoters");
        if (!m) {
            err = bad(&r, root->off, "missing field \"currentVoters\" (required in data_version 0)");
            goto out;
        }
        if (m->type != SM_JSON_ARRAY && m->type != SM_JSON_NULL) {
            err = bad(&r, m->off, "field \"currentVoters\" must be an array or null, not %s %s",
                      article(sm_json_type_name(m->type)), sm_json_type_name(m->type));
            goto out;
        }
        if (sm_json_member_count(root, "currentVoters") > 1) {
            err = bad(&r, m->off, "field \"currentVoters\" appears twice");
            goto out;
        }
        if ((err = parse_voters(&r, m, out)))
            goto out;
    }
out:
    sm_arena_free(&a);
    if (err)
        sm_quorum_state_free(out);
    return err;
}

/* ---------------------------------------------------------------- files */

static bool path_of(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < cap;
}

sm_err_t sm_quorum_state_read(const sm_raft_fs_t *fs, const char *dir, sm_quorum_state_t *out,
                              char *why, size_t why_cap)
{
    char path[PATH_MAX];
    sm_quorum_state_init(out);
    if (why && why_cap)
        why[0] = '\0';
    if (!path_of(path, sizeof path, dir, SM_QUORUM_STATE_FILE))
        return SM_ERR_INVALID;
    int fd;
    sm_err_t err = fs->open(path, O_RDONLY, &fd);
    if (err)
        return err; /* SM_ERR_NOT_FOUND: a voter that never wrote its state */
    int64_t size;
    char *text = NULL;
    if ((err = fs->size(fd, &size)))
        goto out;
    if (size > SM_QUORUM_STATE_MAX_BYTES) {
        if (why && why_cap)
            snprintf(why, why_cap, "%s: %" PRId64 " bytes, more than a quorum-state file may have",
                     path, size);
        err = SM_ERR_CORRUPT;
        goto out;
    }
    text = sm_xmalloc((size_t)size + 1);
    size_t got;
    if ((err = fs->pread(fd, text, (size_t)size, 0, &got)))
        goto out;
    err = sm_quorum_state_parse(text, got, path, out, why, why_cap);
    if (err)
        SM_ERROR("raft", "cannot read the quorum state: %s", why && why_cap ? why : path);
out:
    free(text);
    fs->close(fd);
    return err;
}

sm_err_t sm_quorum_state_write(const sm_raft_fs_t *fs, const char *dir, const sm_quorum_state_t *s,
                               int16_t version)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    if (!path_of(path, sizeof path, dir, SM_QUORUM_STATE_FILE) ||
        !path_of(tmp, sizeof tmp, dir, SM_QUORUM_STATE_FILE TMP_SUFFIX))
        return SM_ERR_INVALID;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_quorum_state_format(s, version, &w);
    int fd;
    sm_err_t err = fs->open(tmp, O_WRONLY | O_CREAT | O_TRUNC, &fd);
    if (err)
        goto out;
    err = fs->pwrite(fd, w.mem, w.len, 0);
    if (!err)
        err = fs->datasync(fd); /* the new state is on disk before it can replace the old */
    fs->close(fd);
    if (!err)
        err = fs->rename(tmp, path);
    if (err) {
        (void)fs->unlink(tmp);
        goto out;
    }
    err = fs->sync_dir(dir); /* the rename itself is durable */
out:
    if (err)
        SM_ERROR("raft", "writing %s (epoch %" PRId32 ", leader %" PRId32 ", voted %" PRId32
                         ") failed: %s",
                 path, s->leader_epoch, s->leader_id, s->voted_id, sm_err_str(err));
    sm_wbuf_free(&w);
    return err;
}
