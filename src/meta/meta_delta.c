/*
 * meta_delta.c - applying metadata records to build the next image (see
 * meta_delta.h).
 *
 * State: topic slots indexed twice (by id and by name); each slot points to
 * the base image's shared topic until the first change copies it (owned).
 * Topic configs that arrive before their TopicRecord wait in `pending` by
 * name (Kafka keys topic configs by name, independently of the topic), and
 * are attached when the topic appears. Brokers are deep copies.
 *
 * Record semantics (Kafka KRaft replay rules, simplified to what Samsa models):
 *   TopicRecord            new topic (name and id must both be new)
 *   PartitionRecord        create or replace one partition of a known topic
 *   PartitionChangeRecord  leader (-2 = unchanged) / isr / replicas change;
 *                          leader change bumps leader_epoch, any change
 *                          bumps partition_epoch
 *   RemoveTopicRecord      drop the topic and its configs
 *   ConfigRecord           type 2 (topic): set, or delete when value is null;
 *                          type 4 (broker): the same on the dynamic broker
 *                          configs of node <name>, or the cluster default
 *                          when the name is ""; other types are skipped
 *   RegisterBrokerRecord   add or replace a broker; epoch = its BrokerEpoch (the
 *                          record's offset when the controller wrote it)
 *   FeatureLevelRecord     metadata.version
 *   ProducerIdsRecord      next producer id block start
 * Owned by the controller thread.
 */
#include "meta_delta.h"

#include "arena.h"
#include "meta_image_int.h"
#include "sm_proto_gen.h"

#include <stdlib.h>
#include <string.h>

#define CONFIG_RESOURCE_TOPIC 2
#define CONFIG_RESOURCE_BROKER 4

typedef struct slot {
    sm_topic_meta_t *t;
    bool owned; /* t is a private copy (one reference, held by the slot) */
} slot_t;

typedef struct pending_cfg {
    sm_topic_kv_t *kv;
    int n;
} pending_cfg_t;

struct sm_meta_delta {
    char *cluster_id;
    int32_t controller_id, epoch;
    int64_t offset;
    int16_t metadata_version;
    int64_t next_producer_id;
    sm_broker_meta_t *brokers;
    int nbrokers;
    sm_broker_meta_t *controllers; /* RegisterControllerRecord: id and endpoints */
    int ncontrollers;
    sm_hmap_t by_id;   /* 16-byte id -> slot_t* (owns the slots) */
    sm_hmap_t by_name; /* name -> slot_t* */
    sm_hmap_t pending; /* name -> pending_cfg_t* */
    sm_arena_t arena;  /* decode scratch, reset per record */
    sm_meta_broker_configs_t *bcfg; /* dynamic broker configs, deep copies */
    int nbcfg;
};

sm_meta_delta_t *sm_meta_delta_new(const sm_meta_image_t *base, const char *cluster_id,
                                   int32_t controller_id, int32_t epoch)
{
    sm_meta_delta_t *d = sm_xcalloc(1, sizeof *d);
    d->cluster_id = sm_xstrdup(cluster_id ? cluster_id : "");
    d->controller_id = controller_id;
    d->epoch = epoch;
    d->offset = -1;
    sm_hmap_init(&d->by_id);
    sm_hmap_init(&d->by_name);
    sm_hmap_init(&d->pending);
    sm_arena_init(&d->arena);
    if (!base)
        return d;
    d->offset = base->offset;
    d->metadata_version = base->metadata_version;
    d->next_producer_id = base->next_producer_id;
    d->brokers = sm_xcalloc((size_t)base->nbrokers + 1, sizeof *d->brokers);
    for (int i = 0; i < base->nbrokers; i++)
        sm_meta_broker_copy(&d->brokers[i], &base->brokers[i]);
    d->nbrokers = base->nbrokers;
    d->controllers = sm_xcalloc((size_t)base->ncontrollers + 1, sizeof *d->controllers);
    for (int i = 0; i < base->ncontrollers; i++)
        sm_meta_broker_copy(&d->controllers[i], &base->controllers[i]);
    d->ncontrollers = base->ncontrollers;
    d->bcfg = sm_xcalloc((size_t)base->nbroker_configs + 1, sizeof *d->bcfg);
    for (int i = 0; i < base->nbroker_configs; i++)
        sm_meta_broker_configs_copy(&d->bcfg[i], &base->broker_configs[i]);
    d->nbcfg = base->nbroker_configs;
    for (int i = 0; i < base->ntopics; i++) {
        slot_t *s = sm_xcalloc(1, sizeof *s);
        s->t = base->topics[i];
        sm_hmap_put(&d->by_id, (const char *)s->t->id.b, 16, s);
        sm_hmap_put(&d->by_name, s->t->name, strlen(s->t->name), s);
    }
    return d;
}

