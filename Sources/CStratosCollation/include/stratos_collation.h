#ifndef STRATOS_COLLATION_H
#define STRATOS_COLLATION_H
// ICU's collation service (Debian's libicu-dev), the library MongoDB's collation is built on,
// behind plain C types: Foundation carries its own ICU headers, whose types would clash with
// the system's in one Swift module, so ICU is included only in stratos_collation.c.
#include <stdint.h>

typedef struct stratos_collator stratos_collator;

/// Options, as MongoDB names them; see stratos_collation.c for their ICU values.
typedef struct {
    int strength;          // 1 … 5
    int case_level;        // 0 / 1
    int case_first;        // 0 off, 1 upper, 2 lower
    int numeric_ordering;  // 0 / 1
    int shifted;           // alternate: 0 non-ignorable, 1 shifted
    int max_variable_space;// maxVariable: 0 punct, 1 space
    int backwards;         // 0 / 1
    int normalization;     // 0 / 1
} stratos_collation_options;

/// Opens a collator; NULL when ICU fails. `*fell_back` is set when ICU has no data for the
/// locale and used its root (or a parent) instead.
stratos_collator *stratos_collator_open(const char *locale, const stratos_collation_options *options, int *fell_back);
void stratos_collator_close(stratos_collator *collator);
/// Whether `locale`'s language is one ICU knows (an ISO 639 code), "xx" is not.
int stratos_locale_known(const char *locale);
/// -1, 0 or 1, comparing UTF-8 strings.
int stratos_collator_compare(const stratos_collator *collator, const char *a, int32_t a_length, const char *b, int32_t b_length);
/// The sort key of UTF-16 text, written into `key` (up to `capacity` bytes, NUL-terminated);
/// returns the length it needs, the NUL included.
int32_t stratos_collator_sort_key(const stratos_collator *collator, const uint16_t *text, int32_t length, uint8_t *key, int32_t capacity);
#endif
