/*
 * wearable_proto.c - reference encoder/decoder for the wearable -> hub protocol.
 * C99, no malloc, no libc beyond <string.h>. See wearable_proto.h.
 */
#include "wearable_proto.h"

#include <string.h>

uint16_t wp_crc16(const uint8_t *data, size_t len, uint16_t crc) {
    /* bitwise: 8 shifts per byte is fast enough at sensor data rates and saves the
     * 512-byte table on small parts */
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

/* COBS over the concatenation a[0..na) + b[0..nb), so the CRC need not be copied after the
 * packet. Canonical form: a final 254-byte block gets no trailing empty block. */
static size_t cobs_encode2(const uint8_t *a, size_t na, const uint8_t *b, size_t nb,
                           uint8_t *out, size_t cap) {
    size_t total = na + nb;
    size_t code_pos = 0, o = 1;
    uint8_t code = 1;
    if (cap < 1) {
        return 0;
    }
    for (size_t i = 0; i < total; i++) {
        uint8_t byte = i < na ? a[i] : b[i - na];
        if (byte == 0) {
            out[code_pos] = code;
            code_pos = o++;
            code = 1;
            if (o > cap) {
                return 0;
            }
        } else {
            if (o >= cap) {
                return 0;
            }
            out[o++] = byte;
            code++;
            if (code == 0xFF) {
                out[code_pos] = code;
                code = 1;
                if (i + 1 == total) {
                    return o; /* ends exactly on a full block: no trailing 0x01 */
                }
                code_pos = o++;
                if (o > cap) {
                    return 0;
                }
            }
        }
    }
    out[code_pos] = code;
    return o;
}

size_t wp_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
    return cobs_encode2(in, len, NULL, 0, out, cap);
}

int32_t wp_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
    size_t i = 0, o = 0;
    if (len == 0) {
        return WP_ERR_COBS;
    }
    while (i < len) {
        uint8_t code = in[i];
        if (code == 0 || i + code > len) {
            return WP_ERR_COBS;
        }
        for (size_t k = 1; k < code; k++) {
            if (in[i + k] == 0) {
                return WP_ERR_COBS;
            }
            if (o >= cap) {
                return WP_ERR_CAPACITY;
            }
            out[o++] = in[i + k];
        }
        i += code;
        if (code != 0xFF && i < len) {
            if (o >= cap) {
                return WP_ERR_CAPACITY;
            }
            out[o++] = 0;
        }
    }
    return (int32_t)o;
}

size_t wp_encode_frame(const uint8_t *packet, size_t len, uint8_t *out, size_t cap) {
    uint16_t crc = wp_crc16(packet, len, WP_CRC_INIT);
    uint8_t tail[WP_CRC_SIZE] = {(uint8_t)(crc >> 8), (uint8_t)(crc & 0xFFu)};
    size_t n;
    if (len + WP_CRC_SIZE > WP_MAX_PACKET_LEN || cap < 1) {
        return 0;
    }
    n = cobs_encode2(packet, len, tail, WP_CRC_SIZE, out, cap - 1);
    if (n == 0) {
        return 0;
    }
    out[n] = 0;
    return n + 1;
}

int32_t wp_decode_frame(const uint8_t *frame, size_t len, uint8_t *out, size_t cap) {
    int32_t n;
    if (len > 0 && frame[len - 1] == 0) {
        len--;
    }
    n = wp_cobs_decode(frame, len, out, cap);
    if (n < 0) {
        return n;
    }
    if ((size_t)n < 2u + WP_CRC_SIZE) {
        return WP_ERR_SHORT;
    }
    if (wp_crc16(out, (size_t)n, WP_CRC_INIT) != 0) { /* CRC over packet + CRC is 0 */
        return WP_ERR_CRC;
    }
    return n - (int32_t)WP_CRC_SIZE;
}

size_t wp_append_crc(uint8_t *packet, size_t len, size_t cap) {
    uint16_t crc;
    if (len + WP_CRC_SIZE > cap || len + WP_CRC_SIZE > WP_MAX_PACKET_LEN) {
        return 0;
    }
    crc = wp_crc16(packet, len, WP_CRC_INIT);
    packet[len] = (uint8_t)(crc >> 8);
    packet[len + 1] = (uint8_t)(crc & 0xFFu);
    return len + WP_CRC_SIZE;
}

/* -- little-endian writers ---------------------------------------------------------------- */
static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_f32(uint8_t *p, float f) {
    uint32_t v;
    memcpy(&v, &f, sizeof v); /* IEEE-754 binary32 bit pattern */
    put_u32(p, v);
}

