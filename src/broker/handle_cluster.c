/*
 * handle_cluster.c - the controller's broker-lifecycle APIs: BrokerRegistration
 * (62), BrokerHeartbeat (63) and UnregisterBroker (64).
 *
 * Brokers send the first two to the active controller on its CONTROLLER
 * listener (they are served there only, per Kafka's message definitions);
 * UnregisterBroker is an admin request and is served on both. Each is a
 * metadata change (records committed to the metadata log), so it runs on the
 * controller thread like CreateTopics. The decisions are in src/meta
 * (meta_brokers.c, brokers.c); this file maps the wire to them and back.
 */
#include "handler_util.h"
#include "handlers.h"
#include "meta.h"
#include "brokers.h"
#include "server.h"

#include <string.h>

static void broker_registration_run(sm_req_t *req, void *msgp)
{
    const sm_broker_registration_request_t *msg = msgp;
    sm_broker_registration_response_t resp;
    sm_broker_registration_response_init(&resp);
    int n = msg->listeners_count > 0 ? msg->listeners_count : 0;
    sm_meta_listener_reg_t *ls = SM_ARENA_NEW(&req->arena, sm_meta_listener_reg_t, n ? n : 1);
    bool nul = sm_str_has_nul(msg->cluster_id) || sm_str_has_nul(msg->rack);
    for (int i = 0; i < n; i++) {
        ls[i].name = msg->listeners[i].name;
        ls[i].host = msg->listeners[i].host;
        ls[i].port = msg->listeners[i].port;
        ls[i].security_protocol = msg->listeners[i].security_protocol;
        nul |= sm_str_has_nul(ls[i].name) || sm_str_has_nul(ls[i].host);
    }
    if (nul || n == 0) {
        resp.error_code = KERR_INVALID_REQUEST;
        SM_RESPOND(broker_registration_response, req, &resp);
        return;
    }
    sm_meta_broker_reg_t reg = {
        .id = msg->broker_id,
        .cluster_id = sm_req_str(req, msg->cluster_id),
        .incarnation = msg->incarnation_id,
        .listeners = ls,
        .nlisteners = n,
        .rack = msg->rack,
    };
    resp.error_code = sm_meta_broker_register(sm_server_meta(req->srv), &reg, sm_now_mono_ms(),
                                              &resp.broker_epoch);
    SM_RESPOND(broker_registration_response, req, &resp);
}

SM_HANDLER_ON_CONTROLLER(sm_handle_broker_registration, broker_registration_request,
                         broker_registration_run)

static void broker_heartbeat_run(sm_req_t *req, void *msgp)
{
    const sm_broker_heartbeat_request_t *msg = msgp;
    sm_broker_heartbeat_response_t resp;
    sm_broker_heartbeat_response_init(&resp);
    sm_broker_hb_reply_t r;
    resp.error_code = sm_meta_broker_heartbeat(
        sm_server_meta(req->srv), msg->broker_id, msg->broker_epoch,
        msg->current_metadata_offset, msg->want_fence, msg->want_shut_down, sm_now_mono_ms(), &r);
    resp.is_caught_up = r.is_caught_up;
    resp.is_fenced = r.is_fenced;
    resp.should_shut_down = r.should_shutdown;
    SM_RESPOND(broker_heartbeat_response, req, &resp);
}

SM_HANDLER_ON_CONTROLLER(sm_handle_broker_heartbeat, broker_heartbeat_request,
                         broker_heartbeat_run)

static void unregister_broker_run(sm_req_t *req, void *msgp)
{
    const sm_unregister_broker_request_t *msg = msgp;
    sm_unregister_broker_response_t resp;
    sm_unregister_broker_response_init(&resp);
    resp.error_code = sm_meta_broker_unregister(sm_server_meta(req->srv), msg->broker_id);
    if (resp.error_code)
        resp.error_message = sm_str(resp.error_code == KERR_INVALID_REQUEST
                                        ? "this node's own broker cannot be unregistered"
                                        : "no such broker is registered");
    SM_RESPOND(unregister_broker_response, req, &resp);
}

SM_HANDLER_ON_CONTROLLER(sm_handle_unregister_broker, unregister_broker_request,
                         unregister_broker_run)
