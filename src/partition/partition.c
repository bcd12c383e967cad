/*
 * partition.c - a hosted partition's replica state over its log (see
 * partition.h for the state machine and the rules).
 */
#include "partition.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>

static void partition_free(sm_ref_t *r)
{
    sm_partition_t *p = (sm_partition_t *)r;
    if (p->log) {
        if (sm_partition_role(p) == SM_ROLE_LEADER)
            sm_log_set_high_watermark(p->log, sm_partition_high_watermark(p));
        if (sm_partition_deleted(p)) {
            if (sm_log_destroy(p->log) != SM_OK)
                SM_WARN("partition", "%s: could not remove the deleted partition's files", p->name);
        } else {
            sm_log_close(p->log);
        }
    }
    pthread_mutex_destroy(&p->rmu);
    free(p->replicas);
    free(p->isr);
    free(p->isr_pending);
    free(p->followers);
    free(p->topic);
    free(p->name);
    free(p);
}

sm_partition_t *sm_partition_open(const char *log_dir, const char *topic, int32_t index,
                                  const sm_uuid_t *topic_id, const sm_log_config_t *cfg,
                                  const sm_partition_hooks_t *hooks)
{
    sm_partition_t *p = sm_xcalloc(1, sizeof *p);
    sm_ref_init(&p->ref, partition_free);
    p->topic = sm_xstrdup(topic);
    p->index = index;
    if (topic_id)
        p->topic_id = *topic_id;
    p->name = sm_xasprintf("%s-%d", topic, index);
    p->leader_id = -1;
    p->role = SM_ROLE_NONE;
    p->nisr_pending = -1;
    pthread_mutex_init(&p->rmu, NULL);
    if (hooks)
        p->hooks = *hooks;
    char *dir = sm_xasprintf("%s/%s", log_dir, p->name);
    sm_err_t err = sm_log_open(dir, p->name, cfg, &p->log);
    free(dir);
    if (err != SM_OK) {
        SM_ERROR("partition", "%s: cannot open partition log: %s", p->name, sm_err_str(err));
        p->log = NULL;
        sm_partition_put(p);
        return NULL;
    }
    int64_t hw = sm_log_high_watermark(p->log);
    p->hw = hw >= 0 ? hw : sm_log_start_offset(p->log);
    return p;
}

void sm_partition_keep(sm_partition_t *p) { sm_ref_keep(&p->ref); }

void sm_partition_put(sm_partition_t *p)
{
    if (p)
        sm_ref_release(&p->ref);
}

/* ------------------------------------------------------------ transitions */

void sm_partition_mark_deleted(sm_partition_t *p)
{
    /* The directory moves aside now: a topic of the same name may be
     * created before the last reference lets go. */
    if (p->log && sm_log_retire(p->log) != SM_OK)
        SM_WARN("partition", "%s: deleted partition's directory not moved aside", p->name);
    __atomic_store_n(&p->deleted, true, __ATOMIC_RELEASE);
    sm_partition_fail_hw_waiters(p, 3); /* UNKNOWN_TOPIC_OR_PARTITION */
}

/* ------------------------------------------------------------ data path */

sm_err_t sm_partition_append(sm_partition_t *p, uint8_t *batches, size_t len,
                             sm_append_info_t *out)
{
    if (sm_partition_deleted(p))
        return SM_ERR_CLOSED;
    if (sm_partition_role(p) != SM_ROLE_LEADER)
        return SM_ERR_INVALID;
    sm_append_info_t info;
    if (!out)
        out = &info;
    sm_err_t err =
        sm_log_append(p->log, batches, len, sm_partition_leader_epoch(p), sm_now_wall_ms(), out);
    if (err != SM_OK)
        return err;
    __atomic_fetch_add(&p->bytes_in, (uint64_t)len, __ATOMIC_RELAXED);
    __atomic_fetch_add(&p->msgs_in, (uint64_t)(out->last_offset - out->base_offset + 1),
                       __ATOMIC_RELAXED);
    if (p->hooks.appended)
        p->hooks.appended(p->hooks.ctx, p);
    if (out->write_behind_due && p->hooks.write_behind_due) {
        sm_partition_keep(p); /* the hook's task puts it */
        p->hooks.write_behind_due(p->hooks.ctx, p);
    }
    return SM_OK;
}

sm_err_t sm_partition_read(sm_partition_t *p, int64_t offset, int32_t max_bytes, bool min_one,
                           sm_log_slice_t *out)
{
    return sm_log_read(p->log, offset, sm_partition_high_watermark(p), max_bytes, min_one, out);
}

sm_err_t sm_partition_read_local(sm_partition_t *p, int64_t offset, int32_t max_bytes,
                                 bool min_one, sm_log_slice_t *out)
{
    return sm_log_read(p->log, offset, INT64_MAX, max_bytes, min_one, out);
}

int64_t sm_partition_log_start(const sm_partition_t *p) { return sm_log_start_offset(p->log); }
int64_t sm_partition_log_end(const sm_partition_t *p) { return sm_log_end_offset(p->log); }
int64_t sm_partition_size_bytes(const sm_partition_t *p) { return sm_log_size_bytes(p->log); }
int sm_partition_segment_count(const sm_partition_t *p) { return sm_log_segment_count(p->log); }

sm_err_t sm_partition_delete_records(sm_partition_t *p, int64_t new_start)
{
    if (new_start > sm_partition_high_watermark(p))
        return SM_ERR_RANGE;
    return sm_log_delete_records(p->log, new_start);
}

sm_err_t sm_partition_epoch_end_offset(sm_partition_t *p, int32_t epoch, int32_t *epoch_out,
                                       int64_t *end_out)
{
    return sm_log_epoch_end_offset(p->log, epoch, epoch_out, end_out);
}

sm_err_t sm_partition_offset_for_timestamp(sm_partition_t *p, int64_t ts, int64_t *offset,
                                           int64_t *timestamp)
{
    return sm_log_offset_for_timestamp(p->log, ts, offset, timestamp);
}

sm_err_t sm_partition_max_timestamp(sm_partition_t *p, int64_t *offset, int64_t *timestamp)
{
    return sm_log_max_timestamp(p->log, offset, timestamp);
}

bool sm_partition_sync_required(sm_partition_t *p) { return sm_log_sync_required(p->log); }

sm_log_wait_t sm_partition_wait_durable(sm_partition_t *p, sm_log_waiter_t *w)
{
    return sm_log_wait_durable(p->log, w);
}

void sm_partition_run_flusher(sm_partition_t *p) { sm_log_run_flusher(p->log); }

void sm_partition_write_behind(sm_partition_t *p) { sm_log_write_behind(p->log); }

void sm_partition_maintain(sm_partition_t *p, int64_t now_wall_ms, bool retention)
{
    sm_partition_expire_hw_waiters(p, sm_now_mono_ms());
    if (sm_partition_role(p) == SM_ROLE_LEADER) /* for the checkpoint */
        sm_log_set_high_watermark(p->log, sm_partition_high_watermark(p));
    if (sm_log_flush_due(p->log, now_wall_ms) && sm_log_flush(p->log) != SM_OK)
        SM_WARN("partition", "%s: periodic flush failed", p->name);
    int deleted = 0;
    if (retention && sm_log_enforce_retention(p->log, now_wall_ms, &deleted) != SM_OK)
        SM_WARN("partition", "%s: retention pass failed", p->name);
    if (deleted > 0)
        SM_INFO("partition", "%s: retention deleted %d segment(s), log start now %lld", p->name,
                deleted, (long long)sm_log_start_offset(p->log));
}