size_t wp_format_size(uint8_t format) {
    switch (format) {
    case WP_FMT_INT8:
    case WP_FMT_UINT8:
        return 1;
    case WP_FMT_INT16:
    case WP_FMT_UINT16:
        return 2;
    case WP_FMT_INT32:
    case WP_FMT_UINT32:
    case WP_FMT_FLOAT32:
        return 4;
    default:
        return 0;
    }
}

size_t wp_build_samples(uint8_t *out, size_t cap, uint8_t sensor_id, uint8_t format,
                        uint8_t channels, uint16_t seq, uint64_t t_device_us, uint16_t count,
                        const void *samples) {
    size_t item = wp_format_size(format);
    size_t data = (size_t)count * channels * item;
    size_t n = 17u + data;
    if (item == 0 || channels == 0 || n > cap || n + WP_CRC_SIZE > WP_MAX_PACKET_LEN) {
        return 0;
    }
    out[0] = WP_PROTOCOL_VERSION;
    out[1] = WP_MSG_SAMPLES;
    out[2] = sensor_id;
    out[3] = format;
    out[4] = channels;
    put_u16(out + 5, seq);
    put_u64(out + 7, t_device_us);
    put_u16(out + 15, count);
    if (data) {
        memcpy(out + 17, samples, data); /* already little-endian on an LE MCU */
    }
    return n;
}

size_t wp_build_event(uint8_t *out, size_t cap, uint8_t kind, uint16_t seq,
                      uint64_t t_device_us, int32_t value) {
    if (cap < 17u) {
        return 0;
    }
    out[0] = WP_PROTOCOL_VERSION;
    out[1] = WP_MSG_EVENT;
    out[2] = kind;
    put_u16(out + 3, seq);
    put_u64(out + 5, t_device_us);
    put_u32(out + 13, (uint32_t)value);
    return 17u;
}

size_t wp_build_time_sync(uint8_t *out, size_t cap, uint16_t seq, uint64_t t_device_us,
                          uint64_t t_hub_us) {
    if (cap < 20u) {
        return 0;
    }
    out[0] = WP_PROTOCOL_VERSION;
    out[1] = WP_MSG_TIME_SYNC;
    put_u16(out + 2, seq);
    put_u64(out + 4, t_device_us);
    put_u64(out + 12, t_hub_us);
    return 20u;
}

static size_t put_str(uint8_t *out, size_t cap, size_t len, const char *s) {
    size_t n = strlen(s);
    if (n > 255u || len + 1u + n > cap) {
        return 0;
    }
    out[len] = (uint8_t)n;
    memcpy(out + len + 1, s, n);
    return len + 1u + n;
}

size_t wp_hello_begin(uint8_t *out, size_t cap, const char *device_id,
                      const char *firmware_version, uint8_t protocol_version) {
    size_t len;
    if (cap < 2u) {
        return 0;
    }
    out[0] = WP_PROTOCOL_VERSION;
    out[1] = WP_MSG_HELLO;
    len = put_str(out, cap, 2, device_id);
    if (len == 0) {
        return 0;
    }
    len = put_str(out, cap, len, firmware_version);
    if (len == 0 || len + 2u > cap) {
        return 0;
    }
    out[len] = protocol_version;
    out[len + 1] = 0; /* sensor count, incremented by wp_hello_add_sensor */
    return len + 2u;
}

/* The sensor count byte sits right after the two strings. */
static size_t hello_count_pos(const uint8_t *out) {
    size_t p = 2u + 1u + out[2];
    p += 1u + out[p];
    return p + 1u;
}

size_t wp_hello_add_sensor(uint8_t *out, size_t cap, size_t len, uint8_t sensor_id,
                           const char *kind, const char *unit, float rate_hz, uint8_t channels,
                           uint8_t format, float scale, float offset) {
    size_t pos = hello_count_pos(out);
    if (len == 0 || len + 15u > cap || out[pos] == 0xFFu) {
        return 0;
    }
    out[len] = sensor_id;
    out[len + 1] = format;
    out[len + 2] = channels;
    put_f32(out + len + 3, rate_hz);
    put_f32(out + len + 7, scale);
    put_f32(out + len + 11, offset);
    len = put_str(out, cap, len + 15u, kind);
    if (len == 0) {
        return 0;
    }
    len = put_str(out, cap, len, unit);
    if (len == 0 || len + WP_CRC_SIZE > WP_MAX_PACKET_LEN) {
        return 0;
    }
    out[pos]++;
    return len;
}