static void pending_free(pending_cfg_t *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->kv[i].key);
        free(p->kv[i].value);
    }
    free(p->kv);
    free(p);
}

void sm_meta_delta_free(sm_meta_delta_t *d)
{
    if (!d)
        return;
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&d->by_id, e));) {
        slot_t *s = e->value;
        if (s->owned)
            sm_meta_topic_release(s->t);
        free(s);
    }
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&d->pending, e));)
        pending_free(e->value);
    for (int i = 0; i < d->nbrokers; i++)
        sm_meta_broker_clear(&d->brokers[i]);
    free(d->brokers);
    for (int i = 0; i < d->ncontrollers; i++)
        sm_meta_broker_clear(&d->controllers[i]);
    free(d->controllers);
    for (int i = 0; i < d->nbcfg; i++)
        sm_meta_broker_configs_clear(&d->bcfg[i]);
    free(d->bcfg);
    sm_hmap_free(&d->by_id);
    sm_hmap_free(&d->by_name);
    sm_hmap_free(&d->pending);
    sm_arena_free(&d->arena);
    free(d->cluster_id);
    free(d);
}

/* The slot's topic, copied first if it is still shared. */
static sm_topic_meta_t *writable(slot_t *s)
{
    if (!s->owned) {
        s->t = sm_meta_topic_copy(s->t);
        s->owned = true;
    }
    return s->t;
}

static slot_t *slot_by_id(sm_meta_delta_t *d, const sm_uuid_t *id)
{
    return sm_hmap_get(&d->by_id, (const char *)id->b, 16);
}

static int32_t *copy_ints(const int32_t *p, int32_t n, int *nout)
{
    *nout = n > 0 ? n : 0;
    if (n <= 0)
        return NULL;
    int32_t *q = sm_xmalloc(sizeof *q * (size_t)n);
    memcpy(q, p, sizeof *q * (size_t)n);
    return q;
}

/* ------------------------------------------------------------- per record */

static sm_err_t apply_topic(sm_meta_delta_t *d, const sm_topic_record_t *r, const char **why)
{
    if (r->name.len <= 0 || sm_uuid_is_zero(r->topic_id)) {
        *why = "TopicRecord with an empty name or zero id";
        return SM_ERR_CORRUPT;
    }
    if (slot_by_id(d, &r->topic_id) || sm_hmap_get(&d->by_name, r->name.ptr, (size_t)r->name.len)) {
        *why = "TopicRecord for a topic name or id that already exists";
        return SM_ERR_CORRUPT;
    }
    slot_t *s = sm_xcalloc(1, sizeof *s);
    s->t = sm_meta_topic_new(r->name.ptr, (size_t)r->name.len, &r->topic_id);
    s->owned = true;
    pending_cfg_t *p = sm_hmap_del(&d->pending, r->name.ptr, (size_t)r->name.len);
    if (p) {
        for (int i = 0; i < p->n; i++)
            sm_meta_topic_config_set(s->t, p->kv[i].key, p->kv[i].value);
        pending_free(p);
    }
    sm_hmap_put(&d->by_id, (const char *)r->topic_id.b, 16, s);
    sm_hmap_put(&d->by_name, r->name.ptr, (size_t)r->name.len, s);
    return SM_OK;
}

