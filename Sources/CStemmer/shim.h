#ifndef STRATOS_CSTEMMER_SHIM_H
#define STRATOS_CSTEMMER_SHIM_H
// Snowball's stemmers (Debian's libstemmer), the ones MongoDB's text search stems with.
#include <libstemmer.h>
#endif
