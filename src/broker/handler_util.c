/*
 * handler_util.c - helpers shared by the API handlers: this broker's
 * endpoint for a request, running a decoded request on the controller
 * thread, and finding names given twice.
 */
#include "handler_util.h"
#include "config.h"
#include "server.h"
#include "forward.h"

#include <stdlib.h>
#include <string.h>

void sm_req_self_endpoint(sm_req_t *req, sm_str_t *host, int32_t *port)
{
    const sm_config_t *cfg = sm_server_config(req->srv);
    const char *via = sm_req_listener(req);
    const sm_listener_t *l = via ? sm_config_advertised(cfg, via) : NULL;
    if (!l && cfg->nadvertised > 0)
        l = &cfg->advertised[0];
    *host = sm_str(l && l->host[0] ? l->host : "localhost");
    *port = l ? l->port : 9092;
}

typedef struct ctl_job {
    sm_req_t *req;
    void *msg;
    sm_ctl_fn run;
} ctl_job_t;

static void ctl_run(void *arg)
{
    ctl_job_t *job = arg;
    job->run(job->req, job->msg);
}

void sm_req_change_metadata(sm_req_t *req, const sm_rd_t *raw, void *msg, sm_ctl_fn run)
{
    if (!sm_req_forward(req, raw->p, sm_rd_remaining(raw), msg, run))
        sm_req_on_controller(req, msg, run);
}

void sm_req_run_on_controller(sm_req_t *req, void *msg, sm_ctl_fn run)
{
    sm_req_on_controller(req, msg, run);
}

void sm_req_on_controller(sm_req_t *req, void *msg, sm_ctl_fn run)
{
    ctl_job_t *job = SM_ARENA_NEW(&req->arena, ctl_job_t, 1);
    job->req = req;
    job->msg = msg;
    job->run = run;
    sm_server_controller(req->srv, ctl_run, job);
}

typedef struct named {
    sm_str_t name;
    int32_t index;
} named_t;

/* Length, then bytes: any total order finds equal names side by side. */
static int cmp_named(const void *a, const void *b)
{
    const sm_str_t *x = &((const named_t *)a)->name, *y = &((const named_t *)b)->name;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->len > 0 ? memcmp(x->ptr, y->ptr, (size_t)x->len) : 0;
}

bool *sm_names_duplicated(sm_req_t *req, const sm_str_t *names, size_t stride, int32_t n)
{
    size_t count = (size_t)(n > 0 ? n : 0);
    bool *dup = SM_ARENA_NEW(&req->arena, bool, count ? count : 1);
    named_t *v = sm_xmalloc(sizeof *v * (count ? count : 1));
    for (size_t i = 0; i < count; i++)
        v[i] = (named_t){*(const sm_str_t *)((const char *)names + i * stride), (int32_t)i};
    qsort(v, count, sizeof *v, cmp_named);
    for (size_t i = 0; i < count; i++)
        dup[v[i].index] = (i > 0 && cmp_named(&v[i - 1], &v[i]) == 0) ||
                          (i + 1 < count && cmp_named(&v[i], &v[i + 1]) == 0);
    free(v);
    return dup;
}
