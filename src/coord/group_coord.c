/*
 * group_coord.c - the group coordinator's API, timer thread and lifecycle
 * (see group_coord.h for the role, threads and durability rules;
 * coord_store.c holds the log side).
 *
 * Every API call: lock, check the group's __consumer_offsets partition is
 * loaded, find (or create) the group, step its state machine with the current
 * time, let sm_group_tick() report the group's next deadline and wake the
 * timer thread if it is earlier than the thread's planned wake-up, unlock.
 *
 * The timer thread sleeps until the earliest deadline (at most a second),
 * then runs sm_group_coord_tick(): group timers, loading partitions that were
 * not available at open, offset expiry every offsets.retention.check.interval.ms
 * and snapshots of grown partitions.
 *
 * __consumer_offsets is created on first use (c->topic; the section
 * "__consumer_offsets" below says why and why this way):
 *
 *   ABSENT --first group call--> CREATING --created and loaded--> PRESENT
 *     ^     (topic_want_locked)     |       (create_task, on the
 *     |                             |        controller thread)
 *     +------ creation failed ------+
 *             (no new try for CREATE_RETRY_MS)
 *
 *   open: PRESENT when the topic exists (a restart: loaded as ever), else
 *   ABSENT.
 *
 * The state changes under the mutex, so however many loops see a first
 * request at once, one task creates the topic. No group exists before
 * PRESENT (joins and commits need a loaded partition), which is why ListGroups
 * and DescribeGroups can answer "none" / Dead without creating anything.
 */
#include "coord_internal.h"

#include "log.h"
#include "meta.h"
#include "config.h"
#include "partition/partition.h"
#include "storage/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMER_MAX_SLEEP_MS 1000

sm_group_time_t sm_coord_now(void)
{
    sm_group_time_t t = {sm_now_mono_ms(), sm_now_wall_ms()};
    return t;
}

/* ------------------------------------------------------------ groups map */

sm_group_t *sm_coord_group_create(sm_group_coord_t *c, const char *id, size_t len,
                                  sm_group_time_t now)
{
    char *name = sm_xstrndup(id, len);
    sm_group_t *g = sm_group_new(name, &c->env, now);
    free(name);
    g->partition = sm_coord_partition_for(id, len, c->cfg.num_partitions);
    sm_hmap_put(&c->groups, id, len, g);
    return g;
}

void sm_coord_group_drop(sm_group_coord_t *c, sm_group_t *g, int16_t error)
{
    sm_group_unload(g, error);
    sm_hmap_del(&c->groups, g->id, strlen(g->id));
    sm_group_free(g);
}

static sm_group_t *group_get(sm_group_coord_t *c, const char *id)
{
    return sm_hmap_get(&c->groups, id, strlen(id));
}

static void topic_want_locked(sm_group_coord_t *c);

static int16_t status_locked(sm_group_coord_t *c, const char *group_id)
{
    if (c->stopping)
        return SM_KERR_NOT_COORDINATOR;
    if (c->topic != SM_COORD_TOPIC_PRESENT) {
        /* A group is being used: this is the first use. Clients retry
         * COORDINATOR_NOT_AVAILABLE through a new FindCoordinator, which
         * waits for the creation (sm_group_coord_await_topic). */
        topic_want_locked(c);
        return SM_KERR_COORDINATOR_NOT_AVAILABLE;
    }
    int32_t part = sm_coord_partition_for(group_id, strlen(group_id), c->cfg.num_partitions);
    /* loaded, and still led here: a leadership that moved a moment ago is
     * noticed now, not at the next tick (appends would be refused) */
    if (sm_coord_part_ready(c, part) && sm_coord_part_led(c, part))
        return SM_KERR_NONE;
    /* Another broker leads the group's partition: the client asks it. */
    return sm_coord_part_led(c, part) ? SM_KERR_COORDINATOR_LOAD_IN_PROGRESS
                                      : SM_KERR_NOT_COORDINATOR;
}

int32_t sm_group_coord_partition_of(sm_group_coord_t *c, const char *group_id)
{
    pthread_mutex_lock(&c->mu);
    int32_t part = c->topic == SM_COORD_TOPIC_PRESENT
                       ? sm_coord_partition_for(group_id, strlen(group_id), c->cfg.num_partitions)
                       : -1;
    pthread_mutex_unlock(&c->mu);
    return part;
}

/* After an event on g: run its due timers and wake the timer thread early if
 * g now has an earlier deadline. */
static void after_event(sm_group_coord_t *c, sm_group_t *g, sm_group_time_t now)
{
    int64_t next = sm_group_tick(g, now);
    if (next < c->event_next_ms)
        c->event_next_ms = next;
    if (next < c->wake_at_ms)
        pthread_cond_signal(&c->cv);
}

int16_t sm_group_coord_status(sm_group_coord_t *c, const char *group_id)
{
    pthread_mutex_lock(&c->mu);
    int16_t err = status_locked(c, group_id);
    pthread_mutex_unlock(&c->mu);
    return err;
}

/* ------------------------------------------------------------ membership */

static void join_fail(sm_group_waiter_t *w, const char *member_id, int16_t err)
{
    sm_group_join_result_t r = {.error = err, .generation = -1, .member_id = member_id};
    w->on_join(w, NULL, &r);
}

