/*
 * handle_meta.c - ApiVersions, Metadata and DescribeCluster.
 *
 * All three describe the cluster from one metadata image snapshot taken at
 * the start of the request, so a response is internally consistent even if
 * topics are created concurrently. Runs on the connection's loop thread.
 */
#include "dispatch.h"
#include "handler_util.h"
#include "handlers.h"
#include "meta.h"
#include "server.h"

#include <stdlib.h>
#include <string.h>

/* The brokers as clients should see them (this node at its advertised
 * listener), and the controller id, from one image. Arena memory. */
typedef struct broker_view {
    int32_t id;
    sm_str_t host;
    int32_t port;
    sm_str_t rack;
} broker_view_t;

static int brokers_view(sm_req_t *req, const sm_meta_image_t *img, broker_view_t **out,
                        int32_t *controller_id)
{
    const sm_config_t *cfg = sm_server_config(req->srv);
    broker_view_t *v = SM_ARENA_NEW(&req->arena, broker_view_t, img->nbrokers + 1);
    int n = 0;
    for (int i = 0; i < img->nbrokers; i++) {
        const sm_broker_meta_t *b = &img->brokers[i];
        /* Clients see the live brokers only: fenced ones (not caught up,
         * silent past broker.session.timeout.ms, or shut down) are left
         * out, as Kafka's Metadata does. */
        if (b->fenced)
            continue;
        v[n].id = b->id;
        v[n].rack = b->rack ? sm_str(sm_arena_strndup(&req->arena, b->rack, strlen(b->rack)))
                            : (sm_str_t){NULL, -1};
        if (b->id == cfg->node_id) {
            sm_req_self_endpoint(req, &v[n].host, &v[n].port);
        } else {
            /* the endpoint of the listener this client uses, as Kafka does */
            const sm_endpoint_t *e = sm_meta_broker_endpoint(b, sm_req_listener(req));
            const char *host = e ? e->host : b->host;
            v[n].host = sm_str(sm_arena_strndup(&req->arena, host ? host : "",
                                                host ? strlen(host) : 0));
            v[n].port = e ? e->port : b->port;
        }
        n++;
    }
    if (n == 0) { /* an empty image (start-up): this node alone */
        v[0].id = cfg->node_id;
        v[0].rack = (sm_str_t){NULL, -1};
        sm_req_self_endpoint(req, &v[0].host, &v[0].port);
        n = 1;
    }
    /* Clients send controller requests (CreateTopics...) to the node named
     * here, so it must be a broker they can reach: the active controller if
     * it is also a live broker, else this broker, which forwards them (as
     * Kafka's brokers name some live broker in KRaft mode). */
    *controller_id = -1;
    for (int i = 0; i < n && *controller_id < 0; i++)
        if (v[i].id == img->controller_id)
            *controller_id = v[i].id;
    for (int i = 0; i < n && *controller_id < 0; i++)
        if (v[i].id == cfg->node_id)
            *controller_id = v[i].id;
    if (*controller_id < 0)
        *controller_id = v[0].id;
    *out = v;
    return n;
}

void sm_handle_api_versions(sm_req_t *req)
{
    const sm_dispatch_t *d = sm_dispatch_lookup(SM_API_API_VERSIONS);
    sm_api_versions_response_t resp;
    sm_api_versions_response_init(&resp);
    int16_t version = req->api_version;
    if (version > d->max_version) {
        /* KIP-511: answer with a v0 body naming our versions. */
        resp.error_code = KERR_UNSUPPORTED_VERSION;
        version = 0;
    } else {
        sm_api_versions_request_t msg;
        SM_DECODE_OR_FAIL(api_versions_request, req, &msg);
    }
    int n;
    const sm_dispatch_t *t = sm_dispatch_table(&n);
    uint8_t scope = sm_req_scope(req);
    SM_NEW_ARRAY(req, sm_api_versions_response_api_version, n, resp.api_keys);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!(t[i].scope & scope))
            continue; /* not served on this listener: not advertised either */
        resp.api_keys[k].api_key = t[i].api_key;
        resp.api_keys[k].min_version = t[i].min_version;
        resp.api_keys[k].max_version = t[i].max_version;
        k++;
    }
    resp.api_keys_count = k;
    if (version >= 3) {
        SM_NEW_ARRAY(req, sm_api_versions_response_supported_feature_key, 1,
                     resp.supported_features);
        resp.supported_features_count = 1;
        resp.supported_features[0].name = sm_str("metadata.version");
        resp.supported_features[0].min_version = 1;
        resp.supported_features[0].max_version = 21;
        resp.finalized_features_epoch = 0;
        SM_NEW_ARRAY(req, sm_api_versions_response_finalized_feature_key, 1,
                     resp.finalized_features);
        resp.finalized_features_count = 1;
        resp.finalized_features[0].name = sm_str("metadata.version");
        resp.finalized_features[0].min_version_level = 21;
        resp.finalized_features[0].max_version_level = 21;
    }
    sm_api_versions_response_encode(&req->resp, version, &resp);
    sm_api_versions_response_errors(&resp, sm_req_count_error, req);
    sm_req_done(req);
}

