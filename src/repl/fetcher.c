/*
 * fetcher.c - follower fetch loops and the leader's ISR check (fetcher.h).
 */
#include "fetcher.h"
#include "arena.h"
#include "buf.h"
#include "loop.h"
#include "peer.h"
#include "proto.h"
#include "log.h"
#include "sm_proto_gen.h"

#include <stdio.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define TAG "repl"
#define ISR_CHECK_MAX_MS 500
#define KERR_NOT_LEADER 6
#define API_FETCH 1
#define API_ALTER_PARTITION 56
#define FETCH_VERSION 15          /* topic ids, ReplicaState {id, broker epoch}, DivergingEpoch */
#define ALTER_PARTITION_VERSION 3 /* topic ids, ISR members with their broker epochs (KIP-903) */

typedef struct fpart {
    sm_partition_t *p;   /* reference */
    int32_t epoch;       /* leader epoch followed */
    int64_t paused_until; /* monotonic ms: after an error */
} fpart_t;

typedef struct source {
    int32_t leader;
    char *host;
    int port;
    sm_peer_t *peer;
    fpart_t *parts;
    int nparts;
    bool inflight;
    uint64_t timer;
    struct sm_repl *r;
} source_t;

/* One fetch in flight: the partitions it named, as sent. */
typedef struct inflight {
    source_t *src;
    fpart_t *parts; /* references */
    int nparts;
} inflight_t;

struct sm_repl {
    const sm_config_t *cfg;
    sm_meta_t *meta;
    sm_repl_hooks_t hooks;
    sm_loop_t *loop;
    source_t **sources;
    int nsources;
    uint64_t isr_timer;
    bool stopping;
    int refresh_pending; /* atomic */
    sm_loop_task_t refresh_task;
    uint64_t seed;
};

static void send_fetch(source_t *s);

static void parts_put(fpart_t *v, int n)
{
    for (int i = 0; i < n; i++)
        sm_partition_put(v[i].p);
    free(v);
}

static source_t *source_get(sm_repl_t *r, int32_t leader)
{
    for (int i = 0; i < r->nsources; i++)
        if (r->sources[i]->leader == leader)
            return r->sources[i];
    source_t *s = sm_xcalloc(1, sizeof *s);
    s->leader = leader;
    s->r = r;
    r->sources = sm_xrealloc(r->sources, sizeof *r->sources * (size_t)(r->nsources + 1));
    r->sources[r->nsources++] = s;
    return s;
}

/* Point s at the leader's inter-broker endpoint (a new peer if it moved). */
static bool source_connect(sm_repl_t *r, source_t *s, const sm_meta_image_t *img)
{
    const sm_broker_meta_t *b = sm_meta_image_broker(img, s->leader);
    const sm_endpoint_t *ep =
        b ? sm_meta_broker_endpoint(b, r->cfg->inter_broker_listener_name) : NULL;
    const char *host = ep ? ep->host : b ? b->host : NULL;
    int port = ep ? ep->port : b ? b->port : 0;
    if (!host || port <= 0)
        return false;
    if (s->peer && s->host && strcmp(s->host, host) == 0 && s->port == port)
        return true;
    sm_peer_free(s->peer); /* an in-flight fetch gets SM_ERR_CLOSED */
    free(s->host);
    s->host = sm_xstrdup(host);
    s->port = port;
    char cid[64];
    snprintf(cid, sizeof cid, "samsa-replica-%d", r->cfg->node_id);
    sm_peer_config_t pc = {.client_id = cid,
                           .max_queued = 4,
                           .max_response_bytes = SM_MAX(r->cfg->replica_fetch_response_max_bytes,
                                                        r->cfg->replica_fetch_max_bytes) +
                                                 (1 << 20),
                           .seed = r->seed++};
    s->peer = sm_peer_new(r->loop, host, port, &pc);
    return true;
}

/* ------------------------------------------------------------ refresh */

