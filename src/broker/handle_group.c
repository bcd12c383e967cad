/*
 * handle_group.c - the group coordinator APIs: FindCoordinator, JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
 * DescribeGroups, ListGroups, DeleteGroups, OffsetDelete.
 *
 * Each handler decodes the request, turns wire strings into NUL-terminated
 * arena copies, calls the coordinator (src/coord/group_coord.h) and encodes
 * what it says. JoinGroup and SyncGroup may park: their answer arrives
 * through an sm_group_waiter_t living in the request's arena, whose callback
 * encodes the response and calls sm_req_done() - on the loop thread when the
 * answer is immediate, otherwise on whichever thread completed the rebalance
 * (another member's request or the coordinator's timer thread), with the
 * coordinator mutex held. Nothing else touches the request meanwhile.
 *
 * This single-node broker is the coordinator of every group and
 * transactional id: FindCoordinator names this broker by its advertised
 * listener, the same endpoint Metadata reports. The first FindCoordinator
 * for a group on a broker without __consumer_offsets parks until a
 * background worker has created it (sm_group_coord_await_topic; why there,
 * and not inline or as Kafka's COORDINATOR_NOT_AVAILABLE, is in
 * group_coord.c), then answers from whichever thread finished it.
 */
#include "group_coord.h"
#include "handler_util.h"
#include "handlers.h"
#include "meta.h"
#include "server.h"
#include "txn_coord.h"

#include <stddef.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static sm_group_coord_t *coord(sm_req_t *req) { return sm_server_groups(req->srv); }

/* NUL-terminated copy; NULL for a null string. */
static const char *cstr_or_null(sm_req_t *req, sm_str_t s)
{
    return s.len < 0 ? NULL : sm_req_str(req, s);
}

/* Kafka reports the member's host as "/<ip>". */
static const char *client_host(sm_req_t *req)
{
    const char *peer = sm_req_peer(req);
    const char *colon = peer ? strrchr(peer, ':') : NULL;
    size_t n = colon ? (size_t)(colon - peer) : (peer ? strlen(peer) : 0);
    if (n >= 2 && peer[0] == '[' && peer[n - 1] == ']') {
        peer++;
        n -= 2;
    }
    return sm_arena_sprintf(&req->arena, "/%.*s", (int)n, peer ? peer : "");
}

/* ------------------------------------------------------------ FindCoordinator */

static int16_t coordinator_error(sm_req_t *req, int8_t key_type, sm_str_t key)
{
    if (key_type != 0 && key_type != 1)
        return KERR_INVALID_REQUEST;
    if (key_type == 1) {
        sm_txn_coord_t *tc = sm_server_txn(req->srv);
        if (!tc)
            return KERR_COORDINATOR_NOT_AVAILABLE;
        if (key.len <= 0 || sm_str_has_nul(key))
            return KERR_INVALID_REQUEST;
        int16_t err = sm_txn_coord_status(tc, key.ptr, (size_t)key.len, NULL);
        return err == SM_TXN_KERR_COORDINATOR_LOAD_IN_PROGRESS ? KERR_NONE : err;
    }
    if (!coord(req))
        return KERR_COORDINATOR_NOT_AVAILABLE;
    if (sm_str_has_nul(key))
        return KERR_INVALID_GROUP_ID;
    int16_t err = sm_group_coord_status(coord(req), sm_req_str(req, key));
    /* Loading still finds the coordinator; the group calls then retry. */
    return err == SM_KERR_COORDINATOR_LOAD_IN_PROGRESS ? KERR_NONE : err;
}

/* The coordinator of key: this broker, or (NOT_COORDINATOR here) the
 * broker that leads the group's partition of __consumer_offsets, as this
 * node's metadata image says, at its endpoint for the request's listener. */
static int16_t coordinator_of(sm_req_t *req, int8_t key_type, sm_str_t key, int32_t *node,
                              sm_str_t *host, int32_t *port)
{
    *node = -1;
    *host = sm_str("");
    *port = -1;
    int16_t err = coordinator_error(req, key_type, key);
    if (err == KERR_NONE) {
        *node = sm_server_node_id(req->srv);
        sm_req_self_endpoint(req, host, port);
        return KERR_NONE;
    }
    if (err != KERR_NOT_COORDINATOR || sm_server_stopping(req->srv))
        return err;
    int32_t part = -1;
    if (key_type == 1)
        (void)sm_txn_coord_status(sm_server_txn(req->srv), key.ptr, (size_t)key.len, &part);
    else
        part = sm_group_coord_partition_of(coord(req), sm_req_str(req, key));
    const char *topic = key_type == 1 ? SM_TXN_COORD_TOPIC : SM_GROUP_COORD_TOPIC;
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(req->srv));
    const sm_topic_meta_t *t = sm_meta_image_topic(img, topic, strlen(topic));
    int32_t leader = t && part >= 0 && part < t->npartitions ? t->partitions[part].leader : -1;
    const sm_broker_meta_t *b = leader >= 0 ? sm_meta_image_broker(img, leader) : NULL;
    err = KERR_COORDINATOR_NOT_AVAILABLE;
    if (b && !b->fenced) {
        const char *via = sm_req_listener(req);
        const sm_endpoint_t *ep = via ? sm_meta_broker_endpoint(b, via) : NULL;
        const char *h = ep ? ep->host : b->host;
        *host = sm_str(sm_arena_strndup(&req->arena, h, strlen(h)));
        *port = ep ? ep->port : b->port;
        *node = leader;
        err = KERR_NONE;
    }
    sm_meta_image_put(img);
    return err;
}