void sm_group_coord_join(sm_group_coord_t *c, const char *group_id,
                         const sm_group_join_args_t *a, sm_group_waiter_t *w)
{
    const char *mid = a->member_id ? a->member_id : "";
    if (!group_id[0]) {
        join_fail(w, mid, SM_KERR_INVALID_GROUP_ID);
        return;
    }
    pthread_mutex_lock(&c->mu);
    sm_group_time_t now = sm_coord_now();
    int16_t err = status_locked(c, group_id);
    sm_group_t *g = err ? NULL : group_get(c, group_id);
    if (!err && !g) {
        if (mid[0]) {
            err = SM_KERR_UNKNOWN_MEMBER_ID; /* a member of a group that is gone */
        } else if (a->session_timeout_ms < c->cfg.limits.min_session_timeout_ms ||
                   a->session_timeout_ms > c->cfg.limits.max_session_timeout_ms) {
            err = SM_KERR_INVALID_SESSION_TIMEOUT;
        } else {
            g = sm_coord_group_create(c, group_id, strlen(group_id), now);
        }
    }
    if (err) {
        join_fail(w, mid, err);
    } else {
        sm_group_join(g, a, now, w);
        after_event(c, g, now);
    }
    pthread_mutex_unlock(&c->mu);
}

void sm_group_coord_sync(sm_group_coord_t *c, const char *group_id,
                         const sm_group_sync_args_t *a, sm_group_waiter_t *w)
{
    if (!group_id[0]) {
        w->on_sync(w, NULL, SM_KERR_INVALID_GROUP_ID, NULL, 0);
        return;
    }
    pthread_mutex_lock(&c->mu);
    sm_group_time_t now = sm_coord_now();
    int16_t err = status_locked(c, group_id);
    sm_group_t *g = err ? NULL : group_get(c, group_id);
    if (!err && !g)
        err = SM_KERR_UNKNOWN_MEMBER_ID;
    if (err) {
        w->on_sync(w, NULL, err, NULL, 0);
    } else {
        sm_group_sync(g, a, now, w);
        after_event(c, g, now);
    }
    pthread_mutex_unlock(&c->mu);
}

int16_t sm_group_coord_heartbeat(sm_group_coord_t *c, const char *group_id,
                                 const char *member_id, const char *instance_id,
                                 int32_t generation)
{
    if (!group_id[0])
        return SM_KERR_INVALID_GROUP_ID;
    pthread_mutex_lock(&c->mu);
    sm_group_time_t now = sm_coord_now();
    int16_t err = status_locked(c, group_id);
    sm_group_t *g = err ? NULL : group_get(c, group_id);
    if (!err && !g)
        err = SM_KERR_UNKNOWN_MEMBER_ID;
    if (!err) {
        err = sm_group_heartbeat(g, member_id, instance_id, generation, now);
        after_event(c, g, now);
    }
    pthread_mutex_unlock(&c->mu);
    return err;
}

int16_t sm_group_coord_leave(sm_group_coord_t *c, const char *group_id, sm_group_leaver_t *m,
                             int32_t n)
{
    if (!group_id[0])
        return SM_KERR_INVALID_GROUP_ID;
    pthread_mutex_lock(&c->mu);
    sm_group_time_t now = sm_coord_now();
    int16_t err = status_locked(c, group_id);
    sm_group_t *g = err ? NULL : group_get(c, group_id);
    for (int32_t i = 0; !err && i < n; i++)
        m[i].error = g ? sm_group_leave(g, m[i].member_id, m[i].instance_id, now)
                       : SM_KERR_UNKNOWN_MEMBER_ID;
    if (g)
        after_event(c, g, now);
    pthread_mutex_unlock(&c->mu);
    return err;
}

/* ------------------------------------------------------------ offsets */

static bool partition_exists(const sm_meta_image_t *img, const char *topic, size_t len, int32_t part)
{
    const sm_topic_meta_t *t = img ? sm_meta_image_topic(img, topic, len) : NULL;
    return t && part >= 0 && part < t->npartitions;
}

/* The stored value of one committed partition. */
static sm_offset_value_t commit_value(const sm_group_commit_part_t *p, int64_t now_ms,
                                      int64_t expire_ms, bool txn)
{
    return (sm_offset_value_t){.offset = p->offset,
                               .leader_epoch = p->leader_epoch,
                               .metadata = txn && !p->metadata ? "" : p->metadata,
                               .metadata_len = p->metadata_len,
                               .commit_ms = now_ms,
                               .expire_ms = expire_ms};
}

/* Check each part (err: the whole commit's, or 0) and build the records of
 * the valid ones into kvs; returns how many. */
static int32_t commit_records(sm_group_coord_t *c, const sm_meta_image_t *img,
                              const char *group_id, sm_group_commit_part_t *parts, int32_t n,
                              int16_t err, int64_t now_ms, bool txn, sm_arena_t *a,
                              sm_coord_kv_t *kvs)
{
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        sm_group_commit_part_t *p = &parts[i];
        if (err) {
            p->error = err;
        } else if (!partition_exists(img, p->topic, p->topic_len, p->partition)) {
            p->error = SM_KERR_UNKNOWN_TOPIC_OR_PARTITION;
        } else if (p->metadata && (int64_t)p->metadata_len > c->cfg.metadata_max_bytes) {
            p->error = SM_KERR_OFFSET_METADATA_TOO_LARGE;
        } else {
            p->error = SM_KERR_NONE;
            sm_offset_value_t v = commit_value(p, now_ms, txn ? -1 : p->expire_ms, txn);
            sm_coord_record_offset(a, group_id, p->topic, p->topic_len, p->partition, &v,
                                   &kvs[k++]);
        }
    }
    return k;
}


