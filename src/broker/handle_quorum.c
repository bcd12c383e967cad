/*
 * handle_quorum.c - the metadata quorum's RPCs on the CONTROLLER listener:
 * Vote (52), BeginQuorumEpoch (53), EndQuorumEpoch (54), and Fetch (1) of
 * __cluster_metadata-0 from the other voters and from brokers (observers).
 *
 * The bytes are mapped to sm_raft_msg_t by src/raft/raft_wire.c (which
 * refuses another cluster id or another partition with a Kafka error); the
 * message goes to the quorum thread (src/meta/meta_quorum.c), whose answer
 * comes back later from that thread and is encoded at the request's version.
 * A request the quorum cannot take is answered with the code raft_wire chose;
 * bytes that do not decode close the connection (sm_req_fail), as Kafka does.
 */
#include "handler_util.h"
#include "handlers.h"
#include "meta.h"
#include "raft.h"
#include "raft_wire.h"
#include "server.h"

static void quorum_reply(void *ctx, const sm_raft_msg_t *resp)
{
    sm_req_t *req = ctx;
    if (!resp) {
        sm_req_fail(req, "the metadata quorum did not answer");
        return;
    }
    if (sm_raft_wire_encode_response(resp, req->api_version, &req->resp) != SM_OK) {
        sm_req_fail(req, "cannot encode the quorum's answer at this version");
        return;
    }
    sm_req_done(req);
}

/* An error answer built from the request itself, without the quorum. */
static void quorum_refuse(sm_req_t *req, const sm_raft_msg_t *msg, int16_t kerr)
{
    sm_raft_msg_t r = {0};
    r.from = msg->to;
    r.to = msg->from;
    switch (req->api_key) {
    case SM_API_VOTE:
        r.kind = SM_RAFT_MSG_VOTE_RESP;
        r.u.vote_resp.error = kerr;
        r.u.vote_resp.leader_id = SM_RAFT_NO_ID;
        r.u.vote_resp.leader_epoch = -1;
        break;
    case SM_API_BEGIN_QUORUM_EPOCH:
        r.kind = SM_RAFT_MSG_BEGIN_EPOCH_RESP;
        r.u.epoch_resp = (typeof(r.u.epoch_resp)){kerr, SM_RAFT_NO_ID, -1};
        break;
    case SM_API_END_QUORUM_EPOCH:
        r.kind = SM_RAFT_MSG_END_EPOCH_RESP;
        r.u.epoch_resp = (typeof(r.u.epoch_resp)){kerr, SM_RAFT_NO_ID, -1};
        break;
    case SM_API_FETCH_SNAPSHOT:
        r.kind = SM_RAFT_MSG_FETCH_SNAPSHOT_RESP;
        r.u.fetch_snapshot_resp.error = kerr;
        r.u.fetch_snapshot_resp.snapshot_id = (sm_raft_offset_epoch_t){-1, -1};
        r.u.fetch_snapshot_resp.current_leader = (sm_raft_leader_ref_t){SM_RAFT_NO_ID, -1};
        break;
    default:
        r.kind = SM_RAFT_MSG_FETCH_RESP;
        r.u.fetch_resp.error = kerr;
        r.u.fetch_resp.high_watermark = -1;
        r.u.fetch_resp.log_start_offset = -1;
        r.u.fetch_resp.diverging = (sm_raft_offset_epoch_t){-1, -1};
        r.u.fetch_resp.snapshot_id = (sm_raft_offset_epoch_t){-1, -1};
        r.u.fetch_resp.current_leader = (sm_raft_leader_ref_t){SM_RAFT_NO_ID, -1};
        break;
    }
    quorum_reply(req, &r);
}

void sm_handle_quorum(sm_req_t *req)
{
    sm_server_t *srv = req->srv;
    const sm_config_t *cfg = sm_server_config(srv);
    sm_raft_msg_t msg = {0};
    int16_t kerr = 0;
    sm_err_t rc = sm_raft_wire_decode_request(req->api_key, req->api_version, &req->body,
                                              &req->arena, cfg->node_id,
                                              sm_server_cluster_id(srv), &msg, &kerr);
    if (rc == SM_ERR_PARSE) {
        sm_req_fail(req, "malformed quorum request");
        return;
    }
    if (rc != SM_OK) {
        SM_WARN("quorum", "%s: %s v%d refused with error %d", sm_req_peer(req),
                sm_raft_msg_kind_name(msg.kind ? msg.kind : SM_RAFT_MSG_VOTE), req->api_version,
                kerr);
        quorum_refuse(req, &msg, kerr ? kerr : KERR_INVALID_REQUEST);
        return;
    }
    sm_meta_quorum_deliver(sm_server_meta(srv), &msg, quorum_reply, req);
}