/* Encode the answer for every key and finish. Loop thread, or a background
 * worker for a parked request. */
static void find_coordinator_answer(sm_req_t *req, const sm_find_coordinator_request_t *m)
{
    sm_find_coordinator_request_t msg = *m;
    sm_find_coordinator_response_t resp;
    sm_find_coordinator_response_init(&resp);
    if (req->api_version < 4) {
        resp.error_code =
            coordinator_of(req, msg.key_type, msg.key, &resp.node_id, &resp.host, &resp.port);
    } else {
        SM_NEW_ARRAY(req, sm_find_coordinator_response_coordinator, msg.coordinator_keys_count,
                     resp.coordinators);
        resp.coordinators_count = msg.coordinator_keys_count;
        for (int32_t i = 0; i < msg.coordinator_keys_count; i++) {
            sm_find_coordinator_response_coordinator_t *co = &resp.coordinators[i];
            co->key = msg.coordinator_keys[i];
            co->error_code = coordinator_of(req, msg.key_type, msg.coordinator_keys[i],
                                            &co->node_id, &co->host, &co->port);
        }
    }
    SM_RESPOND(find_coordinator_response, req, &resp);
}

/* A FindCoordinator parked until __consumer_offsets exists (request arena). */
typedef struct find_park {
    sm_group_coord_ready_t ready; /* first: on_ready gets its address */
    sm_txn_ready_t txready;       /* the same for __transaction_state */
    sm_req_t *req;
    sm_find_coordinator_request_t msg; /* views into the request frame */
} find_park_t;

static void find_coordinator_ready(sm_group_coord_ready_t *r)
{
    find_park_t *p = (find_park_t *)r;
    find_coordinator_answer(p->req, &p->msg);
}

static void find_txn_coordinator_ready(sm_txn_ready_t *r)
{
    find_park_t *p = (find_park_t *)((char *)r - offsetof(find_park_t, txready));
    find_coordinator_answer(p->req, &p->msg);
}

void sm_handle_find_coordinator(sm_req_t *req)
{
    find_park_t *p = SM_ARENA_NEW(&req->arena, find_park_t, 1);
    SM_DECODE_OR_FAIL(find_coordinator_request, req, &p->msg);
    p->req = req;
    p->ready.on_ready = find_coordinator_ready;
    p->ready.next = NULL;
    /* key_type 0 (v0 has no key_type: groups only) with a key to look up. */
    bool group =
        p->msg.key_type == 0 && (req->api_version < 4 || p->msg.coordinator_keys_count > 0);
    if (group && coord(req) && sm_group_coord_await_topic(coord(req), &p->ready))
        return; /* answered by find_coordinator_ready; req may be gone already */
    bool txn = p->msg.key_type == 1 && (req->api_version < 4 || p->msg.coordinator_keys_count > 0);
    p->txready.on_ready = find_txn_coordinator_ready;
    p->txready.next = NULL;
    if (txn && sm_server_txn(req->srv) &&
        sm_txn_coord_await_topic(sm_server_txn(req->srv), &p->txready))
        return;
    find_coordinator_answer(req, &p->msg);
}

/* ------------------------------------------------------------ JoinGroup */

typedef struct req_waiter {
    sm_group_waiter_t w;
    sm_req_t *req;
} req_waiter_t;

/* Runs under the coordinator mutex, on any thread: encode and finish. */
static void join_answer(sm_group_waiter_t *w, const sm_group_t *g,
                        const sm_group_join_result_t *r)
{
    sm_req_t *req = ((req_waiter_t *)w)->req;
    sm_join_group_response_t resp;
    sm_join_group_response_init(&resp);
    bool v7 = req->api_version >= 7;
    resp.error_code = r->error;
    resp.generation_id = r->generation;
    resp.member_id = sm_str(r->member_id ? r->member_id : "");
    resp.leader = sm_str(r->leader_id ? r->leader_id : "");
    resp.protocol_type = sm_str(r->protocol_type);
    resp.protocol_name = v7 ? sm_str(r->protocol_name) : sm_str(r->protocol_name ? r->protocol_name : "");
    resp.skip_assignment = r->skip_assignment;
    if (r->error == SM_KERR_NONE && r->with_members && g) {
        SM_NEW_ARRAY(req, sm_join_group_response_join_group_response_member, g->nmembers,
                     resp.members);
        resp.members_count = g->nmembers;
        for (int32_t i = 0; i < g->nmembers; i++) {
            const sm_group_member_t *m = g->members[i];
            sm_join_group_response_join_group_response_member_t *rm = &resp.members[i];
            rm->member_id = sm_str(m->id);
            rm->group_instance_id = sm_str(m->instance_id);
            int32_t len;
            const uint8_t *meta = sm_group_member_meta(m, g->protocol_name, &len);
            rm->metadata.ptr = meta ? meta : (const uint8_t *)"";
            rm->metadata.len = meta ? len : 0;
        }
    }
    /* Encoded now: the views above die with the coordinator mutex. */
    SM_RESPOND(join_group_response, req, &resp);
}