/* Fill one topic's partitions into a Metadata response topic. */
static void fill_topic(sm_req_t *req, const sm_topic_meta_t *t,
                       sm_metadata_response_metadata_response_topic_t *out)
{
    out->name = sm_str(t->name);
    out->topic_id = t->id;
    out->is_internal = t->internal;
    SM_NEW_ARRAY(req, sm_metadata_response_metadata_response_partition, t->npartitions,
                 out->partitions);
    out->partitions_count = t->npartitions;
    for (int32_t j = 0; j < t->npartitions; j++) {
        const sm_partition_meta_t *pm = &t->partitions[j];
        sm_metadata_response_metadata_response_partition_t *p = &out->partitions[j];
        p->partition_index = pm->partition;
        p->leader_id = pm->leader;
        p->leader_epoch = pm->leader_epoch;
        p->error_code = pm->leader < 0 ? KERR_LEADER_NOT_AVAILABLE : KERR_NONE;
        p->replica_nodes = (int32_t *)pm->replicas;
        p->replica_nodes_count = pm->nreplicas;
        p->isr_nodes = (int32_t *)pm->isr;
        p->isr_nodes_count = pm->nisr;
    }
}

static bool topic_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > 249 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool may_auto_create(sm_req_t *req, const sm_metadata_request_t *msg)
{
    return sm_server_config(req->srv)->auto_create_topics_enable &&
           (req->api_version < 4 || msg->allow_auto_topic_creation);
}

/* Would answering msg create a topic (auto.create.topics.enable)? */
static bool creates_topics(sm_req_t *req, const sm_metadata_request_t *msg)
{
    bool all = msg->topics_count < 0 || (req->api_version == 0 && msg->topics_count == 0);
    if (all || !may_auto_create(req, msg))
        return false;
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(req->srv));
    bool creates = false;
    for (int32_t i = 0; i < msg->topics_count && !creates; i++) {
        const sm_str_t *n = &msg->topics[i].name;
        creates = n->len >= 0 && topic_name_valid(n->ptr, (size_t)n->len) &&
                  !sm_meta_image_topic(img, n->ptr, (size_t)n->len);
    }
    sm_meta_image_put(img);
    return creates;
}

static void metadata_answer(sm_req_t *req, void *msgp);

/* A Metadata request that auto-creates topics is answered on the controller
 * thread (creating a topic's files must not hold up the event loop); the
 * rest are answered here at once. */
void sm_handle_metadata(sm_req_t *req)
{
    sm_metadata_request_t *msg = SM_ARENA_NEW(&req->arena, sm_metadata_request_t, 1);
    SM_DECODE_OR_FAIL(metadata_request, req, msg);
    if (creates_topics(req, msg))
        sm_req_on_controller(req, msg, metadata_answer);
    else
        metadata_answer(req, msg);
}

static void metadata_answer(sm_req_t *req, void *msgp)
{
    sm_metadata_request_t msg = *(sm_metadata_request_t *)msgp;
    sm_meta_t *meta = sm_server_meta(req->srv);
    sm_meta_image_t *img = sm_meta_image_get(meta);
    sm_meta_image_t **old_imgs = NULL;
    int nold = 0;

    sm_metadata_response_t resp;
    sm_metadata_response_init(&resp);
    resp.cluster_id = sm_str(sm_server_cluster_id(req->srv));
    broker_view_t *bv;
    int nb = brokers_view(req, img, &bv, &resp.controller_id);
    SM_NEW_ARRAY(req, sm_metadata_response_metadata_response_broker, nb, resp.brokers);
    resp.brokers_count = nb;
    for (int i = 0; i < nb; i++) {
        resp.brokers[i].node_id = bv[i].id;
        resp.brokers[i].host = bv[i].host;
        resp.brokers[i].port = bv[i].port;
        resp.brokers[i].rack = bv[i].rack;
    }

    bool all = msg.topics_count < 0 || (req->api_version == 0 && msg.topics_count == 0);
    if (all) {
        SM_NEW_ARRAY(req, sm_metadata_response_metadata_response_topic, img->ntopics,
                     resp.topics);
        resp.topics_count = img->ntopics;
        for (int i = 0; i < img->ntopics; i++)
            fill_topic(req, img->topics[i], &resp.topics[i]);
    } else {
        bool may_create = may_auto_create(req, &msg);
        SM_NEW_ARRAY(req, sm_metadata_response_metadata_response_topic, msg.topics_count,
                     resp.topics);
        resp.topics_count = msg.topics_count;
        for (int32_t i = 0; i < msg.topics_count; i++) {
            sm_metadata_request_metadata_request_topic_t *rt = &msg.topics[i];
            sm_metadata_response_metadata_response_topic_t *out = &resp.topics[i];
            const sm_topic_meta_t *t = NULL;
            if (rt->name.len >= 0) {
                t = sm_meta_image_topic(img, rt->name.ptr, (size_t)rt->name.len);
                out->name = rt->name;
            } else {
                t = sm_meta_image_topic_by_id(img, &rt->topic_id);
                out->topic_id = rt->topic_id;
                if (!t) {
                    out->error_code = KERR_UNKNOWN_TOPIC_ID;
                    continue;
                }
            }
            if (!t && rt->name.len >= 0) {
                if (!topic_name_valid(rt->name.ptr, (size_t)rt->name.len)) {
                    out->error_code = KERR_INVALID_TOPIC_EXCEPTION;
                    continue;
                }
                if (!may_create) {
                    out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                    continue;
                }
                char errmsg[256];
                char *name = sm_req_str(req, rt->name);
                sm_err_t err = sm_meta_auto_create_topic(meta, name, errmsg, sizeof errmsg);
                if (err != SM_OK && err != SM_ERR_EXISTS) {
                    SM_WARN("meta", "auto-creating topic %s failed: %s", name, errmsg);
                    out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                    continue;
                }
                SM_INFO("meta", "auto-created topic %s for %s", name, sm_req_peer(req));
                /* Earlier topics point into the old image: keep it until encoded. */
                old_imgs = sm_xrealloc(old_imgs, sizeof *old_imgs * (size_t)(nold + 1));
                old_imgs[nold++] = img;
                img = sm_meta_image_get(meta);
                t = sm_meta_image_topic(img, name, strlen(name));
                if (!t) {
                    out->error_code = KERR_LEADER_NOT_AVAILABLE;
                    continue;
                }
            }
            fill_topic(req, t, out);
        }
    }
    /* Topic and partition arrays point into the image: encode before
     * releasing it. */
    sm_metadata_response_encode(&req->resp, req->api_version, &resp);
    sm_metadata_response_errors(&resp, sm_req_count_error, req);
    sm_meta_image_put(img);
    for (int i = 0; i < nold; i++)
        sm_meta_image_put(old_imgs[i]);
    free(old_imgs);
    sm_req_done(req);
}

