#ifndef STRATOS_CDECIMAL_SHIM_H
#define STRATOS_CDECIMAL_SHIM_H
// Intel's Decimal Floating-Point Math Library (Debian's libintelrdfpmath-dev), the IEEE
// 754-2008 decimal arithmetic MongoDB itself uses for decimal128. `libbidgcc000` is the build
// whose functions take their arguments by value and the rounding mode and status flags as
// parameters (no global state: safe on every thread). The library's names are macros, so the
// node calls these wrappers; every result rounds to nearest, ties to even, as MongoDB's does.
#include <bid_conf.h>
#include <bid_functions.h>

typedef BID_UINT128 stratos_decimal;

#define STRATOS_DEC_BINARY(name) \
    static inline stratos_decimal stratos_dec_##name(stratos_decimal x, stratos_decimal y, unsigned int *flags) { \
        _IDEC_flags f = 0; stratos_decimal r = bid128_##name(x, y, BID_ROUNDING_TO_NEAREST, &f); *flags |= f; return r; }
#define STRATOS_DEC_UNARY(name) \
    static inline stratos_decimal stratos_dec_##name(stratos_decimal x, unsigned int *flags) { \
        _IDEC_flags f = 0; stratos_decimal r = bid128_##name(x, BID_ROUNDING_TO_NEAREST, &f); *flags |= f; return r; }

STRATOS_DEC_BINARY(add)
STRATOS_DEC_BINARY(sub)
STRATOS_DEC_BINARY(mul)
STRATOS_DEC_BINARY(div)
STRATOS_DEC_BINARY(pow)
STRATOS_DEC_BINARY(quantize)
STRATOS_DEC_UNARY(sqrt)
STRATOS_DEC_UNARY(exp)
STRATOS_DEC_UNARY(log)
STRATOS_DEC_UNARY(log10)
STRATOS_DEC_UNARY(sin)
STRATOS_DEC_UNARY(cos)
STRATOS_DEC_UNARY(tan)
STRATOS_DEC_UNARY(asin)
STRATOS_DEC_UNARY(acos)
STRATOS_DEC_UNARY(atan)
STRATOS_DEC_UNARY(sinh)
STRATOS_DEC_UNARY(cosh)
STRATOS_DEC_UNARY(tanh)
STRATOS_DEC_UNARY(asinh)
STRATOS_DEC_UNARY(acosh)
STRATOS_DEC_UNARY(atanh)
STRATOS_DEC_BINARY(atan2)

static inline stratos_decimal stratos_dec_fmod(stratos_decimal x, stratos_decimal y, unsigned int *flags) {
    _IDEC_flags f = 0; stratos_decimal r = bid128_fmod(x, y, &f); *flags |= f; return r;
}
static inline stratos_decimal stratos_dec_round_integral(stratos_decimal x, int mode, unsigned int *flags) {
    _IDEC_flags f = 0;
    stratos_decimal r;
    switch (mode) {
    case 1: r = bid128_round_integral_negative(x, &f); break;   // floor
    case 2: r = bid128_round_integral_positive(x, &f); break;   // ceil
    case 3: r = bid128_round_integral_zero(x, &f); break;       // trunc
    default: r = bid128_round_integral_nearest_even(x, &f); break;
    }
    *flags |= f;
    return r;
}
/// Quantize with a chosen rounding: 0 nearest-even, 3 toward zero.
static inline stratos_decimal stratos_dec_quantize_rounding(stratos_decimal x, stratos_decimal y, int toward_zero, unsigned int *flags) {
    _IDEC_flags f = 0;
    stratos_decimal r = bid128_quantize(x, y, toward_zero ? BID_ROUNDING_TO_ZERO : BID_ROUNDING_TO_NEAREST, &f);
    *flags |= f;
    return r;
}
static inline int stratos_dec_less(stratos_decimal x, stratos_decimal y) { _IDEC_flags f = 0; return bid128_quiet_less(x, y, &f); }
static inline int stratos_dec_equal(stratos_decimal x, stratos_decimal y) { _IDEC_flags f = 0; return bid128_quiet_equal(x, y, &f); }
static inline int stratos_dec_is_zero(stratos_decimal x) { return bid128_isZero(x); }
static inline stratos_decimal stratos_dec_abs(stratos_decimal x) { return bid128_abs(x); }
static inline stratos_decimal stratos_dec_negate(stratos_decimal x) { return bid128_negate(x); }
static inline stratos_decimal stratos_dec_from_int64(long long x) { return bid128_from_int64(x); }
static inline stratos_decimal stratos_dec_from_double(double x, unsigned int *flags) {
    _IDEC_flags f = 0; stratos_decimal r = binary64_to_bid128(x, BID_ROUNDING_TO_NEAREST, &f); *flags |= f; return r;
}
static inline double stratos_dec_to_double(stratos_decimal x) {
    _IDEC_flags f = 0; return bid128_to_binary64(x, BID_ROUNDING_TO_NEAREST, &f);
}
/// Toward zero; sets the invalid flag when the value has no int64 form.
static inline long long stratos_dec_to_int64_truncating(stratos_decimal x, unsigned int *flags) {
    _IDEC_flags f = 0; long long r = bid128_to_int64_xint(x, &f); *flags |= (f & BID_INVALID_EXCEPTION); return r;
}
static inline stratos_decimal stratos_dec_from_string(const char *text, unsigned int *flags) {
    _IDEC_flags f = 0; stratos_decimal r = bid128_from_string((char *)text, BID_ROUNDING_TO_NEAREST, &f); *flags |= f; return r;
}
static inline unsigned int stratos_dec_flag_invalid(void) { return BID_INVALID_EXCEPTION; }
static inline unsigned int stratos_dec_flag_inexact(void) { return BID_INEXACT_EXCEPTION; }
#endif