void sm_group_coord_commit(sm_group_coord_t *c, const char *group_id, int32_t generation,
                           const char *member_id, const char *instance_id,
                           sm_group_commit_part_t *parts, int32_t n)
{
    sm_meta_t *meta = c->host.meta(c->host.ctx);
    sm_meta_image_t *img = meta ? sm_meta_image_get(meta) : NULL;
    pthread_mutex_lock(&c->mu);
    sm_group_time_t now = sm_coord_now();
    int16_t err = status_locked(c, group_id);
    sm_group_t *g = err ? NULL : group_get(c, group_id);
    bool created = false;
    if (!err && !g) {
        if (generation < 0) {
            /* A consumer that only stores offsets: the group holds them. */
            g = sm_coord_group_create(c, group_id, strlen(group_id), now);
            created = true;
        } else {
            err = SM_KERR_ILLEGAL_GENERATION;
        }
    }
    if (!err)
        err = sm_group_commit_check(g, generation, member_id, instance_id);
    sm_arena_t a;
    sm_arena_init(&a);
    sm_coord_kv_t *kvs = sm_xcalloc((size_t)(n > 0 ? n : 1), sizeof *kvs);
    int32_t k = commit_records(c, img, g ? g->id : group_id, parts, n, err, now.wall_ms, false, &a, kvs);
    /* Durable first, then visible, then answered. */
    if (k && sm_coord_append(c, g->partition, kvs, k) != SM_OK) {
        for (int32_t i = 0; i < n; i++)
            if (parts[i].error == SM_KERR_NONE)
                parts[i].error = SM_KERR_COORDINATOR_NOT_AVAILABLE;
    } else {
        for (int32_t i = 0; i < n; i++) {
            sm_group_commit_part_t *p = &parts[i];
            if (p->error != SM_KERR_NONE)
                continue;
            sm_offset_value_t v = commit_value(p, now.wall_ms, p->expire_ms, false);
            sm_offset_table_put(&g->offsets, p->topic, p->topic_len, p->partition, &v);
        }
    }
    if (created && sm_group_is_disposable(g))
        sm_coord_group_drop(c, g, SM_KERR_NONE);
    free(kvs);
    sm_arena_free(&a);
    pthread_mutex_unlock(&c->mu);
    if (img)
        sm_meta_image_put(img);
}

void sm_group_coord_txn_commit(sm_group_coord_t *c, const char *group_id, int64_t pid,
                               int16_t epoch, int32_t generation, const char *member_id,
                               const char *instance_id, sm_group_commit_part_t *parts, int32_t n)
{
    sm_meta_t *meta = c->host.meta(c->host.ctx);
    sm_meta_image_t *img = meta ? sm_meta_image_get(meta) : NULL;
    pthread_mutex_lock(&c->mu);
    sm_group_time_t now = sm_coord_now();
    int16_t err = status_locked(c, group_id);
    sm_group_t *g = err ? NULL : group_get(c, group_id);
    /* with a generation (KIP-447), the member must be the group's current
     * one; without, any producer may commit for the group */
    if (!err && g && generation >= 0)
        err = sm_group_commit_check(g, generation, member_id, instance_id);
    else if (!err && !g && generation >= 0)
        err = SM_KERR_ILLEGAL_GENERATION;
    int32_t part = err ? 0 : sm_coord_partition_for(group_id, strlen(group_id), c->cfg.num_partitions);
    sm_arena_t a;
    sm_arena_init(&a);
    sm_coord_kv_t *kvs = sm_xcalloc((size_t)(n > 0 ? n : 1), sizeof *kvs);
    int32_t k = commit_records(c, img, group_id, parts, n, err, now.wall_ms, true, &a, kvs);
    if (k && sm_coord_append_txn(c, part, kvs, k, pid, epoch) != SM_OK) {
        for (int32_t i = 0; i < n; i++)
            if (parts[i].error == SM_KERR_NONE)
                parts[i].error = SM_KERR_COORDINATOR_NOT_AVAILABLE;
    } else {
        for (int32_t i = 0; i < n; i++) {
            sm_group_commit_part_t *p = &parts[i];
            if (p->error != SM_KERR_NONE)
                continue;
            sm_offset_value_t v = commit_value(p, now.wall_ms, -1, true);
            sm_coord_txn_add(c, pid, part, group_id, strlen(group_id), p->topic, p->topic_len,
                             p->partition, &v);
        }
    }
    free(kvs);
    sm_arena_free(&a);
    pthread_mutex_unlock(&c->mu);
    if (img)
        sm_meta_image_put(img);
}

void sm_group_coord_txn_complete(sm_group_coord_t *c, int32_t part, int64_t pid, bool commit)
{
    pthread_mutex_lock(&c->mu);
    if (part >= 0 && part < c->cfg.num_partitions && c->parts[part].loaded)
        sm_coord_txn_end(c, part, pid, commit, sm_coord_now());
    pthread_mutex_unlock(&c->mu);
}

