#ifndef STRATOS_CSODIUM_SHIM_H
#define STRATOS_CSODIUM_SHIM_H
#include <sodium.h>
#endif
