/*
 * stratos_bson.h: a small BSON builder and reader for procedures (no C library, no allocation).
 *
 * Building writes into a buffer you own; on overflow the writer remembers the error and
 * stratos_bson_finish returns -1. Reading walks a document in place.
 *
 *   uint8_t buf[256];
 *   stratos_bson_writer w;
 *   stratos_bson_init(&w, buf, sizeof buf);
 *   stratos_bson_append_string(&w, "city", "London", 6);
 *   int32_t length = stratos_bson_finish(&w);   // a complete document: {city: "London"}
 */
#ifndef STRATOS_BSON_H
#define STRATOS_BSON_H

#include <stdint.h>

/* BSON element types used here. */
#define STRATOS_BSON_DOUBLE 0x01
#define STRATOS_BSON_STRING 0x02
#define STRATOS_BSON_DOCUMENT 0x03
#define STRATOS_BSON_ARRAY 0x04
#define STRATOS_BSON_BINARY 0x05
#define STRATOS_BSON_OBJECTID 0x07
#define STRATOS_BSON_BOOL 0x08
#define STRATOS_BSON_DATETIME 0x09
#define STRATOS_BSON_NULL 0x0A
#define STRATOS_BSON_INT32 0x10
#define STRATOS_BSON_INT64 0x12

#define STRATOS_BSON_DEPTH_MAX 16

typedef struct {
    uint8_t *buffer;
    int32_t capacity;
    int32_t length;
    int32_t starts[STRATOS_BSON_DEPTH_MAX]; /* where each open document began */
    int32_t depth;
    int32_t failed;
} stratos_bson_writer;

static inline void stratos_bson__put(stratos_bson_writer *w, const void *bytes, int32_t count) {
    if (w->failed || count < 0 || count > w->capacity - w->length) { w->failed = 1; return; }
    const uint8_t *source = (const uint8_t *)bytes;
    for (int32_t i = 0; i < count; i++) w->buffer[w->length + i] = source[i];
    w->length += count;
}

static inline void stratos_bson__put_int32(stratos_bson_writer *w, int32_t value) {
    uint8_t bytes[4];
    for (int i = 0; i < 4; i++) bytes[i] = (uint8_t)((uint32_t)value >> (8 * i));
    stratos_bson__put(w, bytes, 4);
}

static inline void stratos_bson__put_int64(stratos_bson_writer *w, int64_t value) {
    uint8_t bytes[8];
    for (int i = 0; i < 8; i++) bytes[i] = (uint8_t)((uint64_t)value >> (8 * i));
    stratos_bson__put(w, bytes, 8);
}

static inline __attribute__((no_builtin)) void stratos_bson__key(stratos_bson_writer *w, uint8_t type, const char *key) {
    stratos_bson__put(w, &type, 1);
    int32_t length = 0;
    while (key[length] != 0) length++; /* no_builtin: not a call to the C library's strlen */
    stratos_bson__put(w, key, length + 1);
}

/* Starts a document in `buffer`. */
static inline void stratos_bson_init(stratos_bson_writer *w, uint8_t *buffer, int32_t capacity) {
    w->buffer = buffer;
    w->capacity = capacity;
    w->length = 0;
    w->depth = 0;
    w->failed = 0;
    w->starts[0] = 0;
    stratos_bson__put_int32(w, 0); /* the length, filled in by finish */
}

static inline void stratos_bson_append_int32(stratos_bson_writer *w, const char *key, int32_t value) {
    stratos_bson__key(w, STRATOS_BSON_INT32, key);
    stratos_bson__put_int32(w, value);
}

static inline void stratos_bson_append_int64(stratos_bson_writer *w, const char *key, int64_t value) {
    stratos_bson__key(w, STRATOS_BSON_INT64, key);
    stratos_bson__put_int64(w, value);
}

static inline void stratos_bson_append_double(stratos_bson_writer *w, const char *key, double value) {
    union { double d; int64_t i; } bits;
    bits.d = value;
    stratos_bson__key(w, STRATOS_BSON_DOUBLE, key);
    stratos_bson__put_int64(w, bits.i);
}

