/*
 * fuzz_framer.c - libFuzzer target for the connection framer
 * (src/env/framer.h) and the frame buffer pool behind it.
 *
 * Input: byte 0 seeds how the stream is cut into reads, byte 1 picks the
 * maximum frame size (small, so the size checks and the direct-read path
 * for large frames are reachable with short inputs); the rest is the byte
 * stream a client sent.
 *
 * The stream is fed to the framer the way the connection layer does: in
 * reads of pseudo-random sizes, through sm_framer_feed() or, while a large
 * frame is in progress, through sm_framer_direct()/_direct_done().
 * Oracle, besides the sanitizers: the frames that come out, their bytes and
 * the point where a bad size is reported are exactly those of a reference
 * parse of the whole stream at once; a stream that ends inside a frame
 * leaves the framer partial, and a stream that ends on a boundary does not.
 * Frames go back to the pool, so recycled buffers are exercised too.
 * Built with clang -fsanitize=fuzzer and, with any compiler, as
 * fuzz_framer_replay that replays tests/fuzz/corpus/framer in ctest.
 */
#include "framer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void must(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_framer: %s\n", what);
        abort();
    }
}

static int32_t be32(const uint8_t *p)
{
    return (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t seed = data[0] * 2654435761u + 1;
    int32_t max_size = 8 + (int32_t)data[1] * 512; /* 8 .. ~130 KiB */
    const uint8_t *s = data + 2;
    size_t n = size - 2;

    /* Reference: where each frame starts and ends, and where it goes bad. */
    size_t ref_pos = 0, ref_bad_at = SIZE_MAX;
    int nref = 0;
    size_t ref_off[512], ref_len[512];
    while (n - ref_pos >= 4 && nref < 512) {
        int32_t len = be32(s + ref_pos);
        if (len < 8 || len > max_size) {
            ref_bad_at = ref_pos;
            break;
        }
        if (n - ref_pos - 4 < (size_t)len)
            break;
        ref_off[nref] = ref_pos + 4;
        ref_len[nref] = (size_t)len;
        nref++;
        ref_pos += 4 + (size_t)len;
    }
    if (nref == 512)
        n = ref_pos; /* keep the reference table bounded: stop at a boundary */
    bool ref_partial = ref_bad_at == SIZE_MAX && ref_pos < n;

    sm_bufpool_t *pool = sm_bufpool_new(4, 1 << 20, 1024);
    sm_framer_t f;
    sm_framer_init(&f, pool, 8, max_size);
    size_t pos = 0;
    int got = 0;
    bool bad = false;
    while (pos < n && !bad) {
        seed = seed * 1103515245u + 12345u;
        size_t chunk = 1 + (seed >> 8) % (seed & 0x10000 ? 70000 : 40);
        chunk = SM_MIN(chunk, n - pos);
        uint8_t *frame = NULL;
        int32_t flen = 0;
        uint8_t *dst;
        size_t room;
        size_t used;
        if (sm_framer_direct(&f, &dst, &room)) {
            used = SM_MIN(room, chunk);
            must(used > 0, "direct read with no room");
            memcpy(dst, s + pos, used);
            sm_framer_direct_done(&f, used, &frame, &flen);
        } else {
            /* Like the shared read buffer: a private copy the framer may not keep. */
            uint8_t *tmp = malloc(chunk);
            memcpy(tmp, s + pos, chunk);
            sm_err_t err = sm_framer_feed(&f, tmp, chunk, &used, &frame, &flen);
            memset(tmp, 0xa5, chunk);
            free(tmp);
            must(used <= chunk, "feed consumed more than it was given");
            if (err) {
                must(err == SM_ERR_PARSE, "unexpected error");
                must(pos + used >= 4 && pos + used - 4 == ref_bad_at,
                     "bad size reported at the wrong place");
                must(f.bad_size == be32(s + ref_bad_at), "bad_size is not the prefix");
                bad = true;
            } else {
                must(used > 0 || frame, "feed made no progress");
            }
        }
        pos += used;
        if (frame) {
            must(got < nref, "more frames than the reference");
            must((size_t)flen == ref_len[got], "frame length differs");
            must(memcmp(frame, s + ref_off[got], (size_t)flen) == 0, "frame bytes differ");
            must(pos == ref_off[got] + ref_len[got], "frame ended at the wrong place");
            got++;
            memset(frame, 0x5a, (size_t)flen); /* the pool must not hand out stale data as new */
            sm_buf_release(pool, frame);
        }
    }
    must(got == nref, "fewer frames than the reference");
    must(bad == (ref_bad_at != SIZE_MAX), "bad size not reported");
    if (!bad)
        must(sm_framer_partial(&f) == ref_partial, "partial state differs");
    sm_framer_reset(&f);
    sm_bufpool_free(pool);
    return 0;
}
