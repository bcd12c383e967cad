/*
 * meta_image_int.h - helpers shared by meta_image.c, meta_delta.c and
 * meta.c for building images and topics (internal to src/meta).
 *
 * A topic returned by sm_meta_topic_new/copy has one reference and is
 * private (mutable) until an image takes it; after that it is immutable.
 */
#ifndef SM_META_IMAGE_INT_H
#define SM_META_IMAGE_INT_H

#include "meta.h"

#include <stddef.h>
#include <stdio.h>

_Static_assert(offsetof(sm_topic_meta_t, ref) == 0, "topic ref must come first");
_Static_assert(offsetof(sm_meta_image_t, ref) == 0, "image ref must come first");

sm_topic_meta_t *sm_meta_topic_new(const char *name, size_t namelen, const sm_uuid_t *id);
sm_topic_meta_t *sm_meta_topic_copy(const sm_topic_meta_t *src);
void sm_meta_topic_release(sm_topic_meta_t *t);
/* Grow to n partitions (new ones: no leader, epochs -1, no replicas). */
void sm_meta_topic_set_partitions(sm_topic_meta_t *t, int32_t n);
/* Set (value != NULL) or delete (value == NULL) an override. */
void sm_meta_topic_config_set(sm_topic_meta_t *t, const char *key, const char *value);
void sm_meta_topic_sort_configs(sm_topic_meta_t *t);

void sm_meta_broker_clear(sm_broker_meta_t *b);
/* Deep copy (host points into the copy's first endpoint). */
void sm_meta_broker_copy(sm_broker_meta_t *dst, const sm_broker_meta_t *src);

/* Free a broker config resource's list (the struct itself is not freed). */
void sm_meta_broker_configs_clear(sm_meta_broker_configs_t *c);
/* Deep copy. */
void sm_meta_broker_configs_copy(sm_meta_broker_configs_t *dst, const sm_meta_broker_configs_t *src);

/* An empty image with refcount 1. */
sm_meta_image_t *sm_meta_image_alloc(const char *cluster_id);

#endif
