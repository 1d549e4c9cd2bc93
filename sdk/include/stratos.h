/*
 * stratos.h: the host ABI of StratosDB stored procedures (version 1).
 *
 * A procedure is a WebAssembly module that exports `int32_t run(void)` and its linear memory
 * (`memory`), and imports only the functions below from module "stratos". Build one with the
 * clang that ships with the Swift toolchain:
 *
 *   clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export-dynamic \
 *         -Wl,--allow-undefined -I sdk/include -o summarize.wasm summarize.c
 *
 * Documents cross the boundary as BSON (see stratos_bson.h for a small builder and reader).
 * Every pointer/length pair is checked by the node against the module's memory. Functions
 * return a value >= 0 on success and a negative STRATOS_E_* code on failure;
 * stratos_error() copies the last failure's message.
 *
 * Everything a call does runs in one transaction of the space: its writes become one signed
 * commit when `run` returns 0, and nothing is written when it returns another value, calls
 * stratos_abort, traps, or runs out of fuel or memory. Reads and writes are checked against
 * the grants of whoever called the procedure.
 */
#ifndef STRATOS_H
#define STRATOS_H

#include <stdint.h>

#define STRATOS_IMPORT(name) __attribute__((import_module("stratos"), import_name(name)))

/* Error codes (negative return values). */
#define STRATOS_E_ARGUMENT (-1)     /* a pointer or length outside memory, or a negative length */
#define STRATOS_E_UNAUTHORIZED (-3) /* the caller's grants do not allow this on that collection */
#define STRATOS_E_BSON (-4)         /* the bytes are not one well-formed BSON document */
#define STRATOS_E_WRITE (-5)        /* the write failed (duplicate key, bad update, ...); nothing of it applied */
#define STRATOS_E_CURSOR (-6)       /* no open cursor with that number */
#define STRATOS_E_LIMIT (-7)        /* a per-call limit: open cursors, result size, log lines */
#define STRATOS_E_QUERY (-8)        /* the filter, sort or options were refused */

/* Flags of stratos_update and stratos_delete. */
#define STRATOS_MULTI 1  /* every matching document, not only the first */
#define STRATOS_UPSERT 2 /* stratos_update: insert when nothing matches */

/* The call's arguments (the `args` document of callProcedure): its size in bytes, and a copy.
 * stratos_args_read returns the size; when that exceeds `capacity` nothing was copied. */
STRATOS_IMPORT("args_size") int32_t stratos_args_size(void);
STRATOS_IMPORT("args_read") int32_t stratos_args_read(uint8_t *out, int32_t capacity);

/* Opens a cursor over `collection` matching `filter` (length 0: every document), with
 * `options` {sort, projection, skip, limit} (length 0: none). Returns the cursor number (> 0). */
STRATOS_IMPORT("find")
int32_t stratos_find(const char *collection, int32_t collection_length, const uint8_t *filter, int32_t filter_length,
                     const uint8_t *options, int32_t options_length);

/* Copies the cursor's next document into `out`. Returns its length, or 0 when the cursor is
 * exhausted. A return value greater than `capacity` means the document did not fit: nothing was
 * copied and the same document comes back on the next call (with a larger buffer). */
STRATOS_IMPORT("cursor_next") int32_t stratos_cursor_next(int32_t cursor, uint8_t *out, int32_t capacity);
STRATOS_IMPORT("cursor_close") int32_t stratos_cursor_close(int32_t cursor);

/* Inserts a document (an ObjectId _id is added when it has none). Returns 0. */
STRATOS_IMPORT("insert")
int32_t stratos_insert(const char *collection, int32_t collection_length, const uint8_t *document, int32_t document_length);

/* Applies `update` (operators such as $set, or a replacement) to the first match, or to every
 * match with STRATOS_MULTI. Returns the number of documents changed. */
STRATOS_IMPORT("update")
int32_t stratos_update(const char *collection, int32_t collection_length, const uint8_t *filter, int32_t filter_length,
                       const uint8_t *update, int32_t update_length, int32_t flags);

/* Deletes the first match, or every match with STRATOS_MULTI. Returns the number deleted. */
STRATOS_IMPORT("delete")
int32_t stratos_delete(const char *collection, int32_t collection_length, const uint8_t *filter, int32_t filter_length,
                       int32_t flags);

/* Sets the call's result document (the last call wins). */
STRATOS_IMPORT("emit") int32_t stratos_emit(const uint8_t *document, int32_t length);

/* Adds a line to the call's log (returned to the caller in `logs`). */
STRATOS_IMPORT("log") int32_t stratos_log(const char *message, int32_t length);

/* Stops the call: nothing it wrote is kept, and the caller gets ProcedureAborted with `message`. */
STRATOS_IMPORT("abort") __attribute__((noreturn)) void stratos_abort(const char *message, int32_t length);

/* Copies the message of the last failed host call; returns its length (see stratos_args_read). */
STRATOS_IMPORT("error") int32_t stratos_error(char *out, int32_t capacity);

/* The procedure's entry point, which you define: return 0 to commit what it wrote, anything
 * else to roll it back. (Declared here so that it is exported under this name.) */
__attribute__((export_name("run"))) int32_t run(void);

/* The length of a NUL-terminated string (the module has no C library; `no_builtin` keeps the
 * compiler from turning the loop back into a call to the C library's strlen). */
static inline __attribute__((no_builtin)) int32_t stratos_strlen(const char *text) {
    int32_t length = 0;
    while (text[length] != 0) length++;
    return length;
}

/* Logs or aborts with a NUL-terminated message. */
static inline void stratos_log_text(const char *message) { stratos_log(message, stratos_strlen(message)); }
static inline __attribute__((noreturn)) void stratos_abort_text(const char *message) {
    stratos_abort(message, stratos_strlen(message));
}

#include "stratos_bson.h"

#endif
