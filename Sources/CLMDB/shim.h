#ifndef STRATOS_CLMDB_SHIM_H
#define STRATOS_CLMDB_SHIM_H
#include <lmdb.h>
#endif
