/*
 * wearable_proto.h - the wearable -> hub wire protocol, for firmware authors.
 *
 * Include this header and wearable_proto.c as they are: C99, no malloc, no stdio, no
 * floating-point maths beyond storing float32 fields. Layouts are documented in
 * firmware_bridge/PROTOCOL.md; firmware_bridge/vectors/frames.json holds test vectors
 * both this code and the Python hub must reproduce byte for byte.
 *
 *   packet = header(version, type) + body            (fields little-endian)
 *   frame  = COBS(packet + CRC-16/CCITT-FALSE(packet), CRC big-endian) + 0x00
 *
 * Typical use on a serial link:
 *
 *   uint8_t pkt[WP_MAX_PACKET_LEN], frame[WP_MAX_FRAME_LEN];
 *   size_t n = wp_build_samples(pkt, sizeof pkt, 1, WP_FMT_INT16, 1, seq++, now_us,
 *                               16, samples);
 *   size_t m = wp_encode_frame(pkt, n, frame, sizeof frame);
 *   if (m) uart_write(frame, m);
 *
 * Over BLE, send wp_append_crc() output (no COBS) as notifications, fragmented with a
 * one-byte header when larger than the ATT payload (see PROTOCOL.md, "BLE").
 *
 * The builders write every field byte by byte, so they work on any host; the packed
 * structs below describe the same layouts for overlaying received bytes on a
 * little-endian MCU (every Cortex-M, ESP32 and nRF52 is little-endian).
 */
#ifndef WEARABLE_PROTO_H
#define WEARABLE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WP_PROTOCOL_VERSION 1u

/* Largest packet including its CRC; keep in step with framing.MAX_PACKET_LEN. */
#define WP_MAX_PACKET_LEN 2048u
/* COBS adds one byte per 254 and a leading code byte; +1 for the 0x00 delimiter. */
#define WP_MAX_FRAME_LEN (WP_MAX_PACKET_LEN + WP_MAX_PACKET_LEN / 254u + 2u)
#define WP_CRC_INIT 0xFFFFu
#define WP_CRC_SIZE 2u

/* Message types (packet byte 1). */
#define WP_MSG_HELLO 0x01u
#define WP_MSG_SAMPLES 0x02u
#define WP_MSG_EVENT 0x03u
#define WP_MSG_TIME_SYNC 0x04u

/* Sample formats (SAMPLES byte 3 / HELLO sensor byte 1). */
#define WP_FMT_INT8 1u
#define WP_FMT_UINT8 2u
#define WP_FMT_INT16 3u
#define WP_FMT_UINT16 4u
#define WP_FMT_INT32 5u
#define WP_FMT_UINT32 6u
#define WP_FMT_FLOAT32 7u

/* Event kinds; the value field means: */
#define WP_EVENT_BATTERY 1u /* state of charge, 0..100 % */
#define WP_EVENT_BUTTON 2u  /* button id */
#define WP_EVENT_CONTACT 3u /* 1 skin contact on, 0 off */
#define WP_EVENT_FAULT 4u   /* firmware fault code */

/* Decoder results (negative) */
#define WP_ERR_COBS (-1)     /* a COBS block runs past the frame end, or a 0x00 inside */
#define WP_ERR_SHORT (-2)    /* fewer bytes than header + CRC */
#define WP_ERR_CRC (-3)      /* CRC mismatch */
#define WP_ERR_CAPACITY (-4) /* the output buffer is too small */

#if defined(__GNUC__) || defined(__clang__)
#define WP_PACKED __attribute__((packed))
#else
#define WP_PACKED /* use #pragma pack(1) on your compiler */
#endif

typedef struct WP_PACKED {
    uint8_t version;
    uint8_t type;
} wp_header_t;

typedef struct WP_PACKED {
    wp_header_t header;
    uint8_t sensor_id;
    uint8_t format;
    uint8_t channels;
    uint16_t seq;
    uint64_t t_device_us; /* first sample; sample i at t + i * 1e6 / rate_hz */
    uint16_t count;       /* then count * channels samples, interleaved by channel */
} wp_samples_header_t;