static sm_err_t apply_partition(sm_meta_delta_t *d, const sm_partition_record_t *r,
                                const char **why)
{
    slot_t *s = slot_by_id(d, &r->topic_id);
    if (!s) {
        *why = "PartitionRecord for an unknown topic id";
        return SM_ERR_CORRUPT;
    }
    if (r->partition_id < 0 || r->partition_id >= 1000000) {
        *why = "PartitionRecord with a partition id out of range";
        return SM_ERR_CORRUPT;
    }
    sm_topic_meta_t *t = writable(s);
    sm_meta_topic_set_partitions(t, r->partition_id + 1);
    sm_partition_meta_t *p = &t->partitions[r->partition_id];
    free(p->replicas);
    free(p->isr);
    free(p->adding);
    free(p->removing);
    p->partition = r->partition_id;
    p->leader = r->leader;
    p->leader_epoch = r->leader_epoch;
    p->partition_epoch = r->partition_epoch;
    p->replicas = copy_ints(r->replicas, r->replicas_count, &p->nreplicas);
    p->isr = copy_ints(r->isr, r->isr_count, &p->nisr);
    p->adding = copy_ints(r->adding_replicas, r->adding_replicas_count, &p->nadding);
    p->removing = copy_ints(r->removing_replicas, r->removing_replicas_count, &p->nremoving);
    return SM_OK;
}

static sm_err_t apply_partition_change(sm_meta_delta_t *d, const sm_partition_change_record_t *r,
                                       const char **why)
{
    slot_t *s = slot_by_id(d, &r->topic_id);
    if (!s || r->partition_id < 0 || r->partition_id >= s->t->npartitions) {
        *why = "PartitionChangeRecord for an unknown topic or partition";
        return SM_ERR_CORRUPT;
    }
    sm_topic_meta_t *t = writable(s);
    sm_partition_meta_t *p = &t->partitions[r->partition_id];
    if (r->leader != -2) {
        p->leader = r->leader;
        p->leader_epoch++;
    }
    if (r->isr_count >= 0) { /* -1 = null = unchanged */
        free(p->isr);
        p->isr = copy_ints(r->isr, r->isr_count, &p->nisr);
    }
    if (r->replicas_count >= 0) {
        /* a new replica set says where any reassignment stands (null:
         * none), as in Kafka */
        free(p->replicas);
        p->replicas = copy_ints(r->replicas, r->replicas_count, &p->nreplicas);
        free(p->adding);
        free(p->removing);
        p->adding = copy_ints(r->adding_replicas, SM_MAX(r->adding_replicas_count, 0),
                              &p->nadding);
        p->removing = copy_ints(r->removing_replicas, SM_MAX(r->removing_replicas_count, 0),
                                &p->nremoving);
    }
    p->partition_epoch++;
    return SM_OK;
}

static sm_err_t apply_remove_topic(sm_meta_delta_t *d, const sm_remove_topic_record_t *r,
                                   const char **why)
{
    slot_t *s = sm_hmap_del(&d->by_id, (const char *)r->topic_id.b, 16);
    if (!s) {
        *why = "RemoveTopicRecord for an unknown topic id";
        return SM_ERR_CORRUPT;
    }
    sm_hmap_del(&d->by_name, s->t->name, strlen(s->t->name));
    if (s->owned)
        sm_meta_topic_release(s->t);
    free(s);
    return SM_OK;
}

/* A dynamic broker config: resource name "" (cluster default) or a node id. */
static sm_err_t apply_broker_config(sm_meta_delta_t *d, const sm_config_record_t *r,
                                    const char **why)
{
    int32_t node = -1;
    if (r->resource_name.len > 0) {
        if (r->resource_name.len > 10) {
            *why = "broker ConfigRecord with a resource name that is not a node id";
            return SM_ERR_CORRUPT;
        }
        int64_t v = 0;
        for (int32_t i = 0; i < r->resource_name.len; i++) {
            char c = r->resource_name.ptr[i];
            if (c < '0' || c > '9') {
                *why = "broker ConfigRecord with a resource name that is not a node id";
                return SM_ERR_CORRUPT;
            }
            v = v * 10 + (c - '0');
        }
        if (v > INT32_MAX) {
            *why = "broker ConfigRecord with a node id out of range";
            return SM_ERR_CORRUPT;
        }
        node = (int32_t)v;
    }
    if (r->name.len <= 0) {
        *why = "ConfigRecord with an empty key";
        return SM_ERR_CORRUPT;
    }
    char *key = sm_str_dup(&d->arena, r->name);
    char *value = sm_str_dup(&d->arena, r->value); /* NULL = delete */
    sm_meta_broker_configs_t *c = NULL;
    for (int i = 0; i < d->nbcfg && !c; i++)
        if (d->bcfg[i].node == node)
            c = &d->bcfg[i];
    if (!c) {
        if (!value)
            return SM_OK;
        d->bcfg = sm_xrealloc(d->bcfg, sizeof *d->bcfg * (size_t)(d->nbcfg + 1));
        c = &d->bcfg[d->nbcfg++];
        memset(c, 0, sizeof *c);
        c->node = node;
    }
    for (int i = 0; i < c->n; i++) {
        if (strcmp(c->kv[i].key, key) != 0)
            continue;
        if (value) {
            free(c->kv[i].value);
            c->kv[i].value = sm_xstrdup(value);
        } else {
            free(c->kv[i].key);
            free(c->kv[i].value);
            c->kv[i] = c->kv[--c->n];
        }
        return SM_OK;
    }
    if (!value)
        return SM_OK;
    c->kv = sm_xrealloc(c->kv, sizeof *c->kv * (size_t)(c->n + 1));
    c->kv[c->n].key = sm_xstrdup(key);
    c->kv[c->n].value = sm_xstrdup(value);
    c->n++;
    return SM_OK;
}

