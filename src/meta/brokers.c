/*
 * brokers.c - broker liveness on the active controller (see brokers.h for
 * the state machine). Transitions:
 *   register()              unknown/any -> FENCED
 *   heartbeat()  unfence    FENCED -> UNFENCED         (caught up, no WantFence)
 *                fence      UNFENCED -> FENCED         (WantFence)
 *                shutdown   UNFENCED -> CONTROLLED_SHUTDOWN (WantShutDown)
 *                           FENCED -> SHUTDOWN_NOW     (WantShutDown: nothing to move)
 *                done       CONTROLLED_SHUTDOWN -> SHUTDOWN_NOW (offset reached; FENCE)
 *   expire()                UNFENCED/CONTROLLED_SHUTDOWN -> FENCED (session over)
 * Brokers are few (hundreds at most): a sorted array, binary search.
 */
#include "brokers.h"

#include <stdlib.h>
#include <string.h>

#define KERR_STALE_BROKER_EPOCH 77
#define KERR_DUPLICATE_BROKER_REGISTRATION 101
#define KERR_BROKER_ID_NOT_REGISTERED 109

typedef struct entry {
    int32_t id;
    uint8_t incarnation[16];
    int64_t epoch;           /* offset of its RegisterBrokerRecord */
    int64_t last_contact_ms; /* last registration or heartbeat */
    int64_t metadata_offset; /* applied, as last reported */
    int64_t shutdown_offset; /* -1 until the controlled shutdown's records committed */
    sm_broker_state_t state;
    bool heard;              /* registered or heartbeat since this tracker knows it */
} entry_t;

struct sm_brokers {
    entry_t *v;
    int n, cap;
    int64_t session_ms;
};

sm_brokers_t *sm_brokers_new(int64_t session_timeout_ms)
{
    sm_brokers_t *t = sm_xcalloc(1, sizeof *t);
    t->session_ms = session_timeout_ms > 0 ? session_timeout_ms : 9000;
    return t;
}

void sm_brokers_free(sm_brokers_t *t)
{
    if (t) {
        free(t->v);
        free(t);
    }
}

/* Index of id, or -(insertion point) - 1. */
static int find(const sm_brokers_t *t, int32_t id)
{
    int lo = 0, hi = t->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (t->v[mid].id == id)
            return mid;
        if (t->v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -lo - 1;
}

static bool alive(const sm_brokers_t *t, const entry_t *e, int64_t now_ms)
{
    return e->state != SM_BROKER_FENCED && e->state != SM_BROKER_SHUTDOWN_NOW &&
           now_ms - e->last_contact_ms < t->session_ms;
}

int16_t sm_brokers_register(sm_brokers_t *t, int32_t id, const uint8_t incarnation[16],
                            int64_t epoch, int64_t now_ms)
{
    int i = find(t, id);
    if (i >= 0) {
        entry_t *e = &t->v[i];
        if (memcmp(e->incarnation, incarnation, 16) != 0 && alive(t, e, now_ms))
            return KERR_DUPLICATE_BROKER_REGISTRATION; /* another process has this id */
    } else {
        i = -i - 1;
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 8;
            t->v = sm_xrealloc(t->v, sizeof *t->v * (size_t)t->cap);
        }
        memmove(&t->v[i + 1], &t->v[i], sizeof *t->v * (size_t)(t->n - i));
        t->n++;
    }
    entry_t *e = &t->v[i];
    memset(e, 0, sizeof *e);
    e->id = id;
    memcpy(e->incarnation, incarnation, 16);
    e->epoch = epoch;
    e->last_contact_ms = now_ms;
    e->metadata_offset = -1;
    e->shutdown_offset = -1;
    e->state = SM_BROKER_FENCED;
    e->heard = true;
    return 0;
}

void sm_brokers_restore(sm_brokers_t *t, int32_t id, int64_t epoch, bool fenced, int64_t now_ms)
{
    static const uint8_t unknown[16];
    if (sm_brokers_register(t, id, unknown, epoch, now_ms) != 0)
        return;
    entry_t *e = &t->v[find(t, id)];
    e->metadata_offset = epoch; /* it had caught up to its registration */
    e->state = fenced ? SM_BROKER_FENCED : SM_BROKER_UNFENCED;
    e->heard = false; /* known from the image, not heard from yet */
}

