/*
 * ref.h - intrusive atomic reference count.
 *
 * Embed an sm_ref_t as a member and give it the function that frees the
 * containing object. sm_ref_keep()/sm_ref_release() may be called from any
 * thread; the free function runs on the thread that drops the last reference.
 */
#ifndef SM_REF_H
#define SM_REF_H

typedef struct sm_ref {
    int count; /* accessed with __atomic builtins */
    void (*free_fn)(struct sm_ref *ref);
} sm_ref_t;

static inline void sm_ref_init(sm_ref_t *r, void (*free_fn)(sm_ref_t *))
{
    r->count = 1;
    r->free_fn = free_fn;
}

static inline sm_ref_t *sm_ref_keep(sm_ref_t *r)
{
    if (r)
        __atomic_fetch_add(&r->count, 1, __ATOMIC_RELAXED);
    return r;
}

static inline void sm_ref_release(sm_ref_t *r)
{
    if (r && __atomic_sub_fetch(&r->count, 1, __ATOMIC_ACQ_REL) == 0)
        r->free_fn(r);
}

#endif