static sm_err_t apply_config(sm_meta_delta_t *d, const sm_config_record_t *r, const char **why)
{
    if (r->resource_type == CONFIG_RESOURCE_BROKER)
        return apply_broker_config(d, r, why);
    if (r->resource_type != CONFIG_RESOURCE_TOPIC)
        return SM_OK; /* broker logger configs: not modelled */
    if (r->resource_name.len <= 0 || r->name.len <= 0) {
        *why = "ConfigRecord with an empty resource or key";
        return SM_ERR_CORRUPT;
    }
    char *key = sm_str_dup(&d->arena, r->name);
    char *value = sm_str_dup(&d->arena, r->value); /* NULL = delete */
    slot_t *s = sm_hmap_get(&d->by_name, r->resource_name.ptr, (size_t)r->resource_name.len);
    if (s) {
        sm_meta_topic_config_set(writable(s), key, value);
        return SM_OK;
    }
    pending_cfg_t *p = sm_hmap_get(&d->pending, r->resource_name.ptr, (size_t)r->resource_name.len);
    if (!p) {
        if (!value)
            return SM_OK;
        p = sm_xcalloc(1, sizeof *p);
        sm_hmap_put(&d->pending, r->resource_name.ptr, (size_t)r->resource_name.len, p);
    }
    for (int i = 0; i < p->n; i++) {
        if (strcmp(p->kv[i].key, key) == 0) {
            free(p->kv[i].value);
            p->kv[i].value = value ? sm_xstrdup(value) : NULL;
            return SM_OK;
        }
    }
    p->kv = sm_xrealloc(p->kv, sizeof *p->kv * (size_t)(p->n + 1));
    p->kv[p->n].key = sm_xstrdup(key);
    p->kv[p->n].value = value ? sm_xstrdup(value) : NULL;
    p->n++;
    return SM_OK;
}

static sm_err_t apply_register_broker(sm_meta_delta_t *d, int64_t offset,
                                      const sm_register_broker_record_t *r)
{
    sm_broker_meta_t *b = NULL;
    for (int i = 0; i < d->nbrokers && !b; i++)
        if (d->brokers[i].id == r->broker_id)
            b = &d->brokers[i];
    if (b) {
        sm_meta_broker_clear(b);
    } else {
        d->brokers = sm_xrealloc(d->brokers, sizeof *d->brokers * (size_t)(d->nbrokers + 1));
        b = &d->brokers[d->nbrokers++];
        memset(b, 0, sizeof *b);
    }
    b->id = r->broker_id;
    /* the epoch the controller gave the broker (its record's offset when
     * written; a snapshot restates it at another offset) */
    b->epoch = r->broker_epoch >= 0 ? r->broker_epoch : offset;
    b->fenced = r->fenced;
    b->in_controlled_shutdown = r->in_controlled_shutdown;
    b->rack = r->rack.len >= 0 ? sm_xstrndup(r->rack.len ? r->rack.ptr : "", (size_t)r->rack.len) : NULL;
    b->endpoints = sm_xcalloc((size_t)r->end_points_count + 1, sizeof *b->endpoints);
    for (int32_t i = 0; i < r->end_points_count; i++) {
        const sm_register_broker_record_broker_endpoint_t *e = &r->end_points[i];
        sm_endpoint_t *o = &b->endpoints[b->nendpoints++];
        o->name = sm_xstrndup(e->name.ptr ? e->name.ptr : "", e->name.len > 0 ? (size_t)e->name.len : 0);
        o->host = sm_xstrndup(e->host.ptr ? e->host.ptr : "", e->host.len > 0 ? (size_t)e->host.len : 0);
        o->port = e->port;
        o->security_protocol = e->security_protocol;
    }
    b->host = b->nendpoints ? b->endpoints[0].host : NULL;
    b->port = b->nendpoints ? b->endpoints[0].port : -1;
    return SM_OK;
}