static inline void stratos_bson_append_bool(stratos_bson_writer *w, const char *key, int value) {
    uint8_t byte = value ? 1 : 0;
    stratos_bson__key(w, STRATOS_BSON_BOOL, key);
    stratos_bson__put(w, &byte, 1);
}

static inline void stratos_bson_append_null(stratos_bson_writer *w, const char *key) {
    stratos_bson__key(w, STRATOS_BSON_NULL, key);
}

static inline void stratos_bson_append_string(stratos_bson_writer *w, const char *key, const char *value, int32_t length) {
    uint8_t zero = 0;
    stratos_bson__key(w, STRATOS_BSON_STRING, key);
    stratos_bson__put_int32(w, length + 1);
    stratos_bson__put(w, value, length);
    stratos_bson__put(w, &zero, 1);
}

/* Appends a value exactly as it was read (type and raw bytes from stratos_bson_iter). */
static inline void stratos_bson_append_value(stratos_bson_writer *w, const char *key, uint8_t type, const uint8_t *value,
                                             int32_t length) {
    stratos_bson__key(w, type, key);
    stratos_bson__put(w, value, length);
}

/* Opens an embedded document (or array, with STRATOS_BSON_ARRAY and keys "0", "1", ...). */
static inline void stratos_bson_begin(stratos_bson_writer *w, const char *key, uint8_t type) {
    stratos_bson__key(w, type, key);
    if (w->depth + 1 >= STRATOS_BSON_DEPTH_MAX) { w->failed = 1; return; }
    w->starts[++w->depth] = w->length;
    stratos_bson__put_int32(w, 0);
}

static inline void stratos_bson__close(stratos_bson_writer *w) {
    uint8_t zero = 0;
    stratos_bson__put(w, &zero, 1);
    if (w->failed) return;
    int32_t start = w->starts[w->depth];
    int32_t length = w->length - start;
    for (int i = 0; i < 4; i++) w->buffer[start + i] = (uint8_t)((uint32_t)length >> (8 * i));
}

/* Closes the innermost embedded document or array. */
static inline void stratos_bson_end(stratos_bson_writer *w) {
    if (w->depth == 0) { w->failed = 1; return; }
    stratos_bson__close(w);
    w->depth--;
}

/* Closes the document; returns its length, or -1 if it did not fit or was left unbalanced. */
static inline int32_t stratos_bson_finish(stratos_bson_writer *w) {
    if (w->depth != 0) w->failed = 1;
    stratos_bson__close(w);
    return w->failed ? -1 : w->length;
}

/* ---- Reading ---- */

typedef struct {
    const uint8_t *document;
    int32_t length;
    int32_t position;
    /* The current element. */
    uint8_t type;
    const char *key;
    const uint8_t *value;
    int32_t value_length;
} stratos_bson_iter;

static inline int32_t stratos_bson__read_int32(const uint8_t *bytes) {
    return (int32_t)((uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 24);
}

static inline int64_t stratos_bson__read_int64(const uint8_t *bytes) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) value = value << 8 | bytes[i];
    return (int64_t)value;
}

/* Starts iterating a document of `length` bytes; returns 0 if it is not plausibly BSON. */
static inline int stratos_bson_iter_init(stratos_bson_iter *it, const uint8_t *document, int32_t length) {
    it->document = document;
    it->length = length;
    it->position = 4;
    return length >= 5 && stratos_bson__read_int32(document) == length;
}

