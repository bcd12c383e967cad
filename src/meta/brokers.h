/*
 * brokers.h - the active controller's view of broker liveness: registration,
 * heartbeats, fencing and controlled shutdown (the job ZooKeeper's ephemeral
 * znodes did).
 *
 *                 register                     heartbeat: caught up, not WantFence
 *   (unknown) ────────────► FENCED ─────────────────────────────────────────► UNFENCED
 *                            ▲  ▲ ▲                                             │  │
 *                            │  │ └──── session expired / WantFence ───────────┘  │ heartbeat
 *                            │  │          (FENCE: leaders move, ISRs shrink)      │ WantShutDown
 *                            │  └────── session expired ────────────┐              ▼
 *                            │                              CONTROLLED_SHUTDOWN (BEGIN_SHUTDOWN)
 *                            │                                        │ its metadata offset reached
 *                            │                                        ▼ the shutdown offset
 *                            └── (FENCE with the answer) ──── SHUTDOWN_NOW (ShouldShutDown = true)
 *
 * A broker registers with its id, incarnation id and the offset its
 * RegisterBrokerRecord got in the metadata log (its broker epoch); it starts
 * fenced. Its heartbeats carry the metadata offset it has applied: once that
 * reaches its registration offset it is caught up and is unfenced. A broker
 * that misses heartbeats for broker.session.timeout.ms is fenced. WantShutDown
 * from an unfenced broker starts a controlled shutdown: the controller moves
 * its leaderships away (its records are committed at some offset, set with
 * sm_brokers_shutdown_offset), and once the broker's metadata offset passes
 * that offset it is told to shut down now (and fenced).
 *
 * The tracker decides; the controller writes the records it asks for
 * (sm_broker_action_t) to the metadata log and answers the heartbeat. Pure
 * state and time passed in: no I/O, no clock of its own, no locks (the
 * controller calls it from its one thread), so the simulator drives it as is.
 */
#ifndef SM_META_BROKERS_H
#define SM_META_BROKERS_H

#include "sm_common.h"

#include <stdint.h>

typedef enum sm_broker_state {
    SM_BROKER_FENCED = 0,
    SM_BROKER_UNFENCED,
    SM_BROKER_CONTROLLED_SHUTDOWN,
    SM_BROKER_SHUTDOWN_NOW,
} sm_broker_state_t;

/* What the controller must write (and apply) after a call. */
typedef enum sm_broker_action {
    SM_BROKER_ACT_NONE = 0,
    SM_BROKER_ACT_UNFENCE,        /* UnfenceBrokerRecord */
    SM_BROKER_ACT_FENCE,          /* FenceBrokerRecord; leaders and ISRs move off it */
    SM_BROKER_ACT_BEGIN_SHUTDOWN, /* BrokerRegistrationChangeRecord InControlledShutdown=1;
                                     leaders move off it */
} sm_broker_action_t;

typedef struct sm_brokers sm_brokers_t;

typedef struct sm_broker_hb_reply {
    int16_t error;        /* Kafka code: 0, STALE_BROKER_EPOCH (77), BROKER_ID_NOT_REGISTERED (109) */
    bool is_caught_up;
    bool is_fenced;
    bool should_shutdown;
} sm_broker_hb_reply_t;

sm_brokers_t *sm_brokers_new(int64_t session_timeout_ms);
void sm_brokers_free(sm_brokers_t *t);

/* A registration. A broker id already registered by another incarnation
 * whose session is still alive is refused (DUPLICATE_BROKER_REGISTRATION,
 * 101, returned); otherwise the broker is (re)registered fenced with epoch
 * = the offset of its RegisterBrokerRecord. Returns 0 or the Kafka code. */
int16_t sm_brokers_register(sm_brokers_t *t, int32_t id, const uint8_t incarnation[16],
                            int64_t epoch, int64_t now_ms);

/* A heartbeat. Fills *reply and returns the action the controller must take
 * before answering (the reply then reflects the state after it). */
sm_broker_action_t sm_brokers_heartbeat(sm_brokers_t *t, int32_t id, int64_t epoch,
                                        int64_t metadata_offset, bool want_fence,
                                        bool want_shutdown, int64_t now_ms,
                                        sm_broker_hb_reply_t *reply);

/* The offset at which the records of a controlled shutdown (leaders moved)
 * were committed; the broker may stop once its metadata reaches it. */
void sm_brokers_shutdown_offset(sm_brokers_t *t, int32_t id, int64_t offset);

/* Expire sessions: up to max ids of brokers to fence now go to out (their
 * state is FENCED from here on). Returns how many. */
int sm_brokers_expire(sm_brokers_t *t, int64_t now_ms, int32_t *out, int max);

/* A new active controller learns the registered brokers from the metadata
 * image: each starts a session now, fenced or unfenced as the image says. */
void sm_brokers_restore(sm_brokers_t *t, int32_t id, int64_t epoch, bool fenced, int64_t now_ms);

/* UnregisterBroker: forget the broker. Returns 0, or BROKER_ID_NOT_REGISTERED. */
int16_t sm_brokers_unregister(sm_brokers_t *t, int32_t id);

/* The state of a broker; false if unknown. */
bool sm_brokers_state(const sm_brokers_t *t, int32_t id, sm_broker_state_t *out);
/* A new active controller starts every known broker afresh: a session from
 * now (so brokers are not fenced for the time no controller was active). */
void sm_brokers_reset_sessions(sm_brokers_t *t, int64_t now_ms);

/* The tracked brokers for DescribeQuorum's observers: up to max of them, by
 * id, with the metadata offset they last reported (-1 if none) and when
 * (monotonic ms). Returns how many. */
typedef struct sm_broker_seen {
    int32_t id;
    int64_t metadata_offset;
    int64_t last_contact_ms;
    sm_broker_state_t state;
    bool heard; /* false: known from the image only (a new controller that has
                   not heard from it yet; it may be dead) */
} sm_broker_seen_t;
int sm_brokers_list(const sm_brokers_t *t, sm_broker_seen_t *out, int max);

const char *sm_broker_state_name(sm_broker_state_t s);

#endif
