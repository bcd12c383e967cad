/*
 * sim_repl.c - deterministic simulation of partition replication (src/partition/replica.c
 * and the protocol around it that src/repl/fetcher.c and the broker's fetch and produce
 * handlers drive), in the spirit of sim_raft.c.
 *
 * Model. Three brokers (ids 1-3) each host a replica of 1-3 partitions (replication
 * factor 3). Each replica is a real sm_partition_t over a real log in its own directory
 * under a temporary dir (mkdtemp in $TMPDIR or /tmp, removed at the end). One thread, no
 * sockets: a seeded PRNG drives a simulated clock and an event queue, and every call into
 * the partition API gets the simulated time.
 *   - The controller is plain C in this file. It holds each partition's state (replicas,
 *     ISR, leader, leader epoch, partition epoch) and publishes every change to each live
 *     broker as a full-state "image" (sm_partition_set_replicas), each after its own delay;
 *     a broker applies an image only if it is newer than the last it applied (the metadata
 *     log is ordered). Like src/meta: a broker fenced (session expired, or re-registering
 *     after a restart) leaves every ISR unless it is the last member, and its leaderships
 *     go to a random unfenced ISR member (clean election), or to nobody (leader -1) until an
 *     ISR member is unfenced again. AlterPartition is checked as check_isr_change() does
 *     (leader, leader epoch, partition epoch, replicas, INELIGIBLE_REPLICA for fenced new
 *     members) and commits the ISR with partition epoch + 1. Unlike Kafka before KIP-966,
 *     a restarted broker's registration first fences its old incarnation (so a broker that
 *     lost unflushed data never stays in an ISR; see "Crashes").
 *   - Followers fetch as fetcher.c does: one fetch in flight per partition, fetch offset =
 *     log end, last fetched epoch, the leader epoch they follow. The leader checks the
 *     epoch (sm_partition_epoch_cmp), divergence (sm_partition_diverging), records the
 *     fetch (sm_partition_follower_fetched), and answers with sm_partition_read_local()
 *     bytes (pread from the slice), or parks the fetch (long poll) until an append or a
 *     high watermark move wakes it (the partition's `appended` hook) or max wait passes.
 *     The follower applies the answer with sm_partition_follower_apply() under the epoch
 *     it fetched with. A fetch with no answer is abandoned after a timeout.
 *   - Leaders propose ISR changes every min(lag/2, 500) ms (sm_partition_isr_proposal);
 *     refusals and timeouts go back through sm_partition_isr_proposal_failed() as in
 *     fetcher.c's on_alter (a refusal for INELIGIBLE_REPLICA backs off for the lag time).
 *   - Producers send acks=all batches of 1-5 records (each record's value starts with a
 *     unique 64-bit id) to the broker they believe leads; the broker refuses them when
 *     isr_size < min.insync.replicas (2; SIM_MIN_INSYNC=1 for Kafka's default), else
 *     appends (sm_partition_append) and waits on
 *     the high watermark (sm_partition_wait_hw, expired after 30 s). A record is
 *     ACKNOWLEDGED when done() reports 0 (or wait_hw says it is already there).
 *   - Network: every message between brokers, controller and producers can be delayed
 *     (1..N ms, sometimes 0.2-2.5 s, which reorders), dropped, or cut by a link fault.
 *   - Crashes: a broker is closed (its partitions put) and reopened later. A process crash
 *     keeps every byte written; a power loss keeps only what sm_log_flush() made durable
 *     (sm_log_durable_offset) plus a random prefix of the unflushed tail. The high
 *     watermark checkpoint read back at restart is stale by a random amount. The sim calls
 *     sm_log_flush at random moments. At most one failure at a time may lose data: a
 *     power loss is only injected on a broker that has no AlterPartition of its own in
 *     flight and, in every ISR that holds it, is not the last live member; and while a
 *     broker that lost data is down and still in an ISR (the controller has not fenced
 *     it yet), no other broker crashes or is fenced. Every committed record then
 *     survives on a live ISR member; losing more is outside what Kafka promises without
 *     fsync.
 *   - Other faults: a broker fenced while alive (then unfenced), a leader moved to another
 *     ISR member (preferred election), a broker paused (every event for it waits: it falls
 *     out of the ISR), links cut between brokers or to the controller.
 *   - After SIM_CHAOS_MS of simulated chaos everything heals (restarts, unfences, no
 *     drops); producers go on until something is acknowledged (3-20 s), then stop.
 *
 * Checkers, after every event (the run stops at the first violation and prints the seed,
 * the reason and the last events):
 *   1. the controller's ISR is a non-empty subset of the replicas holding the leader; every
 *      broker's own view (p->isr) is a subset of its replicas, and a leader is in its ISR;
 *   2. the current leader's high watermark (once it applied the latest image) is at most
 *      the log end of every live member of the ISR;
 *   3. a follower never truncates below the high watermark it had before a fetch response;
 *   4. no acknowledged record is lost: every live member of the controller's ISR holds, at
 *      its offset, every acknowledged record and everything that was ever below a
 *      leader's high watermark (the "committed" prefix: consumers may have read it), with
 *      the same id and leader epoch; no offset is acknowledged twice with different records;
 *   5. logs agree below the high watermark: every live replica's records below its own
 *      high watermark equal the committed reference log (id and batch leader epoch), which
 *      makes any two replicas agree below the smaller of their high watermarks;
 *   6. a leader's high watermark never moves backwards within one leader epoch (and a
 *      broker never applies an older leader epoch than one it applied);
 * and at the end (liveness): some record is acknowledged within 20 s of the heal, and
 * within 45 s every partition has a leader and an ISR of all three replicas, and every
 * replica has the leader's log end as its log end and high watermark. The first three seeds run
 * twice and must match event for event (determinism).
 *
 * Checking the checkers: building with -DSIM_REPL_UNCLEAN makes the controller elect a
 * replica outside the ISR whenever one is unfenced (an unclean election); checker 4 then
 * fires in most seeds (38 of the first 50). Off by default. To try it:
 *     touch tests/sim/sim_repl.c && make -C build sim_repl C_DEFINES=-DSIM_REPL_UNCLEAN
 *     SIM_SEEDS=10 ./build/sim_repl          (then touch and rebuild without the define)
 *
 * fsync: the sim decides what survives a crash from sm_log_durable_offset(), so it
 * replaces fdatasync/fsync with no-ops through the storage seam (sm_file_set_ops);
 * SIM_REPL_FSYNC=1 keeps the real ones.
 *
 * Usage: sim_repl                  SIM_SEEDS seeds (default 200) from SIM_SEED_START (1)
 *        SIM_SEED=n sim_repl       one seed; SIM_VERBOSE=1 prints every event and the
 *                                  partition layer's logs
 *        SIM_CHAOS_MS=n            simulated milliseconds of faults per seed (default 30000)
 *        SIM_MIN_INSYNC=1          min.insync.replicas 1 instead of 2
 */
#define _GNU_SOURCE
#include "batch.h"
#include "buf.h"
#include "file.h"
#include "log.h"
#include "partition.h"
#include "sm_test_fs.h"
#include "storage/log.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NN 3              /* brokers, all replicas of every partition */
#define MAXP 3            /* partitions per seed */
#define CTRL NN           /* the controller's network endpoint */
#define CLIENT (NN + 1)   /* the producers' endpoint */
#define NEP (NN + 2)
#define NID(i) ((int32_t)(i) + 1)
#define PRODUCE_TIMEOUT_MS 30000
#define ALTER_TIMEOUT_MS 10000 /* fetcher.c's ctl_call timeout */
#define FETCH_TIMEOUT_MS 3000  /* an unanswered fetch is abandoned after this + max wait */
#define FETCH_BACKOFF_MS 100
#define HEAL_PRODUCE_MS 20000 /* producers stop this long after the heal at the latest, */
#define HEAL_PRODUCE_MIN_MS 3000 /* and this long after it once something was acked */
#define HEAL_END_MS 45000
#define START_MS 1000
#define TS_BASE_MS 1700000000000LL /* record timestamps: this + simulated time */
#define MAX_OUT 8
#define TRACE_RING 60

#define KERR_OUT_OF_RANGE 1
#define KERR_NOT_LEADER 6
#define KERR_INVALID_REQUEST 42
#define KERR_STORAGE 56
#define KERR_FENCED_EPOCH 74
#define KERR_UNKNOWN_EPOCH 75
#define KERR_INELIGIBLE 107
#define KERR_INVALID_VERSION 108

enum {
    EV_IMAGE,         /* controller -> broker: a partition's state */
    EV_FETCH,         /* follower -> leader */
    EV_FETCH_RESP,    /* leader -> follower */
    EV_FETCH_KICK,    /* follower: send the next fetch */
    EV_PARK_EXPIRE,   /* leader: a parked fetch's max wait is over */
    EV_ALTER,         /* leader -> controller: AlterPartition */
    EV_ALTER_RESP,    /* controller -> leader */
    EV_ALTER_TIMEOUT, /* leader: no answer */
    EV_PRODUCE,       /* producer -> broker */
    EV_PRODUCER,      /* the producer makes its next request */
    EV_TICK,          /* broker: ISR check, waiter expiry */
    EV_FLUSH,         /* a random sm_log_flush */
    EV_FAULT,
    EV_RESTART,
    EV_SESSION_EXPIRE, /* controller: a dead broker's session ends */
    EV_UNFENCE,
    EV_LINK_HEAL,
    EV_SETTLE,        /* after the heal: converged yet? */
    EV_END,
    EV_COUNT
};

static const char *ev_names[EV_COUNT] = {
    "image", "fetch", "fetch-resp", "fetch-kick", "park-expire",
    "alter", "alter-resp", "alter-timeout", "produce", "producer", "tick", "flush",
    "fault", "restart", "session-expire", "unfence", "link-heal", "settle", "end"};

enum { PH_CHAOS, PH_HEALED, PH_QUIET };

/* The controller's state of one partition. */
typedef struct cpart {
    int32_t replicas[NN], isr[NN];
    int nrep, nisr;
    int32_t leader, leader_epoch, partition_epoch;
    uint32_t version; /* bumped on every change: brokers apply only newer images */
} cpart_t;

