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
#include "forward.h"
#include "meta.h"
#include "brokers.h"
#include "server.h"

#include <string.h>

/* The request's listeners (BrokerRegistration and ControllerRegistration
 * share their shape) as registrations in the arena; n gets the count, nul
 * is set if a name or host holds a NUL byte. */
#define LISTENERS(req, msg, n, nul)                                                         \
    ({                                                                                      \
        (n) = (msg)->listeners_count > 0 ? (msg)->listeners_count : 0;                      \
        sm_meta_listener_reg_t *ls_ =                                                       \
            SM_ARENA_NEW(&(req)->arena, sm_meta_listener_reg_t, (n) ? (n) : 1);              \
        for (int i_ = 0; i_ < (n); i_++) {                                                  \
            ls_[i_].name = (msg)->listeners[i_].name;                                       \
            ls_[i_].host = (msg)->listeners[i_].host;                                       \
            ls_[i_].port = (msg)->listeners[i_].port;                                       \
            ls_[i_].security_protocol = (msg)->listeners[i_].security_protocol;             \
            (nul) |= sm_str_has_nul(ls_[i_].name) || sm_str_has_nul(ls_[i_].host);          \
        }                                                                                   \
        ls_;                                                                                \
    })

static void broker_registration_run(sm_req_t *req, void *msgp)
{
    const sm_broker_registration_request_t *msg = msgp;
    sm_broker_registration_response_t resp;
    sm_broker_registration_response_init(&resp);
    int n;
    bool nul = sm_str_has_nul(msg->cluster_id) || sm_str_has_nul(msg->rack);
    sm_meta_listener_reg_t *ls = LISTENERS(req, msg, n, nul);
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

static void controller_registration_run(sm_req_t *req, void *msgp)
{
    const sm_controller_registration_request_t *msg = msgp;
    sm_controller_registration_response_t resp;
    sm_controller_registration_response_init(&resp);
    int n;
    bool nul = false;
    sm_meta_listener_reg_t *ls = LISTENERS(req, msg, n, nul);
    resp.error_code = nul ? KERR_INVALID_REQUEST
                          : sm_meta_controller_register(sm_server_meta(req->srv),
                                                        msg->controller_id, ls, n);
    if (resp.error_code == KERR_INVALID_REQUEST)
        resp.error_message = sm_str("not a voter of this quorum, or no usable listener");
    SM_RESPOND(controller_registration_response, req, &resp);
}

SM_HANDLER_ON_CONTROLLER(sm_handle_controller_registration, controller_registration_request,
                         controller_registration_run)

/* ------------------------------------------------------------ AlterPartition */

/* AlterPartition (56): a partition leader's ISR change, checked and
 * committed by the active controller (sm_meta_alter_partition). Topics by
 * name before v2, by id from v2; v3's ISR members carry the broker epoch
 * the leader saw them fetch under: a member that re-registered since is
 * refused (INELIGIBLE_REPLICA, KIP-903). */
static void alter_partition_run(sm_req_t *req, void *msgp)
{
    const sm_alter_partition_request_t *msg = msgp;
    sm_alter_partition_response_t resp;
    sm_alter_partition_response_init(&resp);
    int n = 0;
    for (int32_t t = 0; t < msg->topics_count; t++)
        n += SM_MAX(msg->topics[t].partitions_count, 0);
    sm_meta_isr_change_t *ch = SM_ARENA_NEW(&req->arena, sm_meta_isr_change_t, n ? n : 1);
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(req->srv));
    int k = 0;
    for (int32_t t = 0; t < msg->topics_count; t++) {
        const sm_alter_partition_request_topic_data_t *td = &msg->topics[t];
        sm_uuid_t id = td->topic_id;
        if (req->api_version < 2) {
            const sm_topic_meta_t *tm =
                td->topic_name.len > 0 ? sm_meta_image_topic(img, td->topic_name.ptr, (size_t)td->topic_name.len)
                                  : NULL;
            memset(id.b, 0, sizeof id.b);
            if (tm)
                id = tm->id;
        }
        for (int32_t j = 0; j < td->partitions_count; j++, k++) {
            const sm_alter_partition_request_partition_data_t *pd = &td->partitions[j];
            sm_meta_isr_change_t *c = &ch[k];
            memset(c, 0, sizeof *c);
            c->topic_id = id;
            c->partition = pd->partition_index;
            c->leader_epoch = pd->leader_epoch;
            c->partition_epoch = pd->partition_epoch;
            if (req->api_version >= 3) {
                int32_t ne = pd->new_isr_with_epochs_count > 0 ? pd->new_isr_with_epochs_count : 1;
                int32_t *isr = SM_ARENA_NEW(&req->arena, int32_t, ne);
                int64_t *ep = SM_ARENA_NEW(&req->arena, int64_t, ne);
                for (int32_t i = 0; i < pd->new_isr_with_epochs_count; i++) {
                    isr[i] = pd->new_isr_with_epochs[i].broker_id;
                    ep[i] = pd->new_isr_with_epochs[i].broker_epoch;
                }
                c->isr = isr;
                c->isr_epochs = ep;
                c->nisr = pd->new_isr_with_epochs_count;
            } else {
                c->isr = pd->new_isr;
                c->nisr = pd->new_isr_count;
            }
        }
    }
    sm_meta_image_put(img);
    resp.error_code = sm_meta_alter_partition(sm_server_meta(req->srv), msg->broker_id, ch, n);
    if (!resp.error_code) {
        SM_NEW_ARRAY(req, sm_alter_partition_response_topic_data, msg->topics_count, resp.topics);
        resp.topics_count = msg->topics_count;
        k = 0;
        for (int32_t t = 0; t < msg->topics_count; t++) {
            const sm_alter_partition_request_topic_data_t *td = &msg->topics[t];
            sm_alter_partition_response_topic_data_t *rt = &resp.topics[t];
            rt->topic_name = td->topic_name;
            rt->topic_id = td->topic_id;
            SM_NEW_ARRAY(req, sm_alter_partition_response_partition_data, td->partitions_count,
                         rt->partitions);
            rt->partitions_count = td->partitions_count;
            for (int32_t j = 0; j < td->partitions_count; j++, k++) {
                sm_alter_partition_response_partition_data_t *rp = &rt->partitions[j];
                rp->partition_index = ch[k].partition;
                rp->error_code = ch[k].error;
                if (!ch[k].error) {
                    rp->leader_id = ch[k].out_leader;
                    rp->leader_epoch = ch[k].out_leader_epoch;
                    rp->partition_epoch = ch[k].out_partition_epoch;
                    rp->isr = (int32_t *)ch[k].isr;
                    rp->isr_count = ch[k].nisr;
                }
            }
        }
    }
    SM_RESPOND(alter_partition_response, req, &resp);
}

