/*
 * uuid.c - see uuid.h. Base64 here is RFC 4648 section 5 ("URL and filename
 * safe": '-' and '_' in place of '+' and '/'), which is what Kafka's
 * Uuid.toString uses. 16 bytes = 5 groups of 3 bytes (20 chars) + 1 byte
 * (2 chars) = 22 characters without padding. Any thread.
 */
#include "uuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

static const char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_index(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

char *sm_uuid_to_str(const sm_uuid_t *u, char out[SM_UUID_STR_LEN + 1])
{
    const uint8_t *b = u->b;
    int o = 0;
    for (int i = 0; i < 15; i += 3) {
        uint32_t v = ((uint32_t)b[i] << 16) | ((uint32_t)b[i + 1] << 8) | b[i + 2];
        out[o++] = k_b64[(v >> 18) & 63];
        out[o++] = k_b64[(v >> 12) & 63];
        out[o++] = k_b64[(v >> 6) & 63];
        out[o++] = k_b64[v & 63];
    }
    out[o++] = k_b64[b[15] >> 2];
    out[o++] = k_b64[(b[15] & 3) << 4];
    out[o] = 0;
    return out;
}

sm_err_t sm_uuid_parse(const char *s, size_t len, sm_uuid_t *out)
{
    if (len == 24 && s[22] == '=' && s[23] == '=')
        len = 22;
    if (len != SM_UUID_STR_LEN)
        return SM_ERR_PARSE;
    int idx[22];
    for (int i = 0; i < 22; i++)
        if ((idx[i] = b64_index(s[i])) < 0)
            return SM_ERR_PARSE;
    /* the last char carries 2 bits; its low 4 bits must be zero (canonical) */
    if (idx[21] & 15)
        return SM_ERR_PARSE;
    int o = 0;
    for (int i = 0; i < 20; i += 4) {
        uint32_t v = ((uint32_t)idx[i] << 18) | ((uint32_t)idx[i + 1] << 12) |
                     ((uint32_t)idx[i + 2] << 6) | (uint32_t)idx[i + 3];
        out->b[o++] = (uint8_t)(v >> 16);
        out->b[o++] = (uint8_t)(v >> 8);
        out->b[o++] = (uint8_t)v;
    }
    out->b[15] = (uint8_t)((idx[20] << 2) | (idx[21] >> 4));
    return SM_OK;
}

/* Kafka reserves the zero id, the metadata topic id (1) and small ids. */
static bool reserved(const sm_uuid_t *u)
{
    for (int i = 0; i < 15; i++)
        if (u->b[i])
            return false;
    return u->b[15] < 100;
}

void sm_uuid_random(sm_uuid_t *out)
{
    for (;;) {
        size_t got = 0;
        while (got < 16) {
            ssize_t n = getrandom(out->b + got, 16 - got, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                fprintf(stderr, "samsa: fatal: getrandom failed: %d\n", errno);
                abort();
            }
            got += (size_t)n;
        }
        out->b[6] = (uint8_t)((out->b[6] & 0x0F) | 0x40); /* version 4 */
        out->b[8] = (uint8_t)((out->b[8] & 0x3F) | 0x80); /* IETF variant */
        char s[SM_UUID_STR_LEN + 1];
        if (!reserved(out) && sm_uuid_to_str(out, s)[0] != '-')
            return;
    }
}
