/*
 * cleaner_mgr.c - the log cleaner threads (see cleaner_mgr.h).
 *
 * Each thread loops: list the hosted partitions, skip those another thread
 * is cleaning and those whose policy has no "compact", compute each one's
 * cleaning window (sm_partition_clean_window) and pick the one with the
 * largest dirty ratio among those due; clean it with the thread's offset
 * map (sized for the dirty part, at most its share of
 * log.cleaner.dedupe.buffer.size); with nothing due, wait
 * log.cleaner.backoff.ms (a stop wakes it at once). A failed cleaning is
 * logged and the partition waits a backoff before it is tried again.
 */
#define _GNU_SOURCE
#include "cleaner_mgr.h"

#include "partition.h"
#include "server.h"
#include "storage/cleaner.h"
#include "storage/offset_map.h"
#include "../core/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sm_cleaner_mgr {
    sm_server_t *srv;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;                 /* atomic */
    int nthreads;
    pthread_t *threads;
    sm_partition_t **busy;    /* being cleaned, one slot per thread; under mu */
    int64_t map_bytes;        /* per thread */
    int64_t io_rate;          /* per thread */
    int64_t backoff_ms;
    uint64_t cleanings;       /* atomic */
};

static int64_t cfg_i64(sm_server_t *srv, const char *key, int64_t dflt)
{
    const char *v = sm_config_get(sm_server_config(srv), key, NULL);
    if (!v || !*v)
        return dflt;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*end == '.' || *end == 'e' || *end == 'E') { /* a double: Kafka's default rate
                                                         is 1.7976931348623157E308 */
        double d = strtod(v, NULL);
        return d >= 9e18 ? INT64_MAX : d >= 0 ? (int64_t)d : dflt;
    }
    return *end ? dflt : (int64_t)x;
}

typedef struct thread_arg {
    sm_cleaner_mgr_t *m;
    int slot;
} thread_arg_t;

/* The partition to clean now, with a reference, or NULL. */
static sm_partition_t *pick(sm_cleaner_mgr_t *m, int slot, int64_t now)
{
    size_t n;
    sm_partition_t **parts = sm_server_partitions(m->srv, &n);
    sm_partition_t *best = NULL;
    double best_ratio = -1;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        sm_partition_t *p = parts[i];
        bool busy = false;
        for (int t = 0; t < m->nthreads; t++)
            busy |= m->busy[t] == p;
        sm_partition_cleanup_t c;
        sm_partition_get_cleanup(p, &c);
        if (busy || !c.compact || sm_partition_deleted(p))
            continue;
        sm_clean_window_t w;
        sm_partition_clean_window(p, now, &w);
        int64_t total = w.clean_bytes + w.dirty_bytes;
        double ratio = total > 0 ? (double)w.dirty_bytes / (double)total : 0;
        bool due = w.dirty_bytes > 0 && ratio >= c.min_dirty_ratio;
        /* max.compaction.lag.ms: the oldest dirty segment waited too long */
        if (w.dirty_bytes > 0 && w.oldest_dirty_ms >= 0 && c.max_lag_ms < INT64_MAX &&
            now - w.oldest_dirty_ms > c.max_lag_ms)
            due = true, ratio += 1.0;
        /* a delete horizon passed: tombstones or markers can go */
        if (w.clean_bytes > 0 && __atomic_load_n(&p->clean_horizon_ms, __ATOMIC_ACQUIRE) <= now)
            due = true;
        if (due && ratio > best_ratio) {
            best = p;
            best_ratio = ratio;
        }
    }
    if (best) {
        sm_partition_keep(best);
        m->busy[slot] = best;
    }
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < n; i++)
        sm_partition_put(parts[i]);
    free(parts);
    return best;
}