/* A controller's endpoints, kept in a broker-shaped entry (no rack, epoch -1). */
static sm_err_t apply_register_controller(sm_meta_delta_t *d,
                                          const sm_register_controller_record_t *r)
{
    sm_broker_meta_t *c = NULL;
    for (int i = 0; i < d->ncontrollers && !c; i++)
        if (d->controllers[i].id == r->controller_id)
            c = &d->controllers[i];
    if (c) {
        sm_meta_broker_clear(c);
    } else {
        d->controllers =
            sm_xrealloc(d->controllers, sizeof *d->controllers * (size_t)(d->ncontrollers + 1));
        c = &d->controllers[d->ncontrollers++];
        memset(c, 0, sizeof *c);
    }
    c->id = r->controller_id;
    c->epoch = -1;
    c->endpoints = sm_xcalloc((size_t)r->end_points_count + 1, sizeof *c->endpoints);
    for (int32_t i = 0; i < r->end_points_count; i++) {
        const sm_register_controller_record_controller_endpoint_t *e = &r->end_points[i];
        sm_endpoint_t *o = &c->endpoints[c->nendpoints++];
        o->name = sm_xstrndup(e->name.ptr ? e->name.ptr : "", e->name.len > 0 ? (size_t)e->name.len : 0);
        o->host = sm_xstrndup(e->host.ptr ? e->host.ptr : "", e->host.len > 0 ? (size_t)e->host.len : 0);
        o->port = e->port;
        o->security_protocol = e->security_protocol;
    }
    c->host = c->nendpoints ? c->endpoints[0].host : NULL;
    c->port = c->nendpoints ? c->endpoints[0].port : -1;
    return SM_OK;
}

static sm_broker_meta_t *broker_of(sm_meta_delta_t *d, int32_t id)
{
    for (int i = 0; i < d->nbrokers; i++)
        if (d->brokers[i].id == id)
            return &d->brokers[i];
    return NULL;
}

/* Fence/Unfence/BrokerRegistrationChange for a broker (epoch: its
 * registration's). fenced, shutdown: -1 unchanged, 0 no, 1 yes. A record
 * for another registration of the broker (an older epoch) is ignored, as
 * Kafka does; one for an unknown broker is corrupt. */
static sm_err_t apply_broker_change(sm_meta_delta_t *d, int32_t id, int64_t epoch, int fenced,
                                    int shutdown, const char **why)
{
    sm_broker_meta_t *b = broker_of(d, id);
    if (!b) {
        *why = "broker change record for an unregistered broker";
        return SM_ERR_CORRUPT;
    }
    if (b->epoch != epoch)
        return SM_OK;
    if (fenced >= 0)
        b->fenced = fenced != 0;
    if (shutdown >= 0)
        b->in_controlled_shutdown = shutdown != 0;
    if (b->fenced && fenced > 0)
        b->in_controlled_shutdown = false; /* a fenced broker has nothing left to move */
    return SM_OK;
}

static sm_err_t apply_unregister_broker(sm_meta_delta_t *d, const sm_unregister_broker_record_t *r)
{
    for (int i = 0; i < d->nbrokers; i++)
        if (d->brokers[i].id == r->broker_id && d->brokers[i].epoch == r->broker_epoch) {
            sm_meta_broker_clear(&d->brokers[i]);
            memmove(&d->brokers[i], &d->brokers[i + 1],
                    sizeof *d->brokers * (size_t)(d->nbrokers - i - 1));
            d->nbrokers--;
            break;
        }
    return SM_OK;
}