static void sync_answer(sm_group_waiter_t *w, const sm_group_t *g, int16_t error,
                        const uint8_t *assignment, int32_t len)
{
    sm_req_t *req = ((req_waiter_t *)w)->req;
    sm_sync_group_response_t resp;
    sm_sync_group_response_init(&resp);
    resp.error_code = error;
    resp.assignment.ptr = assignment ? assignment : (const uint8_t *)"";
    resp.assignment.len = assignment ? len : 0;
    if (error == SM_KERR_NONE && g) {
        resp.protocol_type = sm_str(g->protocol_type);
        resp.protocol_name = sm_str(g->protocol_name);
    }
    SM_RESPOND(sync_group_response, req, &resp);
}

static req_waiter_t *new_waiter(sm_req_t *req)
{
    req_waiter_t *rw = SM_ARENA_NEW(&req->arena, req_waiter_t, 1);
    rw->w.on_join = join_answer;
    rw->w.on_sync = sync_answer;
    rw->req = req;
    return rw;
}

static void join_error(sm_req_t *req, const char *member_id, int16_t err)
{
    req_waiter_t *rw = new_waiter(req);
    sm_group_join_result_t r = {.error = err, .generation = -1, .member_id = member_id};
    join_answer(&rw->w, NULL, &r);
}