typedef struct WP_PACKED {
    wp_header_t header;
    uint8_t kind;
    uint16_t seq;
    uint64_t t_device_us;
    int32_t value;
} wp_event_t;

typedef struct WP_PACKED {
    wp_header_t header;
    uint16_t seq;
    uint64_t t_device_us;
    uint64_t t_hub_us; /* 0: unknown (hub stamps reception); else echo of a hub request */
} wp_time_sync_t;

/* One sensor in HELLO; followed by kind and unit as u8-length-prefixed UTF-8 strings. */
typedef struct WP_PACKED {
    uint8_t sensor_id;
    uint8_t format;
    uint8_t channels;
    float rate_hz;
    float scale; /* physical = raw * scale + offset */
    float offset;
} wp_sensor_desc_t;

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(wp_samples_header_t) == 17, "SAMPLES header is 17 bytes");
_Static_assert(sizeof(wp_event_t) == 17, "EVENT packet is 17 bytes");
_Static_assert(sizeof(wp_time_sync_t) == 20, "TIME_SYNC packet is 20 bytes");
_Static_assert(sizeof(wp_sensor_desc_t) == 15, "sensor descriptor is 15 bytes");
#endif

/* CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): crc == 0x29B1 for "123456789". */
uint16_t wp_crc16(const uint8_t *data, size_t len, uint16_t crc);

/* COBS-encode len bytes (no delimiter written). Returns the encoded length, or 0 when it
 * would exceed cap. At most len + len / 254 + 1 bytes. */
size_t wp_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* Decode one COBS frame without its delimiter. Returns the decoded length or WP_ERR_*. */
int32_t wp_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* packet (header + body) -> frame (COBS of packet + CRC, then 0x00). Returns the frame
 * length or 0 when cap is too small. The packet buffer is not modified. */
size_t wp_encode_frame(const uint8_t *packet, size_t len, uint8_t *out, size_t cap);

/* frame (with or without its trailing 0x00) -> packet without CRC. Returns its length or
 * WP_ERR_*. Firmware uses this for hub -> device messages (two-way TIME_SYNC). */
int32_t wp_decode_frame(const uint8_t *frame, size_t len, uint8_t *out, size_t cap);

/* Append the big-endian CRC to a packet in place (cap must allow 2 more bytes): the BLE
 * form of a packet. Returns the new length or 0. */
size_t wp_append_crc(uint8_t *packet, size_t len, size_t cap);

/* Packet builders: return the packet length (header + body, no CRC) or 0 if cap is too
 * small or an argument is out of range. `samples` holds count * channels values of the
 * given format, little-endian, interleaved by channel. */
size_t wp_build_samples(uint8_t *out, size_t cap, uint8_t sensor_id, uint8_t format,
                        uint8_t channels, uint16_t seq, uint64_t t_device_us, uint16_t count,
                        const void *samples);
size_t wp_build_event(uint8_t *out, size_t cap, uint8_t kind, uint16_t seq,
                      uint64_t t_device_us, int32_t value);
size_t wp_build_time_sync(uint8_t *out, size_t cap, uint16_t seq, uint64_t t_device_us,
                          uint64_t t_hub_us);

/* HELLO is built in steps: begin, then one add per sensor. Each returns the packet length
 * so far, or 0 on overflow (after which the packet must not be sent). */
size_t wp_hello_begin(uint8_t *out, size_t cap, const char *device_id,
                      const char *firmware_version, uint8_t protocol_version);
size_t wp_hello_add_sensor(uint8_t *out, size_t cap, size_t len, uint8_t sensor_id,
                           const char *kind, const char *unit, float rate_hz, uint8_t channels,
                           uint8_t format, float scale, float offset);

/* Bytes per sample value of a format, 0 if unknown. */
size_t wp_format_size(uint8_t format);

#ifdef __cplusplus
}
#endif

#endif /* WEARABLE_PROTO_H */
