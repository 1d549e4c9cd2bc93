/*
 * migrate: a data migration. Every profile in `users` whose schemaVersion is not 2 gets its
 * email lower-cased and schemaVersion set to 2, in one transaction: either every profile is
 * migrated (one signed commit) or, if anything fails, none is.
 *
 *   db.command("callProcedure", "migrate")  ->  {result: {migrated: 1250}, ...}
 */
#include "stratos.h"

static uint8_t document[64 * 1024];
static uint8_t filter[512];
static uint8_t update[1024];
static char email[256];

int32_t run(void) {
    /* {schemaVersion: {$ne: 2}} */
    stratos_bson_writer w;
    stratos_bson_init(&w, filter, sizeof filter);
    stratos_bson_begin(&w, "schemaVersion", STRATOS_BSON_DOCUMENT);
    stratos_bson_append_int32(&w, "$ne", 2);
    stratos_bson_end(&w);
    int32_t filter_length = stratos_bson_finish(&w);

    int32_t cursor = stratos_find("users", 5, filter, filter_length, 0, 0);
    if (cursor < 0) return cursor;
    int32_t migrated = 0;
    for (;;) {
        int32_t length = stratos_cursor_next(cursor, document, sizeof document);
        if (length == 0) break;
        if (length < 0) return length;
        if (length > (int32_t)sizeof document) stratos_abort_text("a profile is larger than 64 KB");

        stratos_bson_iter id;
        if (!stratos_bson_find(document, length, "_id", &id)) stratos_abort_text("a profile has no _id");
        uint8_t by_id[512];
        stratos_bson_init(&w, by_id, sizeof by_id);
        stratos_bson_append_value(&w, "_id", id.type, id.value, id.value_length);
        int32_t by_id_length = stratos_bson_finish(&w);
        if (by_id_length < 0) stratos_abort_text("an _id is too large");

        /* {$set: {email: lower(email), schemaVersion: 2}} */
        stratos_bson_init(&w, update, sizeof update);
        stratos_bson_begin(&w, "$set", STRATOS_BSON_DOCUMENT);
        stratos_bson_iter field;
        int32_t email_length = 0;
        const char *text = stratos_bson_find(document, length, "email", &field) ? stratos_bson_iter_string(&field, &email_length) : 0;
        if (text && email_length > (int32_t)sizeof email) stratos_abort_text("an email is longer than 256 bytes: nothing was migrated");
        if (text) {
            for (int32_t i = 0; i < email_length; i++) {
                char c = text[i];
                email[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
            }
            stratos_bson_append_string(&w, "email", email, email_length);
        }
        stratos_bson_append_int32(&w, "schemaVersion", 2);
        stratos_bson_end(&w);
        int32_t update_length = stratos_bson_finish(&w);
        if (update_length < 0) stratos_abort_text("update buffer too small");

        int32_t changed = stratos_update("users", 5, by_id, by_id_length, update, update_length, 0);
        if (changed < 0) return changed;
        migrated += changed;
    }
    stratos_cursor_close(cursor);

    uint8_t result[64];
    stratos_bson_init(&w, result, sizeof result);
    stratos_bson_append_int32(&w, "migrated", migrated);
    int32_t result_length = stratos_bson_finish(&w);
    return stratos_emit(result, result_length) < 0 ? 1 : 0;
}
