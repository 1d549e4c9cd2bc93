/*
 * summarize: counts the profiles in `users` (optionally of one city) and sums and averages
 * their ages, like
 *   db.users.aggregate([{$match: {"address.city": city}},
 *                       {$group: {_id: null, count: {$sum: 1}, totalAge: {$sum: "$age"}}}])
 *
 *   db.command("callProcedure", "summarize", args={"city": "London"})
 *   -> {result: {city: "London", count: 3, totalAge: 104, averageAge: 34.67}, fuelUsed: ...}
 */
#include "stratos.h"

static uint8_t arguments[1024];
static uint8_t filter[1100];
static uint8_t document[64 * 1024];
static uint8_t result[1200];

int32_t run(void) {
    int32_t arguments_length = stratos_args_read(arguments, sizeof arguments);
    if (arguments_length > (int32_t)sizeof arguments) stratos_abort_text("args are too large");

    stratos_bson_writer w;
    stratos_bson_init(&w, filter, sizeof filter);
    stratos_bson_iter city;
    int32_t city_length = 0;
    const char *city_name = 0;
    if (stratos_bson_find(arguments, arguments_length, "city", &city)) {
        city_name = stratos_bson_iter_string(&city, &city_length);
        if (!city_name) stratos_abort_text("args.city must be a string");
        stratos_bson_append_string(&w, "address.city", city_name, city_length);
    }
    int32_t filter_length = stratos_bson_finish(&w);

    int32_t cursor = stratos_find("users", 5, filter, filter_length, 0, 0);
    if (cursor < 0) return cursor;
    int64_t count = 0;
    int64_t total_age = 0;
    for (;;) {
        int32_t length = stratos_cursor_next(cursor, document, sizeof document);
        if (length == 0) break;
        if (length < 0) return length;
        if (length > (int32_t)sizeof document) stratos_abort_text("a profile is larger than 64 KB");
        count++;
        stratos_bson_iter age;
        if (stratos_bson_find(document, length, "age", &age) && stratos_bson_iter_is_number(&age)) {
            total_age += stratos_bson_iter_int64(&age);
        }
    }
    stratos_cursor_close(cursor);

    stratos_bson_init(&w, result, sizeof result);
    if (city_name) stratos_bson_append_string(&w, "city", city_name, city_length);
    stratos_bson_append_int64(&w, "count", count);
    stratos_bson_append_int64(&w, "totalAge", total_age);
    if (count > 0) stratos_bson_append_double(&w, "averageAge", (double)total_age / (double)count);
    else stratos_bson_append_null(&w, "averageAge");
    int32_t result_length = stratos_bson_finish(&w);
    if (result_length < 0) stratos_abort_text("result buffer too small");
    return stratos_emit(result, result_length) < 0 ? 1 : 0;
}
