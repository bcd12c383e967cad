/*
 * compress.h - the four compression codecs of Kafka record batches, as the
 * clients frame them on the wire.
 *
 * A magic-2 batch keeps its 61-byte header in clear and compresses only the
 * records section after it, with the codec named by attributes bits 0-2.
 * Samsa stores batches opaque and only looks inside them for exact
 * timestamp lookups (ListOffsets), validation and the dump-log tool, so the
 * decoder side must accept every framing a real client sends:
 *   gzip   one or more gzip members (RFC 1952), concatenated members are
 *          decoded one after the other; a zlib (RFC 1950) stream is
 *          accepted too since zlib's header detection takes it for free.
 *   snappy Java clients (snappy-java's SnappyOutputStream) write the
 *          "xerial" framing: 8-byte magic 82 'S' 'N' 'A' 'P' 'P' 'Y' 00, two
 *          big-endian int32 (version, compatible version), then chunks of
 *          big-endian int32 length + one raw snappy block each (32 KiB of
 *          input per block). librdkafka-based clients (kcat,
 *          confluent-kafka-*) and Go's sarama send one raw snappy block
 *          instead. Both are accepted, told apart by the magic.
 *   lz4    the LZ4 frame format (magic 0x184D2204), possibly several frames
 *          back to back. Writers differ: the Java client uses 64 KiB
 *          independent blocks and no content size or checksums;
 *          librdkafka takes liblz4's defaults (64 KiB, independent); Go and
 *          other writers may use up to 4 MiB blocks and checksums (the lz4
 *          tool's default is 4 MiB with a content checksum). Any block
 *          size, block/content checksums and content size are accepted.
 *          (Kafka before 0.10 wrote a wrong header checksum; only with
 *          magic 0/1, which Samsa refuses, so no quirk mode is needed.)
 *   zstd   one or more zstd frames, with or without a content size; decoded
 *          with the streaming API so a missing size is not a problem.
 * Every decoder stops with SM_ERR_TOO_LARGE as soon as the output would pass
 * max_out bytes, so a small compressed bomb cannot exhaust memory, and with
 * SM_ERR_CORRUPT on bad or truncated input. A length read from the input
 * is trusted only up to max_out (snappy's declared size is allocated up
 * front when within it).
 *
 * Pure functions over caller memory, no shared state: any thread.
 */
#ifndef SM_COMPRESS_H
#define SM_COMPRESS_H

#include "sm_common.h"

/* The values are those of the batch attributes bits 0-2. */
typedef enum sm_codec {
    SM_CODEC_NONE = 0,
    SM_CODEC_GZIP = 1,
    SM_CODEC_SNAPPY = 2,
    SM_CODEC_LZ4 = 3,
    SM_CODEC_ZSTD = 4,
} sm_codec_t;

/* Kafka's name of a codec ("none", "gzip", "snappy", "lz4", "zstd"), or
 * "unknown". Never NULL. */
const char *sm_codec_name(sm_codec_t codec);

/* Decompress len bytes at src with codec into a fresh malloc'ed buffer.
 * On SM_OK *out (free() it; never NULL, even for an empty result) holds
 * *outlen bytes. Errors, with *out = NULL and *outlen = 0:
 *   SM_ERR_TOO_LARGE    the output would exceed max_out bytes;
 *   SM_ERR_CORRUPT      malformed, truncated or checksum-failing input;
 *   SM_ERR_UNSUPPORTED  codec is not one of the values above.
 * SM_CODEC_NONE copies the input (still bounded by max_out). Never crashes,
 * never reads outside [src, src + len). Any thread. */
SM_MUST_CHECK sm_err_t sm_decompress(sm_codec_t codec, const uint8_t *src, size_t len,
                                     size_t max_out, uint8_t **out, size_t *outlen);

/* As sm_decompress, but the output starts headroom bytes into *out: those
 * bytes are left uninitialised for the caller (a header to put in front
 * without a copy) and are not counted in *outlen or max_out. */
SM_MUST_CHECK sm_err_t sm_decompress_headroom(sm_codec_t codec, const uint8_t *src, size_t len,
                                              size_t max_out, size_t headroom, uint8_t **out,
                                              size_t *outlen);

/* Compress len bytes at src into a fresh malloc'ed buffer (*out, *outlen),
 * in the framing Kafka's Java client writes: a gzip member, xerial-framed
 * snappy, an LZ4 frame with 64 KiB independent blocks and no content
 * size, one zstd frame. For tests, tools and broker-written batches.
 * SM_ERR_UNSUPPORTED for an unknown codec. Any thread. */
SM_MUST_CHECK sm_err_t sm_compress(sm_codec_t codec, const uint8_t *src, size_t len,
                                   uint8_t **out, size_t *outlen);
/* As sm_compress at a codec level (KIP-390: compression.gzip.level 1-9 or
 * -1, compression.lz4.level, compression.zstd.level; snappy has none);
 * SM_COMPRESS_LEVEL_DEFAULT takes the codec's default. */
#define SM_COMPRESS_LEVEL_DEFAULT (-1000000)
SM_MUST_CHECK sm_err_t sm_compress_level(sm_codec_t codec, int level, const uint8_t *src,
                                         size_t len, uint8_t **out, size_t *outlen);
int sm_compress_level_default(sm_codec_t codec);

#endif