static void fetch_one(const sm_group_t *g, sm_group_fetch_part_t *p, sm_arena_t *a)
{
    const sm_offset_entry_t *e =
        g ? sm_offset_table_get(&g->offsets, p->topic, strlen(p->topic), p->partition) : NULL;
    p->error = SM_KERR_NONE;
    if (e) {
        p->offset = e->offset;
        p->leader_epoch = e->leader_epoch;
        p->metadata = sm_arena_strndup(a, e->metadata, e->metadata_len);
        p->metadata_len = e->metadata_len;
    } else {
        p->offset = -1;
        p->leader_epoch = -1;
        p->metadata = "";
        p->metadata_len = 0;
    }
}

/* A transaction holds this partition's next offset: UNSTABLE_OFFSET_COMMIT. */
static void mark_unstable(sm_group_coord_t *c, const char *group_id, sm_group_fetch_part_t *p)
{
    if (!sm_coord_txn_pending_offset(c, group_id, p->topic, strlen(p->topic), p->partition))
        return;
    p->offset = -1;
    p->leader_epoch = -1;
    p->metadata = "";
    p->metadata_len = 0;
    p->error = SM_KERR_UNSTABLE_OFFSET_COMMIT;
}

int16_t sm_group_coord_fetch(sm_group_coord_t *c, const char *group_id, sm_group_fetch_part_t *p,
                             int32_t n, bool require_stable, sm_arena_t *a)
{
    pthread_mutex_lock(&c->mu);
    int16_t err = status_locked(c, group_id);
    if (!err) {
        sm_group_t *g = group_get(c, group_id);
        for (int32_t i = 0; i < n; i++) {
            fetch_one(g, &p[i], a);
            if (require_stable && !p[i].error)
                mark_unstable(c, group_id, &p[i]);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return err;
}

int16_t sm_group_coord_fetch_all(sm_group_coord_t *c, const char *group_id, bool require_stable,
                                 sm_arena_t *a, sm_group_fetch_part_t **out, int32_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&c->mu);
    int16_t err = status_locked(c, group_id);
    sm_group_t *g = err ? NULL : group_get(c, group_id);
    if (g) {
        uint32_t cnt;
        sm_offset_entry_t **v = sm_offset_table_sorted(&g->offsets, &cnt);
        sm_group_fetch_part_t *r = SM_ARENA_NEW(a, sm_group_fetch_part_t, cnt ? cnt : 1);
        for (uint32_t i = 0; i < cnt; i++) {
            r[i].topic = sm_arena_strndup(a, v[i]->topic, v[i]->topic_len);
            r[i].partition = v[i]->partition;
            r[i].offset = v[i]->offset;
            r[i].leader_epoch = v[i]->leader_epoch;
            r[i].metadata = sm_arena_strndup(a, v[i]->metadata, v[i]->metadata_len);
            r[i].metadata_len = v[i]->metadata_len;
            r[i].error = SM_KERR_NONE;
            if (require_stable)
                mark_unstable(c, group_id, &r[i]);
        }
        free(v);
        *out = r;
        *n = (int32_t)cnt;
    }
    pthread_mutex_unlock(&c->mu);
    return err;
}

/* Topics the consumer-protocol members of g subscribe to (arena strings). */
static bool group_subscribes(const sm_group_t *g, const char *topic, sm_arena_t *a)
{
    if (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0)
        return false;
    for (int32_t i = 0; i < g->nmembers; i++) {
        int32_t len;
        const uint8_t *meta = sm_group_member_meta(g->members[i], g->protocol_name, &len);
        if (!meta || len < 2)
            continue;
        sm_rd_t r;
        sm_rd_init(&r, meta, (size_t)len);
        int16_t ver = sm_rd_i16(&r);
        sm_consumer_protocol_subscription_t sub;
        if (sm_consumer_protocol_subscription_decode(&r, a, ver > 3 ? 3 : ver, &sub) != SM_OK)
            continue;
        for (int32_t k = 0; k < sub.topics_count; k++)
            if (sm_str_eq(sub.topics[k], topic))
                return true;
    }
    return false;
}

int16_t sm_group_coord_offset_delete(sm_group_coord_t *c, const char *group_id,
                                     sm_group_offset_del_t *p, int32_t n)
{
    pthread_mutex_lock(&c->mu);
    int16_t err = status_locked(c, group_id);
    sm_group_t *g = err ? NULL : group_get(c, group_id);
    if (!err && !g)
        err = SM_KERR_GROUP_ID_NOT_FOUND;
    if (!err && g->state != SM_GROUP_EMPTY &&
        (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0))
        err = SM_KERR_NON_EMPTY_GROUP;
    if (!err) {
        sm_arena_t a;
        sm_arena_init(&a);
        sm_coord_kv_t *kvs = sm_xcalloc((size_t)(n > 0 ? n : 1), sizeof *kvs);
        int32_t k = 0;
        for (int32_t i = 0; i < n; i++) {
            if (g->state != SM_GROUP_EMPTY && group_subscribes(g, p[i].topic, &a)) {
                p[i].error = SM_KERR_GROUP_SUBSCRIBED_TO_TOPIC;
                continue;
            }
            p[i].error = SM_KERR_NONE;
            size_t tl = strlen(p[i].topic);
            if (sm_offset_table_get(&g->offsets, p[i].topic, tl, p[i].partition))
                sm_coord_record_offset(&a, g->id, p[i].topic, tl, p[i].partition, NULL,
                                       &kvs[k++]);
        }
        if (k && sm_coord_append(c, g->partition, kvs, k) != SM_OK) {
            err = SM_KERR_COORDINATOR_NOT_AVAILABLE;
        } else {
            for (int32_t i = 0; i < n; i++)
                if (p[i].error == SM_KERR_NONE)
                    (void)sm_offset_table_del(&g->offsets, p[i].topic, strlen(p[i].topic),
                                              p[i].partition);
        }
        free(kvs);
        sm_arena_free(&a);
    }
    pthread_mutex_unlock(&c->mu);
    return err;
}

/* ------------------------------------------------------------ admin */

void sm_group_coord_describe(sm_group_coord_t *c, const char *group_id, sm_arena_t *a,
                             sm_group_desc_t *out)
{
    memset(out, 0, sizeof *out);
    out->state = "Dead";
    out->protocol_type = "";
    out->protocol = "";
    pthread_mutex_lock(&c->mu);
    /* No topic, no groups: Dead, without creating 50 partitions for a look. */
    out->error = c->topic == SM_COORD_TOPIC_PRESENT || c->stopping ? status_locked(c, group_id)
                                                                   : SM_KERR_NONE;
    sm_group_t *g = out->error ? NULL : group_get(c, group_id);
    if (g) {
        bool stable = g->state == SM_GROUP_STABLE;
        out->state = sm_group_state_name(g->state);
        out->protocol_type = sm_arena_strndup(a, g->protocol_type ? g->protocol_type : "",
                                              g->protocol_type ? strlen(g->protocol_type) : 0);
        if (stable && g->protocol_name)
            out->protocol = sm_arena_strndup(a, g->protocol_name, strlen(g->protocol_name));
        out->nmembers = g->nmembers;
        out->members = SM_ARENA_NEW(a, sm_group_desc_member_t, g->nmembers ? g->nmembers : 1);
        for (int32_t i = 0; i < g->nmembers; i++) {
            const sm_group_member_t *m = g->members[i];
            sm_group_desc_member_t *d = &out->members[i];
            d->member_id = sm_arena_strndup(a, m->id, strlen(m->id));
            d->instance_id =
                m->instance_id ? sm_arena_strndup(a, m->instance_id, strlen(m->instance_id)) : NULL;
            d->client_id = sm_arena_strndup(a, m->client_id, m->client_id_len);
            d->client_id_len = m->client_id_len;
            d->client_host = sm_arena_strndup(a, m->client_host, strlen(m->client_host));
            if (stable) {
                /* Kafka shows metadata and assignment only for a stable group. */
                int32_t len;
                const uint8_t *meta = sm_group_member_meta(m, g->protocol_name, &len);
                uint8_t *mc = sm_arena_alloc(a, (size_t)len + 1);
                if (meta && len > 0)
                    memcpy(mc, meta, (size_t)len);
                d->metadata = mc;
                d->metadata_len = meta ? len : 0;
                uint8_t *ac = sm_arena_alloc(a, (size_t)m->assignment_len + 1);
                if (m->assignment_len)
                    memcpy(ac, m->assignment, (size_t)m->assignment_len);
                d->assignment = ac;
                d->assignment_len = m->assignment_len;
            } else {
                d->metadata = d->assignment = (const uint8_t *)"";
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
}

int16_t sm_group_coord_list(sm_group_coord_t *c, uint32_t state_mask, sm_arena_t *a,
                            sm_group_listing_t **out, int32_t *n)
{
    pthread_mutex_lock(&c->mu);
    /* Without the topic there are no groups: an empty list (as Kafka), and
     * the topic is not created for it. */
    int16_t err = c->stopping                            ? SM_KERR_COORDINATOR_NOT_AVAILABLE
                  : c->topic != SM_COORD_TOPIC_PRESENT ? SM_KERR_NONE
                  : c->nunloaded                       ? SM_KERR_COORDINATOR_LOAD_IN_PROGRESS
                                                       : SM_KERR_NONE;
    size_t cap = c->groups.count ? c->groups.count : 1;
    sm_group_listing_t *r = SM_ARENA_NEW(a, sm_group_listing_t, cap);
    int32_t k = 0;
    for (sm_hmap_entry_t *e = NULL; !err && (e = sm_hmap_next(&c->groups, e));) {
        const sm_group_t *g = e->value;
        if (state_mask && !(state_mask & (1u << g->state)))
            continue;
        r[k].group_id = sm_arena_strndup(a, g->id, strlen(g->id));
        r[k].protocol_type = g->protocol_type
                                 ? sm_arena_strndup(a, g->protocol_type, strlen(g->protocol_type))
                                 : "";
        r[k].state = sm_group_state_name(g->state);
        k++;
    }
    pthread_mutex_unlock(&c->mu);
    *out = r;
    *n = k;
    return err;
}

int16_t sm_group_coord_delete(sm_group_coord_t *c, const char *group_id)
{
    pthread_mutex_lock(&c->mu);
    int16_t err = status_locked(c, group_id);
    sm_group_t *g = err ? NULL : group_get(c, group_id);
    if (!err && !g)
        err = SM_KERR_GROUP_ID_NOT_FOUND;
    if (!err && (g->state != SM_GROUP_EMPTY || g->npending))
        err = SM_KERR_NON_EMPTY_GROUP;
    if (!err) {
        /* Tombstones for every offset and the group, in one batch. */
        sm_arena_t a;
        sm_arena_init(&a);
        uint32_t cnt;
        sm_offset_entry_t **v = sm_offset_table_sorted(&g->offsets, &cnt);
        sm_coord_kv_t *kvs = sm_xcalloc(cnt + 1, sizeof *kvs);
        for (uint32_t i = 0; i < cnt; i++)
            sm_coord_record_offset(&a, g->id, v[i]->topic, v[i]->topic_len, v[i]->partition,
                                   NULL, &kvs[i]);
        sm_coord_record_group(&a, g, true, &kvs[cnt]);
        if (sm_coord_append(c, g->partition, kvs, (int32_t)cnt + 1) != SM_OK) {
            err = SM_KERR_COORDINATOR_NOT_AVAILABLE;
        } else {
            SM_INFO("coord", "group %s deleted (%u offsets)", g->id, cnt);
            sm_coord_group_drop(c, g, SM_KERR_COORDINATOR_NOT_AVAILABLE);
        }
        free(v);
        free(kvs);
        sm_arena_free(&a);
    }
    pthread_mutex_unlock(&c->mu);
    return err;
}

const sm_group_coord_config_t *sm_group_coord_config(const sm_group_coord_t *c) { return &c->cfg; }

/* ------------------------------------------------------------ timers */

static int32_t topic_partitions(sm_group_coord_t *c);
static void topic_adopt_locked(sm_group_coord_t *c, int32_t n);

int64_t sm_group_coord_tick(sm_group_coord_t *c)
{
    pthread_mutex_lock(&c->mu);
    sm_group_time_t now = sm_coord_now();
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        return INT64_MAX;
    }
    c->event_next_ms = INT64_MAX;
    if (c->topic == SM_COORD_TOPIC_ABSENT) {
        /* another broker created it: this one may lead some of its
         * partitions now, or later when their leaders fail over */
        int32_t n = topic_partitions(c);
        if (n > 0) {
            topic_adopt_locked(c, n);
            c->topic = SM_COORD_TOPIC_PRESENT;
        }
    }
    if (c->topic == SM_COORD_TOPIC_PRESENT)
        sm_coord_load_pending(c, now);
    int64_t next = now.mono_ms + TIMER_MAX_SLEEP_MS;
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&c->groups, e));) {
        sm_group_t *g = e->value;
        if (sm_coord_part_ready(c, g->partition))
            next = SM_MIN(next, sm_group_tick(g, now));
    }
    if (now.mono_ms >= c->next_expiry_ms) {
        sm_coord_expire(c, now);
        c->next_expiry_ms = now.mono_ms + c->cfg.retention_check_ms;
    }
    sm_coord_maybe_snapshot(c);
    pthread_mutex_unlock(&c->mu);
    return next;
}

