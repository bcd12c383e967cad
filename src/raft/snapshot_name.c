/*
 * snapshot_name.c - KIP-630 snapshot file names (format: snapshot_name.h).
 */
#include "snapshot_name.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define OFFSET_DIGITS 20
#define EPOCH_DIGITS 10

size_t sm_snapshot_name_format(char *buf, size_t cap, sm_snapshot_id_t id, sm_snapshot_kind_t kind,
                               const char *unique)
{
    if (id.end_offset < 0 || id.epoch < 0)
        return 0;
    const char *suffix = kind == SM_SNAPSHOT_PARTIAL   ? SM_SNAPSHOT_PART_SUFFIX
                         : kind == SM_SNAPSHOT_DELETED ? SM_SNAPSHOT_DELETED_SUFFIX
                                                       : SM_SNAPSHOT_SUFFIX;
    bool with_unique = kind == SM_SNAPSHOT_PARTIAL && unique;
    int n = snprintf(buf, cap, "%0*" PRId64 "-%0*" PRId32 "%s%s%s", OFFSET_DIGITS, id.end_offset,
                     EPOCH_DIGITS, id.epoch, with_unique ? "-" : "", with_unique ? unique : "",
                     suffix);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static bool ends_with(const char *s, size_t n, const char *suffix, size_t *stem)
{
    size_t k = strlen(suffix);
    if (n < k || memcmp(s + n - k, suffix, k) != 0)
        return false;
    *stem = n - k;
    return true;
}

/* n decimal digits at s into *out; false if any is not a digit or the value overflows max. */
static bool digits(const char *s, int n, int64_t max, int64_t *out)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        int d = s[i] - '0';
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool sm_snapshot_name_parse(const char *name, sm_snapshot_id_t *id, sm_snapshot_kind_t *kind)
{
    size_t n = strlen(name), stem;
    sm_snapshot_kind_t k;
    if (ends_with(name, n, SM_SNAPSHOT_PART_SUFFIX, &stem))
        k = SM_SNAPSHOT_PARTIAL;
    else if (ends_with(name, n, SM_SNAPSHOT_DELETED_SUFFIX, &stem))
        k = SM_SNAPSHOT_DELETED;
    else if (ends_with(name, n, SM_SNAPSHOT_SUFFIX, &stem))
        k = SM_SNAPSHOT_COMPLETE;
    else
        return false;
    const size_t base = OFFSET_DIGITS + 1 + EPOCH_DIGITS;
    if (stem < base || name[OFFSET_DIGITS] != '-')
        return false;
    /* only a partial file may carry more: "-<unique part>", no '/' */
    if (stem > base) {
        if (k != SM_SNAPSHOT_PARTIAL || name[base] != '-' || memchr(name + base, '/', stem - base))
            return false;
    }
    int64_t off, ep;
    if (!digits(name, OFFSET_DIGITS, INT64_MAX, &off) ||
        !digits(name + OFFSET_DIGITS + 1, EPOCH_DIGITS, INT32_MAX, &ep))
        return false;
    id->end_offset = off;
    id->epoch = (int32_t)ep;
    *kind = k;
    return true;
}