sm_broker_action_t sm_brokers_heartbeat(sm_brokers_t *t, int32_t id, int64_t epoch,
                                        int64_t metadata_offset, bool want_fence,
                                        bool want_shutdown, int64_t now_ms,
                                        sm_broker_hb_reply_t *reply)
{
    memset(reply, 0, sizeof *reply);
    int i = find(t, id);
    if (i < 0) {
        reply->error = KERR_BROKER_ID_NOT_REGISTERED;
        reply->is_fenced = true;
        return SM_BROKER_ACT_NONE;
    }
    entry_t *e = &t->v[i];
    if (epoch != e->epoch) {
        reply->error = KERR_STALE_BROKER_EPOCH;
        reply->is_fenced = true;
        return SM_BROKER_ACT_NONE;
    }
    e->last_contact_ms = now_ms;
    e->heard = true;
    if (metadata_offset > e->metadata_offset)
        e->metadata_offset = metadata_offset;
    bool caught_up = e->metadata_offset >= e->epoch;
    sm_broker_action_t act = SM_BROKER_ACT_NONE;
    switch (e->state) {
    case SM_BROKER_FENCED:
        if (want_shutdown)
            e->state = SM_BROKER_SHUTDOWN_NOW; /* leads nothing: it may go at once */
        else if (caught_up && !want_fence) {
            e->state = SM_BROKER_UNFENCED;
            act = SM_BROKER_ACT_UNFENCE;
        }
        break;
    case SM_BROKER_UNFENCED:
        if (want_shutdown) {
            e->state = SM_BROKER_CONTROLLED_SHUTDOWN;
            e->shutdown_offset = -1;
            act = SM_BROKER_ACT_BEGIN_SHUTDOWN;
        } else if (want_fence) {
            e->state = SM_BROKER_FENCED;
            act = SM_BROKER_ACT_FENCE;
        }
        break;
    case SM_BROKER_CONTROLLED_SHUTDOWN:
        if (e->shutdown_offset >= 0 && e->metadata_offset >= e->shutdown_offset) {
            e->state = SM_BROKER_SHUTDOWN_NOW;
            act = SM_BROKER_ACT_FENCE;
        }
        break;
    case SM_BROKER_SHUTDOWN_NOW:
        break;
    }
    reply->is_caught_up = caught_up;
    reply->is_fenced = e->state == SM_BROKER_FENCED || e->state == SM_BROKER_SHUTDOWN_NOW;
    reply->should_shutdown = e->state == SM_BROKER_SHUTDOWN_NOW;
    return act;
}

void sm_brokers_shutdown_offset(sm_brokers_t *t, int32_t id, int64_t offset)
{
    int i = find(t, id);
    if (i >= 0 && t->v[i].state == SM_BROKER_CONTROLLED_SHUTDOWN)
        t->v[i].shutdown_offset = offset;
}

int sm_brokers_expire(sm_brokers_t *t, int64_t now_ms, int32_t *out, int max)
{
    int k = 0;
    for (int i = 0; i < t->n && k < max; i++) {
        entry_t *e = &t->v[i];
        if ((e->state == SM_BROKER_UNFENCED || e->state == SM_BROKER_CONTROLLED_SHUTDOWN) &&
            now_ms - e->last_contact_ms >= t->session_ms) {
            e->state = SM_BROKER_FENCED;
            out[k++] = e->id;
        }
    }
    return k;
}

int16_t sm_brokers_unregister(sm_brokers_t *t, int32_t id)
{
    int i = find(t, id);
    if (i < 0)
        return KERR_BROKER_ID_NOT_REGISTERED;
    memmove(&t->v[i], &t->v[i + 1], sizeof *t->v * (size_t)(t->n - i - 1));
    t->n--;
    return 0;
}

bool sm_brokers_state(const sm_brokers_t *t, int32_t id, sm_broker_state_t *out)
{
    int i = find(t, id);
    if (i < 0)
        return false;
    *out = t->v[i].state;
    return true;
}

void sm_brokers_reset_sessions(sm_brokers_t *t, int64_t now_ms)
{
    for (int i = 0; i < t->n; i++)
        t->v[i].last_contact_ms = now_ms;
}

int sm_brokers_list(const sm_brokers_t *t, sm_broker_seen_t *out, int max)
{
    int n = 0;
    for (int i = 0; i < t->n && n < max; i++)
        out[n++] = (sm_broker_seen_t){.id = t->v[i].id,
                                      .metadata_offset = t->v[i].metadata_offset,
                                      .last_contact_ms = t->v[i].last_contact_ms,
                                      .state = t->v[i].state,
                                      .heard = t->v[i].heard};
    return n;
}

const char *sm_broker_state_name(sm_broker_state_t s)
{
    switch (s) {
    case SM_BROKER_FENCED:
        return "FENCED";
    case SM_BROKER_UNFENCED:
        return "UNFENCED";
    case SM_BROKER_CONTROLLED_SHUTDOWN:
        return "CONTROLLED_SHUTDOWN";
    case SM_BROKER_SHUTDOWN_NOW:
        return "SHUTDOWN_NOW";
    }
    return "?";
}