void sm_handle_join_group(sm_req_t *req)
{
    sm_join_group_request_t msg;
    SM_DECODE_OR_FAIL(join_group_request, req, &msg);
    const char *member_id = sm_req_str(req, msg.member_id);
    if (!coord(req)) {
        join_error(req, member_id, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    if (sm_str_has_nul(msg.group_id)) {
        join_error(req, member_id, KERR_INVALID_GROUP_ID);
        return;
    }
    bool nul = sm_str_has_nul(msg.member_id) || sm_str_has_nul(msg.group_instance_id) ||
               sm_str_has_nul(msg.protocol_type);
    for (int32_t i = 0; i < msg.protocols_count; i++)
        nul |= sm_str_has_nul(msg.protocols[i].name);
    if (nul) {
        join_error(req, "", KERR_INVALID_REQUEST);
        return;
    }
    sm_group_protocol_t *protos =
        SM_ARENA_NEW(&req->arena, sm_group_protocol_t, msg.protocols_count > 0 ? msg.protocols_count : 1);
    for (int32_t i = 0; i < msg.protocols_count; i++) {
        protos[i].name = sm_req_str(req, msg.protocols[i].name);
        protos[i].meta = (uint8_t *)msg.protocols[i].metadata.ptr;
        protos[i].meta_len = msg.protocols[i].metadata.len > 0 ? msg.protocols[i].metadata.len : 0;
    }
    sm_group_join_args_t a = {
        .member_id = member_id,
        .instance_id = cstr_or_null(req, msg.group_instance_id),
        .client_id = sm_req_str(req, req->client_id),
        .client_id_len = req->client_id.len > 0 ? (size_t)req->client_id.len : 0,
        .client_host = client_host(req),
        .session_timeout_ms = msg.session_timeout_ms,
        .rebalance_timeout_ms = msg.rebalance_timeout_ms,
        .protocol_type = sm_req_str(req, msg.protocol_type),
        .protocols = protos,
        .nprotocols = msg.protocols_count > 0 ? msg.protocols_count : 0,
        .require_known_member_id = req->api_version >= 4,
    };
    sm_group_coord_join(coord(req), sm_req_str(req, msg.group_id), &a, &new_waiter(req)->w);
}

/* ------------------------------------------------------------ SyncGroup */

void sm_handle_sync_group(sm_req_t *req)
{
    sm_sync_group_request_t msg;
    SM_DECODE_OR_FAIL(sync_group_request, req, &msg);
    req_waiter_t *rw = new_waiter(req);
    if (!coord(req)) {
        sync_answer(&rw->w, NULL, KERR_COORDINATOR_NOT_AVAILABLE, NULL, 0);
        return;
    }
    bool nul = sm_str_has_nul(msg.member_id) || sm_str_has_nul(msg.group_instance_id) ||
               sm_str_has_nul(msg.protocol_type) || sm_str_has_nul(msg.protocol_name);
    for (int32_t i = 0; i < msg.assignments_count; i++)
        nul |= sm_str_has_nul(msg.assignments[i].member_id);
    if (sm_str_has_nul(msg.group_id) || nul) {
        sync_answer(&rw->w, NULL, sm_str_has_nul(msg.group_id) ? KERR_INVALID_GROUP_ID
                                                               : KERR_INVALID_REQUEST, NULL, 0);
        return;
    }
    sm_group_assignment_t *as = SM_ARENA_NEW(&req->arena, sm_group_assignment_t,
                                             msg.assignments_count > 0 ? msg.assignments_count : 1);
    for (int32_t i = 0; i < msg.assignments_count; i++) {
        as[i].member_id = sm_req_str(req, msg.assignments[i].member_id);
        as[i].bytes = msg.assignments[i].assignment.ptr;
        as[i].len = msg.assignments[i].assignment.len > 0 ? msg.assignments[i].assignment.len : 0;
    }
    sm_group_sync_args_t a = {
        .member_id = sm_req_str(req, msg.member_id),
        .instance_id = cstr_or_null(req, msg.group_instance_id),
        .generation = msg.generation_id,
        .protocol_type = cstr_or_null(req, msg.protocol_type),
        .protocol_name = cstr_or_null(req, msg.protocol_name),
        .assignments = as,
        .nassignments = msg.assignments_count > 0 ? msg.assignments_count : 0,
    };
    sm_group_coord_sync(coord(req), sm_req_str(req, msg.group_id), &a, &rw->w);
}

/* ------------------------------------------------------------ Heartbeat, LeaveGroup */

void sm_handle_heartbeat(sm_req_t *req)
{
    sm_heartbeat_request_t msg;
    SM_DECODE_OR_FAIL(heartbeat_request, req, &msg);
    sm_heartbeat_response_t resp;
    sm_heartbeat_response_init(&resp);
    if (sm_str_has_nul(msg.group_id))
        resp.error_code = KERR_INVALID_GROUP_ID;
    else if (sm_str_has_nul(msg.member_id) || sm_str_has_nul(msg.group_instance_id))
        resp.error_code = KERR_UNKNOWN_MEMBER_ID;
    else
    resp.error_code = coord(req) ? sm_group_coord_heartbeat(coord(req), sm_req_str(req, msg.group_id),
                                                            sm_req_str(req, msg.member_id),
                                                            cstr_or_null(req, msg.group_instance_id),
                                                            msg.generation_id)
                                 : KERR_COORDINATOR_NOT_AVAILABLE;
    SM_RESPOND(heartbeat_response, req, &resp);
}

void sm_handle_leave_group(sm_req_t *req)
{
    sm_leave_group_request_t msg;
    SM_DECODE_OR_FAIL(leave_group_request, req, &msg);
    sm_leave_group_response_t resp;
    sm_leave_group_response_init(&resp);
    bool batched = req->api_version >= 3;
    int32_t n = batched ? (msg.members_count > 0 ? msg.members_count : 0) : 1;
    sm_group_leaver_t *m = SM_ARENA_NEW(&req->arena, sm_group_leaver_t, n > 0 ? n : 1);
    for (int32_t i = 0; i < n; i++) {
        m[i].member_id = sm_req_str(req, batched ? msg.members[i].member_id : msg.member_id);
        m[i].instance_id = batched ? cstr_or_null(req, msg.members[i].group_instance_id) : NULL;
    }
    if (!coord(req) || sm_str_has_nul(msg.group_id)) {
        resp.error_code =
            coord(req) ? KERR_INVALID_GROUP_ID : KERR_COORDINATOR_NOT_AVAILABLE;
        SM_RESPOND(leave_group_response, req, &resp);
        return;
    }
    bool nul = sm_str_has_nul(msg.member_id);
    for (int32_t i = 0; batched && i < n; i++)
        nul |= sm_str_has_nul(msg.members[i].member_id) ||
               sm_str_has_nul(msg.members[i].group_instance_id);
    if (nul) {
        resp.error_code = KERR_UNKNOWN_MEMBER_ID;
        SM_RESPOND(leave_group_response, req, &resp);
        return;
    }
    resp.error_code = sm_group_coord_leave(coord(req), sm_req_str(req, msg.group_id), m, n);
    if (batched) {
        if (resp.error_code == KERR_NONE) {
            SM_NEW_ARRAY(req, sm_leave_group_response_member_response, n, resp.members);
            resp.members_count = n;
            for (int32_t i = 0; i < n; i++) {
                resp.members[i].member_id = msg.members[i].member_id;
                resp.members[i].group_instance_id = msg.members[i].group_instance_id;
                resp.members[i].error_code = m[i].error;
            }
        }
    } else if (resp.error_code == KERR_NONE) {
        resp.error_code = m[0].error;
    }
    SM_RESPOND(leave_group_response, req, &resp);
}

/* ------------------------------------------------------------ OffsetCommit */

/* An OffsetCommit waits, like acks=all, until the group's __consumer_offsets
 * partition's in-sync replicas have the commit (offsets.commit.timeout.ms,
 * 5 s); the answer is built first and sent from the waiter. */
typedef struct commit_wait {
    sm_hw_waiter_t w; /* first member */
    sm_req_t *req;
    sm_offset_commit_response_t resp;
} commit_wait_t;

#define OFFSETS_COMMIT_TIMEOUT_MS 5000

static void commit_replicated(sm_hw_waiter_t *w, int16_t kerr)
{
    commit_wait_t *cw = (commit_wait_t *)w;
    /* Kafka's mapping of the append's outcome for OffsetCommit */
    int16_t err = kerr == 0 || kerr == KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND ? 0
                  : kerr == KERR_NOT_LEADER_OR_FOLLOWER                      ? KERR_NOT_COORDINATOR
                                                           : KERR_COORDINATOR_NOT_AVAILABLE;
    for (int32_t t = 0; err && t < cw->resp.topics_count; t++)
        for (int32_t i = 0; i < cw->resp.topics[t].partitions_count; i++)
            if (!cw->resp.topics[t].partitions[i].error_code)
                cw->resp.topics[t].partitions[i].error_code = err;
    SM_RESPOND(offset_commit_response, cw->req, &cw->resp);
}

/* True when the response will be sent by commit_replicated. */
static bool commit_wait_replicas(sm_req_t *req, const char *group,
                                 const sm_offset_commit_response_t *resp)
{
    sm_group_coord_t *c = coord(req);
    if (!c)
        return false;
    int32_t idx = sm_group_coord_partition_of(c, group);
    sm_partition_t *p = idx >= 0 ? sm_server_partition(req->srv, SM_GROUP_COORD_TOPIC,
                                                      sizeof(SM_GROUP_COORD_TOPIC) - 1, idx)
                                 : NULL;
    if (!p)
        return false;
    commit_wait_t *cw = SM_ARENA_NEW(&req->arena, commit_wait_t, 1);
    memset(cw, 0, sizeof *cw);
    cw->req = req;
    cw->resp = *resp;
    cw->w.done = commit_replicated;
    cw->w.target = sm_partition_log_end(p); /* the commit's records are below it */
    cw->w.deadline_ms = sm_now_mono_ms() + OFFSETS_COMMIT_TIMEOUT_MS;
    bool there = sm_partition_role(p) != SM_ROLE_LEADER || sm_partition_wait_hw(p, &cw->w);
    sm_partition_put(p);
    return !there;
}

void sm_handle_offset_commit(sm_req_t *req)
{
    sm_offset_commit_request_t msg;
    SM_DECODE_OR_FAIL(offset_commit_request, req, &msg);
    int32_t total = 0;
    for (int32_t t = 0; t < msg.topics_count; t++)
        total += msg.topics[t].partitions_count > 0 ? msg.topics[t].partitions_count : 0;
    sm_group_commit_part_t *parts =
        SM_ARENA_NEW(&req->arena, sm_group_commit_part_t, total > 0 ? total : 1);
    int64_t now = sm_now_wall_ms();
    int32_t k = 0;
    for (int32_t t = 0; t < msg.topics_count; t++) {
        const sm_offset_commit_request_offset_commit_request_topic_t *tp = &msg.topics[t];
        for (int32_t i = 0; i < tp->partitions_count; i++) {
            const sm_offset_commit_request_offset_commit_request_partition_t *pp = &tp->partitions[i];
            sm_group_commit_part_t *p = &parts[k++];
            p->topic = tp->name.ptr ? tp->name.ptr : "";
            p->topic_len = tp->name.len > 0 ? (size_t)tp->name.len : 0;
            p->partition = pp->partition_index;
            p->offset = pp->committed_offset;
            p->leader_epoch = pp->committed_leader_epoch;
            p->metadata = pp->committed_metadata.len >= 0 ? pp->committed_metadata.ptr : NULL;
            p->metadata_len = pp->committed_metadata.len > 0 ? (size_t)pp->committed_metadata.len : 0;
            if (p->metadata == NULL && pp->committed_metadata.len >= 0)
                p->metadata = "";
            /* v2-4 carried a retention time; -1 means the broker's default. */
            p->expire_ms = msg.retention_time_ms >= 0 ? now + msg.retention_time_ms : -1;
        }
    }
    int16_t id_err = sm_str_has_nul(msg.group_id) ? KERR_INVALID_GROUP_ID
                     : sm_str_has_nul(msg.member_id) || sm_str_has_nul(msg.group_instance_id)
                         ? KERR_UNKNOWN_MEMBER_ID
                         : KERR_NONE;
    if (id_err) {
        for (int32_t i = 0; i < total; i++)
            parts[i].error = id_err;
    } else if (coord(req)) {
        sm_group_coord_commit(coord(req), sm_req_str(req, msg.group_id),
                              msg.generation_id_or_member_epoch, sm_req_str(req, msg.member_id),
                              cstr_or_null(req, msg.group_instance_id), parts, total);
    } else {
        for (int32_t i = 0; i < total; i++)
            parts[i].error = KERR_COORDINATOR_NOT_AVAILABLE;
    }
    sm_offset_commit_response_t resp;
    sm_offset_commit_response_init(&resp);
    SM_NEW_ARRAY(req, sm_offset_commit_response_offset_commit_response_topic, msg.topics_count,
                 resp.topics);
    resp.topics_count = msg.topics_count > 0 ? msg.topics_count : 0;
    k = 0;
    for (int32_t t = 0; t < resp.topics_count; t++) {
        const sm_offset_commit_request_offset_commit_request_topic_t *tp = &msg.topics[t];
        sm_offset_commit_response_offset_commit_response_topic_t *rt = &resp.topics[t];
        rt->name = tp->name;
        SM_NEW_ARRAY(req, sm_offset_commit_response_offset_commit_response_partition,
                     tp->partitions_count, rt->partitions);
        rt->partitions_count = tp->partitions_count > 0 ? tp->partitions_count : 0;
        for (int32_t i = 0; i < rt->partitions_count; i++, k++) {
            rt->partitions[i].partition_index = parts[k].partition;
            rt->partitions[i].error_code = parts[k].error;
        }
    }
    bool any_ok = false;
    for (int32_t i = 0; i < total && !any_ok; i++)
        any_ok = parts[i].error == 0;
    if (any_ok && !id_err && commit_wait_replicas(req, sm_req_str(req, msg.group_id), &resp))
        return; /* answered once the ISR has it */
    SM_RESPOND(offset_commit_response, req, &resp);
}

/* ------------------------------------------------------------ OffsetFetch */

/* One group's offsets: requested partitions (topics != NULL) or all. The
 * generic out arrays use the v8 layout; v0-7 copy from it. */
typedef struct fetch_topic {
    sm_str_t name;
    sm_group_fetch_part_t *parts;
    int32_t nparts;
} fetch_topic_t;

static int16_t fetch_group(sm_req_t *req, sm_str_t group, bool all, bool stable,
                           const sm_str_t *names,
                           int32_t *const *indexes, const int32_t *counts, int32_t ntopics,
                           fetch_topic_t **out, int32_t *nout)
{
    sm_group_coord_t *c = coord(req);
    *out = NULL;
    *nout = 0;
    if (!c)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    if (sm_str_has_nul(group))
        return KERR_INVALID_GROUP_ID;
    const char *group_id = sm_req_str(req, group);
    if (all) {
        sm_group_fetch_part_t *p;
        int32_t n;
        int16_t err = sm_group_coord_fetch_all(c, group_id, stable, &req->arena, &p, &n);
        if (err)
            return err;
        fetch_topic_t *ft = SM_ARENA_NEW(&req->arena, fetch_topic_t, n > 0 ? n : 1);
        int32_t nt = 0;
        for (int32_t i = 0; i < n; i++) {
            if (nt == 0 || strcmp(ft[nt - 1].parts[0].topic, p[i].topic) != 0) {
                ft[nt].name = sm_str(p[i].topic);
                ft[nt].parts = &p[i];
                ft[nt].nparts = 0;
                nt++;
            }
            ft[nt - 1].nparts++;
        }
        *out = ft;
        *nout = nt;
        return KERR_NONE;
    }
    int32_t total = 0;
    for (int32_t t = 0; t < ntopics; t++)
        total += counts[t] > 0 ? counts[t] : 0;
    sm_group_fetch_part_t *p = SM_ARENA_NEW(&req->arena, sm_group_fetch_part_t, total > 0 ? total : 1);
    fetch_topic_t *ft = SM_ARENA_NEW(&req->arena, fetch_topic_t, ntopics > 0 ? ntopics : 1);
    int32_t k = 0;
    for (int32_t t = 0; t < ntopics; t++) {
        ft[t].name = names[t];
        ft[t].parts = &p[k];
        ft[t].nparts = counts[t] > 0 ? counts[t] : 0;
        const char *topic = sm_req_str(req, names[t]);
        for (int32_t i = 0; i < ft[t].nparts; i++, k++) {
            p[k].topic = topic;
            p[k].partition = indexes[t][i];
        }
    }
    int16_t err = sm_group_coord_fetch(c, group_id, p, total, stable, &req->arena);
    if (err)
        return err;
    /* A name with a NUL byte was looked up cut short: it names no topic. */
    for (int32_t t = 0; t < ntopics; t++)
        for (int32_t i = 0; sm_str_has_nul(names[t]) && i < ft[t].nparts; i++) {
            ft[t].parts[i].offset = -1;
            ft[t].parts[i].leader_epoch = -1;
            ft[t].parts[i].metadata = "";
            ft[t].parts[i].metadata_len = 0;
            ft[t].parts[i].error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
    *out = ft;
    *nout = ntopics > 0 ? ntopics : 0;
    return KERR_NONE;
}

void sm_handle_offset_fetch(sm_req_t *req)
{
    sm_offset_fetch_request_t msg;
    SM_DECODE_OR_FAIL(offset_fetch_request, req, &msg);
    sm_offset_fetch_response_t resp;
    sm_offset_fetch_response_init(&resp);
    if (req->api_version < 8) {
        int32_t nt = msg.topics_count > 0 ? msg.topics_count : 0;
        sm_str_t *names = SM_ARENA_NEW(&req->arena, sm_str_t, nt ? nt : 1);
        int32_t **idx = SM_ARENA_NEW(&req->arena, int32_t *, nt ? nt : 1);
        int32_t *cnt = SM_ARENA_NEW(&req->arena, int32_t, nt ? nt : 1);
        for (int32_t t = 0; t < nt; t++) {
            names[t] = msg.topics[t].name;
            idx[t] = msg.topics[t].partition_indexes;
            cnt[t] = msg.topics[t].partition_indexes_count;
        }
        fetch_topic_t *ft;
        int32_t nft;
        int16_t err = fetch_group(req, msg.group_id, msg.topics_count < 0, msg.require_stable, names,
                                  idx, cnt, nt, &ft, &nft);
        SM_NEW_ARRAY(req, sm_offset_fetch_response_offset_fetch_response_topic, nft, resp.topics);
        resp.topics_count = nft;
        for (int32_t t = 0; t < nft; t++) {
            sm_offset_fetch_response_offset_fetch_response_topic_t *rt = &resp.topics[t];
            rt->name = ft[t].name;
            SM_NEW_ARRAY(req, sm_offset_fetch_response_offset_fetch_response_partition,
                         ft[t].nparts, rt->partitions);
            rt->partitions_count = ft[t].nparts;
            for (int32_t i = 0; i < ft[t].nparts; i++) {
                const sm_group_fetch_part_t *p = &ft[t].parts[i];
                rt->partitions[i].partition_index = p->partition;
                rt->partitions[i].committed_offset = p->offset;
                rt->partitions[i].committed_leader_epoch = p->leader_epoch;
                rt->partitions[i].metadata = sm_str_n(p->metadata, (int32_t)p->metadata_len);
                rt->partitions[i].error_code = p->error;
            }
        }
        if (req->api_version >= 2) {
            resp.error_code = err;
        } else if (err) {
            /* v0-1 have no top-level error: report it per requested partition. */
            SM_NEW_ARRAY(req, sm_offset_fetch_response_offset_fetch_response_topic, nt, resp.topics);
            resp.topics_count = nt;
            for (int32_t t = 0; t < nt; t++) {
                resp.topics[t].name = names[t];
                SM_NEW_ARRAY(req, sm_offset_fetch_response_offset_fetch_response_partition, cnt[t],
                             resp.topics[t].partitions);
                resp.topics[t].partitions_count = cnt[t] > 0 ? cnt[t] : 0;
                for (int32_t i = 0; i < resp.topics[t].partitions_count; i++) {
                    resp.topics[t].partitions[i].partition_index = idx[t][i];
                    resp.topics[t].partitions[i].committed_offset = -1;
                    resp.topics[t].partitions[i].metadata = sm_str("");
                    resp.topics[t].partitions[i].error_code = err;
                }
            }
        }
        SM_RESPOND(offset_fetch_response, req, &resp);
        return;
    }
    int32_t ng = msg.groups_count > 0 ? msg.groups_count : 0;
    SM_NEW_ARRAY(req, sm_offset_fetch_response_offset_fetch_response_group, ng, resp.groups);
    resp.groups_count = ng;
    for (int32_t g = 0; g < ng; g++) {
        const sm_offset_fetch_request_offset_fetch_request_group_t *rg = &msg.groups[g];
        sm_offset_fetch_response_offset_fetch_response_group_t *og = &resp.groups[g];
        og->group_id = rg->group_id;
        int32_t nt = rg->topics_count > 0 ? rg->topics_count : 0;
        sm_str_t *names = SM_ARENA_NEW(&req->arena, sm_str_t, nt ? nt : 1);
        int32_t **idx = SM_ARENA_NEW(&req->arena, int32_t *, nt ? nt : 1);
        int32_t *cnt = SM_ARENA_NEW(&req->arena, int32_t, nt ? nt : 1);
        for (int32_t t = 0; t < nt; t++) {
            names[t] = rg->topics[t].name;
            idx[t] = rg->topics[t].partition_indexes;
            cnt[t] = rg->topics[t].partition_indexes_count;
        }
        fetch_topic_t *ft;
        int32_t nft;
        og->error_code = fetch_group(req, rg->group_id, rg->topics_count < 0, msg.require_stable,
                                     names, idx, cnt, nt, &ft, &nft);
        SM_NEW_ARRAY(req, sm_offset_fetch_response_offset_fetch_response_topics, nft, og->topics);
        og->topics_count = nft;
        for (int32_t t = 0; t < nft; t++) {
            sm_offset_fetch_response_offset_fetch_response_topics_t *rt = &og->topics[t];
            rt->name = ft[t].name;
            SM_NEW_ARRAY(req, sm_offset_fetch_response_offset_fetch_response_partitions,
                         ft[t].nparts, rt->partitions);
            rt->partitions_count = ft[t].nparts;
            for (int32_t i = 0; i < ft[t].nparts; i++) {
                const sm_group_fetch_part_t *p = &ft[t].parts[i];
                rt->partitions[i].partition_index = p->partition;
                rt->partitions[i].committed_offset = p->offset;
                rt->partitions[i].committed_leader_epoch = p->leader_epoch;
                rt->partitions[i].metadata = sm_str_n(p->metadata, (int32_t)p->metadata_len);
                rt->partitions[i].error_code = p->error;
            }
        }
    }
    SM_RESPOND(offset_fetch_response, req, &resp);
}

/* ------------------------------------------------------------ admin */

void sm_handle_describe_groups(sm_req_t *req)
{
    sm_describe_groups_request_t msg;
    SM_DECODE_OR_FAIL(describe_groups_request, req, &msg);
    sm_describe_groups_response_t resp;
    sm_describe_groups_response_init(&resp);
    int32_t n = msg.groups_count > 0 ? msg.groups_count : 0;
    SM_NEW_ARRAY(req, sm_describe_groups_response_described_group, n, resp.groups);
    resp.groups_count = n;
    for (int32_t i = 0; i < n; i++) {
        sm_describe_groups_response_described_group_t *o = &resp.groups[i];
        o->group_id = msg.groups[i];
        if (!coord(req) || sm_str_has_nul(msg.groups[i])) {
            o->error_code = coord(req) ? KERR_INVALID_GROUP_ID : KERR_COORDINATOR_NOT_AVAILABLE;
            o->group_state = o->protocol_type = o->protocol_data = sm_str("");
            continue;
        }
        sm_group_desc_t d;
        sm_group_coord_describe(coord(req), sm_req_str(req, msg.groups[i]), &req->arena, &d);
        o->error_code = d.error;
        o->group_state = sm_str(d.state);
        o->protocol_type = sm_str(d.protocol_type);
        o->protocol_data = sm_str(d.protocol);
        SM_NEW_ARRAY(req, sm_describe_groups_response_described_group_member, d.nmembers,
                     o->members);
        o->members_count = d.nmembers;
        for (int32_t k = 0; k < d.nmembers; k++) {
            const sm_group_desc_member_t *dm = &d.members[k];
            sm_describe_groups_response_described_group_member_t *om = &o->members[k];
            om->member_id = sm_str(dm->member_id);
            om->group_instance_id = sm_str(dm->instance_id);
            om->client_id = sm_str_n(dm->client_id, (int32_t)dm->client_id_len);
            om->client_host = sm_str(dm->client_host);
            om->member_metadata.ptr = dm->metadata;
            om->member_metadata.len = dm->metadata_len;
            om->member_assignment.ptr = dm->assignment;
            om->member_assignment.len = dm->assignment_len;
        }
    }
    SM_RESPOND(describe_groups_response, req, &resp);
}

void sm_handle_list_groups(sm_req_t *req)
{
    sm_list_groups_request_t msg;
    SM_DECODE_OR_FAIL(list_groups_request, req, &msg);
    sm_list_groups_response_t resp;
    sm_list_groups_response_init(&resp);
    uint32_t mask = 0;
    bool none = false;
    for (int32_t i = 0; i < msg.states_filter_count; i++) {
        int s = sm_group_state_parse(msg.states_filter[i].ptr,
                                     msg.states_filter[i].len > 0 ? (size_t)msg.states_filter[i].len : 0);
        if (s >= 0)
            mask |= 1u << s;
        else
            none = true; /* an unknown state matches nothing */
    }
    if (none && !mask)
        mask = 1u << 31;
    /* Every group here is a classic group. */
    bool classic = msg.types_filter_count <= 0;
    for (int32_t i = 0; i < msg.types_filter_count; i++)
        if (msg.types_filter[i].len == 7 && strncasecmp(msg.types_filter[i].ptr, "classic", 7) == 0)
            classic = true;
    if (!coord(req)) {
        resp.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
    } else if (classic) {
        sm_group_listing_t *l;
        int32_t n;
        resp.error_code = sm_group_coord_list(coord(req), mask, &req->arena, &l, &n);
        SM_NEW_ARRAY(req, sm_list_groups_response_listed_group, n, resp.groups);
        resp.groups_count = n;
        for (int32_t i = 0; i < n; i++) {
            resp.groups[i].group_id = sm_str(l[i].group_id);
            resp.groups[i].protocol_type = sm_str(l[i].protocol_type);
            resp.groups[i].group_state = sm_str(l[i].state);
            resp.groups[i].group_type = sm_str("classic");
        }
    }
    SM_RESPOND(list_groups_response, req, &resp);
}

void sm_handle_delete_groups(sm_req_t *req)
{
    sm_delete_groups_request_t msg;
    SM_DECODE_OR_FAIL(delete_groups_request, req, &msg);
    sm_delete_groups_response_t resp;
    sm_delete_groups_response_init(&resp);
    int32_t n = msg.groups_names_count > 0 ? msg.groups_names_count : 0;
    SM_NEW_ARRAY(req, sm_delete_groups_response_deletable_group_result, n, resp.results);
    resp.results_count = n;
    for (int32_t i = 0; i < n; i++) {
        resp.results[i].group_id = msg.groups_names[i];
        resp.results[i].error_code =
            sm_str_has_nul(msg.groups_names[i]) ? KERR_INVALID_GROUP_ID
            : coord(req) ? sm_group_coord_delete(coord(req), sm_req_str(req, msg.groups_names[i]))
                       : KERR_COORDINATOR_NOT_AVAILABLE;
    }
    SM_RESPOND(delete_groups_response, req, &resp);
}

void sm_handle_offset_delete(sm_req_t *req)
{
    sm_offset_delete_request_t msg;
    SM_DECODE_OR_FAIL(offset_delete_request, req, &msg);
    int32_t total = 0;
    for (int32_t t = 0; t < msg.topics_count; t++)
        total += msg.topics[t].partitions_count > 0 ? msg.topics[t].partitions_count : 0;
    sm_group_offset_del_t *p = SM_ARENA_NEW(&req->arena, sm_group_offset_del_t, total > 0 ? total : 1);
    int32_t k = 0;
    for (int32_t t = 0; t < msg.topics_count; t++) {
        const char *topic = sm_req_str(req, msg.topics[t].name);
        for (int32_t i = 0; i < msg.topics[t].partitions_count; i++, k++) {
            p[k].topic = topic;
            p[k].partition = msg.topics[t].partitions[i].partition_index;
        }
    }
    sm_offset_delete_response_t resp;
    sm_offset_delete_response_init(&resp);
    bool nul_topic = false;
    for (int32_t t = 0; t < msg.topics_count; t++)
        nul_topic |= sm_str_has_nul(msg.topics[t].name);
    resp.error_code = sm_str_has_nul(msg.group_id) ? KERR_INVALID_GROUP_ID
                      : nul_topic                  ? KERR_UNKNOWN_TOPIC_OR_PARTITION
                      : coord(req) ? sm_group_coord_offset_delete(coord(req), sm_req_str(req, msg.group_id), p, total)
                                 : KERR_COORDINATOR_NOT_AVAILABLE;
    if (resp.error_code == KERR_NONE) {
        int32_t nt = msg.topics_count > 0 ? msg.topics_count : 0;
        SM_NEW_ARRAY(req, sm_offset_delete_response_offset_delete_response_topic, nt, resp.topics);
        resp.topics_count = nt;
        k = 0;
        for (int32_t t = 0; t < nt; t++) {
            resp.topics[t].name = msg.topics[t].name;
            int32_t np = msg.topics[t].partitions_count > 0 ? msg.topics[t].partitions_count : 0;
            SM_NEW_ARRAY(req, sm_offset_delete_response_offset_delete_response_partition, np,
                         resp.topics[t].partitions);
            resp.topics[t].partitions_count = np;
            for (int32_t i = 0; i < np; i++, k++) {
                resp.topics[t].partitions[i].partition_index = p[k].partition;
                resp.topics[t].partitions[i].error_code = p[k].error;
            }
        }
    }
    SM_RESPOND(offset_delete_response, req, &resp);
}
