/*
 * cleaner_mgr.h - the broker's log cleaner threads (Kafka's LogCleaner and
 * LogCleanerManager): log.cleaner.threads threads that, every
 * log.cleaner.backoff.ms when idle, pick the dirtiest hosted partition whose
 * topic's cleanup.policy contains "compact" and clean it
 * (sm_partition_clean). A log is picked when its dirty ratio is at least
 * min.cleanable.dirty.ratio, when its oldest dirty segment is older than
 * max.compaction.lag.ms, or when a delete horizon in it has passed (a
 * cleaning then removes tombstones and markers). Leaders and followers
 * clean their own logs alike.
 *
 * Broker keys: log.cleaner.enable, log.cleaner.threads,
 * log.cleaner.dedupe.buffer.size (shared by the threads),
 * log.cleaner.io.max.bytes.per.second (shared by the threads),
 * log.cleaner.backoff.ms. Threads: start/stop from the server's
 * lifecycle; the status getters from any thread.
 */
#ifndef SM_BROKER_CLEANER_MGR_H
#define SM_BROKER_CLEANER_MGR_H

#include "sm_common.h"

typedef struct sm_server sm_server_t;
typedef struct sm_cleaner_mgr sm_cleaner_mgr_t;

/* Start the threads (none when log.cleaner.enable=false or threads = 0:
 * then NULL). */
sm_cleaner_mgr_t *sm_cleaner_mgr_start(sm_server_t *srv);
/* Stop them: a cleaning in progress gives up at its next batch (its
 * .cleaned files are removed); joins. NULL is fine. */
void sm_cleaner_mgr_stop(sm_cleaner_mgr_t *m);
/* Cleanings completed since start (tests, metrics). */
uint64_t sm_cleaner_mgr_cleanings(const sm_cleaner_mgr_t *m);

#endif
