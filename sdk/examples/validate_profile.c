/*
 * validate_profile: a validation trigger for profile writes. Apps call it instead of inserting
 * directly; it checks the profile and inserts it into `users`, or refuses it with a reason and
 * writes nothing:
 *   - name: a non-empty string of at most 100 bytes
 *   - email: a string with one '@' that is neither first nor last
 *   - age (optional): a whole number from 0 to 150
 *
 *   db.command("callProcedure", "validate_profile", args={"profile": {...}})
 *   -> {result: {inserted: true}}, or ProcedureAborted "invalid profile: email ..."
 */
#include "stratos.h"

static uint8_t arguments[64 * 1024];

int32_t run(void) {
    int32_t length = stratos_args_read(arguments, sizeof arguments);
    if (length > (int32_t)sizeof arguments) stratos_abort_text("invalid profile: larger than 64 KB");

    stratos_bson_iter profile;
    if (!stratos_bson_find(arguments, length, "profile", &profile) || profile.type != STRATOS_BSON_DOCUMENT) {
        stratos_abort_text("invalid profile: pass it as args.profile (a document)");
    }
    const uint8_t *document = profile.value;
    int32_t document_length = profile.value_length;

    stratos_bson_iter field;
    int32_t text_length = 0;
    const char *text;
    if (!stratos_bson_find(document, document_length, "name", &field) || !(text = stratos_bson_iter_string(&field, &text_length))
        || text_length == 0 || text_length > 100) {
        stratos_abort_text("invalid profile: name must be a non-empty string of at most 100 bytes");
    }
    if (!stratos_bson_find(document, document_length, "email", &field) || !(text = stratos_bson_iter_string(&field, &text_length))) {
        stratos_abort_text("invalid profile: email must be a string");
    }
    int32_t at = -1, ats = 0;
    for (int32_t i = 0; i < text_length; i++) if (text[i] == '@') { at = i; ats++; }
    if (ats != 1 || at == 0 || at == text_length - 1) stratos_abort_text("invalid profile: email must look like name@domain");
    if (stratos_bson_find(document, document_length, "age", &field)) {
        if (field.type != STRATOS_BSON_INT32 && field.type != STRATOS_BSON_INT64) stratos_abort_text("invalid profile: age must be a whole number");
        int64_t age = stratos_bson_iter_int64(&field);
        if (age < 0 || age > 150) stratos_abort_text("invalid profile: age must be between 0 and 150");
    }

    int32_t inserted = stratos_insert("users", 5, document, document_length);
    if (inserted < 0) {
        /* Pass on the node's reason (for example a duplicate _id); a longer one than fits is summarized. */
        static char message[1024];
        int32_t message_length = stratos_error(message, sizeof message);
        if (message_length > (int32_t)sizeof message) stratos_abort_text("the insert failed");
        stratos_abort(message, message_length);
    }
    uint8_t result[32];
    stratos_bson_writer w;
    stratos_bson_init(&w, result, sizeof result);
    stratos_bson_append_bool(&w, "inserted", 1);
    return stratos_emit(result, stratos_bson_finish(&w)) < 0 ? 1 : 0;
}
