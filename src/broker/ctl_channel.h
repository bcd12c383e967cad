/*
 * ctl_channel.h - this node's line to the active controller: requests a
 * broker sends to the controller quorum's leader (BrokerRegistration,
 * BrokerHeartbeat, forwarded admin requests such as CreateTopics).
 *
 * Kafka's brokers keep one such channel (NodeToControllerChannelManager);
 * here it is one event loop thread ("samsa-ctlch") with one node-to-node
 * connection (src/env/peer.h) per controller of controller.quorum.voters,
 * made when first needed. A call goes to the controller this node believes
 * leads the metadata quorum (sm_meta_quorum_leader, which the node learns by
 * following the quorum); while no leader is known, the call waits and is
 * retried until its deadline. The response body (or the error) goes back
 * to the caller's callback, on the channel's thread.
 *
 * The channel does not interpret responses: a NOT_CONTROLLER answer (the
 * leader moved between the choice and the request) reaches the caller, who
 * retries; the next attempt goes to whoever leads by then.
 */
#ifndef SM_CTL_CHANNEL_H
#define SM_CTL_CHANNEL_H

#include "conf/config.h"
#include "loop.h"
#include "meta.h"
#include "sm_common.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sm_ctl_channel sm_ctl_channel_t;

/* err: SM_OK and the response body (valid during the call), or SM_ERR_AGAIN
 * (no controller answered before the deadline), SM_ERR_CLOSED (connection
 * lost after the request was written: it may have been carried out), or a
 * framing error. Runs on the channel's thread. */
typedef void (*sm_ctl_resp_fn)(void *ctx, sm_err_t err, const uint8_t *body, size_t len);

/* A channel for node cfg->node_id; its thread starts here. NULL when the
 * configuration names no voters. */
sm_ctl_channel_t *sm_ctl_channel_new(const sm_config_t *cfg, sm_meta_t *meta);
/* Stops the thread; calls still waiting get SM_ERR_CLOSED first. */
void sm_ctl_channel_free(sm_ctl_channel_t *ch);

/* Send a request (body: encoded request body of api_key at api_version,
 * copied) to the active controller. Any thread. fn is called exactly once. */
void sm_ctl_channel_call(sm_ctl_channel_t *ch, int16_t api_key, int16_t api_version,
                         const uint8_t *body, size_t len, int32_t timeout_ms, sm_ctl_resp_fn fn,
                         void *ctx);

/* The channel's event loop (timers of the broker lifecycle run there). */
sm_loop_t *sm_ctl_channel_loop(sm_ctl_channel_t *ch);

#endif
