/*
 * uuid.h - Kafka Uuids: random generation and the text form Kafka prints
 * (Uuid.toString: URL-safe base64 of the 16 bytes, no padding, 22 chars),
 * used for cluster ids, topic ids, directory ids and incarnation ids.
 *
 * Generation follows Kafka's rules for a usable id: random (version 4 bits
 * set), never the zero id or one of the reserved low ids (the metadata
 * topic's id is 1; ids with all-zero high bits below 100 are reserved), and
 * never one whose text starts with '-' (command-line tools would read it as
 * an option). Pure functions: any thread.
 */
#ifndef SM_META_UUID_H
#define SM_META_UUID_H

#include "proto.h"
#include "sm_common.h"

#define SM_UUID_STR_LEN 22 /* characters, without the NUL */

/* A fresh random Uuid (getrandom(2); aborts if the kernel cannot give
 * randomness, which only happens on broken systems). */
void sm_uuid_random(sm_uuid_t *out);

/* Text form into out (at least 23 bytes); returns out. */
char *sm_uuid_to_str(const sm_uuid_t *u, char out[SM_UUID_STR_LEN + 1]);

/* Parse the text form (22 chars, or 24 with "==" padding). SM_ERR_PARSE if
 * the length or an alphabet character is wrong. */
SM_MUST_CHECK sm_err_t sm_uuid_parse(const char *s, size_t len, sm_uuid_t *out);

static inline bool sm_uuid_eq(const sm_uuid_t *a, const sm_uuid_t *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}

#endif
