#ifndef STRATOS_CPCRE2_SHIM_H
#define STRATOS_CPCRE2_SHIM_H
// MongoDB's regular expression engine. The 8-bit library: Swift calls the `_8` functions
// directly, since the unsuffixed names are macros.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static inline size_t stratos_pcre2_zero_terminated(void) { return PCRE2_ZERO_TERMINATED; }
#endif
