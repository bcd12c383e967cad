/*
 * segfiles.c - lazily opened segment files and the LRU that bounds them;
 * see segfiles.h for ownership and locking.
 *
 * The LRU is a doubly linked list through the segments themselves (most
 * recently used at the head). A pin of an open segment is one mutex
 * round trip and a refcount increment; a pin of a closed one opens three
 * files outside the mutex, then installs them (or, if another thread won
 * the race, closes its own and uses the winner's) and evicts from the tail
 * while the cache is over budget.
 */
#define _GNU_SOURCE
#include "segfiles.h"

#include "file.h"
#include "segment.h"
#include "../core/log.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static sm_segment_t *lru_head, *lru_tail;
static int open_count;
static int budget; /* 0 until first use */

static int default_budget(void)
{
    const char *env = getenv("SAMSA_MAX_OPEN_SEGMENTS");
    if (env && atoi(env) > 0)
        return atoi(env);
    struct rlimit rl;
    long lim = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        lim = (long)rl.rlim_cur;
    else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        lim = 1 << 20;
    long b = lim * 3 / 4 / 3;
    return b < 16 ? 16 : (int)SM_MIN(b, (long)INT_MAX);
}

int sm_segfiles_set_budget(int n)
{
    pthread_mutex_lock(&cache_mu);
    int old = budget ? budget : default_budget();
    budget = n > 0 ? n : 1;
    pthread_mutex_unlock(&cache_mu);
    return old;
}

int sm_segfiles_open_count(void)
{
    pthread_mutex_lock(&cache_mu);
    int n = open_count;
    pthread_mutex_unlock(&cache_mu);
    return n;
}

static void segfiles_free(sm_ref_t *r)
{
    sm_segfiles_t *f = (sm_segfiles_t *)((char *)r - offsetof(sm_segfiles_t, ref));
    sm_file_close(f->log_fd);
    sm_file_close(f->oidx_fd);
    sm_file_close(f->tidx_fd);
    free(f);
}

/* Under cache_mu. */
static void lru_unlink(sm_segment_t *s)
{
    if (s->lru_prev)
        s->lru_prev->lru_next = s->lru_next;
    else
        lru_head = s->lru_next;
    if (s->lru_next)
        s->lru_next->lru_prev = s->lru_prev;
    else
        lru_tail = s->lru_prev;
    s->lru_prev = s->lru_next = NULL;
}

static void lru_push_head(sm_segment_t *s)
{
    s->lru_prev = NULL;
    s->lru_next = lru_head;
    if (lru_head)
        lru_head->lru_prev = s;
    lru_head = s;
    if (!lru_tail)
        lru_tail = s;
}

static sm_err_t open_one(const char *path, const char *suffix, int flags, int *fd)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s%s", path, suffix) >= (int)sizeof buf)
        return SM_ERR_INVALID;
    return sm_file_open(buf, flags, fd);
}

/* Open an index file, creating it if missing (*created). */
static sm_err_t open_index(const char *path, const char *suffix, bool trunc, int *fd,
                           bool *created)
{
    sm_err_t err = open_one(path, suffix, O_RDWR | (trunc ? O_CREAT | O_TRUNC : 0), fd);
    if (err == SM_ERR_NOT_FOUND) {
        *created = true;
        err = open_one(path, suffix, O_RDWR | O_CREAT, fd);
    }
    return err;
}

static sm_err_t open_files(const sm_segment_t *seg, bool create, sm_segfiles_t **out,
                           bool *index_created)
{
    sm_segfiles_t *f = sm_xcalloc(1, sizeof *f);
    sm_ref_init(&f->ref, segfiles_free);
    f->log_fd = f->oidx_fd = f->tidx_fd = -1;
    bool created = false;
    sm_err_t err = open_one(seg->path, ".log", O_RDWR | (create ? O_CREAT | O_TRUNC : 0),
                            &f->log_fd);
    if (!err)
        err = open_index(seg->path, ".index", create, &f->oidx_fd, &created);
    if (!err)
        err = open_index(seg->path, ".timeindex", create, &f->tidx_fd, &created);
    if (err) {
        sm_segfiles_release(f);
        return err;
    }
    if (index_created)
        *index_created = created;
    *out = f;
    return SM_OK;
}

sm_err_t sm_segfiles_pin(sm_segment_t *seg, bool create, sm_segfiles_t **out,
                         bool *index_created)
{
    if (index_created)
        *index_created = false;
    pthread_mutex_lock(&cache_mu);
    if (!budget)
        budget = default_budget();
    if (seg->files && !create) {
        if (lru_head != seg) {
            lru_unlink(seg);
            lru_push_head(seg);
        }
        *out = sm_segfiles_keep(seg->files);
        pthread_mutex_unlock(&cache_mu);
        return SM_OK;
    }
    pthread_mutex_unlock(&cache_mu);

    sm_segfiles_t *f;
    sm_err_t err = open_files(seg, create, &f, index_created);
    if (err)
        return err;

    sm_segfiles_t *drop[8];
    int ndrop = 0;
    pthread_mutex_lock(&cache_mu);
    if (seg->files) {
        if (create) { /* replace: the new files are the truth */
            drop[ndrop++] = seg->files;
            seg->files = f;
        } else {
            drop[ndrop++] = f; /* another thread opened them first */
            f = seg->files;
        }
        lru_unlink(seg);
    } else {
        seg->files = f;
        open_count++;
    }
    lru_push_head(seg);
    *out = sm_segfiles_keep(f);
    /* Evict the least recently used beyond the budget (never seg itself). */
    while (open_count > budget && lru_tail && lru_tail != seg && ndrop < (int)SM_ARRAY_LEN(drop)) {
        sm_segment_t *victim = lru_tail;
        lru_unlink(victim);
        drop[ndrop++] = victim->files;
        victim->files = NULL;
        open_count--;
    }
    pthread_mutex_unlock(&cache_mu);
    for (int i = 0; i < ndrop; i++)
        sm_segfiles_release(drop[i]);
    return SM_OK;
}

void sm_segfiles_forget(sm_segment_t *seg)
{
    pthread_mutex_lock(&cache_mu);
    sm_segfiles_t *f = seg->files;
    if (f) {
        lru_unlink(seg);
        seg->files = NULL;
        open_count--;
    }
    pthread_mutex_unlock(&cache_mu);
    sm_segfiles_release(f);
}