typedef struct ev {
    int64_t at;
    uint64_t seq;
    int kind;
    int node;         /* where it happens: a broker index, CTRL, or -1 */
    int part, from;   /* partition; sender endpoint */
    uint32_t inc;     /* the incarnation of `node` it is meant for (0: any) */
    uint32_t src_inc; /* the sender's incarnation */
    uint64_t id;      /* fetch, call or park id */
    cpart_t img;      /* EV_IMAGE */
    int64_t offset;   /* EV_FETCH: fetch offset */
    int32_t last_epoch, epoch; /* EV_FETCH / EV_FETCH_RESP: last fetched epoch, leader epoch */
    sm_fetched_part_t resp;    /* EV_FETCH_RESP; records owned by the event */
    int32_t isr[NN];           /* EV_ALTER */
    int64_t isr_epochs[NN];    /* EV_ALTER: each member's incarnation as the leader saw it */
    int nisr;
    int32_t le, pe;
    int16_t kerr;              /* EV_ALTER_RESP */
    int nrec;                  /* EV_PRODUCE */
    uint64_t first_id;
    int pad;
} ev_t;

typedef struct sim sim_t;

typedef struct hook_ctx {
    sim_t *s;
    int node, part;
} hook_ctx_t;

/* A follower's fetch the leader holds until data arrives or max wait passes. */
typedef struct parked {
    uint64_t id, fid;
    int part, follower;
    uint32_t finc;
    int64_t offset;
    int32_t epoch, last_epoch;
} parked_t;

/* One broker's replica of one partition. */
typedef struct rep {
    sm_partition_t *p; /* NULL while the broker is down */
    hook_ctx_t hctx;
    uint32_t applied_ver; /* image version applied (0: none since it opened) */
    int32_t seen_epoch;   /* highest leader epoch applied, across restarts */
    uint64_t out[MAX_OUT]; /* fetches in flight (not abandoned) */
    int64_t out_at[MAX_OUT]; /* when each was sent */
    int nout;
    uint64_t cur_fid;     /* the fetch loop's current fetch (0: none) */
    int64_t verified;     /* offsets below were compared with the reference log */
    int32_t lead_epoch;   /* checker 6: -1 when not leading */
    int64_t lead_hw;
    bool wake;            /* the appended hook ran: answer parked fetches */
    uint64_t last_call;   /* its latest AlterPartition */
} rep_t;

typedef struct node {
    int idx;
    int32_t id;
    bool up;
    bool lost; /* down after a power loss (its unflushed data is gone) */
    uint32_t inc;
    int64_t paused_until;
    int alter_inflight;
    const char *dir;
    rep_t rep[MAXP];
    parked_t *parked;
    int nparked, capparked;
} node_t;

/* The committed log of one partition as the checkers know it. */
typedef struct refpart {
    uint64_t *id;   /* record id at each offset, 0 = not seen committed yet */
    int32_t *epoch; /* its batch's leader epoch */
    uint64_t *ack;  /* acknowledged id at the offset, 0 = none */
    int64_t cap;
    int64_t committed; /* every offset below is committed (acked or under a leader's HW) */
    int64_t acked;     /* end of the last acknowledged record */
} refpart_t;

typedef struct stats {
    uint64_t events, acks, acks_after_heal, produce_refused, appends, crashes, power_losses,
        elections, isr_changes, truncations, fetches, flushes, range_errors, stale_refusals;
} stats_t;

struct sim {
    uint64_t seed, rng;
    bool verbose;
    int64_t now;
    uint64_t seq, digest;
    ev_t **heap;
    size_t hn, hcap;
    int nparts;
    char *topic;
    sm_log_config_t lcfg;
    node_t nodes[NN];
    cpart_t cp[MAXP];
    bool fenced[NN];
    bool link_down[NEP][NEP];
    refpart_t ref[MAXP];
    /* this seed's knobs */
    int drop_pm, slow_pm, delay_max, image_delay_max, produce_gap_ms, fault_gap_ms,
        flush_gap_ms, power_pm, max_wait_ms, fetch_max_bytes;
    int64_t lag_ms, session_ms, tick_ms;
    int32_t min_insync; /* min.insync.replicas: 2, or SIM_MIN_INSYNC */
    int phase;
    int64_t heal_at;
    int64_t chaos_end;
    uint64_t next_id, next_park, next_fid, call_seq;
    uint8_t *call_done;
    size_t call_cap;
    uint8_t *buf;
    size_t buf_cap;
    stats_t st;
    bool failed, done;
    char fail[600];
    char ring[TRACE_RING][200];
    uint64_t ring_n;
};

/* Process-wide: the temporary root and one log dir per broker (kept for the whole run,
 * each with a "pin" log open so that closing a broker's partitions never closes its log
 * dir: that would syncfs() the real file system). Topics are named per run. */
static char g_root[256];
static char g_dirs[NN][300];
static sm_log_t *g_pins[NN];
static uint64_t g_run;
static int32_t g_min_insync = 2;

/* ------------------------------------------------------------ rng, trace, failure */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int64_t rnd(sim_t *s, int64_t lo, int64_t hi) /* [lo, hi] */
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t)(splitmix(&s->rng) % (uint64_t)(hi - lo + 1));
}

static bool chance(sim_t *s, int per_mille) { return rnd(s, 0, 999) < per_mille; }

static void trace(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(sim_t *s, const char *fmt, ...)
{
    char *line = s->ring[s->ring_n++ % TRACE_RING];
    int n = snprintf(line, sizeof s->ring[0], "[t=%" PRId64 "] ", s->now);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof s->ring[0] - (size_t)n, fmt, ap);
    va_end(ap);
    if (s->verbose)
        fprintf(stderr, "%s\n", line);
}

static void sim_fail(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sim_fail(sim_t *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail, sizeof s->fail, fmt, ap);
    va_end(ap);
    trace(s, "VIOLATION: %s", s->fail);
}

/* A failure of the harness itself (cannot open a log): no point going on. */
static void die(const char *what, sm_err_t err)
{
    fprintf(stderr, "sim_repl: %s: %s\n", what, sm_err_str(err));
    exit(2);
}