/* DescribeCluster with EndpointType 2 (KIP-919): the controllers that
 * registered, at their CONTROLLER endpoints (the configured voters while
 * none has), and the active controller. */
static void describe_controllers(sm_req_t *req, const sm_meta_image_t *img,
                                 sm_describe_cluster_response_t *resp)
{
    const sm_config_t *cfg = sm_server_config(req->srv);
    int32_t epoch;
    resp->controller_id = sm_meta_quorum_leader(sm_server_meta(req->srv), &epoch);
    int n = img->ncontrollers ? img->ncontrollers : cfg->nvoters;
    SM_NEW_ARRAY(req, sm_describe_cluster_response_describe_cluster_broker, n, resp->brokers);
    resp->brokers_count = n;
    for (int i = 0; i < n; i++) {
        sm_describe_cluster_response_describe_cluster_broker_t *o = &resp->brokers[i];
        const char *host;
        if (img->ncontrollers) {
            const sm_broker_meta_t *c = &img->controllers[i];
            o->broker_id = c->id;
            host = c->host ? c->host : "";
            o->port = c->port;
        } else {
            o->broker_id = cfg->voters[i].id;
            host = cfg->voters[i].host;
            o->port = cfg->voters[i].port;
        }
        o->host = sm_str(sm_arena_strndup(&req->arena, host, strlen(host)));
        o->rack = (sm_str_t){NULL, -1};
    }
}

void sm_handle_describe_cluster(sm_req_t *req)
{
    sm_describe_cluster_request_t msg;
    SM_DECODE_OR_FAIL(describe_cluster_request, req, &msg);
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(req->srv));
    sm_describe_cluster_response_t resp;
    sm_describe_cluster_response_init(&resp);
    resp.cluster_id = sm_str(sm_server_cluster_id(req->srv));
    if (req->api_version >= 1 && msg.endpoint_type != 1) {
        resp.endpoint_type = msg.endpoint_type;
        if (msg.endpoint_type == 2)
            describe_controllers(req, img, &resp);
        else {
            resp.error_code = KERR_UNSUPPORTED_ENDPOINT_TYPE;
            resp.error_message = sm_str("endpoint type must be 1 (brokers) or 2 (controllers)");
        }
        sm_describe_cluster_response_encode(&req->resp, req->api_version, &resp);
        sm_describe_cluster_response_errors(&resp, sm_req_count_error, req);
        sm_meta_image_put(img);
        sm_req_done(req);
        return;
    }
    broker_view_t *bv;
    int nb = brokers_view(req, img, &bv, &resp.controller_id);
    SM_NEW_ARRAY(req, sm_describe_cluster_response_describe_cluster_broker, nb, resp.brokers);
    resp.brokers_count = nb;
    for (int i = 0; i < nb; i++) {
        resp.brokers[i].broker_id = bv[i].id;
        resp.brokers[i].host = bv[i].host;
        resp.brokers[i].port = bv[i].port;
        resp.brokers[i].rack = bv[i].rack;
    }
    sm_describe_cluster_response_encode(&req->resp, req->api_version, &resp);
    sm_describe_cluster_response_errors(&resp, sm_req_count_error, req);
    sm_meta_image_put(img);
    sm_req_done(req);
}
