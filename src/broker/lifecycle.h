/*
 * lifecycle.h - a broker's session with the active controller: the
 * ephemeral-znode idea of KRaft (KIP-631).
 *
 *            register ok                 heartbeat: is_fenced=false
 *   START ───────────────► REGISTERED ─────────────────────────► UNFENCED
 *     ▲  ◄── error/timeout    (fenced)  ◄─── controller fenced it ───┘
 *     │                         │                                    │
 *     └── STALE_BROKER_EPOCH / BROKER_ID_NOT_REGISTERED ◄────────────┤
 *                                                                    │ SIGTERM
 *                              STOPPED ◄── should_shut_down ── SHUTTING_DOWN
 *                                          (or the deadline)   (want_shut_down)
 *
 * The broker registers (BrokerRegistration: its id, a fresh incarnation id,
 * the advertised listeners, rack, supported metadata.version), then sends a
 * BrokerHeartbeat every broker.heartbeat.interval.ms carrying the metadata
 * offset it has applied. The controller unfences it once it has caught up
 * and fences it when heartbeats stop for broker.session.timeout.ms. A
 * graceful stop asks for a controlled shutdown (want_shut_down) so the
 * controller moves leaderships off before the process exits.
 *
 * Everything runs on the controller channel's loop (ctl_channel.h). Only
 * nodes of a multi-node quorum have a lifecycle: a lone combined node
 * registers itself in its own metadata log (meta.c).
 */
#ifndef SM_LIFECYCLE_H
#define SM_LIFECYCLE_H

#include "conf/config.h"
#include "ctl_channel.h"
#include "meta.h"

typedef struct sm_lifecycle sm_lifecycle_t;

/* Start registering node cfg->node_id through ch. caught_up(arg) runs once
 * (on the channel's thread) when the controller first says this broker has
 * caught up with the metadata log (so its image is no longer behind what
 * the cluster had when it registered). */
sm_lifecycle_t *sm_lifecycle_start(const sm_config_t *cfg, sm_meta_t *meta, sm_ctl_channel_t *ch,
                                   const char *cluster_id, void (*caught_up)(void *arg),
                                   void *arg);

/* Ask for a controlled shutdown; done(arg) runs (on the channel's thread)
 * once the controller lets the broker go or timeout_ms passed. Any thread. */
void sm_lifecycle_shutdown(sm_lifecycle_t *lc, int32_t timeout_ms, void (*done)(void *arg),
                           void *arg);

/* The last heartbeat's view: registered and not fenced. Any thread. */
bool sm_lifecycle_unfenced(const sm_lifecycle_t *lc);

/* Stop sending (call before freeing the channel), then free (after). */
void sm_lifecycle_stop(sm_lifecycle_t *lc);
void sm_lifecycle_free(sm_lifecycle_t *lc);

#endif
