/*
 * meta_image.c - the immutable metadata image: lifetime, lookups, and the
 * topic objects it shares with other images (see meta.h).
 *
 * An image owns its broker array, its topic pointer array and its two hash
 * indexes, and the dynamic broker config lists; it holds one reference on
 * each topic. Topics are immutable once
 * an image contains them: the delta (meta_delta.c) copies a topic before
 * changing it. All functions here may run on any thread; freeing happens on
 * whichever thread drops the last reference.
 */
#include "meta_image_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- topics */

static void topic_free(sm_ref_t *ref)
{
    sm_topic_meta_t *t = (sm_topic_meta_t *)ref; /* ref is the first member */
    for (int32_t i = 0; i < t->npartitions; i++) {
        free(t->partitions[i].replicas);
        free(t->partitions[i].isr);
        free(t->partitions[i].adding);
        free(t->partitions[i].removing);
    }
    free(t->partitions);
    for (int i = 0; i < t->nconfigs; i++) {
        free(t->configs[i].key);
        free(t->configs[i].value);
    }
    free(t->configs);
    free(t->name);
    free(t);
}

sm_topic_meta_t *sm_meta_topic_new(const char *name, size_t namelen, const sm_uuid_t *id)
{
    sm_topic_meta_t *t = sm_xcalloc(1, sizeof *t);
    sm_ref_init(&t->ref, topic_free);
    t->name = sm_xstrndup(name, namelen);
    t->id = *id;
    t->internal = sm_meta_topic_is_internal(t->name);
    return t;
}

static int32_t *dup_i32(const int32_t *p, int n)
{
    if (n <= 0)
        return NULL;
    int32_t *q = sm_xmalloc(sizeof *q * (size_t)n);
    memcpy(q, p, sizeof *q * (size_t)n);
    return q;
}

sm_topic_meta_t *sm_meta_topic_copy(const sm_topic_meta_t *src)
{
    sm_topic_meta_t *t = sm_meta_topic_new(src->name, strlen(src->name), &src->id);
    t->npartitions = src->npartitions;
    t->partitions = sm_xcalloc((size_t)src->npartitions + 1, sizeof *t->partitions);
    for (int32_t i = 0; i < src->npartitions; i++) {
        const sm_partition_meta_t *p = &src->partitions[i];
        t->partitions[i] = *p;
        t->partitions[i].replicas = dup_i32(p->replicas, p->nreplicas);
        t->partitions[i].isr = dup_i32(p->isr, p->nisr);
        t->partitions[i].adding = dup_i32(p->adding, p->nadding);
        t->partitions[i].removing = dup_i32(p->removing, p->nremoving);
    }
    t->nconfigs = src->nconfigs;
    t->configs = sm_xcalloc((size_t)src->nconfigs + 1, sizeof *t->configs);
    for (int i = 0; i < src->nconfigs; i++) {
        t->configs[i].key = sm_xstrdup(src->configs[i].key);
        t->configs[i].value = sm_xstrdup(src->configs[i].value);
    }
    return t;
}

void sm_meta_topic_release(sm_topic_meta_t *t)
{
    if (t)
        sm_ref_release(&t->ref);
}

void sm_meta_topic_set_partitions(sm_topic_meta_t *t, int32_t n)
{
    if (n <= t->npartitions)
        return;
    t->partitions = sm_xrealloc(t->partitions, sizeof *t->partitions * (size_t)n);
    for (int32_t i = t->npartitions; i < n; i++) {
        sm_partition_meta_t *p = &t->partitions[i];
        memset(p, 0, sizeof *p);
        p->partition = i;
        p->leader = -1;
        p->leader_epoch = -1;
        p->partition_epoch = -1;
    }
    t->npartitions = n;
}

