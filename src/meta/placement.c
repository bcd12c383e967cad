/*
 * placement.c - replica placement for new partitions (see placement.h).
 *
 * 1. The unfenced brokers, sorted by (rack, id), are interleaved rack by
 *    rack: the first broker of each rack, then the second of each, ... So
 *    consecutive positions fall on different racks while racks last.
 * 2. Partition p's leader is position (start + p) mod n.
 * 3. Its k-th follower is taken from position leader + 1 + (s + k - 1) mod
 *    (n - 1), where s = shift + (start + p) / n: the follower offset moves
 *    on each full round of leaders. When that broker is on a rack already
 *    used by this partition (and an unused rack still has a candidate) or
 *    is already a replica, the next positions are tried in order.
 */
#include "placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *rack_of(const sm_place_broker_t *b) { return b->rack ? b->rack : ""; }

static int cmp_rack_id(const void *a, const void *b)
{
    const sm_place_broker_t *x = *(const sm_place_broker_t *const *)a;
    const sm_place_broker_t *y = *(const sm_place_broker_t *const *)b;
    int c = strcmp(rack_of(x), rack_of(y));
    if (c)
        return c;
    return (x->id > y->id) - (x->id < y->id);
}

sm_err_t sm_place_replicas(const sm_place_broker_t *brokers, int nbrokers, int32_t first_partition,
                           int32_t count, int rf, uint32_t start, uint32_t shift, int32_t *out,
                           char *err, size_t errlen)
{
    int n = 0;
    for (int i = 0; i < nbrokers; i++)
        n += !brokers[i].fenced;
    if (rf < 1 || rf > n) {
        snprintf(err, errlen,
                 "Unable to replicate the partition %d time(s): The target replication factor of "
                 "%d cannot be reached because only %d broker(s) are registered and unfenced.",
                 rf, rf, n);
        return SM_ERR_INVALID;
    }
    const sm_place_broker_t **sorted = sm_xcalloc((size_t)n, sizeof *sorted);
    int k = 0;
    for (int i = 0; i < nbrokers; i++)
        if (!brokers[i].fenced)
            sorted[k++] = &brokers[i];
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_rack_id);
    /* rack groups: [gstart[g], gstart[g + 1]) in sorted */
    int *gstart = sm_xcalloc((size_t)n + 1, sizeof *gstart);
    int ngroups = 0;
    for (int i = 0; i < n; i++)
        if (i == 0 || strcmp(rack_of(sorted[i]), rack_of(sorted[i - 1])) != 0)
            gstart[ngroups++] = i;
    gstart[ngroups] = n;
    /* interleave: round r takes the r-th broker of every rack that has one */
    const sm_place_broker_t **order = sm_xcalloc((size_t)n, sizeof *order);
    int *orack = sm_xcalloc((size_t)n, sizeof *orack);
    k = 0;
    for (int r = 0; k < n; r++)
        for (int g = 0; g < ngroups; g++)
            if (gstart[g] + r < gstart[g + 1]) {
                orack[k] = g;
                order[k++] = sorted[gstart[g] + r];
            }
    bool *rack_used = sm_xcalloc((size_t)ngroups, sizeof *rack_used);
    bool *taken = sm_xcalloc((size_t)n, sizeof *taken);
    for (int32_t i = 0; i < count; i++) {
        uint64_t lead_pos = ((uint64_t)start + (uint64_t)(first_partition + i)) % (uint64_t)n;
        uint64_t s = (uint64_t)shift + ((uint64_t)start + (uint64_t)(first_partition + i)) / (uint64_t)n;
        memset(rack_used, 0, sizeof *rack_used * (size_t)ngroups);
        memset(taken, 0, sizeof *taken * (size_t)n);
        int32_t *o = &out[(size_t)i * (size_t)rf];
        o[0] = order[lead_pos]->id;
        taken[lead_pos] = true;
        rack_used[orack[lead_pos]] = true;
        int racks_left = ngroups - 1;
        for (int f = 1; f < rf; f++) {
            uint64_t base = n > 1 ? (lead_pos + 1 + (s + (uint64_t)f - 1) % (uint64_t)(n - 1)) %
                                        (uint64_t)n
                                  : lead_pos;
            int pick = -1;
            for (int t = 0; t < n && pick < 0; t++) { /* a new rack first */
                int pos = (int)((base + (uint64_t)t) % (uint64_t)n);
                if (!taken[pos] && (racks_left == 0 || !rack_used[orack[pos]]))
                    pick = pos;
            }
            SM_ASSERT(pick >= 0); /* rf <= n: some broker is free */
            if (!rack_used[orack[pick]]) {
                rack_used[orack[pick]] = true;
                racks_left--;
            }
            taken[pick] = true;
            o[f] = order[pick]->id;
        }
    }
    free(taken);
    free(rack_used);
    free(orack);
    free(order);
    free(gstart);
    free(sorted);
    return SM_OK;
}