static bool has(const int32_t *v, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

static void ids_str(char *out, size_t cap, const int32_t *v, int n)
{
    size_t at = 0;
    out[0] = '\0';
    for (int i = 0; i < n && at + 12 < cap; i++)
        at += (size_t)snprintf(out + at, cap - at, "%s%d", i ? "," : "", v[i]);
}

/* ------------------------------------------------------------ event queue */

static bool ev_less(const ev_t *a, const ev_t *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static ev_t *ev_new(int kind, int node, int part)
{
    ev_t *e = sm_xcalloc(1, sizeof *e);
    e->kind = kind;
    e->node = node;
    e->part = part;
    e->from = -1;
    return e;
}

static void ev_free(ev_t *e)
{
    if (e) {
        free(e->resp.records);
        free(e);
    }
}

static void ev_push(sim_t *s, ev_t *e, int64_t at)
{
    e->at = at;
    e->seq = s->seq++;
    if (s->hn == s->hcap) {
        s->hcap = s->hcap ? s->hcap * 2 : 256;
        s->heap = sm_xrealloc(s->heap, s->hcap * sizeof *s->heap);
    }
    size_t i = s->hn++;
    while (i > 0 && ev_less(e, s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = e;
}

static ev_t *ev_pop(sim_t *s)
{
    if (!s->hn)
        return NULL;
    ev_t *top = s->heap[0], *last = s->heap[--s->hn];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->hn)
            break;
        if (c + 1 < s->hn && ev_less(s->heap[c + 1], s->heap[c]))
            c++;
        if (!ev_less(s->heap[c], last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->hn)
        s->heap[i] = last;
    return top;
}

static void at_node(sim_t *s, int kind, int node, int part, uint32_t inc, int64_t at)
{
    ev_t *e = ev_new(kind, node, part);
    e->inc = inc;
    ev_push(s, e, at);
}

/* Send e from e->from to e->node over the network: delayed, maybe lost (then freed). */
static bool net_post(sim_t *s, ev_t *e)
{
    if (s->link_down[e->from][e->node] || chance(s, s->drop_pm)) {
        ev_free(e);
        return false;
    }
    int64_t d = chance(s, s->slow_pm) ? rnd(s, 200, 2500) : rnd(s, 1, s->delay_max);
    ev_push(s, e, s->now + d);
    return true;
}

/* ------------------------------------------------------------ reference log */

static void ref_grow(refpart_t *r, int64_t n)
{
    if (n <= r->cap)
        return;
    int64_t cap = SM_MAX(n, r->cap * 2);
    cap = SM_MAX(cap, 1024);
    r->id = sm_xrealloc(r->id, sizeof *r->id * (size_t)cap);
    r->epoch = sm_xrealloc(r->epoch, sizeof *r->epoch * (size_t)cap);
    r->ack = sm_xrealloc(r->ack, sizeof *r->ack * (size_t)cap);
    memset(r->id + r->cap, 0, sizeof *r->id * (size_t)(cap - r->cap));
    memset(r->epoch + r->cap, 0, sizeof *r->epoch * (size_t)(cap - r->cap));
    memset(r->ack + r->cap, 0, sizeof *r->ack * (size_t)(cap - r->cap));
    r->cap = cap;
}

/* A record node i holds at offset o in a committed range (checkers 4 and 5). */
static void check_record(sim_t *s, int i, int k, int64_t o, uint64_t id, int32_t epoch)
{
    refpart_t *r = &s->ref[k];
    ref_grow(r, o + 1);
    if (r->id[o] == 0) {
        r->id[o] = id;
        r->epoch[o] = epoch;
        if (r->ack[o] && r->ack[o] != id)
            sim_fail(s, "checker 4: acknowledged record %" PRIu64 " at %s-%d offset %" PRId64
                        " lost: broker %d has record %" PRIu64 " there in its committed range",
                     r->ack[o], s->topic, k, o, NID(i), id);
    } else if (r->id[o] != id || r->epoch[o] != epoch) {
        sim_fail(s, "checker %d: logs disagree below the high watermark: broker %d has record "
                    "%" PRIu64 " (epoch %d) at %s-%d offset %" PRId64 ", the committed log has "
                    "%" PRIu64 " (epoch %d)%s",
                 r->ack[o] ? 4 : 5, NID(i), id, epoch, s->topic, k, o, r->id[o], r->epoch[o],
                 r->ack[o] ? " (acknowledged)" : "");
    }
}

/* Acknowledged: records [base, base + n) carry ids first_id.. */
static void ack(sim_t *s, int k, int64_t base, int n, uint64_t first_id)
{
    refpart_t *r = &s->ref[k];
    ref_grow(r, base + n);
    for (int j = 0; j < n; j++) {
        int64_t o = base + j;
        uint64_t id = first_id + (uint64_t)j;
        if (r->ack[o] && r->ack[o] != id)
            sim_fail(s, "checker 4: offset %" PRId64 " of %s-%d acknowledged twice: record %" PRIu64
                        " then %" PRIu64, o, s->topic, k, r->ack[o], id);
        r->ack[o] = id;
        if (r->id[o] && r->id[o] != id)
            sim_fail(s, "checker 4: record %" PRIu64 " acknowledged at %s-%d offset %" PRId64
                        " but the committed log has %" PRIu64 " there", id, s->topic, k, o, r->id[o]);
    }
    r->committed = SM_MAX(r->committed, base + n);
    r->acked = SM_MAX(r->acked, base + n);
    s->st.acks += (uint64_t)n;
    if (s->phase != PH_CHAOS)
        s->st.acks_after_heal += (uint64_t)n;
    trace(s, "acked %s-%d [%" PRId64 ", %" PRId64 ") ids %" PRIu64 "..", s->topic, k, base,
          base + n, first_id);
}

/* Compare broker i's log of partition k over [from, to) with the reference. Returns the
 * offset reached: `to`, or less if its log ends before. */
static int64_t verify(sim_t *s, int i, int k, int64_t from, int64_t to)
{
    sm_partition_t *p = s->nodes[i].rep[k].p;
    int64_t off = from;
    while (off < to && !s->failed) {
        sm_log_slice_t sl;
        sm_err_t err = sm_partition_read_local(p, off, 1 << 16, true, &sl);
        if (err == SM_ERR_RANGE)
            break;
        if (err != SM_OK) {
            sim_fail(s, "broker %d: reading %s-%d at %" PRId64 " failed: %s", NID(i), s->topic, k,
                     off, sm_err_str(err));
            break;
        }
        if (sl.len <= 0) {
            if (sl.ref)
                sm_ref_release(sl.ref);
            break;
        }
        if ((size_t)sl.len > s->buf_cap) {
            s->buf_cap = (size_t)sl.len * 2;
            s->buf = sm_xrealloc(s->buf, s->buf_cap);
        }
        ssize_t got = pread(sl.fd, s->buf, (size_t)sl.len, sl.file_pos);
        sm_ref_release(sl.ref);
        if (got != sl.len) {
            sim_fail(s, "broker %d: short read of %s-%d at %" PRId64, NID(i), s->topic, k, off);
            break;
        }
        size_t pos = 0, len = (size_t)sl.len;
        int64_t next = off;
        while (pos < len && !s->failed) {
            sm_batch_info_t b;
            const char *why = NULL;
            if (sm_batch_validate(s->buf + pos, len - pos, &b, &why) != SM_OK) {
                sim_fail(s, "broker %d: bad batch in %s-%d near %" PRId64 ": %s", NID(i), s->topic,
                         k, next, why ? why : "?");
                break;
            }
            size_t total = (size_t)sm_batch_total_size(&b);
            sm_record_iter_t it;
            sm_record_t rec;
            if (sm_record_iter_init(&it, s->buf + pos, total) != SM_OK) {
                sim_fail(s, "broker %d: unreadable batch in %s-%d", NID(i), s->topic, k);
                break;
            }
            while (sm_record_iter_next(&it, &rec) == SM_OK) {
                int64_t o = b.base_offset + rec.offset_delta;
                if (o < off || o >= to)
                    continue;
                uint64_t id = 0;
                if (rec.value && rec.value_len >= 8)
                    memcpy(&id, rec.value, 8);
                check_record(s, i, k, o, id, b.leader_epoch);
            }
            next = sm_batch_last_offset(&b) + 1;
            pos += total;
        }
        if (next <= off) {
            sim_fail(s, "broker %d: read of %s-%d at %" PRId64 " made no progress", NID(i),
                     s->topic, k, off);
            break;
        }
        off = next;
    }
    return SM_MIN(off, to);
}

/* ------------------------------------------------------------ controller */

static void image_send(sim_t *s, int i, int k)
{
    node_t *nd = &s->nodes[i];
    ev_t *e = ev_new(EV_IMAGE, i, k);
    e->inc = nd->inc;
    e->img = s->cp[k];
    int64_t d = chance(s, s->slow_pm) ? rnd(s, 100, 1500) : rnd(s, 1, s->image_delay_max);
    ev_push(s, e, s->now + d);
}

static void ctl_publish(sim_t *s, int k, const char *why)
{
    cpart_t *c = &s->cp[k];
    c->version++;
    char isr[64];
    ids_str(isr, sizeof isr, c->isr, c->nisr);
    trace(s, "controller: %s-%d v%u leader %d epoch %d/%d isr [%s] (%s)", s->topic, k,
          c->version, c->leader, c->leader_epoch, c->partition_epoch, isr, why);
    for (int i = 0; i < NN; i++)
        if (s->nodes[i].up)
            image_send(s, i, k);
}

/* The leader after `gone` stops leading: a random unfenced ISR member (-1: none). With
 * SIM_REPL_UNCLEAN, an unfenced replica outside the ISR first (the ISR becomes it). */
static int32_t pick_leader(sim_t *s, cpart_t *c, int32_t gone)
{
    int32_t cand[NN];
    int n = 0;
#ifdef SIM_REPL_UNCLEAN
    for (int j = 0; j < c->nrep; j++)
        if (c->replicas[j] != gone && !has(c->isr, c->nisr, c->replicas[j]) &&
            !s->fenced[c->replicas[j] - 1])
            cand[n++] = c->replicas[j];
    if (n > 0) {
        int32_t l = cand[rnd(s, 0, n - 1)];
        c->isr[0] = l;
        c->nisr = 1;
        return l;
    }
#endif
    for (int j = 0; j < c->nisr; j++)
        if (c->isr[j] != gone && !s->fenced[c->isr[j] - 1])
            cand[n++] = c->isr[j];
    return n ? cand[rnd(s, 0, n - 1)] : -1;
}

/* Fence broker i (session over, re-registration, or a fault): out of every ISR but as
 * the last member, its leaderships moved (add_moves_off in src/meta). */
static void ctl_fence(sim_t *s, int i, const char *why)
{
    int32_t id = NID(i);
    s->fenced[i] = true;
    trace(s, "controller: broker %d fenced (%s)", id, why);
    for (int k = 0; k < s->nparts; k++) {
        cpart_t *c = &s->cp[k];
        bool in_isr = has(c->isr, c->nisr, id), leads = c->leader == id;
        bool changed = false;
        if (in_isr && c->nisr > 1) {
            int n = 0;
            for (int j = 0; j < c->nisr; j++)
                if (c->isr[j] != id)
                    c->isr[n++] = c->isr[j];
            c->nisr = n;
            changed = true;
        }
        if (leads) {
            c->leader = pick_leader(s, c, id);
            c->leader_epoch++;
            s->st.elections++;
            changed = true;
        }
        if (changed) {
            c->partition_epoch++;
            ctl_publish(s, k, leads ? "leader fenced" : "member fenced");
        }
    }
}

/* Unfence broker i: leaders for the partitions that have none and keep it in their ISR
 * (add_leaders_for in src/meta). */
static void ctl_unfence(sim_t *s, int i)
{
    int32_t id = NID(i);
    s->fenced[i] = false;
    trace(s, "controller: broker %d unfenced", id);
    for (int k = 0; k < s->nparts; k++) {
        cpart_t *c = &s->cp[k];
        if (c->leader >= 0)
            continue;
        bool clean = has(c->isr, c->nisr, id);
#ifdef SIM_REPL_UNCLEAN
        if (!clean) {
            c->isr[0] = id;
            c->nisr = 1;
            clean = true;
        }
#endif
        if (!clean)
            continue;
        c->leader = id;
        c->leader_epoch++;
        c->partition_epoch++;
        s->st.elections++;
        ctl_publish(s, k, "offline partition gets a leader");
    }
}

/* AlterPartition, checked as src/meta's check_isr_change(). */
static int16_t ctl_alter(sim_t *s, const ev_t *e)
{
    cpart_t *c = &s->cp[e->part];
    int32_t from = NID(e->from);
    if (c->leader != from)
        return KERR_NOT_LEADER;
    if (e->le != c->leader_epoch)
        return KERR_FENCED_EPOCH;
    if (e->pe != c->partition_epoch)
        return KERR_INVALID_VERSION;
    if (e->nisr <= 0 || !has(e->isr, e->nisr, from))
        return KERR_INVALID_REQUEST;
    for (int j = 0; j < e->nisr; j++) {
        if (!has(c->replicas, c->nrep, e->isr[j]) || has(e->isr, j, e->isr[j]))
            return KERR_INVALID_REQUEST;
        if (!has(c->isr, c->nisr, e->isr[j]) && s->fenced[e->isr[j] - 1])
            return KERR_INELIGIBLE;
        /* KIP-903: a member that re-registered since the leader saw it fetch */
        if (!has(c->isr, c->nisr, e->isr[j]) && e->isr_epochs[j] >= 0 &&
            (uint32_t)e->isr_epochs[j] != s->nodes[e->isr[j] - 1].inc)
            return KERR_INELIGIBLE;
    }
    bool same = e->nisr == c->nisr;
    for (int j = 0; j < e->nisr && same; j++)
        same = has(c->isr, c->nisr, e->isr[j]);
    if (same)
        return 0;
    memcpy(c->isr, e->isr, sizeof c->isr);
    c->nisr = e->nisr;
    c->partition_epoch++;
    s->st.isr_changes++;
    ctl_publish(s, e->part, "AlterPartition");
    return 0;
}

/* ------------------------------------------------------------ brokers */

static void on_appended(void *ctx, sm_partition_t *p)
{
    (void)p;
    hook_ctx_t *h = ctx;
    h->s->nodes[h->node].rep[h->part].wake = true;
}

static char *part_dir(sim_t *s, int i, int k)
{
    return sm_xasprintf("%s/%s-%d", s->nodes[i].dir, s->topic, k);
}

static void rep_open(sim_t *s, node_t *nd, int k)
{
    rep_t *r = &nd->rep[k];
    r->hctx = (hook_ctx_t){s, nd->idx, k};
    sm_partition_hooks_t hooks = {.appended = on_appended, .ctx = &r->hctx};
    r->p = sm_partition_open(nd->dir, s->topic, k, NULL, &s->lcfg, &hooks);
    if (!r->p)
        die("cannot open a partition", SM_ERR_IO);
    __atomic_store_n(&r->p->min_insync_replicas, s->min_insync, __ATOMIC_RELAXED);
    r->applied_ver = 0;
    r->nout = 0;
    r->cur_fid = 0;
    r->lead_epoch = -1;
    r->wake = false;
    r->verified = SM_MIN(r->verified, sm_partition_log_end(r->p));
}

static void fetch_kick(sim_t *s, node_t *nd, int k)
{
    rep_t *r = &nd->rep[k];
    sm_partition_t *p = r->p;
    if (!p || r->cur_fid || sm_partition_role(p) != SM_ROLE_FOLLOWER || r->nout >= MAX_OUT)
        return;
    int32_t leader = __atomic_load_n(&p->leader_id, __ATOMIC_RELAXED);
    if (leader < 0 || leader == nd->id)
        return;
    ev_t *e = ev_new(EV_FETCH, leader - 1, k);
    e->from = nd->idx;
    e->src_inc = nd->inc;
    e->inc = s->nodes[leader - 1].inc; /* the connection is to that process */
    e->id = ++s->next_fid;
    e->offset = sm_partition_log_end(p);
    e->last_epoch = sm_partition_last_epoch(p);
    e->epoch = sm_partition_leader_epoch(p);
    r->cur_fid = e->id;
    r->out_at[r->nout] = s->now;
    r->out[r->nout++] = e->id;
    net_post(s, e);
}

/* The leader answers a follower's fetch (fill_partition in handle_fetch.c). */
static void fetch_answer(sim_t *s, node_t *L, int k, const parked_t *q, bool diverging,
                         int32_t div_epoch, int64_t div_end, int16_t err)
{
    sm_partition_t *p = L->rep[k].p;
    ev_t *e = ev_new(EV_FETCH_RESP, q->follower, k);
    e->from = L->idx;
    e->inc = q->finc;
    e->id = q->fid;
    e->epoch = q->epoch;
    sm_fetched_part_t *f = &e->resp;
    f->high_watermark = f->log_start_offset = -1;
    f->diverging_epoch = -1;
    f->diverging_end = -1;
    int c;
    if (err) {
        f->error = err;
    } else if (sm_partition_role(p) != SM_ROLE_LEADER) {
        f->error = KERR_NOT_LEADER;
    } else if ((c = sm_partition_epoch_cmp(p, q->epoch)) != 0) {
        f->error = c < 0 ? KERR_FENCED_EPOCH : KERR_UNKNOWN_EPOCH;
    } else {
        f->high_watermark = sm_partition_high_watermark(p);
        f->log_start_offset = sm_partition_log_start(p);
        int64_t end = sm_partition_log_end(p);
        if (diverging) {
            f->diverging_epoch = div_epoch;
            f->diverging_end = div_end;
        } else if (q->offset < f->log_start_offset || q->offset > end) {
            f->error = KERR_OUT_OF_RANGE;
        } else if (q->offset < end) {
            sm_log_slice_t sl;
            sm_err_t rc = sm_partition_read_local(p, q->offset, s->fetch_max_bytes, true, &sl);
            if (rc != SM_OK) {
                f->error = rc == SM_ERR_RANGE ? KERR_OUT_OF_RANGE : KERR_STORAGE;
            } else if (sl.len > 0) {
                f->records = sm_xmalloc((size_t)sl.len);
                ssize_t got = pread(sl.fd, f->records, (size_t)sl.len, sl.file_pos);
                if (got != sl.len)
                    sim_fail(s, "broker %d: short read of %s-%d for a fetch", L->id, s->topic, k);
                f->len = (size_t)sl.len;
            }
            if (sl.ref)
                sm_ref_release(sl.ref);
        }
    }
    trace(s, "broker %d answers fetch %" PRIu64 " of broker %d for %s-%d at %" PRId64
             " (last epoch %d): error %d, hw %" PRId64 ", diverging %d/%" PRId64 ", %zu bytes",
          L->id, q->fid, NID(q->follower), s->topic, k, q->offset, q->last_epoch, f->error,
          f->high_watermark,
          f->diverging_epoch, f->diverging_end, f->len);
    net_post(s, e);
}

/* Leader: a follower's fetch arrives (replica_fetched in handle_fetch.c, then answer or
 * park). */
static void on_fetch(sim_t *s, node_t *L, ev_t *e)
{
    sm_partition_t *p = L->rep[e->part].p;
    parked_t q = {.fid = e->id, .part = e->part, .follower = e->from, .finc = e->src_inc,
                  .offset = e->offset, .epoch = e->epoch, .last_epoch = e->last_epoch};
    s->st.fetches++;
    bool diverging = false, park = false;
    int32_t de = -1;
    int64_t dend = -1;
    int16_t err = 0;
    if (sm_partition_role(p) == SM_ROLE_LEADER && sm_partition_epoch_cmp(p, e->epoch) == 0) {
        diverging = sm_partition_diverging(p, e->last_epoch, e->offset, &de, &dend);
        if (!diverging && !sm_partition_follower_fetched(p, NID(e->from), (int64_t)e->src_inc,
                                                         e->offset, s->now))
            err = KERR_NOT_LEADER;
        park = !diverging && !err && e->offset == sm_partition_log_end(p);
    }
    if (!park) {
        fetch_answer(s, L, e->part, &q, diverging, de, dend, err);
        return;
    }
    if (L->nparked == L->capparked) {
        L->capparked = L->capparked ? L->capparked * 2 : 8;
        L->parked = sm_xrealloc(L->parked, sizeof *L->parked * (size_t)L->capparked);
    }
    q.id = ++s->next_park;
    L->parked[L->nparked++] = q;
    ev_t *x = ev_new(EV_PARK_EXPIRE, L->idx, e->part);
    x->inc = L->inc;
    x->id = q.id;
    ev_push(s, x, s->now + s->max_wait_ms);
}

static void unpark(sim_t *s, node_t *L, int at)
{
    parked_t q = L->parked[at];
    memmove(&L->parked[at], &L->parked[at + 1], sizeof *L->parked * (size_t)(L->nparked - at - 1));
    L->nparked--;
    fetch_answer(s, L, q.part, &q, false, -1, -1, 0);
}

/* After each event: answer the parked fetches of partitions whose hook ran. */
static void process_wakes(sim_t *s)
{
    for (int i = 0; i < NN; i++) {
        node_t *nd = &s->nodes[i];
        if (!nd->up || nd->paused_until > s->now)
            continue;
        for (int k = 0; k < s->nparts; k++) {
            if (!nd->rep[k].wake)
                continue;
            nd->rep[k].wake = false;
            for (int j = 0; j < nd->nparked;)
                if (nd->parked[j].part == k)
                    unpark(s, nd, j);
                else
                    j++;
        }
    }
}

/* Follower: a fetch response arrives (on_fetch in fetcher.c). */
static void on_fetch_resp(sim_t *s, node_t *nd, ev_t *e)
{
    rep_t *r = &nd->rep[e->part];
    int at = -1;
    for (int j = 0; j < r->nout; j++)
        if (r->out[j] == e->id)
            at = j;
    if (at < 0)
        return; /* abandoned after its timeout */
    r->nout--;
    r->out[at] = r->out[r->nout];
    r->out_at[at] = r->out_at[r->nout];
    bool current = r->cur_fid == e->id;
    if (current)
        r->cur_fid = 0;
    sm_partition_t *p = r->p;
    int64_t hw0 = sm_partition_high_watermark(p), end0 = sm_partition_log_end(p);
    sm_err_t rc = sm_partition_follower_apply(p, e->epoch, &e->resp);
    int64_t end1 = sm_partition_log_end(p);
    trace(s, "broker %d applies fetch %" PRIu64 " (epoch %d) to %s-%d: %s, end %" PRId64
             " -> %" PRId64 ", hw %" PRId64 " -> %" PRId64,
          nd->id, e->id, e->epoch, s->topic, e->part, sm_err_str(rc), end0, end1, hw0,
          sm_partition_high_watermark(p));
    if (end1 < hw0)
        sim_fail(s, "checker 3: follower %d truncated %s-%d to %" PRId64 ", below its high "
                    "watermark %" PRId64 " (response: error %d, hw %" PRId64 ", diverging epoch %d"
                    " end %" PRId64 ")",
                 nd->id, s->topic, e->part, end1, hw0, e->resp.error, e->resp.high_watermark,
                 e->resp.diverging_epoch, e->resp.diverging_end);
    if (end1 < end0)
        s->st.truncations++;
    switch (rc) {
    case SM_OK:
    case SM_ERR_AGAIN:
        break;
    case SM_ERR_INVALID:
        if (!e->resp.error)
            sim_fail(s, "broker %d: follower_apply refused a clean response: %s", nd->id,
                     sm_err_str(rc));
        break;
    case SM_ERR_RANGE: /* one fetch in flight per loop: the records always continue the log */
        s->st.range_errors++;
        sim_fail(s, "broker %d: a fetch response for %s-%d at %" PRId64 " does not continue its "
                    "log", nd->id, s->topic, e->part, end0);
        break;
    default:
        sim_fail(s, "broker %d: applying a fetch response of %s-%d failed: %s", nd->id, s->topic,
                 e->part, sm_err_str(rc));
    }
    if (!current)
        return;
    if (rc == SM_OK && !e->resp.error)
        fetch_kick(s, nd, e->part);
    else
        at_node(s, EV_FETCH_KICK, nd->idx, e->part, nd->inc, s->now + FETCH_BACKOFF_MS);
}

static void on_image(sim_t *s, node_t *nd, const ev_t *e)
{
    rep_t *r = &nd->rep[e->part];
    const cpart_t *c = &e->img;
    if (c->version <= r->applied_ver)
        return; /* an older image overtaken by a newer one */
    sm_partition_t *p = r->p;
    if (c->leader_epoch < r->seen_epoch)
        sim_fail(s, "checker 6: broker %d applies leader epoch %d of %s-%d after %d", nd->id,
                 c->leader_epoch, s->topic, e->part, r->seen_epoch);
    int32_t old_leader = __atomic_load_n(&p->leader_id, __ATOMIC_RELAXED);
    int32_t old_epoch = sm_partition_leader_epoch(p);
    sm_partition_set_replicas(p, nd->id, c->leader, c->leader_epoch, c->partition_epoch,
                              c->replicas, c->nrep, c->isr, c->nisr, s->now);
    r->applied_ver = c->version;
    r->seen_epoch = SM_MAX(r->seen_epoch, c->leader_epoch);
    trace(s, "broker %d applies image v%u of %s-%d: leader %d epoch %d", nd->id, c->version,
          s->topic, e->part, c->leader, c->leader_epoch);
    if (old_leader != c->leader || old_epoch != c->leader_epoch) {
        r->cur_fid = 0; /* the old loop's fetch may still answer: applied as stale */
        fetch_kick(s, nd, e->part);
    }
}

typedef struct pwait {
    sm_hw_waiter_t w;
    sim_t *s;
    int part;
    int64_t base;
    int n;
    uint64_t first_id;
} pwait_t;

static void on_hw_done(sm_hw_waiter_t *w, int16_t kerr)
{
    pwait_t *pw = (pwait_t *)w;
    if (kerr == 0)
        ack(pw->s, pw->part, pw->base, pw->n, pw->first_id);
    else
        trace(pw->s, "produce to %s-%d [%" PRId64 ", %" PRId64 ") not acknowledged: error %d",
              pw->s->topic, pw->part, pw->base, pw->base + pw->n, kerr);
    free(pw);
}

static void on_produce(sim_t *s, node_t *nd, const ev_t *e)
{
    sm_partition_t *p = nd->rep[e->part].p;
    int k = e->part;
    if (sm_partition_role(p) != SM_ROLE_LEADER ||
        __atomic_load_n(&p->isr_size, __ATOMIC_RELAXED) <
            __atomic_load_n(&p->min_insync_replicas, __ATOMIC_RELAXED)) {
        s->st.produce_refused++;
        trace(s, "broker %d refuses a produce to %s-%d (%s)", nd->id, s->topic, k,
              sm_partition_role(p) != SM_ROLE_LEADER ? "not leader" : "isr < min.insync");
        return;
    }
    /* one batch of nrec records; each value is its id and some filler */
    uint8_t vals[5][8 + 64];
    sm_record_in_t recs[5];
    for (int j = 0; j < e->nrec; j++) {
        uint64_t id = e->first_id + (uint64_t)j;
        memcpy(vals[j], &id, 8);
        memset(vals[j] + 8, 'x', 64);
        recs[j] = (sm_record_in_t){.key = NULL, .key_len = -1, .value = vals[j],
                                   .value_len = 8 + e->pad, .timestamp = TS_BASE_MS + s->now};
    }
    sm_batch_params_t bp = {.leader_epoch = -1, .producer_id = -1, .producer_epoch = -1,
                            .base_sequence = -1};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_batch_encode(&w, &bp, recs, e->nrec);
    sm_append_info_t ai;
    sm_err_t err = sm_partition_append(p, w.mem, w.len, &ai);
    sm_wbuf_free(&w);
    if (err != SM_OK) {
        s->st.produce_refused++;
        trace(s, "broker %d: append to %s-%d failed: %s", nd->id, s->topic, k, sm_err_str(err));
        return;
    }
    s->st.appends++;
    trace(s, "broker %d appends ids %" PRIu64 ".. to %s-%d at [%" PRId64 ", %" PRId64 "] epoch %d",
          nd->id, e->first_id, s->topic, k, ai.base_offset, ai.last_offset,
          sm_partition_leader_epoch(p));
    if (ai.last_offset - ai.base_offset + 1 != e->nrec)
        sim_fail(s, "broker %d: append of %d records got offsets [%" PRId64 ", %" PRId64 "]",
                 nd->id, e->nrec, ai.base_offset, ai.last_offset);
    pwait_t *pw = sm_xcalloc(1, sizeof *pw);
    pw->w.done = on_hw_done;
    pw->w.target = ai.last_offset + 1;
    pw->w.deadline_ms = s->now + PRODUCE_TIMEOUT_MS;
    pw->s = s;
    pw->part = k;
    pw->base = ai.base_offset;
    pw->n = e->nrec;
    pw->first_id = e->first_id;
    if (sm_partition_wait_hw(p, &pw->w)) { /* already there */
        ack(s, k, pw->base, pw->n, pw->first_id);
        free(pw);
    }
}

static void send_alter(sim_t *s, node_t *nd, int k, const int32_t *isr, const int64_t *epochs,
                       int n, int32_t le, int32_t pe)
{
    ev_t *e = ev_new(EV_ALTER, CTRL, k);
    e->from = nd->idx;
    e->src_inc = nd->inc;
    e->id = ++s->call_seq;
    memcpy(e->isr, isr, sizeof *isr * (size_t)n);
    memcpy(e->isr_epochs, epochs, sizeof *epochs * (size_t)n);
    e->nisr = n;
    e->le = le;
    e->pe = pe;
    if (s->call_seq >= s->call_cap) {
        size_t cap = s->call_cap ? s->call_cap * 2 : 256;
        s->call_done = sm_xrealloc(s->call_done, cap);
        memset(s->call_done + s->call_cap, 0, cap - s->call_cap);
        s->call_cap = cap;
    }
    char str[64];
    ids_str(str, sizeof str, isr, n);
    trace(s, "broker %d proposes ISR [%s] for %s-%d (epoch %d/%d), call %" PRIu64, nd->id, str,
          s->topic, k, le, pe, e->id);
    uint64_t id = e->id;
    nd->rep[k].last_call = id;
    if (net_post(s, e))
        nd->alter_inflight++;
    ev_t *t = ev_new(EV_ALTER_TIMEOUT, nd->idx, k);
    t->inc = nd->inc;
    t->id = id;
    ev_push(s, t, s->now + ALTER_TIMEOUT_MS);
}

static void on_tick(sim_t *s, node_t *nd)
{
    for (int k = 0; k < s->nparts; k++) {
        rep_t *r = &nd->rep[k];
        sm_partition_t *p = r->p;
        /* fetches unanswered for too long are abandoned (the peer's request timeout) */
        for (int j = 0; j < r->nout;) {
            if (s->now - r->out_at[j] < FETCH_TIMEOUT_MS + s->max_wait_ms) {
                j++;
                continue;
            }
            trace(s, "broker %d abandons fetch %" PRIu64, nd->id, r->out[j]);
            if (r->cur_fid == r->out[j])
                r->cur_fid = 0;
            r->nout--;
            r->out[j] = r->out[r->nout];
            r->out_at[j] = r->out_at[r->nout];
        }
        sm_partition_expire_hw_waiters(p, s->now);
        if (sm_partition_role(p) == SM_ROLE_LEADER) {
            int32_t isr[NN], le, pe;
            int64_t epochs[NN];
            int n = 0;
            if (sm_partition_isr_proposal(p, s->now, s->lag_ms, isr, epochs, &n, &le, &pe))
                send_alter(s, nd, k, isr, epochs, n, le, pe);
        } else if (!nd->rep[k].cur_fid) {
            fetch_kick(s, nd, k);
        }
    }
    at_node(s, EV_TICK, nd->idx, -1, nd->inc, s->now + s->tick_ms);
}

/* ------------------------------------------------------------ crashes */

/* Broker i lost data in a power loss and an ISR still holds it (it may even have been
 * added while down, from the leader's memory of its last fetches): no other broker may
 * fail until the controller fences it, or it could end up the last ISR member. */
static bool node_dirty(const sim_t *s, int i)
{
    if (s->nodes[i].up || !s->nodes[i].lost)
        return false;
    for (int k = 0; k < s->nparts; k++)
        if (has(s->cp[k].isr, s->cp[k].nisr, NID(i)))
            return true;
    return false;
}

/* May broker i lose its unflushed data now? Only if, for every partition whose ISR holds
 * it, another live ISR member holds everything acknowledged, and no ISR change of its own
 * is on the way to the controller (one could leave it the last member). */
static bool power_loss_ok(sim_t *s, int i)
{
    if (s->nodes[i].alter_inflight > 0)
        return false;
    for (int k = 0; k < s->nparts; k++) {
        const cpart_t *c = &s->cp[k];
        if (!has(c->isr, c->nisr, NID(i)))
            continue;
        int others = 0;
        for (int j = 0; j < c->nisr; j++) {
            const node_t *o = &s->nodes[c->isr[j] - 1];
            others += c->isr[j] != NID(i) && o->up;
        }
        if (others == 0)
            return false;
    }
    return true;
}

static void node_crash(sim_t *s, node_t *nd, bool power)
{
    s->st.crashes++;
    s->st.power_losses += power;
    trace(s, "broker %d crashes (%s)", nd->id, power ? "power loss: unflushed data lost" :
                                                       "process crash: page cache survives");
    nd->up = false;
    nd->inc++;
    nd->paused_until = 0;
    nd->nparked = 0;
    nd->lost = power;
    for (int k = 0; k < s->nparts; k++) {
        rep_t *r = &nd->rep[k];
        sm_partition_t *p = r->p;
        int64_t end = sm_partition_log_end(p), start = sm_partition_log_start(p);
        int64_t durable = sm_log_durable_offset(p->log);
        int64_t hw = sm_partition_high_watermark(p);
        int64_t keep = !power ? end : chance(s, 500) ? durable : rnd(s, durable, end);
        /* the replication-offset-checkpoint read back is some earlier high watermark */
        int64_t hw_ckpt = chance(s, 500) ? hw : rnd(s, SM_MAX(start, hw - 30), hw);
        sm_partition_fail_hw_waiters(p, KERR_NOT_LEADER); /* nobody hears these */
        sm_partition_put(p);
        r->p = NULL;
        /* what the disk holds when the broker comes back */
        char *dir = part_dir(s, nd->idx, k);
        sm_log_t *log;
        sm_err_t err = sm_log_open(dir, "crashed", &s->lcfg, &log);
        if (err != SM_OK)
            die("cannot reopen a crashed log", err);
        sm_log_set_high_watermark(log, hw_ckpt);
        if (keep < end && (err = sm_log_truncate_to(log, keep)) != SM_OK)
            die("cannot cut a crashed log", err);
        int64_t left = sm_log_end_offset(log);
        sm_log_close(log);
        free(dir);
        trace(s, "  %s-%d on broker %d: end %" PRId64 ", durable %" PRId64 ", kept %" PRId64
                 ", hw checkpoint %" PRId64,
              s->topic, k, nd->id, end, durable, left, hw_ckpt);
        r->verified = SM_MIN(r->verified, left);
        r->nout = 0;
        r->cur_fid = 0;
        r->lead_epoch = -1;
        r->wake = false;
    }
    at_node(s, EV_SESSION_EXPIRE, nd->idx, -1, nd->inc, s->now + s->session_ms);
    at_node(s, EV_RESTART, nd->idx, -1, nd->inc, s->now + rnd(s, 200, 4000));
}

static void node_restart(sim_t *s, node_t *nd)
{
    nd->up = true;
    nd->lost = false;
    nd->inc++;
    trace(s, "broker %d restarts", nd->id);
    for (int k = 0; k < s->nparts; k++)
        rep_open(s, nd, k);
    /* Registration of the new incarnation: the old one's session ends first (KIP-966:
     * a broker that may have lost data leaves the ISRs), then it gets the images and is
     * unfenced once it caught up with the metadata. */
    if (!s->fenced[nd->idx])
        ctl_fence(s, nd->idx, "re-registration");
    for (int k = 0; k < s->nparts; k++)
        image_send(s, nd->idx, k);
    at_node(s, EV_UNFENCE, nd->idx, -1, nd->inc, s->now + rnd(s, 50, 500));
    at_node(s, EV_TICK, nd->idx, -1, nd->inc, s->now + rnd(s, 1, s->tick_ms));
}

/* ------------------------------------------------------------ faults */

static int pick_up_node(sim_t *s)
{
    int cand[NN], n = 0;
    for (int i = 0; i < NN; i++)
        if (s->nodes[i].up)
            cand[n++] = i;
    return n ? cand[rnd(s, 0, n - 1)] : -1;
}

static void fault(sim_t *s)
{
    bool dirty = false;
    int down = 0;
    for (int i = 0; i < NN; i++) {
        dirty |= node_dirty(s, i);
        down += !s->nodes[i].up;
    }
    int kind = (int)rnd(s, 0, 9);
    int i = pick_up_node(s);
    if (i < 0)
        return;
    node_t *nd = &s->nodes[i];
    switch (kind) {
    case 0:
    case 1:
    case 2: /* crash */
        if (dirty || down >= 2)
            return;
        node_crash(s, nd, chance(s, s->power_pm) && power_loss_ok(s, i));
        break;
    case 3: /* fenced while alive (missed heartbeats), unfenced later */
        if (dirty || s->fenced[i])
            return;
        ctl_fence(s, i, "missed heartbeats");
        at_node(s, EV_UNFENCE, i, -1, nd->inc, s->now + rnd(s, 300, 3 * s->lag_ms));
        break;
    case 4: { /* the controller moves a leadership to another ISR member */
        int k = (int)rnd(s, 0, s->nparts - 1);
        cpart_t *c = &s->cp[k];
        int32_t cand[NN];
        int n = 0;
        for (int j = 0; j < c->nisr; j++)
            if (c->isr[j] != c->leader && !s->fenced[c->isr[j] - 1])
                cand[n++] = c->isr[j];
        if (c->leader < 0 || n == 0)
            return;
        c->leader = cand[rnd(s, 0, n - 1)];
        c->leader_epoch++;
        c->partition_epoch++;
        s->st.elections++;
        ctl_publish(s, k, "leader moved");
        break;
    }
    case 5:
    case 6: /* paused (GC, stalled disk): everything for it waits */
        nd->paused_until = s->now + rnd(s, s->lag_ms / 2, 3 * s->lag_ms);
        trace(s, "broker %d paused until %" PRId64, nd->id, nd->paused_until);
        break;
    default: { /* a link between two brokers, or a broker and the controller, is cut */
        int a = i, b = (int)rnd(s, 0, NN);
        if (a == b)
            b = CTRL;
        s->link_down[a][b] = s->link_down[b][a] = true;
        ev_t *e = ev_new(EV_LINK_HEAL, a, b);
        ev_push(s, e, s->now + rnd(s, 200, 3 * s->lag_ms));
        trace(s, "link %d <-> %s%d cut", nd->id, b == CTRL ? "controller " : "",
              b == CTRL ? 0 : NID(b));
    }
    }
}

static void heal(sim_t *s)
{
    s->phase = PH_HEALED;
    s->heal_at = s->now;
    s->drop_pm = s->slow_pm = 0;
    memset(s->link_down, 0, sizeof s->link_down);
    trace(s, "heal: faults stop");
    for (int i = 0; i < NN; i++) {
        node_t *nd = &s->nodes[i];
        nd->paused_until = 0;
        if (!nd->up)
            at_node(s, EV_RESTART, i, -1, nd->inc, s->now);
        else if (s->fenced[i])
            at_node(s, EV_UNFENCE, i, -1, nd->inc, s->now);
    }
    ev_push(s, ev_new(EV_END, -1, -1), s->now + HEAL_END_MS);
}

/* ------------------------------------------------------------ checkers */

static void check_all(sim_t *s)
{
    for (int k = 0; k < s->nparts && !s->failed; k++) {
        cpart_t *c = &s->cp[k];
        refpart_t *rf = &s->ref[k];
        /* 1: the controller's state, and every broker's own view */
        if (c->nisr < 1 || c->nisr > c->nrep)
            sim_fail(s, "checker 1: %s-%d has an ISR of %d", s->topic, k, c->nisr);
        for (int j = 0; j < c->nisr; j++)
            if (!has(c->replicas, c->nrep, c->isr[j]) || has(c->isr, j, c->isr[j]))
                sim_fail(s, "checker 1: %s-%d ISR member %d is not a replica (or twice)",
                         s->topic, k, c->isr[j]);
        if (c->leader >= 0 && !has(c->isr, c->nisr, c->leader))
            sim_fail(s, "checker 1: %s-%d leader %d is not in the ISR", s->topic, k, c->leader);
        for (int i = 0; i < NN; i++) {
            node_t *nd = &s->nodes[i];
            sm_partition_t *p = nd->up ? nd->rep[k].p : NULL;
            if (!p || !nd->rep[k].applied_ver)
                continue;
            for (int j = 0; j < p->nisr; j++)
                if (!has(p->replicas, p->nreplicas, p->isr[j]))
                    sim_fail(s, "checker 1: broker %d sees %d in the ISR of %s-%d, not a replica",
                             nd->id, p->isr[j], s->topic, k);
            if (sm_partition_role(p) == SM_ROLE_LEADER && !has(p->isr, p->nisr, nd->id))
                sim_fail(s, "checker 1: broker %d leads %s-%d outside its own ISR", nd->id,
                         s->topic, k);
        }
        /* 2: the leader's high watermark is held by every live ISR member */
        if (c->leader >= 0) {
            node_t *L = &s->nodes[c->leader - 1];
            sm_partition_t *p = L->up ? L->rep[k].p : NULL;
            if (p && L->rep[k].applied_ver == c->version &&
                sm_partition_role(p) == SM_ROLE_LEADER) {
                int64_t hw = sm_partition_high_watermark(p);
                for (int j = 0; j < c->nisr; j++) {
                    node_t *m = &s->nodes[c->isr[j] - 1];
                    if (m->up && sm_partition_log_end(m->rep[k].p) < hw)
                        sim_fail(s, "checker 2: leader %d's high watermark %" PRId64 " of %s-%d "
                                    "is past ISR member %d's log end %" PRId64,
                                 L->id, hw, s->topic, k, m->id,
                                 sm_partition_log_end(m->rep[k].p));
                }
            }
        }
        /* 6: a leader's high watermark never goes back in its epoch; it is committed */
        for (int i = 0; i < NN; i++) {
            node_t *nd = &s->nodes[i];
            rep_t *r = &nd->rep[k];
            if (!nd->up)
                continue;
            if (sm_partition_role(r->p) != SM_ROLE_LEADER) {
                r->lead_epoch = -1;
                continue;
            }
            int32_t e = sm_partition_leader_epoch(r->p);
            int64_t hw = sm_partition_high_watermark(r->p);
            if (r->lead_epoch == e && hw < r->lead_hw)
                sim_fail(s, "checker 6: leader %d's high watermark of %s-%d went back from "
                            "%" PRId64 " to %" PRId64 " in epoch %d",
                         nd->id, s->topic, k, r->lead_hw, hw, e);
            r->lead_epoch = e;
            r->lead_hw = hw;
            rf->committed = SM_MAX(rf->committed, hw);
        }
        /* 4 and 5: below its high watermark each replica holds the committed log; a
         * live ISR member holds all of it */
        for (int i = 0; i < NN && !s->failed; i++) {
            node_t *nd = &s->nodes[i];
            rep_t *r = &nd->rep[k];
            if (!nd->up)
                continue;
            int64_t end = sm_partition_log_end(r->p);
            if (r->verified > end)
                r->verified = end;
            int64_t target = sm_partition_high_watermark(r->p);
            bool member = has(c->isr, c->nisr, nd->id);
            if (member)
                target = SM_MAX(target, rf->committed);
            if (r->verified >= target)
                continue;
            int64_t reached = verify(s, i, k, r->verified, target);
            r->verified = reached;
            if (member && reached < target && !s->failed)
                sim_fail(s, "checker 4: ISR member %d of %s-%d ends at %" PRId64 " but records "
                            "up to %" PRId64 " are committed (acknowledged up to %" PRId64 ")",
                         nd->id, s->topic, k, reached, target, rf->acked);
        }
    }
}

/* After the heal: has the cluster converged (every partition led, with all three replicas
 * in the ISR, every replica at the leader's log end and high watermark)? With report, say
 * what is missing as a liveness violation. */
static bool converged(sim_t *s, bool report)
{
    for (int k = 0; k < s->nparts; k++) {
        cpart_t *c = &s->cp[k];
        if (c->leader < 0 || c->nisr != NN) {
            if (report)
                sim_fail(s, "liveness: %d s after the heal %s-%d has leader %d and an ISR of %d",
                         HEAL_END_MS / 1000, s->topic, k, c->leader, c->nisr);
            return false;
        }
        sm_partition_t *lp = s->nodes[c->leader - 1].rep[k].p;
        int64_t lend = lp ? sm_partition_log_end(lp) : -1;
        for (int i = 0; i < NN; i++) {
            node_t *nd = &s->nodes[i];
            sm_partition_t *p = nd->rep[k].p;
            if (nd->up && p && nd->rep[k].applied_ver == c->version &&
                sm_partition_log_end(p) == lend && sm_partition_high_watermark(p) == lend)
                continue;
            if (report)
                sim_fail(s, "liveness: %d s after the heal broker %d's %s-%d has not converged "
                            "(up %d, image v%u of v%u, end %" PRId64 ", hw %" PRId64 "; leader %d "
                            "end %" PRId64 ")",
                         HEAL_END_MS / 1000, nd->id, s->topic, k, nd->up,
                         nd->rep[k].applied_ver, c->version, p ? sm_partition_log_end(p) : -1,
                         p ? sm_partition_high_watermark(p) : -1, c->leader, lend);
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------ the run */

static bool defer_if_paused(sim_t *s, ev_t *e)
{
    if (e->node < 0 || e->node >= NN)
        return false;
    node_t *nd = &s->nodes[e->node];
    if (!nd->up || nd->paused_until <= e->at)
        return false;
    switch (e->kind) {
    case EV_RESTART:
    case EV_SESSION_EXPIRE:
    case EV_UNFENCE:
    case EV_LINK_HEAL:
        return false; /* the controller's and the sim's own */
    default:
        ev_push(s, e, nd->paused_until + rnd(s, 0, 3));
        return true;
    }
}

static void dispatch(sim_t *s, ev_t *e)
{
    node_t *nd = e->node >= 0 && e->node < NN ? &s->nodes[e->node] : NULL;
    /* a message or timer for a broker that died since (or for another incarnation) */
    bool live = nd && nd->up && (e->inc == 0 || e->inc == nd->inc);
    switch (e->kind) {
    case EV_IMAGE:
        if (live)
            on_image(s, nd, e);
        break;
    case EV_FETCH:
        if (live)
            on_fetch(s, nd, e);
        break;
    case EV_FETCH_RESP:
        if (live)
            on_fetch_resp(s, nd, e);
        break;
    case EV_FETCH_KICK:
        if (live)
            fetch_kick(s, nd, e->part);
        break;
    case EV_PARK_EXPIRE:
        if (live)
            for (int j = 0; j < nd->nparked; j++)
                if (nd->parked[j].id == e->id) {
                    unpark(s, nd, j);
                    break;
                }
        break;
    case EV_ALTER: {
        node_t *src = &s->nodes[e->from];
        src->alter_inflight--;
        int16_t kerr = ctl_alter(s, e);
        trace(s, "controller: AlterPartition call %" PRIu64 " from broker %d for %s-%d: %d", e->id,
              src->id, s->topic, e->part, kerr);
        ev_t *r = ev_new(EV_ALTER_RESP, e->from, e->part);
        r->from = CTRL;
        r->inc = e->src_inc;
        r->id = e->id;
        r->kerr = kerr;
        net_post(s, r);
        break;
    }
    case EV_ALTER_RESP:
    case EV_ALTER_TIMEOUT:
        if (live && !s->call_done[e->id]) {
            s->call_done[e->id] = 1;
            int16_t kerr = e->kind == EV_ALTER_TIMEOUT ? -1 : e->kerr;
            sm_partition_t *p = nd->rep[e->part].p;
            /* on_alter in fetcher.c: a refusal or no answer drops the proposal, even when
             * it is an older call's and a newer proposal is in flight */
            if (kerr != 0 && e->id != nd->rep[e->part].last_call && p->nisr_pending >= 0) {
                s->st.stale_refusals++;
                trace(s, "broker %d: refusal of call %" PRIu64 " drops the pending proposal of "
                         "call %" PRIu64, nd->id, e->id, nd->rep[e->part].last_call);
            }
            if (kerr != 0)
                sm_partition_isr_proposal_failed(
                    nd->rep[e->part].p, s->now + (kerr == KERR_INELIGIBLE ? s->lag_ms : 0));
            trace(s, "broker %d: AlterPartition call %" PRIu64 " %s %d", nd->id, e->id,
                  e->kind == EV_ALTER_TIMEOUT ? "timed out" : "answered", kerr);
        }
        break;
    case EV_PRODUCE:
        if (live)
            on_produce(s, nd, e);
        break;
    case EV_PRODUCER: {
        if (s->phase == PH_QUIET)
            break;
        if (s->phase == PH_HEALED &&
            (s->now >= s->heal_at + HEAL_PRODUCE_MS ||
             (s->st.acks_after_heal && s->now >= s->heal_at + HEAL_PRODUCE_MIN_MS))) {
            if (!s->st.acks_after_heal)
                sim_fail(s, "liveness: nothing was acknowledged in the %d s after the heal",
                         HEAL_PRODUCE_MS / 1000);
            s->phase = PH_QUIET; /* producers stop; the replicas should converge */
            ev_push(s, ev_new(EV_SETTLE, -1, -1), s->now + 100);
            break;
        }
        int k = (int)rnd(s, 0, s->nparts - 1);
        int32_t leader = s->cp[k].leader;
        int to = leader >= 0 && !chance(s, 150) ? leader - 1 : (int)rnd(s, 0, NN - 1);
        ev_t *p = ev_new(EV_PRODUCE, to, k);
        p->from = CLIENT;
        p->inc = s->nodes[to].inc;
        p->nrec = (int)rnd(s, 1, 5);
        p->pad = (int)rnd(s, 0, 64);
        p->first_id = s->next_id;
        s->next_id += (uint64_t)p->nrec;
        net_post(s, p);
        ev_push(s, ev_new(EV_PRODUCER, -1, -1), s->now + rnd(s, 1, s->produce_gap_ms));
        break;
    }
    case EV_TICK:
        if (live)
            on_tick(s, nd);
        break;
    case EV_FLUSH: {
        int i = pick_up_node(s);
        if (i >= 0) {
            int k = (int)rnd(s, 0, s->nparts - 1);
            sm_err_t err = sm_log_flush(s->nodes[i].rep[k].p->log);
            if (err != SM_OK)
                sim_fail(s, "broker %d: flush failed: %s", NID(i), sm_err_str(err));
            s->st.flushes++;
        }
        ev_push(s, ev_new(EV_FLUSH, -1, -1), s->now + rnd(s, 1, s->flush_gap_ms));
        break;
    }
    case EV_FAULT:
        if (s->phase == PH_CHAOS) {
            fault(s);
            ev_push(s, ev_new(EV_FAULT, -1, -1),
                    s->now + rnd(s, s->fault_gap_ms / 2, s->fault_gap_ms * 3 / 2));
        }
        break;
    case EV_RESTART:
        if (!nd->up && e->inc == nd->inc)
            node_restart(s, nd);
        break;
    case EV_SESSION_EXPIRE:
        if (!nd->up && e->inc == nd->inc && !s->fenced[nd->idx])
            ctl_fence(s, nd->idx, "session expired");
        break;
    case EV_UNFENCE:
        if (live && s->fenced[nd->idx])
            ctl_unfence(s, nd->idx);
        break;
    case EV_LINK_HEAL:
        s->link_down[e->node][e->part] = s->link_down[e->part][e->node] = false;
        break;
    case EV_SETTLE:
        if (converged(s, false))
            s->done = true;
        else
            ev_push(s, ev_new(EV_SETTLE, -1, -1), s->now + 100);
        break;
    case EV_END:
        converged(s, true);
        s->done = true;
        break;
    }
}

static void setup(sim_t *s)
{
    s->nparts = (int)rnd(s, 1, MAXP);
    s->topic = sm_xasprintf("sim%" PRIu64 "r%" PRIu64, s->seed, g_run++);
    sm_log_config_default(&s->lcfg);
    s->lcfg.segment_bytes = rnd(s, 2048, 65536);
    s->lcfg.index_interval_bytes = (int32_t)rnd(s, 0, 1024);
    s->lcfg.segment_index_bytes = 4096;
    s->lcfg.cache_window_bytes = 0;
    s->lcfg.segment_ms = INT64_MAX; /* rolls by size only: the log's clock is the wall clock */
    s->drop_pm = (int)rnd(s, 0, 60);
    s->slow_pm = (int)rnd(s, 0, 30);
    s->delay_max = (int)rnd(s, 1, 30);
    s->image_delay_max = (int)rnd(s, 1, 200);
    s->produce_gap_ms = (int)rnd(s, 5, 60);
    s->fault_gap_ms = (int)rnd(s, 500, 3000);
    s->flush_gap_ms = (int)rnd(s, 20, 1000);
    s->power_pm = (int)rnd(s, 0, 1000);
    s->max_wait_ms = (int)rnd(s, 100, 500);
    s->fetch_max_bytes = (int)rnd(s, 1, 16) * 1024;
    s->lag_ms = rnd(s, 500, 4000);
    s->session_ms = rnd(s, 200, 3000);
    s->tick_ms = SM_MAX(SM_MIN(s->lag_ms / 2, 500), 10);
    s->min_insync = g_min_insync;
    s->next_id = 1;
    s->now = START_MS;
    for (int k = 0; k < s->nparts; k++) {
        cpart_t *c = &s->cp[k];
        c->nrep = c->nisr = NN;
        for (int j = 0; j < NN; j++)
            c->replicas[j] = c->isr[j] = NID((j + k) % NN);
        c->leader = c->replicas[0];
    }
    for (int i = 0; i < NN; i++) {
        node_t *nd = &s->nodes[i];
        nd->idx = i;
        nd->id = NID(i);
        nd->up = true;
        nd->inc = 1;
        nd->dir = g_dirs[i];
        for (int k = 0; k < s->nparts; k++) {
            nd->rep[k].seen_epoch = -1;
            rep_open(s, nd, k);
        }
        at_node(s, EV_TICK, i, -1, nd->inc, s->now + rnd(s, 1, s->tick_ms));
    }
    for (int k = 0; k < s->nparts; k++)
        ctl_publish(s, k, "created");
    ev_push(s, ev_new(EV_PRODUCER, -1, -1), s->now + rnd(s, 1, 100));
    ev_push(s, ev_new(EV_FLUSH, -1, -1), s->now + rnd(s, 1, s->flush_gap_ms));
    ev_push(s, ev_new(EV_FAULT, -1, -1), s->now + rnd(s, 500, s->fault_gap_ms * 2));
    trace(s, "seed %" PRIu64 ": %d partition(s), drop %d/1000, slow %d/1000, delay <= %d ms, "
             "lag %" PRId64 " ms, session %" PRId64 " ms, power loss %d/1000, segment %" PRId64
             " bytes, fetch max %d bytes, max wait %d ms",
          s->seed, s->nparts, s->drop_pm, s->slow_pm, s->delay_max, s->lag_ms, s->session_ms,
          s->power_pm, s->lcfg.segment_bytes, s->fetch_max_bytes, s->max_wait_ms);
}

static void teardown(sim_t *s)
{
    while (s->hn)
        ev_free(s->heap[--s->hn]);
    free(s->heap);
    for (int i = 0; i < NN; i++) {
        node_t *nd = &s->nodes[i];
        for (int k = 0; k < s->nparts; k++) {
            if (nd->rep[k].p) {
                sm_partition_fail_hw_waiters(nd->rep[k].p, KERR_NOT_LEADER);
                sm_partition_put(nd->rep[k].p);
            }
            char *dir = part_dir(s, i, k);
            sm_test_rm_rf(dir);
            free(dir);
        }
        free(nd->parked);
    }
    for (int k = 0; k < MAXP; k++) {
        free(s->ref[k].id);
        free(s->ref[k].epoch);
        free(s->ref[k].ack);
    }
    free(s->call_done);
    free(s->buf);
    free(s->topic);
}

typedef struct result {
    stats_t st;
    uint64_t digest;
} result_t;

static bool run_seed(uint64_t seed, bool verbose, int64_t chaos_ms, result_t *res)
{
    sim_t *s = sm_xcalloc(1, sizeof *s);
    s->seed = seed;
    s->rng = seed * 0x9E3779B97F4A7C15ull + 0x5EEDull;
    s->verbose = verbose;
    setup(s);
    s->chaos_end = s->now + chaos_ms;
    ev_t *e;
    while (!s->failed && !s->done && (e = ev_pop(s))) {
        if (defer_if_paused(s, e))
            continue;
        s->now = e->at;
        s->st.events++;
        s->digest = (s->digest ^ (uint64_t)e->at ^ ((uint64_t)e->kind << 56) ^
                     ((uint64_t)(e->node + 1) << 48) ^ ((uint64_t)(e->part + 1) << 44)) *
                    0x100000001B3ull;
        if (s->verbose && e->kind != EV_TICK && e->kind != EV_PRODUCER && e->kind != EV_FLUSH)
            trace(s, "event %s node %d part %d", ev_names[e->kind], e->node, e->part);
        dispatch(s, e);
        ev_free(e);
        if (!s->failed)
            process_wakes(s);
        if (!s->failed)
            check_all(s);
        if (s->phase == PH_CHAOS && s->now >= s->chaos_end)
            heal(s);
    }
    if (!s->failed && !s->done)
        sim_fail(s, "the event queue ran dry");
    for (int i = 0; i < NN; i++)
        for (int k = 0; k < s->nparts; k++)
            if (s->nodes[i].rep[k].p)
                s->digest = (s->digest ^ (uint64_t)sm_partition_log_end(s->nodes[i].rep[k].p)) *
                            0x100000001B3ull;
    bool ok = !s->failed;
    if (!ok) {
        fprintf(stderr, "sim_repl: seed %" PRIu64 " FAILED at t=%" PRId64 " ms after %" PRIu64
                        " events: %s\n  last events:\n",
                seed, s->now, s->st.events, s->fail);
        uint64_t first = s->ring_n > TRACE_RING ? s->ring_n - TRACE_RING : 0;
        for (uint64_t j = first; j < s->ring_n; j++)
            fprintf(stderr, "    %s\n", s->ring[j % TRACE_RING]);
        fprintf(stderr, "  replay: SIM_SEED=%" PRIu64 " SIM_VERBOSE=1 ./build/sim_repl\n", seed);
    } else if (verbose) {
        fprintf(stderr, "seed %" PRIu64 " ok: %" PRIu64 " events, %" PRIu64 " records acked, %" PRIu64
                        " crashes\n", seed, s->st.events, s->st.acks, s->st.crashes);
    }
    res->st = s->st;
    res->digest = s->digest ^ s->st.acks;
    teardown(s);
    free(s);
    return ok;
}

/* ------------------------------------------------------------ main */

static int nosync(int fd)
{
    (void)fd;
    return 0;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : dflt;
}

static void root_open(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_root, sizeof g_root, "%s/sim_repl.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_root)) {
        perror("sim_repl: mkdtemp");
        exit(2);
    }
    sm_log_config_t cfg;
    sm_log_config_default(&cfg);
    for (int i = 0; i < NN; i++) {
        snprintf(g_dirs[i], sizeof g_dirs[i], "%s/broker%d", g_root, NID(i));
        if (mkdir(g_dirs[i], 0755) != 0) {
            perror("sim_repl: mkdir");
            exit(2);
        }
        char pin[1024];
        snprintf(pin, sizeof pin, "%s/pin-0", g_dirs[i]);
        sm_err_t err = sm_log_open(pin, "pin", &cfg, &g_pins[i]);
        if (err != SM_OK)
            die("cannot open the pin log", err);
    }
}

static void root_close(void)
{
    for (int i = 0; i < NN; i++)
        sm_log_close(g_pins[i]);
    sm_test_rm_rf(g_root);
}

int main(void)
{
    bool verbose = env_u64("SIM_VERBOSE", 0) != 0;
    signal(SIGPIPE, SIG_IGN); /* `| head` must not leave the temporary dir behind */
    sm_log_set_level(verbose ? SM_LOG_INFO : SM_LOG_ERROR);
    static sm_file_ops_t ops;
    ops = *sm_file_os_ops();
    if (!env_u64("SIM_REPL_FSYNC", 0)) {
        ops.fdatasync = nosync;
        ops.fsync = nosync;
    }
    sm_file_set_ops(&ops);
    root_open();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t first, count;
    if (getenv("SIM_SEED")) {
        first = env_u64("SIM_SEED", 1);
        count = 1;
    } else {
        first = env_u64("SIM_SEED_START", 1);
        count = env_u64("SIM_SEEDS", 200);
    }
    int64_t chaos = (int64_t)env_u64("SIM_CHAOS_MS", 30000);
    g_min_insync = (int32_t)env_u64("SIM_MIN_INSYNC", 2);
    uint64_t failed = 0;
    stats_t tot = {0};
    for (uint64_t seed = first; seed < first + count; seed++) {
        result_t r;
        if (!run_seed(seed, verbose, chaos, &r))
            failed++;
        tot.events += r.st.events;
        tot.acks += r.st.acks;
        tot.appends += r.st.appends;
        tot.produce_refused += r.st.produce_refused;
        tot.crashes += r.st.crashes;
        tot.power_losses += r.st.power_losses;
        tot.elections += r.st.elections;
        tot.isr_changes += r.st.isr_changes;
        tot.truncations += r.st.truncations;
        tot.fetches += r.st.fetches;
        tot.range_errors += r.st.range_errors;
        tot.stale_refusals += r.st.stale_refusals;
        /* Determinism: the first seeds run twice and must match event for event. */
        if (seed < first + 3 && !verbose && count > 1) {
            result_t again;
            run_seed(seed, false, chaos, &again);
            if (again.st.events != r.st.events || again.digest != r.digest) {
                fprintf(stderr, "sim_repl: seed %" PRIu64 " is not deterministic (%" PRIu64
                                " then %" PRIu64 " events)\n",
                        seed, r.st.events, again.st.events);
                failed++;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    root_close();
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("sim_repl: %" PRIu64 " seeds from %" PRIu64 ", %" PRIu64 " events in %.1f s, %" PRIu64
           " records acked (%" PRIu64 " appends, %" PRIu64 " produce refusals), %" PRIu64
           " fetches, %" PRIu64 " crashes (%" PRIu64 " power losses), %" PRIu64 " elections, %" PRIu64
           " ISR changes (%" PRIu64 " pending proposals dropped by an older call's refusal), %" PRIu64
           " follower truncations, %" PRIu64 " violations\n",
           count, first, tot.events, secs, tot.acks, tot.appends, tot.produce_refused,
           tot.fetches, tot.crashes, tot.power_losses, tot.elections, tot.isr_changes,
           tot.stale_refusals, tot.truncations, failed);
    return failed ? 1 : 0;
}
