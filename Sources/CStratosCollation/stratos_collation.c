#include "stratos_collation.h"
#include <unicode/ucol.h>
#include <unicode/uloc.h>

int stratos_locale_known(const char *locale) {
    const char *language = uloc_getISO3Language(locale);
    return language != NULL && language[0] != 0;
}

stratos_collator *stratos_collator_open(const char *locale, const stratos_collation_options *options, int *fell_back) {
    UErrorCode status = U_ZERO_ERROR;
    UCollator *collator = ucol_open(locale, &status);
    if (U_FAILURE(status) || collator == NULL) return NULL;
    *fell_back = (status == U_USING_DEFAULT_WARNING) ? 1 : 0;
    if (options != NULL) {
        UColAttributeValue strength;
        switch (options->strength) {
        case 1: strength = UCOL_PRIMARY; break;
        case 2: strength = UCOL_SECONDARY; break;
        case 4: strength = UCOL_QUATERNARY; break;
        case 5: strength = UCOL_IDENTICAL; break;
        default: strength = UCOL_TERTIARY; break;
        }
        UErrorCode ignored = U_ZERO_ERROR;
        ucol_setAttribute(collator, UCOL_STRENGTH, strength, &ignored);
        ucol_setAttribute(collator, UCOL_CASE_LEVEL, options->case_level ? UCOL_ON : UCOL_OFF, &ignored);
        ucol_setAttribute(collator, UCOL_CASE_FIRST,
                          options->case_first == 1 ? UCOL_UPPER_FIRST : options->case_first == 2 ? UCOL_LOWER_FIRST : UCOL_OFF, &ignored);
        ucol_setAttribute(collator, UCOL_NUMERIC_COLLATION, options->numeric_ordering ? UCOL_ON : UCOL_OFF, &ignored);
        ucol_setAttribute(collator, UCOL_ALTERNATE_HANDLING, options->shifted ? UCOL_SHIFTED : UCOL_NON_IGNORABLE, &ignored);
        ucol_setMaxVariable(collator, options->max_variable_space ? UCOL_REORDER_CODE_SPACE : UCOL_REORDER_CODE_PUNCTUATION, &ignored);
        ucol_setAttribute(collator, UCOL_FRENCH_COLLATION, options->backwards ? UCOL_ON : UCOL_OFF, &ignored);
        ucol_setAttribute(collator, UCOL_NORMALIZATION_MODE, options->normalization ? UCOL_ON : UCOL_OFF, &ignored);
    }
    return (stratos_collator *)collator;
}

void stratos_collator_close(stratos_collator *collator) { ucol_close((UCollator *)collator); }

int stratos_collator_compare(const stratos_collator *collator, const char *a, int32_t a_length, const char *b, int32_t b_length) {
    UErrorCode status = U_ZERO_ERROR;
    return (int)ucol_strcollUTF8((const UCollator *)collator, a, a_length, b, b_length, &status);
}

int32_t stratos_collator_sort_key(const stratos_collator *collator, const uint16_t *text, int32_t length, uint8_t *key, int32_t capacity) {
    return ucol_getSortKey((const UCollator *)collator, (const UChar *)text, length, key, capacity);
}