/* Moves to the next element; returns 0 at the end (or on malformed input). */
static inline int stratos_bson_iter_next(stratos_bson_iter *it) {
    if (it->position >= it->length - 1) return 0;
    it->type = it->document[it->position];
    int32_t key = it->position + 1;
    int32_t end = key;
    while (end < it->length && it->document[end] != 0) end++;
    if (end >= it->length) return 0;
    it->key = (const char *)it->document + key;
    int32_t value = end + 1;
    int64_t remaining = (int64_t)it->length - value;
    int64_t size; /* 64-bit: a declared length near INT32_MAX plus its header cannot overflow */
    switch (it->type) {
    case STRATOS_BSON_DOUBLE: case STRATOS_BSON_DATETIME: case STRATOS_BSON_INT64: size = 8; break;
    case STRATOS_BSON_INT32: size = 4; break;
    case STRATOS_BSON_BOOL: size = 1; break;
    case STRATOS_BSON_NULL: size = 0; break;
    case STRATOS_BSON_OBJECTID: size = 12; break;
    case STRATOS_BSON_STRING: {
        if (remaining < 4) return 0;
        int32_t declared = stratos_bson__read_int32(it->document + value);
        if (declared < 1) return 0; /* at least the terminating NUL */
        size = 4 + (int64_t)declared;
        break;
    }
    case STRATOS_BSON_DOCUMENT: case STRATOS_BSON_ARRAY: {
        if (remaining < 4) return 0;
        int32_t declared = stratos_bson__read_int32(it->document + value);
        if (declared < 5) return 0; /* a length and a terminator */
        size = declared;
        break;
    }
    case STRATOS_BSON_BINARY: {
        if (remaining < 4) return 0;
        int32_t declared = stratos_bson__read_int32(it->document + value);
        if (declared < 0) return 0;
        size = 5 + (int64_t)declared;
        break;
    }
    case 0x13: size = 16; break;             /* decimal128 */
    case 0x11: size = 8; break;              /* timestamp */
    case 0x0B: {                             /* regex: two C strings */
        int32_t at = value, strings = 0;
        while (at < it->length && strings < 2) { if (it->document[at] == 0) strings++; at++; }
        size = at - value;
        break;
    }
    default: return 0;                       /* a type this reader does not walk */
    }
    if (size < 0 || size > remaining) return 0;
    it->value = it->document + value;
    it->value_length = (int32_t)size;
    it->position = value + (int32_t)size;
    return 1;
}

static inline int stratos_bson__key_equals(const char *key, const char *name, int32_t name_length) {
    for (int32_t i = 0; i < name_length; i++) if (key[i] != name[i]) return 0;
    return key[name_length] == 0;
}

/* Finds `path` (dots reach into embedded documents, as "address.city"); returns 1 and leaves
 * `it` on the element when found. */
static inline int stratos_bson_find(const uint8_t *document, int32_t length, const char *path, stratos_bson_iter *it) {
    const uint8_t *current = document;
    int32_t current_length = length;
    for (;;) {
        int32_t part = 0;
        while (path[part] != 0 && path[part] != '.') part++;
        if (!stratos_bson_iter_init(it, current, current_length)) return 0;
        int found = 0;
        while (stratos_bson_iter_next(it)) {
            if (stratos_bson__key_equals(it->key, path, part)) { found = 1; break; }
        }
        if (!found) return 0;
        if (path[part] == 0) return 1;
        if (it->type != STRATOS_BSON_DOCUMENT) return 0;
        current = it->value;
        current_length = it->value_length;
        path += part + 1;
    }
}

/* The current element as a number (int32, int64, double or bool); 0 for anything else. */
static inline int64_t stratos_bson_iter_int64(const stratos_bson_iter *it) {
    switch (it->type) {
    case STRATOS_BSON_INT32: return stratos_bson__read_int32(it->value);
    case STRATOS_BSON_INT64: return stratos_bson__read_int64(it->value);
    case STRATOS_BSON_DOUBLE: {
        union { double d; int64_t i; } bits;
        bits.i = stratos_bson__read_int64(it->value);
        return (int64_t)bits.d;
    }
    case STRATOS_BSON_BOOL: return it->value[0];
    default: return 0;
    }
}

static inline double stratos_bson_iter_double(const stratos_bson_iter *it) {
    if (it->type == STRATOS_BSON_DOUBLE) {
        union { double d; int64_t i; } bits;
        bits.i = stratos_bson__read_int64(it->value);
        return bits.d;
    }
    return (double)stratos_bson_iter_int64(it);
}

static inline int stratos_bson_iter_is_number(const stratos_bson_iter *it) {
    return it->type == STRATOS_BSON_INT32 || it->type == STRATOS_BSON_INT64 || it->type == STRATOS_BSON_DOUBLE;
}

/* The current element's string (not NUL-terminated; *length bytes), or 0 if not a string. */
static inline const char *stratos_bson_iter_string(const stratos_bson_iter *it, int32_t *length) {
    if (it->type != STRATOS_BSON_STRING || it->value_length < 5) return 0;
    *length = it->value_length - 5;
    return (const char *)it->value + 4;
}

#endif