static void refresh_task(void *arg)
{
    sm_repl_t *r = arg;
    __atomic_store_n(&r->refresh_pending, 0, __ATOMIC_RELEASE);
    if (r->stopping)
        return;
    size_t n = 0;
    sm_partition_t **all = r->hooks.partitions(r->hooks.ctx, &n);
    for (int i = 0; i < r->nsources; i++) {
        parts_put(r->sources[i]->parts, r->sources[i]->nparts);
        r->sources[i]->parts = NULL;
        r->sources[i]->nparts = 0;
    }
    for (size_t i = 0; i < n; i++) {
        sm_partition_t *p = all[i];
        int32_t leader = __atomic_load_n(&p->leader_id, __ATOMIC_RELAXED);
        if (sm_partition_role(p) != SM_ROLE_FOLLOWER || leader < 0 ||
            leader == r->cfg->node_id || sm_partition_deleted(p)) {
            sm_partition_put(p);
            continue;
        }
        source_t *s = source_get(r, leader);
        s->parts = sm_xrealloc(s->parts, sizeof *s->parts * (size_t)(s->nparts + 1));
        s->parts[s->nparts++] =
            (fpart_t){.p = p, .epoch = sm_partition_leader_epoch(p), .paused_until = 0};
    }
    free(all);
    sm_meta_image_t *img = sm_meta_image_get(r->meta);
    for (int i = 0; i < r->nsources; i++) {
        source_t *s = r->sources[i];
        if (s->nparts > 0 && !source_connect(r, s, img)) {
            SM_WARN(TAG, "no endpoint known for leader %d; its %d partition(s) wait", s->leader,
                    s->nparts);
            continue;
        }
        if (s->nparts > 0 && !s->inflight)
            send_fetch(s);
    }
    sm_meta_image_put(img);
}

void sm_repl_refresh(sm_repl_t *r)
{
    if (r && !__atomic_exchange_n(&r->refresh_pending, 1, __ATOMIC_ACQ_REL))
        sm_loop_post_task(r->loop, &r->refresh_task);
}

/* ------------------------------------------------------------ fetching */

static void retry_timer(void *arg)
{
    source_t *s = arg;
    s->timer = 0;
    if (!s->inflight && !s->r->stopping)
        send_fetch(s);
}

static void retry_in(source_t *s, int64_t ms)
{
    if (!s->timer)
        s->timer = sm_loop_timer(s->r->loop, sm_now_mono_ms() + ms, retry_timer, s);
}

static fpart_t *find_sent(inflight_t *f, const sm_uuid_t *topic_id, int32_t index)
{
    for (int i = 0; i < f->nparts; i++) {
        sm_partition_t *p = f->parts[i].p;
        if (p->index == index && memcmp(topic_id->b, p->topic_id.b, 16) == 0)
            return &f->parts[i];
    }
    return NULL;
}

/* Pause a partition of the source's current set after an error. */
static void pause_part(source_t *s, sm_partition_t *p, int64_t ms)
{
    for (int i = 0; i < s->nparts; i++)
        if (s->parts[i].p == p)
            s->parts[i].paused_until = sm_now_mono_ms() + ms;
}

static void on_fetch(void *ctx, sm_err_t err, const uint8_t *body, size_t len)
{
    inflight_t *f = ctx;
    source_t *s = f->src;
    sm_repl_t *r = s->r;
    s->inflight = false;
    int64_t backoff = r->cfg->replica_fetch_backoff_ms;
    bool retry_now = false;
    if (err == SM_OK && !r->stopping) {
        sm_arena_t a;
        sm_arena_init(&a);
        sm_rd_t rd;
        sm_rd_init(&rd, body, len);
        sm_fetch_response_t resp;
        sm_fetch_response_init(&resp);
        if (sm_fetch_response_decode(&rd, &a, FETCH_VERSION, &resp) != SM_OK || rd.err) {
            SM_WARN(TAG, "malformed fetch response from broker %d", s->leader);
        } else if (resp.error_code) {
            SM_WARN(TAG, "fetch from broker %d failed: error %d", s->leader, resp.error_code);
        } else {
            retry_now = true;
            for (int32_t t = 0; t < resp.responses_count; t++) {
                const sm_fetch_response_fetchable_topic_response_t *tr = &resp.responses[t];
                for (int32_t k = 0; k < tr->partitions_count; k++) {
                    const sm_fetch_response_partition_data_t *pd = &tr->partitions[k];
                    fpart_t *fp = find_sent(f, &tr->topic_id, pd->partition_index);
                    if (!fp)
                        continue;
                    sm_fetched_part_t fr = {
                        .error = pd->error_code,
                        .high_watermark = pd->high_watermark,
                        .log_start_offset = pd->log_start_offset,
                        .diverging_epoch = pd->diverging_epoch.epoch,
                        .diverging_end = pd->diverging_epoch.end_offset,
                        .records = (uint8_t *)pd->records.ptr,
                        .len = pd->records.len > 0 && pd->records.ptr ? (size_t)pd->records.len
                                                                       : 0,
                    };
                    sm_err_t rc = sm_partition_follower_apply(fp->p, fp->epoch, &fr);
                    if (rc == SM_OK || rc == SM_ERR_AGAIN)
                        continue;
                    if (pd->error_code && pd->error_code != KERR_NOT_LEADER)
                        SM_DEBUG(TAG, "%s: fetch from broker %d: error %d", fp->p->name,
                                 s->leader, pd->error_code);
                    else if (!pd->error_code)
                        SM_WARN(TAG, "%s: applying the fetch from broker %d failed: %s",
                                fp->p->name, s->leader, sm_err_str(rc));
                    pause_part(s, fp->p, backoff);
                }
            }
        }
        sm_arena_free(&a);
    }
    parts_put(f->parts, f->nparts);
    free(f);
    if (r->stopping)
        return;
    if (retry_now)
        send_fetch(s);
    else
        retry_in(s, SM_MAX(backoff, 50));
}