static void *cleaner_main(void *arg)
{
    thread_arg_t *ta = arg;
    sm_cleaner_mgr_t *m = ta->m;
    int slot = ta->slot;
    free(ta);
    sm_offset_map_t map = {0};
    while (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE)) {
        int64_t now = sm_now_wall_ms();
        sm_partition_t *p = pick(m, slot, now);
        bool backoff = p == NULL;
        if (p) {
            sm_clean_window_t w;
            sm_partition_clean_window(p, now, &w);
            /* enough slots for every record of the dirty part, within this
             * thread's share: it holds at most one record per offset and
             * one per 8 bytes. Sizing by bytes alone made a map of ~28 MB
             * for 8 MB of 1 KB records, allocated, filled and freed at every
             * cleaning: page faults and memset that showed in produce p99. */
            int64_t span = w.first_uncleanable - w.first_dirty;
            int64_t recs = w.dirty_bytes / 8;
            if (span > 0 && span < recs)
                recs = span;
            int64_t want = (recs + 64) * SM_OFFSET_MAP_SLOT_BYTES * 10 / 9;
            size_t slots = (size_t)(SM_MIN(want, m->map_bytes) / SM_OFFSET_MAP_SLOT_BYTES);
            if (slots < 16)
                slots = 16;
            if (map.nslots != slots) {
                sm_offset_map_free(&map);
                sm_offset_map_init(&map, slots * SM_OFFSET_MAP_SLOT_BYTES);
            }
            sm_clean_result_t r;
            sm_err_t err = sm_partition_clean(p, &map, now, m->io_rate, &m->stop, &r);
            if (err == SM_OK && r.groups > 0) {
                __atomic_add_fetch(&m->cleanings, 1, __ATOMIC_RELAXED);
            } else if (err == SM_OK) {
                backoff = true; /* due by ratio but nothing cleanable (lag, LSO) */
            } else if (err != SM_ERR_CLOSED) {
                SM_WARN("cleaner", "%s: cleaning failed: %s; retrying after the backoff", p->name,
                        sm_err_str(err));
                backoff = true;
            }
            pthread_mutex_lock(&m->mu);
            m->busy[slot] = NULL;
            pthread_mutex_unlock(&m->mu);
            sm_partition_put(p);
            /* keep the memory of a small map; give a big one back */
            if (map.nslots * SM_OFFSET_MAP_SLOT_BYTES > (1u << 24)) {
                sm_offset_map_free(&map);
                memset(&map, 0, sizeof map);
            }
        }
        if (backoff) {
            pthread_mutex_lock(&m->mu);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = (int64_t)ts.tv_nsec + (m->backoff_ms % 1000) * 1000000;
            ts.tv_sec += (time_t)(m->backoff_ms / 1000 + ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            if (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE))
                pthread_cond_timedwait(&m->cv, &m->mu, &ts);
            pthread_mutex_unlock(&m->mu);
        }
    }
    sm_offset_map_free(&map);
    return NULL;
}

sm_cleaner_mgr_t *sm_cleaner_mgr_start(sm_server_t *srv)
{
    const char *en = sm_config_get(sm_server_config(srv), "log.cleaner.enable", NULL);
    int64_t threads = cfg_i64(srv, "log.cleaner.threads", 1);
    if ((en && strcmp(en, "false") == 0) || threads <= 0)
        return NULL;
    if (threads > 64)
        threads = 64;
    sm_cleaner_mgr_t *m = sm_xcalloc(1, sizeof *m);
    m->srv = srv;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->nthreads = (int)threads;
    m->threads = sm_xcalloc((size_t)threads, sizeof *m->threads);
    m->busy = sm_xcalloc((size_t)threads, sizeof *m->busy);
    m->map_bytes = SM_MAX(cfg_i64(srv, "log.cleaner.dedupe.buffer.size", 134217728) / threads,
                          (int64_t)(64 * SM_OFFSET_MAP_SLOT_BYTES));
    int64_t rate = cfg_i64(srv, "log.cleaner.io.max.bytes.per.second", INT64_MAX);
    m->io_rate = rate == INT64_MAX ? 0 : SM_MAX(rate / threads, 1);
    m->backoff_ms = SM_MAX(cfg_i64(srv, "log.cleaner.backoff.ms", 15000), 1);
    for (int i = 0; i < m->nthreads; i++) {
        thread_arg_t *ta = sm_xmalloc(sizeof *ta);
        *ta = (thread_arg_t){m, i};
        pthread_create(&m->threads[i], NULL, cleaner_main, ta);
    }
    SM_INFO("cleaner", "%d log cleaner thread(s), %lld bytes of dedupe buffer each",
            m->nthreads, (long long)m->map_bytes);
    return m;
}

void sm_cleaner_mgr_stop(sm_cleaner_mgr_t *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    __atomic_store_n(&m->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    for (int i = 0; i < m->nthreads; i++)
        pthread_join(m->threads[i], NULL);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m->threads);
    free(m->busy);
    free(m);
}

uint64_t sm_cleaner_mgr_cleanings(const sm_cleaner_mgr_t *m)
{
    return m ? __atomic_load_n(&m->cleanings, __ATOMIC_RELAXED) : 0;
}