/* Decode one record body of a generated type into the arena and apply it. */
#define DECODE(type, fn)                                                                           \
    type rec;                                                                                      \
    fn##_init(&rec);                                                                               \
    if (fn##_decode(&rd, &d->arena, version, &rec) || rd.err) {                                    \
        *why = "malformed " #type " body";                                                         \
        return SM_ERR_PARSE;                                                                       \
    }                                                                                              \
    if (sm_rd_remaining(&rd)) {                                                                    \
        *why = "bytes left after a metadata record";                                               \
        return SM_ERR_PARSE;                                                                       \
    }

sm_err_t sm_meta_delta_replay(sm_meta_delta_t *d, int64_t offset, const uint8_t *value, size_t len,
                              const char **why)
{
    sm_rd_t rd;
    sm_rd_init(&rd, value, len);
    uint32_t frame = sm_rd_uvarint(&rd);
    uint32_t type = sm_rd_uvarint(&rd);
    uint32_t v32 = sm_rd_uvarint(&rd);
    if (rd.err) {
        *why = "truncated metadata record header";
        return SM_ERR_PARSE;
    }
    if (frame != SM_META_FRAME_VERSION) {
        *why = "unknown metadata record frame version";
        return SM_ERR_UNSUPPORTED;
    }
    if (v32 > 0x7fff) {
        *why = "metadata record version too large";
        return SM_ERR_PARSE;
    }
    int16_t version = (int16_t)v32;
    const sm_proto_msg_t *desc = sm_proto_msg(SM_PROTO_RECORD, (int16_t)(type & 0x7fff));
    if (desc && (version < desc->min_version || version > desc->max_version)) {
        *why = "unsupported metadata record version";
        return SM_ERR_UNSUPPORTED;
    }
    sm_arena_reset(&d->arena);
    sm_err_t rc = SM_OK;
    switch (type) {
    case SM_METADATA_TOPIC_RECORD: {
        DECODE(sm_topic_record_t, sm_topic_record);
        rc = apply_topic(d, &rec, why);
        break;
    }
    case SM_METADATA_PARTITION_RECORD: {
        DECODE(sm_partition_record_t, sm_partition_record);
        rc = apply_partition(d, &rec, why);
        break;
    }
    case SM_METADATA_PARTITION_CHANGE_RECORD: {
        DECODE(sm_partition_change_record_t, sm_partition_change_record);
        rc = apply_partition_change(d, &rec, why);
        break;
    }
    case SM_METADATA_REMOVE_TOPIC_RECORD: {
        DECODE(sm_remove_topic_record_t, sm_remove_topic_record);
        rc = apply_remove_topic(d, &rec, why);
        break;
    }
    case SM_METADATA_CONFIG_RECORD: {
        DECODE(sm_config_record_t, sm_config_record);
        rc = apply_config(d, &rec, why);
        break;
    }
    case SM_METADATA_REGISTER_BROKER_RECORD: {
        DECODE(sm_register_broker_record_t, sm_register_broker_record);
        rc = apply_register_broker(d, offset, &rec);
        break;
    }
    case SM_METADATA_REGISTER_CONTROLLER_RECORD: {
        DECODE(sm_register_controller_record_t, sm_register_controller_record);
        rc = apply_register_controller(d, &rec);
        break;
    }
    case SM_METADATA_FENCE_BROKER_RECORD: {
        DECODE(sm_fence_broker_record_t, sm_fence_broker_record);
        rc = apply_broker_change(d, rec.id, rec.epoch, 1, -1, why);
        break;
    }
    case SM_METADATA_UNFENCE_BROKER_RECORD: {
        DECODE(sm_unfence_broker_record_t, sm_unfence_broker_record);
        rc = apply_broker_change(d, rec.id, rec.epoch, 0, -1, why);
        break;
    }
    case SM_METADATA_BROKER_REGISTRATION_CHANGE_RECORD: {
        DECODE(sm_broker_registration_change_record_t, sm_broker_registration_change_record);
        rc = apply_broker_change(d, rec.broker_id, rec.broker_epoch, rec.fenced,
                                 version >= 1 ? rec.in_controlled_shutdown : -1, why);
        break;
    }
    case SM_METADATA_UNREGISTER_BROKER_RECORD: {
        DECODE(sm_unregister_broker_record_t, sm_unregister_broker_record);
        rc = apply_unregister_broker(d, &rec);
        break;
    }
    case SM_METADATA_FEATURE_LEVEL_RECORD: {
        DECODE(sm_feature_level_record_t, sm_feature_level_record);
        if (sm_str_eq(rec.name, "metadata.version"))
            d->metadata_version = rec.feature_level;
        break;
    }
    case SM_METADATA_PRODUCER_IDS_RECORD: {
        DECODE(sm_producer_ids_record_t, sm_producer_ids_record);
        if (rec.next_producer_id < d->next_producer_id) {
            *why = "ProducerIdsRecord moves the next producer id backwards";
            return SM_ERR_CORRUPT;
        }
        d->next_producer_id = rec.next_producer_id;
        break;
    }
    case SM_METADATA_NO_OP_RECORD:
        break;
    default:
        break; /* a record type Samsa does not model (ACLs, quotas, ...) */
    }
    if (rc == SM_OK)
        d->offset = offset;
    return rc;
}