void sm_meta_topic_config_set(sm_topic_meta_t *t, const char *key, const char *value)
{
    for (int i = 0; i < t->nconfigs; i++) {
        if (strcmp(t->configs[i].key, key) != 0)
            continue;
        if (value) {
            free(t->configs[i].value);
            t->configs[i].value = sm_xstrdup(value);
        } else {
            free(t->configs[i].key);
            free(t->configs[i].value);
            t->configs[i] = t->configs[--t->nconfigs];
        }
        return;
    }
    if (!value)
        return;
    t->configs = sm_xrealloc(t->configs, sizeof *t->configs * (size_t)(t->nconfigs + 1));
    t->configs[t->nconfigs].key = sm_xstrdup(key);
    t->configs[t->nconfigs].value = sm_xstrdup(value);
    t->nconfigs++;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const sm_topic_kv_t *)a)->key, ((const sm_topic_kv_t *)b)->key);
}

void sm_meta_topic_sort_configs(sm_topic_meta_t *t)
{
    if (t->nconfigs > 1)
        qsort(t->configs, (size_t)t->nconfigs, sizeof *t->configs, cmp_kv);
}

const char *sm_meta_topic_config(const sm_topic_meta_t *t, const char *key)
{
    for (int i = 0; i < t->nconfigs; i++)
        if (strcmp(t->configs[i].key, key) == 0)
            return t->configs[i].value;
    return NULL;
}

bool sm_meta_topic_is_internal(const char *name)
{
    return strcmp(name, "__consumer_offsets") == 0 || strcmp(name, "__transaction_state") == 0;
}

sm_err_t sm_meta_topic_name_check(const char *name, size_t len, char *err, size_t errlen)
{
    if (len == 0) {
        snprintf(err, errlen, "Topic name is illegal, it can't be empty");
        return SM_ERR_INVALID;
    }
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
        snprintf(err, errlen, "Topic name cannot be \".\" or \"..\"");
        return SM_ERR_INVALID;
    }
    if (len > 249) {
        snprintf(err, errlen,
                 "Topic name is illegal, it can't be longer than 249 characters, topic name: "
                 "%.*s...",
                 64, name);
        return SM_ERR_INVALID;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            snprintf(err, errlen,
                     "Topic name \"%.*s\" is illegal, it contains a character other than ASCII "
                     "alphanumerics, '.', '_' and '-'",
                     (int)SM_MIN(len, 249), name);
            return SM_ERR_INVALID;
        }
    }
    return SM_OK;
}

/* ---------------------------------------------------------------- brokers */

void sm_meta_broker_clear(sm_broker_meta_t *b)
{
    for (int i = 0; i < b->nendpoints; i++) {
        free(b->endpoints[i].name);
        free(b->endpoints[i].host);
    }
    free(b->endpoints);
    free(b->rack);
    memset(b, 0, sizeof *b);
}

void sm_meta_broker_copy(sm_broker_meta_t *dst, const sm_broker_meta_t *src)
{
    *dst = *src;
    dst->rack = src->rack ? sm_xstrdup(src->rack) : NULL;
    dst->endpoints = sm_xcalloc((size_t)src->nendpoints + 1, sizeof *dst->endpoints);
    for (int i = 0; i < src->nendpoints; i++) {
        dst->endpoints[i] = src->endpoints[i];
        dst->endpoints[i].name = sm_xstrdup(src->endpoints[i].name);
        dst->endpoints[i].host = sm_xstrdup(src->endpoints[i].host);
    }
    dst->host = dst->nendpoints ? dst->endpoints[0].host : NULL;
}

const sm_endpoint_t *sm_meta_broker_endpoint(const sm_broker_meta_t *b, const char *listener)
{
    for (int i = 0; i < b->nendpoints; i++)
        if (strcmp(b->endpoints[i].name, listener) == 0)
            return &b->endpoints[i];
    return NULL;
}

/* ------------------------------------------------- dynamic broker configs */

void sm_meta_broker_configs_clear(sm_meta_broker_configs_t *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->kv[i].key);
        free(c->kv[i].value);
    }
    free(c->kv);
    c->kv = NULL;
    c->n = 0;
}