static void send_fetch(source_t *s)
{
    sm_repl_t *r = s->r;
    if (s->inflight || !s->peer || s->nparts == 0 || r->stopping)
        return;
    int64_t now = sm_now_mono_ms(), next_wake = INT64_MAX;
    inflight_t *f = sm_xcalloc(1, sizeof *f);
    f->src = s;
    f->parts = sm_xcalloc((size_t)s->nparts, sizeof *f->parts);
    /* partitions by topic, in the order they are held (refresh keeps a
     * topic's partitions together when the server lists them so) */
    sm_fetch_request_fetch_topic_t *topics =
        sm_xcalloc((size_t)s->nparts, sizeof *topics);
    sm_fetch_request_fetch_partition_t *rparts =
        sm_xcalloc((size_t)s->nparts, sizeof *rparts);
    int ntopics = 0;
    for (int i = 0; i < s->nparts; i++) {
        fpart_t *sp = &s->parts[i];
        if (sp->paused_until > now) {
            next_wake = SM_MIN(next_wake, sp->paused_until);
            continue;
        }
        if (sm_partition_role(sp->p) != SM_ROLE_FOLLOWER ||
            sm_partition_leader_epoch(sp->p) != sp->epoch)
            continue; /* a refresh is on its way */
        sm_fetch_request_fetch_partition_t *rp = &rparts[f->nparts];
        sm_fetch_request_fetch_partition_init(rp);
        rp->partition = sp->p->index;
        rp->current_leader_epoch = sp->epoch;
        rp->fetch_offset = sm_partition_log_end(sp->p);
        rp->last_fetched_epoch = sm_partition_last_epoch(sp->p);
        rp->log_start_offset = sm_partition_log_start(sp->p);
        rp->partition_max_bytes = r->cfg->replica_fetch_max_bytes;
        sm_fetch_request_fetch_topic_t *t =
            ntopics > 0 &&
                    memcmp(f->parts[f->nparts - 1].p->topic_id.b, sp->p->topic_id.b, 16) == 0
                ? &topics[ntopics - 1]
                : NULL;
        if (!t) {
            t = &topics[ntopics++];
            sm_fetch_request_fetch_topic_init(t);
            t->topic_id = sp->p->topic_id;
            t->partitions = rp;
        }
        t->partitions_count++;
        sm_partition_keep(sp->p);
        f->parts[f->nparts++] = (fpart_t){.p = sp->p, .epoch = sp->epoch};
    }
    if (f->nparts == 0) {
        free(topics);
        free(rparts);
        free(f->parts);
        free(f);
        if (next_wake != INT64_MAX)
            retry_in(s, next_wake - now);
        return;
    }
    sm_fetch_request_t req;
    sm_fetch_request_init(&req);
    req.replica_state.replica_id = r->cfg->node_id;
    /* this incarnation's registration epoch, as the metadata says (until it
     * has our registration, the previous one's: the controller then refuses
     * to add us to an ISR, which is the safe side) */
    sm_meta_image_t *img = sm_meta_image_get(r->meta);
    const sm_broker_meta_t *self = sm_meta_image_broker(img, r->cfg->node_id);
    req.replica_state.replica_epoch = self ? self->epoch : -1;
    sm_meta_image_put(img);
    req.max_wait_ms = r->cfg->replica_fetch_wait_max_ms;
    req.min_bytes = r->cfg->replica_fetch_min_bytes;
    req.max_bytes = r->cfg->replica_fetch_response_max_bytes;
    req.isolation_level = 0;
    req.session_id = 0;
    req.session_epoch = -1; /* sessionless */
    req.topics = topics;
    req.topics_count = ntopics;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_fetch_request_encode(&w, FETCH_VERSION, &req);
    free(topics);
    free(rparts);
    sm_err_t err = sm_peer_send(s->peer, API_FETCH, FETCH_VERSION, 2, 1, w.mem, w.len,
                                (int64_t)r->cfg->replica_fetch_wait_max_ms +
                                    r->cfg->replica_socket_timeout_ms,
                                on_fetch, f);
    sm_wbuf_free(&w);
    if (err != SM_OK) {
        parts_put(f->parts, f->nparts);
        free(f);
        retry_in(s, 100);
        return;
    }
    s->inflight = true;
}