static int cmp_topic(const void *a, const void *b)
{
    return strcmp((*(sm_topic_meta_t *const *)a)->name, (*(sm_topic_meta_t *const *)b)->name);
}

static int cmp_broker(const void *a, const void *b)
{
    int32_t x = ((const sm_broker_meta_t *)a)->id, y = ((const sm_broker_meta_t *)b)->id;
    return x < y ? -1 : x > y;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const sm_config_kv_t *)a)->key, ((const sm_config_kv_t *)b)->key);
}

static int cmp_bcfg(const void *a, const void *b)
{
    int32_t x = ((const sm_meta_broker_configs_t *)a)->node;
    int32_t y = ((const sm_meta_broker_configs_t *)b)->node;
    return x < y ? -1 : x > y;
}

sm_meta_image_t *sm_meta_delta_freeze(sm_meta_delta_t *d)
{
    sm_meta_image_t *img = sm_meta_image_alloc(d->cluster_id);
    img->offset = d->offset;
    img->epoch = d->epoch;
    img->controller_id = d->controller_id;
    img->metadata_version = d->metadata_version;
    img->next_producer_id = d->next_producer_id;
    img->brokers = d->brokers; /* moved */
    img->nbrokers = d->nbrokers;
    d->brokers = NULL;
    d->nbrokers = 0;
    if (img->nbrokers > 1)
        qsort(img->brokers, (size_t)img->nbrokers, sizeof *img->brokers, cmp_broker);
    img->controllers = d->controllers; /* moved */
    img->ncontrollers = d->ncontrollers;
    d->controllers = NULL;
    d->ncontrollers = 0;
    if (img->ncontrollers > 1)
        qsort(img->controllers, (size_t)img->ncontrollers, sizeof *img->controllers, cmp_broker);
    /* dynamic broker configs: moved, without empty resources, sorted */
    img->broker_configs = sm_xcalloc((size_t)d->nbcfg + 1, sizeof *img->broker_configs);
    for (int i = 0; i < d->nbcfg; i++) {
        sm_meta_broker_configs_t *c = &d->bcfg[i];
        if (c->n == 0) {
            sm_meta_broker_configs_clear(c);
            continue;
        }
        if (c->n > 1)
            qsort(c->kv, (size_t)c->n, sizeof *c->kv, cmp_kv);
        img->broker_configs[img->nbroker_configs++] = *c;
    }
    free(d->bcfg);
    d->bcfg = NULL;
    d->nbcfg = 0;
    if (img->nbroker_configs > 1)
        qsort(img->broker_configs, (size_t)img->nbroker_configs, sizeof *img->broker_configs,
              cmp_bcfg);
    img->topics = sm_xcalloc(d->by_id.count + 1, sizeof *img->topics);
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&d->by_id, e));) {
        slot_t *s = e->value;
        if (s->owned) {
            sm_meta_topic_sort_configs(s->t);
            s->owned = false; /* the image takes the slot's reference */
        } else {
            sm_ref_keep(&s->t->ref);
        }
        img->topics[img->ntopics++] = s->t;
    }
    if (img->ntopics > 1)
        qsort(img->topics, (size_t)img->ntopics, sizeof *img->topics, cmp_topic);
    for (int i = 0; i < img->ntopics; i++) {
        sm_topic_meta_t *t = img->topics[i];
        sm_hmap_put(&img->by_name, t->name, strlen(t->name), t);
        sm_hmap_put(&img->by_id, (const char *)t->id.b, 16, t);
    }
    sm_meta_delta_free(d);
    return img;
}