void sm_meta_broker_configs_copy(sm_meta_broker_configs_t *dst, const sm_meta_broker_configs_t *src)
{
    dst->node = src->node;
    dst->n = src->n;
    dst->kv = sm_xcalloc((size_t)src->n + 1, sizeof *dst->kv);
    for (int i = 0; i < src->n; i++) {
        dst->kv[i].key = sm_xstrdup(src->kv[i].key);
        dst->kv[i].value = sm_xstrdup(src->kv[i].value);
    }
}

static const sm_meta_broker_configs_t *broker_configs(const sm_meta_image_t *img, int32_t node)
{
    for (int i = 0; i < img->nbroker_configs; i++)
        if (img->broker_configs[i].node == node)
            return &img->broker_configs[i];
    return NULL;
}

void sm_meta_image_dynamic(const sm_meta_image_t *img, int32_t node_id, sm_config_dynamic_t *out)
{
    memset(out, 0, sizeof *out);
    const sm_meta_broker_configs_t *c = broker_configs(img, -1);
    if (c) {
        out->cluster = c->kv;
        out->ncluster = c->n;
    }
    c = node_id >= 0 ? broker_configs(img, node_id) : NULL;
    if (c) {
        out->node = c->kv;
        out->nnode = c->n;
    }
}

static bool kv_equal(const sm_config_kv_t *a, int na, const sm_config_kv_t *b, int nb)
{
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++) /* both sorted by key */
        if (strcmp(a[i].key, b[i].key) != 0 || strcmp(a[i].value, b[i].value) != 0)
            return false;
    return true;
}

bool sm_meta_dynamic_equal(const sm_config_dynamic_t *a, const sm_config_dynamic_t *b)
{
    return kv_equal(a->node, a->nnode, b->node, b->nnode) &&
           kv_equal(a->cluster, a->ncluster, b->cluster, b->ncluster);
}

/* ------------------------------------------------------------------ image */

static void image_free(sm_ref_t *ref)
{
    sm_meta_image_t *img = (sm_meta_image_t *)ref; /* ref is the first member */
    for (int i = 0; i < img->nbroker_configs; i++)
        sm_meta_broker_configs_clear(&img->broker_configs[i]);
    free(img->broker_configs);
    for (int i = 0; i < img->ntopics; i++)
        sm_meta_topic_release(img->topics[i]);
    free(img->topics);
    for (int i = 0; i < img->nbrokers; i++)
        sm_meta_broker_clear(&img->brokers[i]);
    free(img->brokers);
    for (int i = 0; i < img->ncontrollers; i++)
        sm_meta_broker_clear(&img->controllers[i]);
    free(img->controllers);
    sm_hmap_free(&img->by_name);
    sm_hmap_free(&img->by_id);
    free((char *)img->cluster_id);
    free(img);
}

sm_meta_image_t *sm_meta_image_alloc(const char *cluster_id)
{
    sm_meta_image_t *img = sm_xcalloc(1, sizeof *img);
    sm_ref_init(&img->ref, image_free);
    img->offset = -1;
    img->cluster_id = sm_xstrdup(cluster_id ? cluster_id : "");
    sm_hmap_init(&img->by_name);
    sm_hmap_init(&img->by_id);
    return img;
}

void sm_meta_image_put(sm_meta_image_t *img)
{
    if (img)
        sm_ref_release(&img->ref);
}

const sm_topic_meta_t *sm_meta_image_topic(const sm_meta_image_t *img, const char *name,
                                           size_t namelen)
{
    return sm_hmap_get(&img->by_name, name, namelen);
}

const sm_topic_meta_t *sm_meta_image_topic_by_id(const sm_meta_image_t *img, const sm_uuid_t *id)
{
    return sm_hmap_get(&img->by_id, (const char *)id->b, 16);
}

const sm_broker_meta_t *sm_meta_image_broker(const sm_meta_image_t *img, int32_t id)
{
    int lo = 0, hi = img->nbrokers - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (img->brokers[mid].id == id)
            return &img->brokers[mid];
        if (img->brokers[mid].id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}