static void *timer_main(void *arg)
{
    sm_group_coord_t *c = arg;
    for (;;) {
        int64_t next = sm_group_coord_tick(c);
        pthread_mutex_lock(&c->mu);
        if (c->stopping) {
            pthread_mutex_unlock(&c->mu);
            break;
        }
        int64_t now = sm_now_mono_ms();
        /* Deadlines created by events since the tick are in event_next_ms;
         * later ones signal us when they are earlier than wake_at_ms. */
        c->wake_at_ms = SM_MIN(SM_MIN(next, c->event_next_ms), now + TIMER_MAX_SLEEP_MS);
        if (c->wake_at_ms > now) {
            /* The condvar uses CLOCK_MONOTONIC (see open). */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = (int64_t)ts.tv_nsec + (c->wake_at_ms - now) * 1000000;
            ts.tv_sec += (time_t)(ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
        c->wake_at_ms = INT64_MIN; /* ticking: nobody needs to signal */
        bool stop = c->stopping;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
    }
    return NULL;
}

/* ------------------------------------------------------------ __consumer_offsets */

/*
 * Why on first use: creating the topic (one metadata commit, then a
 * directory and three files for each of its 50 partitions) was most of an
 * empty broker's start-up - 25 ms, over 100 when other writeback keeps the
 * disk busy - and brokers that never see a group paid it too. Kafka creates it on
 * the first FindCoordinator as well.
 *
 * Why on the controller thread, with the FindCoordinator parked until it is
 * done, rather than either obvious choice:
 *  - creating it inside the request would stall that loop thread, and every
 *    connection it serves, for the whole creation;
 *  - answering COORDINATOR_NOT_AVAILABLE at once, as Kafka does, is correct
 *    but slow for the client: librdkafka asks again only from its
 *    coordinator-query timer, about a second later, so a consumer's first
 *    join on a fresh broker would take a second longer (confluent-kafka,
 *    subscribe to first message: 1.1 s, against 0.13 s parked);
 *  - parked, the client waits for the creation only, and no loop blocks.
 * Other group calls that come first answer COORDINATOR_NOT_AVAILABLE (the
 * client looks the coordinator up again, and that lookup waits).
 */

#define CREATE_RETRY_MS 1000

/* Partitions of __consumer_offsets in the current metadata, -1 if absent. */
static int32_t topic_partitions(sm_group_coord_t *c)
{
    sm_meta_t *meta = c->host.meta(c->host.ctx);
    sm_meta_image_t *img = meta ? sm_meta_image_get(meta) : NULL;
    const sm_topic_meta_t *t =
        img ? sm_meta_image_topic(img, SM_GROUP_COORD_TOPIC, sizeof(SM_GROUP_COORD_TOPIC) - 1)
            : NULL;
    int32_t n = t ? t->npartitions : -1;
    if (img)
        sm_meta_image_put(img);
    return n;
}

/* The topic exists with n partitions: groups are placed by its own count,
 * as Kafka does, which differs from offsets.topic.num.partitions only if
 * the setting changed after the topic was made, or someone created the topic
 * before the first group. Mutex held; no group exists yet (open, or before
 * PRESENT), so nothing is placed by the old count. */
static void topic_adopt_locked(sm_group_coord_t *c, int32_t n)
{
    if (n <= 0 || n == c->cfg.num_partitions)
        return;
    SM_ASSERT(c->groups.count == 0);
    SM_WARN("coord", "%s has %d partitions, offsets.topic.num.partitions says %d: using %d",
            SM_GROUP_COORD_TOPIC, n, c->cfg.num_partitions, n);
    free(c->parts);
    c->parts = sm_xcalloc((size_t)n, sizeof *c->parts);
    c->cfg.num_partitions = n;
    c->nunloaded = n;
}

/* Create the topic through the controller (an existing one is success).
 * Blocks on the metadata log's fsync and on opening every partition (the
 * metadata listener does that before this returns). Mutex not held. */
static sm_err_t topic_create(sm_group_coord_t *c)
{
    sm_meta_t *meta = c->host.meta(c->host.ctx);
    if (!meta)
        return SM_ERR_UNSUPPORTED;
    char seg[32];
    snprintf(seg, sizeof seg, "%d", c->cfg.segment_bytes > 0 ? c->cfg.segment_bytes : 104857600);
    /* retention.ms=-1: a compacted topic is never trimmed by time, and
     * the broker's retention pass does not look at cleanup.policy;
     * without it a stable group's last commit older than
     * log.retention.hours would be lost at the next restart. The
     * coordinator bounds the topic itself (see group_coord.h). */
    sm_topic_kv_t configs[] = {
        {"cleanup.policy", "compact"},
        {"compression.type", "producer"},
        {"retention.ms", "-1"},
        {"segment.bytes", seg},
    };
    return sm_meta_create_internal_topic(meta, SM_GROUP_COORD_TOPIC, c->cfg.num_partitions,
                                         c->cfg.replication_factor, configs,
                                         (int)SM_ARRAY_LEN(configs), NULL);
}

/* Controller thread: ABSENT -> CREATING was done by topic_want_locked;
 * this creates, loads, moves to PRESENT (or back to ABSENT) and answers
 * the parked callers. */
static void create_task(void *arg)
{
    sm_group_coord_t *c = arg;
    pthread_mutex_lock(&c->mu);
    bool stopping = c->stopping;
    pthread_mutex_unlock(&c->mu);
    int64_t t0 = sm_now_mono_us();
    /* Without the mutex: group calls meanwhile answer at once rather than
     * wait behind the creation. */
    sm_err_t err = stopping ? SM_ERR_CLOSED : topic_create(c);
    int32_t n = err ? -1 : topic_partitions(c);
    if (err == SM_OK && n <= 0)
        err = SM_ERR_NOT_FOUND; /* created, then gone: internal topics cannot be deleted */
    pthread_mutex_lock(&c->mu);
    if (err == SM_OK) {
        topic_adopt_locked(c, n);
        c->topic = SM_COORD_TOPIC_PRESENT;
        sm_coord_load_pending(c, sm_coord_now());
        SM_INFO("coord", "%s ready for the first group: %d partitions in %.1f ms",
                SM_GROUP_COORD_TOPIC, n, (double)(sm_now_mono_us() - t0) / 1000.0);
    } else {
        c->topic = SM_COORD_TOPIC_ABSENT;
        c->create_retry_ms = sm_now_mono_ms() + CREATE_RETRY_MS;
        if (!stopping)
            SM_WARN("coord", "could not create %s: %s (a group request after %d ms retries)",
                    SM_GROUP_COORD_TOPIC, sm_err_str(err), CREATE_RETRY_MS);
    }
    sm_group_coord_ready_t *w = c->topic_waiters;
    c->topic_waiters = NULL;
    pthread_mutex_unlock(&c->mu);
    /* Outside the mutex: each answer asks the coordinator again. c stays
     * alive meanwhile: close waits for create_busy. */
    while (w) {
        sm_group_coord_ready_t *next = w->next; /* w dies with its request */
        w->on_ready(w);
        w = next;
    }
    pthread_mutex_lock(&c->mu);
    c->create_busy = false;
    pthread_cond_broadcast(&c->idle_cv);
    pthread_mutex_unlock(&c->mu);
}

/* A group is being used: start creating the topic unless it exists, is
 * being created, or failed to be less than CREATE_RETRY_MS ago. Mutex held. */
static void topic_want_locked(sm_group_coord_t *c)
{
    if (c->topic != SM_COORD_TOPIC_ABSENT || c->stopping ||
        sm_now_mono_ms() < c->create_retry_ms)
        return;
    c->topic = SM_COORD_TOPIC_CREATING;
    c->create_busy = true;
    SM_INFO("coord", "first group request: creating %s (%d partitions)", SM_GROUP_COORD_TOPIC,
            c->cfg.num_partitions);
    /* a metadata change like any other: on the controller thread, in turn */
    c->host.on_controller(c->host.ctx, create_task, c);
}

bool sm_group_coord_await_topic(sm_group_coord_t *c, sm_group_coord_ready_t *r)
{
    pthread_mutex_lock(&c->mu);
    topic_want_locked(c);
    bool park = c->topic == SM_COORD_TOPIC_CREATING && !c->stopping;
    if (park) {
        r->next = c->topic_waiters;
        c->topic_waiters = r;
    }
    pthread_mutex_unlock(&c->mu);
    return park;
}

/* ------------------------------------------------------------ lifecycle */

static void config_from_broker(const sm_config_t *bc, sm_group_coord_config_t *cfg)
{
    cfg->num_partitions = bc->offsets_topic_num_partitions > 0 ? bc->offsets_topic_num_partitions : 50;
    cfg->replication_factor = bc->offsets_topic_replication_factor;
    cfg->segment_bytes = bc->offsets_topic_segment_bytes;
    cfg->retention_ms = (int64_t)bc->offsets_retention_minutes * 60000;
    cfg->retention_check_ms = bc->offsets_retention_check_interval_ms > 0
                                  ? bc->offsets_retention_check_interval_ms
                                  : 600000;
    cfg->metadata_max_bytes = bc->offset_metadata_max_bytes;
    cfg->snapshot_min_bytes = SM_MAX(cfg->segment_bytes, 1);
    cfg->limits.min_session_timeout_ms = bc->group_min_session_timeout_ms;
    cfg->limits.max_session_timeout_ms = bc->group_max_session_timeout_ms;
    cfg->limits.initial_rebalance_delay_ms = bc->group_initial_rebalance_delay_ms;
    cfg->limits.max_size = bc->group_max_size;
    cfg->limits.new_member_join_timeout_ms = 300000; /* Kafka's fixed 5 minutes */
}

sm_err_t sm_group_coord_open(const sm_config_t *broker_cfg, const sm_coord_host_t *host,
                             sm_group_coord_t **out)
{
    sm_group_coord_t *c = sm_xcalloc(1, sizeof *c);
    c->host = *host;
    config_from_broker(broker_cfg, &c->cfg);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&c->idle_cv, NULL);
    sm_hmap_init(&c->groups);
    c->env.limits = c->cfg.limits;
    c->env.ctx = c;
    c->env.store = sm_coord_store_group;
    c->env.rng = (uint64_t)sm_now_wall_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)sm_now_mono_us();
    if (!c->env.rng)
        c->env.rng = 1;
    c->parts = sm_xcalloc((size_t)c->cfg.num_partitions, sizeof *c->parts);
    c->nunloaded = c->cfg.num_partitions;
    c->wake_at_ms = INT64_MIN;
    c->event_next_ms = INT64_MAX;

    /* Not created here: the first group request does (see the section
     * "__consumer_offsets"). An existing topic is loaded now, as ever. */
    int32_t n = topic_partitions(c);
    c->topic = n > 0 ? SM_COORD_TOPIC_PRESENT : SM_COORD_TOPIC_ABSENT;
    pthread_mutex_lock(&c->mu);
    if (c->topic == SM_COORD_TOPIC_PRESENT) {
        topic_adopt_locked(c, n);
        sm_coord_load_pending(c, sm_coord_now());
    }
    c->next_expiry_ms = sm_now_mono_ms() + c->cfg.retention_check_ms;
    pthread_mutex_unlock(&c->mu);
    if (pthread_create(&c->timer, NULL, timer_main, c) != 0) {
        SM_ERROR("coord", "cannot start the timer thread");
        sm_group_coord_close(c);
        return SM_ERR_IO;
    }
    c->timer_started = true;
    if (c->topic == SM_COORD_TOPIC_PRESENT)
        SM_INFO("coord", "group coordinator up: %d partitions of %s, %zu groups loaded",
                c->cfg.num_partitions, SM_GROUP_COORD_TOPIC, c->groups.count);
    else
        SM_INFO("coord", "group coordinator up: %s will be created by the first group request",
                SM_GROUP_COORD_TOPIC);
    *out = c;
    return SM_OK;
}

void sm_group_coord_shutdown(sm_group_coord_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    bool first = !c->stopping;
    c->stopping = true;
    pthread_cond_signal(&c->cv);
    if (first)
        for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&c->groups, e));)
            sm_group_unload(e->value, SM_KERR_NOT_COORDINATOR);
    pthread_mutex_unlock(&c->mu);
}

void sm_group_coord_close(sm_group_coord_t *c)
{
    if (!c)
        return;
    sm_group_coord_shutdown(c);
    /* A creation in progress still uses c (and answers its parked callers). */
    pthread_mutex_lock(&c->mu);
    while (c->create_busy)
        pthread_cond_wait(&c->idle_cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    if (c->timer_started)
        pthread_join(c->timer, NULL);
    pthread_mutex_lock(&c->mu);
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&c->groups, e));)
        sm_group_free(e->value);
    sm_hmap_free(&c->groups);
    sm_coord_txn_clear(c, -1);
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    pthread_cond_destroy(&c->idle_cv);
    free(c->parts);
    free(c);
}