SM_HANDLER_ON_CONTROLLER(sm_handle_alter_partition, alter_partition_request, alter_partition_run)

/* ------------------------------------------------------------ DescribeQuorum */

static void fill_replicas(sm_req_t *req, const sm_meta_quorum_replica_t *in, int n,
                          sm_describe_quorum_response_replica_state_t **out, int32_t *count)
{
    SM_NEW_ARRAY(req, sm_describe_quorum_response_replica_state, n, *out);
    *count = n;
    for (int i = 0; i < n; i++) {
        (*out)[i].replica_id = in[i].id;
        (*out)[i].log_end_offset = in[i].end_offset;
        (*out)[i].last_fetch_timestamp = in[i].last_fetch_ms;
        (*out)[i].last_caught_up_timestamp = in[i].last_caught_up_ms;
    }
}

/* DescribeQuorum (55): the metadata log's quorum, as kafka-metadata-quorum.sh
 * shows it. Only __cluster_metadata partition 0 has a quorum. */
static void describe_quorum_run(sm_req_t *req, void *msgp)
{
    const sm_describe_quorum_request_t msg = *(const sm_describe_quorum_request_t *)msgp;
    sm_describe_quorum_response_t resp;
    sm_describe_quorum_response_init(&resp);
    const sm_config_t *cfg = sm_server_config(req->srv);
    sm_meta_quorum_t *q = SM_ARENA_NEW(&req->arena, sm_meta_quorum_t, 1);
    sm_meta_describe_quorum(sm_server_meta(req->srv), sm_now_mono_ms(), sm_now_wall_ms(), q);
    int32_t nt = SM_MAX(msg.topics_count, 0);
    SM_NEW_ARRAY(req, sm_describe_quorum_response_topic_data, nt, resp.topics);
    resp.topics_count = nt;
    for (int32_t t = 0; t < nt; t++) {
        const sm_describe_quorum_request_topic_data_t *rt = &msg.topics[t];
        sm_describe_quorum_response_topic_data_t *ot = &resp.topics[t];
        ot->topic_name = rt->topic_name;
        int32_t np = SM_MAX(rt->partitions_count, 0);
        SM_NEW_ARRAY(req, sm_describe_quorum_response_partition_data, np, ot->partitions);
        ot->partitions_count = np;
        bool meta_topic = sm_str_eq(rt->topic_name, "__cluster_metadata");
        for (int32_t p = 0; p < np; p++) {
            sm_describe_quorum_response_partition_data_t *op = &ot->partitions[p];
            op->partition_index = rt->partitions[p].partition_index;
            if (!meta_topic || op->partition_index != 0 || !cfg->role_controller) {
                op->error_code = cfg->role_controller ? KERR_UNKNOWN_TOPIC_OR_PARTITION
                                                      : KERR_NOT_LEADER_OR_FOLLOWER;
                continue;
            }
            op->leader_id = q->leader_id;
            op->leader_epoch = q->leader_epoch;
            op->high_watermark = q->high_watermark;
            fill_replicas(req, q->voters, q->nvoters, &op->current_voters,
                          &op->current_voters_count);
            fill_replicas(req, q->observers, q->nobservers, &op->observers,
                          &op->observers_count);
        }
    }
    /* v2: how to reach the voters: every controller that registered
     * (ControllerRegistration), else this controller's own listeners */
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(req->srv));
    if (img->ncontrollers > 0) {
        SM_NEW_ARRAY(req, sm_describe_quorum_response_node, img->ncontrollers, resp.nodes);
        resp.nodes_count = img->ncontrollers;
        for (int i = 0; i < img->ncontrollers; i++) {
            const sm_broker_meta_t *c = &img->controllers[i];
            resp.nodes[i].node_id = c->id;
            SM_NEW_ARRAY(req, sm_describe_quorum_response_listener, c->nendpoints,
                         resp.nodes[i].listeners);
            resp.nodes[i].listeners_count = c->nendpoints;
            for (int k = 0; k < c->nendpoints; k++) {
                sm_describe_quorum_response_listener_t *o = &resp.nodes[i].listeners[k];
                o->name = sm_str(c->endpoints[k].name);
                o->host = sm_str(c->endpoints[k].host);
                o->port = (uint16_t)c->endpoints[k].port;
            }
        }
    } else {
        int nl = 0;
        for (int i = 0; i < cfg->nlisteners; i++)
            nl += cfg->listeners[i].controller;
        SM_NEW_ARRAY(req, sm_describe_quorum_response_node, 1, resp.nodes);
        resp.nodes_count = cfg->role_controller ? 1 : 0;
        resp.nodes[0].node_id = cfg->node_id;
        SM_NEW_ARRAY(req, sm_describe_quorum_response_listener, nl, resp.nodes[0].listeners);
        for (int i = 0; i < cfg->nlisteners; i++) {
            const sm_listener_t *l = &cfg->listeners[i];
            if (!l->controller)
                continue;
            sm_describe_quorum_response_listener_t *o =
                &resp.nodes[0].listeners[resp.nodes[0].listeners_count++];
            o->name = sm_str(l->name);
            o->host = sm_str(l->host);
            o->port = (uint16_t)l->port;
        }
    }
    /* the endpoints point into the image: encode before letting it go */
    sm_describe_quorum_response_encode(&req->resp, req->api_version, &resp);
    sm_describe_quorum_response_errors(&resp, sm_req_count_error, req);
    sm_meta_image_put(img);
    sm_req_done(req);
}

/* Only the quorum's leader knows every replica's progress: a node that is
 * not it (a broker, or a follower controller) asks the leader, as Kafka's
 * brokers forward DescribeQuorum; with no leader reachable it answers with
 * what it knows itself. */
void sm_handle_describe_quorum(sm_req_t *req)
{
    sm_rd_t raw = req->body;
    sm_describe_quorum_request_t *msg = SM_ARENA_NEW(&req->arena, sm_describe_quorum_request_t, 1);
    SM_DECODE_OR_FAIL(describe_quorum_request, req, msg);
    if (!sm_req_forward(req, raw.p, sm_rd_remaining(&raw), msg, describe_quorum_run))
        describe_quorum_run(req, msg);
}