/* ------------------------------------------------------------ ISR check */

typedef struct alter_call {
    sm_repl_t *r;
    sm_partition_t **parts; /* references, in request order */
    int n;
} alter_call_t;

static void on_alter(void *ctx, sm_err_t io, const uint8_t *body, size_t len)
{
    alter_call_t *c = ctx;
    sm_arena_t a;
    sm_arena_init(&a);
    sm_alter_partition_response_t resp;
    sm_alter_partition_response_init(&resp);
    bool ok = false;
    if (io == SM_OK) {
        sm_rd_t rd;
        sm_rd_init(&rd, body, len);
        ok = sm_alter_partition_response_decode(&rd, &a, ALTER_PARTITION_VERSION, &resp) ==
                 SM_OK &&
             !rd.err && resp.error_code == 0;
        if (!ok)
            SM_WARN(TAG, "AlterPartition refused by the controller (error %d)",
                    resp.error_code);
    } else {
        SM_WARN(TAG, "AlterPartition got no answer: %s", sm_err_str(io));
    }
    for (int i = 0; i < c->n; i++) {
        sm_partition_t *p = c->parts[i];
        int16_t perr = ok ? -1 : 0;
        for (int32_t t = 0; ok && t < resp.topics_count && perr < 0; t++) {
            if (memcmp(resp.topics[t].topic_id.b, p->topic_id.b, 16) != 0)
                continue;
            for (int32_t k = 0; k < resp.topics[t].partitions_count; k++)
                if (resp.topics[t].partitions[k].partition_index == p->index)
                    perr = resp.topics[t].partitions[k].error_code;
        }
        if (!ok || perr != 0) {
            if (ok && perr > 0)
                SM_INFO(TAG, "%s: ISR change refused by the controller (error %d)", p->name,
                        perr);
            /* a member the controller finds ineligible (fenced, shutting
             * down) is not proposed again before a lag window passes */
            sm_partition_isr_proposal_failed(
                p, sm_now_mono_ms() + (perr == 107 ? c->r->cfg->replica_lag_time_max_ms : 0));
        }
        sm_partition_put(p);
    }
    sm_arena_free(&a);
    free(c->parts);
    free(c);
}

