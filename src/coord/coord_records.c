/*
 * coord_records.c - __consumer_offsets record encoding/decoding and group
 * partitioning (see coord_records.h). The record schemas come from the
 * generated codecs (coordinator_records.def); this file adds the int16
 * version prefix Kafka puts in front of every key and value.
 */
#include "coord_records.h"

#include <string.h>

/* ------------------------------------------------------------ partitioning */

/* Next Unicode scalar from UTF-8; malformed input yields U+FFFD and consumes
 * one byte (what Java's decoder does for a bad lead byte). */
static uint32_t utf8_next(const uint8_t *p, size_t len, size_t *i)
{
    uint8_t c = p[*i];
    int need;
    uint32_t cp, min;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if ((c & 0xe0) == 0xc0) {
        need = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        need = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        need = 3, cp = c & 0x07, min = 0x10000;
    } else {
        (*i)++;
        return 0xfffd;
    }
    if (*i + (size_t)need >= len) {
        (*i)++;
        return 0xfffd;
    }
    for (int k = 1; k <= need; k++) {
        uint8_t cc = p[*i + (size_t)k];
        if ((cc & 0xc0) != 0x80) {
            (*i)++;
            return 0xfffd;
        }
        cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        (*i)++;
        return 0xfffd;
    }
    *i += (size_t)need + 1;
    return cp;
}

int32_t sm_coord_partition_for(const char *group_id, size_t len, int32_t nparts)
{
    const uint8_t *p = (const uint8_t *)group_id;
    uint32_t h = 0; /* Java int arithmetic wraps: do it unsigned */
    for (size_t i = 0; i < len;) {
        uint32_t cp = utf8_next(p, len, &i);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = h * 31u + (0xd800u + (cp >> 10));
            h = h * 31u + (0xdc00u + (cp & 0x3ff));
        } else {
            h = h * 31u + cp;
        }
    }
    int32_t s = (int32_t)h;
    int32_t a = s == INT32_MIN ? 0 : (s < 0 ? -s : s); /* Kafka's Utils.abs */
    return nparts > 0 ? a % nparts : 0;
}

/* ------------------------------------------------------------ encoding */

static void finish(sm_arena_t *a, sm_wbuf_t *w, uint8_t **out, int32_t *out_len)
{
    *out = sm_arena_alloc(a, w->len ? w->len : 1);
    memcpy(*out, w->mem, w->len);
    *out_len = (int32_t)w->len;
}

void sm_coord_record_offset(sm_arena_t *a, const char *group, const char *topic,
                            size_t topic_len, int32_t partition, const sm_offset_value_t *v,
                            sm_coord_kv_t *out)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_offset_commit_key_t k;
    sm_offset_commit_key_init(&k);
    k.group = sm_str(group);
    k.topic = sm_str_n(topic, (int32_t)topic_len);
    k.partition = partition;
    sm_wbuf_i16(&w, 1);
    sm_offset_commit_key_encode(&w, 1, &k);
    finish(a, &w, &out->key, &out->key_len);
    out->value = NULL;
    out->value_len = -1;
    if (v) {
        sm_wbuf_reset(&w);
        sm_offset_commit_value_t val;
        sm_offset_commit_value_init(&val);
        val.offset = v->offset;
        val.leader_epoch = v->leader_epoch;
        val.metadata = sm_str_n(v->metadata ? v->metadata : "",
                                v->metadata ? (int32_t)v->metadata_len : 0);
        val.commit_timestamp = v->commit_ms;
        val.expire_timestamp = v->expire_ms;
        int16_t ver = v->expire_ms >= 0 ? 1 : 3;
        sm_wbuf_i16(&w, ver);
        sm_offset_commit_value_encode(&w, ver, &val);
        finish(a, &w, &out->value, &out->value_len);
    }
    sm_wbuf_free(&w);
}