static void isr_check(void *arg)
{
    sm_repl_t *r = arg;
    r->isr_timer = 0;
    if (r->stopping)
        return;
    int64_t now = sm_now_mono_ms();
    size_t n = 0;
    sm_partition_t **all = r->hooks.partitions(r->hooks.ctx, &n);
    alter_call_t *c = NULL;
    sm_alter_partition_request_topic_data_t *topics = NULL;
    int ntopics = 0;
    sm_arena_t a;
    sm_arena_init(&a);
    for (size_t i = 0; i < n; i++) {
        sm_partition_t *p = all[i];
        int32_t *isr = SM_ARENA_NEW(&a, int32_t, p->nreplicas > 0 ? p->nreplicas + 1 : 1);
        int64_t *epochs = SM_ARENA_NEW(&a, int64_t, p->nreplicas > 0 ? p->nreplicas + 1 : 1);
        int nisr = 0;
        int32_t le, pe;
        if (sm_partition_role(p) != SM_ROLE_LEADER ||
            !sm_partition_isr_proposal(p, now, r->cfg->replica_lag_time_max_ms, isr, epochs,
                                       &nisr, &le, &pe)) {
            sm_partition_put(p);
            continue;
        }
        if (!c) {
            c = sm_xcalloc(1, sizeof *c);
            c->r = r;
            c->parts = sm_xcalloc(n, sizeof *c->parts);
            topics = SM_ARENA_NEW(&a, sm_alter_partition_request_topic_data_t, n);
        }
        c->parts[c->n++] = p; /* the reference moves to the call */
        sm_alter_partition_request_topic_data_t *t = NULL;
        for (int k = 0; k < ntopics && !t; k++)
            if (memcmp(topics[k].topic_id.b, p->topic_id.b, 16) == 0)
                t = &topics[k];
        if (!t) {
            t = &topics[ntopics++];
            sm_alter_partition_request_topic_data_init(t);
            t->topic_id = p->topic_id;
            t->partitions = SM_ARENA_NEW(&a, sm_alter_partition_request_partition_data_t, n);
        }
        sm_alter_partition_request_partition_data_t *pd = &t->partitions[t->partitions_count++];
        sm_alter_partition_request_partition_data_init(pd);
        pd->partition_index = p->index;
        pd->leader_epoch = le;
        pd->partition_epoch = pe;
        pd->new_isr_with_epochs =
            SM_ARENA_NEW(&a, sm_alter_partition_request_broker_state_t, nisr > 0 ? nisr : 1);
        for (int k = 0; k < nisr; k++) {
            pd->new_isr_with_epochs[k].broker_id = isr[k];
            pd->new_isr_with_epochs[k].broker_epoch = epochs[k];
        }
        pd->new_isr_with_epochs_count = nisr;
        SM_INFO(TAG, "%s: asking the controller for an ISR of %d replica(s) (now %d)", p->name,
                nisr, __atomic_load_n(&p->isr_size, __ATOMIC_RELAXED));
    }
    free(all);
    if (c) {
        sm_alter_partition_request_t req;
        sm_alter_partition_request_init(&req);
        req.broker_id = r->cfg->node_id;
        req.topics = topics;
        req.topics_count = ntopics;
        sm_wbuf_t w;
        sm_wbuf_init(&w);
        sm_alter_partition_request_encode(&w, ALTER_PARTITION_VERSION, &req);
        r->hooks.ctl_call(r->hooks.ctx, API_ALTER_PARTITION, ALTER_PARTITION_VERSION, w.mem,
                          w.len, 10000, on_alter, c);
        sm_wbuf_free(&w);
    }
    sm_arena_free(&a);
    int64_t every = SM_MIN(r->cfg->replica_lag_time_max_ms / 2, ISR_CHECK_MAX_MS);
    r->isr_timer = sm_loop_timer(r->loop, now + SM_MAX(every, 10), isr_check, r);
}

/* ------------------------------------------------------------ life */

sm_repl_t *sm_repl_start(const sm_config_t *cfg, sm_meta_t *meta, const sm_repl_hooks_t *hooks)
{
    sm_repl_t *r = sm_xcalloc(1, sizeof *r);
    r->cfg = cfg;
    r->meta = meta;
    r->hooks = *hooks;
    r->seed = (uint64_t)sm_now_mono_ms() * 2654435761u + (uint64_t)cfg->node_id;
    sm_loop_task_init(&r->refresh_task, refresh_task, r);
    r->loop = sm_loop_new(3000 + cfg->node_id);
    if (sm_loop_start_thread(r->loop) != SM_OK) {
        SM_ERROR(TAG, "cannot start the replica fetcher's thread");
        sm_loop_free(r->loop);
        free(r);
        return NULL;
    }
    sm_loop_post(r->loop, isr_check, r);
    sm_repl_refresh(r);
    return r;
}

static void stop_task(void *arg)
{
    sm_repl_t *r = arg;
    r->stopping = true;
    if (r->isr_timer)
        sm_loop_timer_cancel(r->loop, r->isr_timer);
    for (int i = 0; i < r->nsources; i++) {
        source_t *s = r->sources[i];
        if (s->timer)
            sm_loop_timer_cancel(r->loop, s->timer);
        sm_peer_free(s->peer); /* the fetch in flight gets SM_ERR_CLOSED */
        s->peer = NULL;
    }
    sm_loop_stop(r->loop);
}

void sm_repl_stop(sm_repl_t *r)
{
    if (!r)
        return;
    sm_loop_post(r->loop, stop_task, r);
    sm_loop_join(r->loop);
    sm_loop_free(r->loop);
    for (int i = 0; i < r->nsources; i++) {
        parts_put(r->sources[i]->parts, r->sources[i]->nparts);
        free(r->sources[i]->host);
        free(r->sources[i]);
    }
    free(r->sources);
    free(r);
}