void sm_coord_record_group(sm_arena_t *a, const sm_group_t *g, bool tombstone, sm_coord_kv_t *out)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_group_metadata_key_t k;
    sm_group_metadata_key_init(&k);
    k.group = sm_str(g->id);
    sm_wbuf_i16(&w, 2);
    sm_group_metadata_key_encode(&w, 2, &k);
    finish(a, &w, &out->key, &out->key_len);
    out->value = NULL;
    out->value_len = -1;
    if (!tombstone) {
        sm_wbuf_reset(&w);
        sm_group_metadata_value_t val;
        sm_group_metadata_value_init(&val);
        val.protocol_type = sm_str(g->protocol_type ? g->protocol_type : "");
        val.generation = g->generation;
        val.protocol = sm_str(g->protocol_name);
        val.leader = sm_str(g->leader_id);
        val.current_state_timestamp = g->state_wall_ms;
        val.members_count = g->nmembers;
        val.members = SM_ARENA_NEW(a, sm_group_metadata_value_member_metadata_t,
                                   g->nmembers ? g->nmembers : 1);
        for (int32_t i = 0; i < g->nmembers; i++) {
            const sm_group_member_t *m = g->members[i];
            sm_group_metadata_value_member_metadata_t *mm = &val.members[i];
            sm_group_metadata_value_member_metadata_init(mm);
            mm->member_id = sm_str(m->id);
            mm->group_instance_id = sm_str(m->instance_id);
            mm->client_id = sm_str_n(m->client_id, (int32_t)m->client_id_len);
            mm->client_host = sm_str(m->client_host);
            mm->rebalance_timeout = m->rebalance_timeout_ms;
            mm->session_timeout = m->session_timeout_ms;
            int32_t len;
            const uint8_t *meta = sm_group_member_meta(m, g->protocol_name, &len);
            mm->subscription.ptr = meta ? meta : (const uint8_t *)"";
            mm->subscription.len = meta ? len : 0;
            mm->assignment.ptr = m->assignment ? m->assignment : (const uint8_t *)"";
            mm->assignment.len = m->assignment ? m->assignment_len : 0;
        }
        sm_wbuf_i16(&w, 3);
        sm_group_metadata_value_encode(&w, 3, &val);
        finish(a, &w, &out->value, &out->value_len);
    }
    sm_wbuf_free(&w);
}

/* ------------------------------------------------------------ decoding */

sm_err_t sm_coord_record_decode(const uint8_t *key, int32_t key_len, const uint8_t *value,
                                int32_t value_len, sm_arena_t *a, sm_coord_record_t *out)
{
    memset(out, 0, sizeof *out);
    if (!key || key_len < 2)
        return SM_ERR_PARSE;
    sm_rd_t r;
    sm_rd_init(&r, key, (size_t)key_len);
    int16_t kv = sm_rd_i16(&r);
    sm_err_t err;
    if (kv == 0 || kv == 1) {
        sm_offset_commit_key_t k;
        err = sm_offset_commit_key_decode(&r, a, kv, &k);
        if (err)
            return err;
        out->kind = SM_COORD_REC_OFFSET;
        out->group = k.group;
        out->topic = k.topic;
        out->partition = k.partition;
    } else if (kv == 2) {
        sm_group_metadata_key_t k;
        err = sm_group_metadata_key_decode(&r, a, kv, &k);
        if (err)
            return err;
        out->kind = SM_COORD_REC_GROUP;
        out->group = k.group;
    } else {
        return SM_ERR_NOT_FOUND;
    }
    if (out->group.len < 0 || (out->kind == SM_COORD_REC_OFFSET && out->topic.len < 0))
        return SM_ERR_PARSE;
    if (!value || value_len < 0) {
        out->tombstone = true;
        return SM_OK;
    }
    sm_rd_init(&r, value, (size_t)value_len);
    int16_t vv = sm_rd_i16(&r);
    if (r.err)
        return SM_ERR_PARSE;
    if (out->kind == SM_COORD_REC_OFFSET)
        err = sm_offset_commit_value_decode(&r, a, vv, &out->offset);
    else
        err = sm_group_metadata_value_decode(&r, a, vv, &out->meta);
    return err;
}
