/*
 * StratosDB interoperability program for the official C driver (libmongoc 1.23).
 *
 * A small "user directory" application: it creates indexes, inserts users and typed documents,
 * queries, pages through a cursor, counts, updates, aggregates, deletes and finally drops its
 * database, checking every answer against its own model of the data it wrote.
 *
 * Env: MONGODB_URI, STRATOS_DB. STRATOS_TRACE=1 prints every command the driver sends and every
 * reply it gets (APM command monitoring), which is what a server bug report needs.
 * Prints "ok: <what>" per check; on the first failure prints "FAIL: ..." and exits 1.
 */
#include <math.h>
#include <mongoc/mongoc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_USERS 60
#define BATCH 7

static const char *CITIES[4] = {"Paris", "Oslo", "Lima", "Rome"};

/* The program's own model of the users collection. */
typedef struct {
   int present;
   int id;
   char name[32];
   char email[48];
   const char *city;
   int age;
   double score;
   int64_t visits;
   int active;
} user_t;

static user_t users[N_USERS];
static const char *current_check = "setup";
static int trace = 0;

/* APM bookkeeping for the cursor check. */
static int getmore_count = 0;
static int batch_count = 0;
static int max_batch = 0;
static int64_t last_cursor_id = -1;
static int killcursors_sent = 0;
static int64_t killed_cursor = 0; /* the id the server reported in cursorsKilled */
static char last_command[4096];
static char last_reply[4096];

static void
fail (const char *fmt, ...)
{
   va_list ap;
   fprintf (stdout, "FAIL: [%s] ", current_check);
   va_start (ap, fmt);
   vfprintf (stdout, fmt, ap);
   va_end (ap);
   fprintf (stdout, "\n");
   if (last_command[0]) {
      fprintf (stdout, "  last command sent: %s\n", last_command);
   }
   if (last_reply[0]) {
      fprintf (stdout, "  last reply:        %s\n", last_reply);
   }
   fflush (stdout);
   exit (1);
}

static void
ok (const char *what)
{
   printf ("ok: %s\n", what);
   fflush (stdout);
}

static void
copy_json (char *dst, size_t cap, const bson_t *doc)
{
   char *json = bson_as_canonical_extended_json (doc, NULL);
   snprintf (dst, cap, "%s", json ? json : "(unprintable)");
   bson_free (json);
}

static void
on_started (const mongoc_apm_command_started_t *event)
{
   const char *name = mongoc_apm_command_started_get_command_name (event);
   const bson_t *cmd = mongoc_apm_command_started_get_command (event);
   copy_json (last_command, sizeof last_command, cmd);
   last_reply[0] = '\0';
   if (strcmp (name, "getMore") == 0) {
      getmore_count++;
   }
   if (strcmp (name, "killCursors") == 0) {
      killcursors_sent++;
   }
   if (trace) {
      fprintf (stderr, ">> %s\n", last_command);
   }
}

static void
note_batch (const bson_t *reply, const char *key)
{
   bson_iter_t it, child;
   char path[64];
   snprintf (path, sizeof path, "cursor.%s", key);
   if (bson_iter_init (&it, reply) && bson_iter_find_descendant (&it, path, &child) &&
       BSON_ITER_HOLDS_ARRAY (&child)) {
      bson_iter_t arr;
      int n = 0;
      bson_iter_recurse (&child, &arr);
      while (bson_iter_next (&arr)) {
         n++;
      }
      batch_count++;
      if (n > max_batch) {
         max_batch = n;
      }
   }
   if (bson_iter_init (&it, reply) && bson_iter_find_descendant (&it, "cursor.id", &child)) {
      last_cursor_id = bson_iter_as_int64 (&child);
   }
}

static void
on_succeeded (const mongoc_apm_command_succeeded_t *event)
{
   const char *name = mongoc_apm_command_succeeded_get_command_name (event);
   const bson_t *reply = mongoc_apm_command_succeeded_get_reply (event);
   copy_json (last_reply, sizeof last_reply, reply);
   if (strcmp (name, "killCursors") == 0) {
      bson_iter_t it, arr;
      if (bson_iter_init_find (&it, reply, "cursorsKilled") && BSON_ITER_HOLDS_ARRAY (&it) &&
          bson_iter_recurse (&it, &arr) && bson_iter_next (&arr)) {
         killed_cursor = bson_iter_as_int64 (&arr);
      }
   }
   if (strcmp (name, "find") == 0) {
      note_batch (reply, "firstBatch");
   } else if (strcmp (name, "getMore") == 0) {
      note_batch (reply, "nextBatch");
   }
   if (trace) {
      fprintf (stderr, "<< %s\n", last_reply);
   }
}

static void
on_failed (const mongoc_apm_command_failed_t *event)
{
   const bson_t *reply = mongoc_apm_command_failed_get_reply (event);
   copy_json (last_reply, sizeof last_reply, reply);
   if (trace) {
      fprintf (stderr, "<< (failed) %s\n", last_reply);
   }
}

/* ---------- small helpers ---------- */

static int64_t
get_int (const bson_t *doc, const char *path)
{
   bson_iter_t it, child;
   if (!bson_iter_init (&it, doc) || !bson_iter_find_descendant (&it, path, &child)) {
      char *json = bson_as_canonical_extended_json (doc, NULL);
      fail ("field '%s' missing in %s", path, json);
   }
   if (!BSON_ITER_HOLDS_NUMBER (&child)) {
      char *json = bson_as_canonical_extended_json (doc, NULL);
      fail ("field '%s' is not a number in %s", path, json);
   }
   return bson_iter_as_int64 (&child);
}

static int
has_field (const bson_t *doc, const char *path)
{
   bson_iter_t it, child;
   return bson_iter_init (&it, doc) && bson_iter_find_descendant (&it, path, &child);
}

static int
doc_id (const bson_t *doc)
{
   return (int) get_int (doc, "_id");
}

static char *
json (const bson_t *doc)
{
   return bson_as_canonical_extended_json (doc, NULL);
}

static mongoc_cursor_t *
check_cursor_error (mongoc_cursor_t *cursor, const char *what)
{
   bson_error_t error;
   const bson_t *reply;
   if (mongoc_cursor_error_document (cursor, &error, &reply)) {
      fail ("%s: cursor error %u.%u: %s", what, error.domain, error.code, error.message);
   }
   return cursor;
}

static void
build_user (bson_t *doc, const user_t *u)
{
   char key[16];
   bson_t tags;
   bson_init (doc);
   BSON_APPEND_INT32 (doc, "_id", u->id);
   BSON_APPEND_UTF8 (doc, "name", u->name);
   BSON_APPEND_UTF8 (doc, "email", u->email);
   BSON_APPEND_UTF8 (doc, "city", u->city);
   BSON_APPEND_INT32 (doc, "age", u->age);
   BSON_APPEND_DOUBLE (doc, "score", u->score);
   BSON_APPEND_INT64 (doc, "visits", u->visits);
   BSON_APPEND_BOOL (doc, "active", u->active);
   BSON_APPEND_ARRAY_BEGIN (doc, "tags", &tags);
   snprintf (key, sizeof key, "t%d", u->id % 3);
   BSON_APPEND_UTF8 (&tags, "0", key);
   BSON_APPEND_UTF8 (&tags, "1", "all");
   bson_append_array_end (doc, &tags);
}

/* Typed documents: every BSON type the application stores. */
static void
build_typed (bson_t *doc, const bson_oid_t *oid, int seq)
{
   static const uint8_t blob[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 'a', 'b'};
   static const uint8_t uuid[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
                                    0x81, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
   bson_oid_t ref;
   bson_t nested, inner, list, arr, sub, subarr, empty;
   bson_oid_init_from_string (&ref, "5f1d7a3b2c4e6a8b9c0d1e2f");

   bson_init (doc);
   BSON_APPEND_OID (doc, "_id", oid);
   BSON_APPEND_UTF8 (doc, "kind", "typed");
   BSON_APPEND_INT32 (doc, "seq", seq);
   BSON_APPEND_DATE_TIME (doc, "when", 1700000000123LL + seq);
   BSON_APPEND_DATE_TIME (doc, "before1970", -31536000000LL);
   BSON_APPEND_BINARY (doc, "blob", BSON_SUBTYPE_BINARY, blob, sizeof blob);
   BSON_APPEND_BINARY (doc, "uuid", BSON_SUBTYPE_UUID, uuid, sizeof uuid);
   BSON_APPEND_OID (doc, "ref", &ref);
   BSON_APPEND_INT64 (doc, "big", 9007199254740993LL); /* 2^53 + 1: not exact as a double */
   BSON_APPEND_INT64 (doc, "neg64", -5000000000LL);
   BSON_APPEND_INT64 (doc, "small64", 7); /* an int64 that fits in int32 must stay int64 */
   BSON_APPEND_INT32 (doc, "i32", -42);
   BSON_APPEND_DOUBLE (doc, "ratio", 3.25);
   BSON_APPEND_DOUBLE (doc, "whole", 2.0); /* a double holding an integer must stay a double */
   BSON_APPEND_DOUBLE (doc, "tiny", 1e-300);
   BSON_APPEND_UTF8 (doc, "text", "h\xc3\xa9llo \xe2\x9c\x93");
   BSON_APPEND_BOOL (doc, "flag", true);
   BSON_APPEND_NULL (doc, "nothing");
   BSON_APPEND_DOCUMENT_BEGIN (doc, "nested", &nested);
   BSON_APPEND_DOCUMENT_BEGIN (&nested, "a", &inner);
   BSON_APPEND_UTF8 (&inner, "b", "deep");
   BSON_APPEND_ARRAY_BEGIN (&inner, "c", &list);
   BSON_APPEND_INT32 (&list, "0", 1);
   BSON_APPEND_INT64 (&list, "1", 2);
   BSON_APPEND_DOCUMENT_BEGIN (&list, "2", &sub);
   BSON_APPEND_NULL (&sub, "d");
   BSON_APPEND_DATE_TIME (&sub, "at", 86400000LL);
   bson_append_document_end (&list, &sub);
   bson_append_array_end (&inner, &list);
   bson_append_document_end (&nested, &inner);
   BSON_APPEND_INT64 (&nested, "n", 7);
   bson_append_document_end (doc, &nested);
   BSON_APPEND_ARRAY_BEGIN (doc, "arr", &arr);
   BSON_APPEND_INT32 (&arr, "0", 1);
   BSON_APPEND_UTF8 (&arr, "1", "two");
   BSON_APPEND_DOUBLE (&arr, "2", 3.5);
   BSON_APPEND_NULL (&arr, "3");
   BSON_APPEND_DOCUMENT_BEGIN (&arr, "4", &sub);
   BSON_APPEND_BOOL (&sub, "x", true);
   bson_append_document_end (&arr, &sub);
   BSON_APPEND_ARRAY_BEGIN (&arr, "5", &subarr);
   BSON_APPEND_INT32 (&subarr, "0", 9);
   bson_append_array_end (&arr, &subarr);
   BSON_APPEND_OID (&arr, "6", &ref);
   bson_append_array_end (doc, &arr);
   BSON_APPEND_DOCUMENT_BEGIN (doc, "emptyDoc", &empty);
   bson_append_document_end (doc, &empty);
   BSON_APPEND_ARRAY_BEGIN (doc, "emptyArr", &empty);
   bson_append_array_end (doc, &empty);
}

static const char *
type_name (bson_type_t t)
{
   switch (t) {
   case BSON_TYPE_DOUBLE: return "double";
   case BSON_TYPE_UTF8: return "string";
   case BSON_TYPE_DOCUMENT: return "document";
   case BSON_TYPE_ARRAY: return "array";
   case BSON_TYPE_BINARY: return "binary";
   case BSON_TYPE_OID: return "objectId";
   case BSON_TYPE_BOOL: return "bool";
   case BSON_TYPE_DATE_TIME: return "date";
   case BSON_TYPE_NULL: return "null";
   case BSON_TYPE_INT32: return "int32";
   case BSON_TYPE_INT64: return "int64";
   default: return "other";
   }
}

/* Field by field: same keys, same order, same type, same bytes. */
static void
compare_typed (const bson_t *expected, const bson_t *actual, const char *label)
{
   bson_iter_t e, a;
   bson_iter_init (&e, expected);
   bson_iter_init (&a, actual);
   while (bson_iter_next (&e)) {
      bson_t one_e = BSON_INITIALIZER, one_a = BSON_INITIALIZER;
      if (!bson_iter_next (&a)) {
         fail ("%s: field '%s' missing (document ends early): %s", label, bson_iter_key (&e), json (actual));
      }
      if (strcmp (bson_iter_key (&e), bson_iter_key (&a)) != 0) {
         fail ("%s: expected field '%s' but found '%s' at that position: %s", label, bson_iter_key (&e),
               bson_iter_key (&a), json (actual));
      }
      if (bson_iter_type (&e) != bson_iter_type (&a)) {
         fail ("%s: field '%s' came back as %s, stored as %s", label, bson_iter_key (&e),
               type_name (bson_iter_type (&a)), type_name (bson_iter_type (&e)));
      }
      bson_append_iter (&one_e, NULL, 0, &e);
      bson_append_iter (&one_a, NULL, 0, &a);
      if (!bson_equal (&one_e, &one_a)) {
         fail ("%s: field '%s' changed: stored %s, read back %s", label, bson_iter_key (&e), json (&one_e),
               json (&one_a));
      }
      bson_destroy (&one_e);
      bson_destroy (&one_a);
   }
   if (bson_iter_next (&a)) {
      fail ("%s: unexpected extra field '%s'", label, bson_iter_key (&a));
   }
}

static int
cmp_age_desc_id_asc (const void *x, const void *y)
{
   const user_t *a = *(const user_t *const *) x, *b = *(const user_t *const *) y;
   if (a->age != b->age) {
      return b->age - a->age;
   }
   return a->id - b->id;
}

static int
find_int_in_array (const int *values, int n, int v)
{
   for (int i = 0; i < n; i++) {
      if (values[i] == v) {
         return 1;
      }
   }
   return 0;
}

int
main (void)
{
   const char *uri_string = getenv ("MONGODB_URI");
   const char *db_name = getenv ("STRATOS_DB");
   mongoc_client_t *client;
   mongoc_database_t *db;
   mongoc_collection_t *coll, *types;
   mongoc_apm_callbacks_t *callbacks;
   bson_error_t error;
   bson_t reply;
   const bson_t *doc;
   mongoc_cursor_t *cursor;
   char msg[512];

   if (!uri_string || !db_name) {
      fprintf (stderr, "MONGODB_URI and STRATOS_DB must be set\n");
      return 2;
   }
   trace = getenv ("STRATOS_TRACE") && strcmp (getenv ("STRATOS_TRACE"), "1") == 0;

   mongoc_init ();
   client = mongoc_client_new (uri_string);
   if (!client) {
      fprintf (stderr, "bad URI %s\n", uri_string);
      return 2;
   }
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   mongoc_client_set_appname (client, "stratosdb-interop-c");
   callbacks = mongoc_apm_callbacks_new ();
   mongoc_apm_set_command_started_cb (callbacks, on_started);
   mongoc_apm_set_command_succeeded_cb (callbacks, on_succeeded);
   mongoc_apm_set_command_failed_cb (callbacks, on_failed);
   mongoc_client_set_apm_callbacks (client, callbacks, NULL);

   db = mongoc_client_get_database (client, db_name);
   coll = mongoc_database_get_collection (db, "users");
   types = mongoc_database_get_collection (db, "types");

   /* Clean slate; "ns not found" style errors are fine here. */
   current_check = "setup: drop database";
   {
      bson_t *ping = BCON_NEW ("ping", BCON_INT32 (1));
      if (!mongoc_client_command_simple (client, "admin", ping, NULL, &reply, &error)) {
         fail ("cannot reach %s: %s", uri_string, error.message);
      }
      bson_destroy (&reply);
      bson_destroy (ping);
      mongoc_database_drop (db, &error);
   }

   /* ---------- 1. indexes ---------- */
   current_check = "1 indexes";
   {
      bson_t *cmd = BCON_NEW ("createIndexes", BCON_UTF8 ("users"),
                              "indexes", "[",
                                 "{", "key", "{", "email", BCON_INT32 (1), "}",
                                      "name", BCON_UTF8 ("email_1"), "unique", BCON_BOOL (true), "}",
                                 "{", "key", "{", "city", BCON_INT32 (1), "age", BCON_INT32 (-1), "}",
                                      "name", BCON_UTF8 ("city_1_age_-1"), "}",
                              "]");
      int seen_id = 0, seen_email = 0, seen_city = 0, n = 0;
      if (!mongoc_database_write_command_with_opts (db, cmd, NULL, &reply, &error)) {
         fail ("createIndexes failed: %u.%u %s", error.domain, error.code, error.message);
      }
      if (get_int (&reply, "numIndexesAfter") != 3) {
         fail ("createIndexes reply numIndexesAfter != 3: %s", json (&reply));
      }
      bson_destroy (&reply);
      bson_destroy (cmd);

      cursor = mongoc_collection_find_indexes_with_opts (coll, NULL);
      while (mongoc_cursor_next (cursor, &doc)) {
         bson_iter_t it;
         const char *name = NULL;
         bson_t key;
         const uint8_t *data;
         uint32_t len;
         n++;
         if (bson_iter_init_find (&it, doc, "name") && BSON_ITER_HOLDS_UTF8 (&it)) {
            name = bson_iter_utf8 (&it, NULL);
         }
         if (!name || !bson_iter_init_find (&it, doc, "key") || !BSON_ITER_HOLDS_DOCUMENT (&it)) {
            fail ("index entry without name/key: %s", json (doc));
         }
         bson_iter_document (&it, &len, &data);
         bson_init_static (&key, data, len);
         if (strcmp (name, "_id_") == 0) {
            bson_t *want = BCON_NEW ("_id", BCON_INT32 (1));
            seen_id = 1;
            if (!bson_equal (&key, want) && get_int (&key, "_id") != 1) {
               fail ("_id_ key wrong: %s", json (doc));
            }
            bson_destroy (want);
         } else if (strcmp (name, "email_1") == 0) {
            bson_iter_t u;
            seen_email = 1;
            if (get_int (&key, "email") != 1 || bson_count_keys (&key) != 1) {
               fail ("email_1 key wrong: %s", json (doc));
            }
            if (!bson_iter_init_find (&u, doc, "unique") || !bson_iter_as_bool (&u)) {
               fail ("email_1 is not reported unique: %s", json (doc));
            }
         } else if (strcmp (name, "city_1_age_-1") == 0) {
            bson_iter_t k;
            seen_city = 1;
            /* key order matters for a compound index: city first, then age */
            if (!bson_iter_init (&k, &key) || !bson_iter_next (&k) || strcmp (bson_iter_key (&k), "city") != 0 ||
                bson_iter_as_int64 (&k) != 1 || !bson_iter_next (&k) || strcmp (bson_iter_key (&k), "age") != 0 ||
                bson_iter_as_int64 (&k) != -1 || bson_iter_next (&k)) {
               fail ("city_1_age_-1 key wrong: %s", json (doc));
            }
         } else {
            fail ("unexpected index %s", json (doc));
         }
      }
      check_cursor_error (cursor, "listIndexes");
      mongoc_cursor_destroy (cursor);
      if (!(seen_id && seen_email && seen_city && n == 3)) {
         fail ("listIndexes returned %d indexes (_id_=%d email_1=%d city_1_age_-1=%d)", n, seen_id, seen_email,
               seen_city);
      }
      ok ("1 createIndexes (unique email_1, compound city_1_age_-1) and listIndexes names/keys/unique");
   }

   /* ---------- 2. inserts with mixed BSON types ---------- */
   current_check = "2 inserts";
   {
      bson_oid_t oids[3];
      bson_t typed[3];
      const bson_t *many[2];
      mongoc_bulk_operation_t *bulk;
      bson_t user;

      for (int i = 0; i < N_USERS; i++) {
         user_t *u = &users[i];
         u->present = 1;
         u->id = i;
         snprintf (u->name, sizeof u->name, "user%02d", i);
         snprintf (u->email, sizeof u->email, "user%02d@example.com", i);
         u->city = CITIES[i % 4];
         u->age = 20 + (i * 17) % 45; /* 20..64, with repeats so the _id tie-break matters */
         u->score = i * 1.25;
         u->visits = (int64_t) i * 1000000000LL;
         u->active = i % 2 == 0;
      }

      /* single insert */
      build_user (&user, &users[0]);
      if (!mongoc_collection_insert_one (coll, &user, NULL, &reply, &error)) {
         fail ("insert_one failed: %s", error.message);
      }
      if (get_int (&reply, "insertedCount") != 1) {
         fail ("insert_one reply: %s", json (&reply));
      }
      bson_destroy (&reply);
      bson_destroy (&user);

      /* bulk insert of the rest */
      bulk = mongoc_collection_create_bulk_operation_with_opts (coll, NULL);
      for (int i = 1; i < N_USERS; i++) {
         build_user (&user, &users[i]);
         if (!mongoc_bulk_operation_insert_with_opts (bulk, &user, NULL, &error)) {
            fail ("bulk insert append: %s", error.message);
         }
         bson_destroy (&user);
      }
      if (!mongoc_bulk_operation_execute (bulk, &reply, &error)) {
         fail ("bulk insert failed: %s / %s", error.message, json (&reply));
      }
      if (get_int (&reply, "nInserted") != N_USERS - 1) {
         fail ("bulk nInserted wrong: %s", json (&reply));
      }
      bson_destroy (&reply);
      mongoc_bulk_operation_destroy (bulk);

      /* typed documents: one single insert, two through insert_many */
      for (int k = 0; k < 3; k++) {
         bson_oid_init (&oids[k], NULL);
         build_typed (&typed[k], &oids[k], k);
      }
      if (!mongoc_collection_insert_one (types, &typed[0], NULL, &reply, &error)) {
         fail ("insert_one typed: %s", error.message);
      }
      bson_destroy (&reply);
      many[0] = &typed[1];
      many[1] = &typed[2];
      if (!mongoc_collection_insert_many (types, many, 2, NULL, &reply, &error)) {
         fail ("insert_many typed: %s", error.message);
      }
      if (get_int (&reply, "insertedCount") != 2) {
         fail ("insert_many reply: %s", json (&reply));
      }
      bson_destroy (&reply);

      for (int k = 0; k < 3; k += 2) { /* one from the single insert, one from the bulk */
         bson_t *filter = BCON_NEW ("_id", BCON_OID (&oids[k]));
         int found = 0;
         cursor = mongoc_collection_find_with_opts (types, filter, NULL, NULL);
         while (mongoc_cursor_next (cursor, &doc)) {
            found++;
            snprintf (msg, sizeof msg, "typed document %d", k);
            compare_typed (&typed[k], doc, msg);
         }
         check_cursor_error (cursor, "find typed");
         mongoc_cursor_destroy (cursor);
         bson_destroy (filter);
         if (found != 1) {
            fail ("find by ObjectId _id returned %d documents", found);
         }
      }
      /* query by the types themselves: a date range, an int64 beyond 2^53 and a binary value */
      {
         static const uint8_t blob[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 'a', 'b'};
         bson_t *filter = BCON_NEW ("when", "{", "$gte", BCON_DATE_TIME (1700000000124LL), "}",
                                    "big", BCON_INT64 (9007199254740993LL),
                                    "blob", BCON_BIN (BSON_SUBTYPE_BINARY, blob, sizeof blob));
         int64_t n = mongoc_collection_count_documents (types, filter, NULL, NULL, NULL, &error);
         if (n != 2) {
            fail ("count of typed docs with when >= date(...124), big == 2^53+1, blob == bytes: want 2, got %lld (%s)",
                  (long long) n, error.message);
         }
         bson_destroy (filter);
         filter = BCON_NEW ("big", BCON_DOUBLE (9007199254740992.0));
         n = mongoc_collection_count_documents (types, filter, NULL, NULL, NULL, &error);
         if (n != 0) {
            fail ("int64 2^53+1 must not equal double 2^53: count returned %lld", (long long) n);
         }
         bson_destroy (filter);
      }
      for (int k = 0; k < 3; k++) {
         bson_destroy (&typed[k]);
      }
      /* unacknowledged (w:0) inserts into a log collection: OP_MSG moreToCome, no reply; the next
         command on the same connection must see them */
      {
         mongoc_collection_t *log = mongoc_database_get_collection (db, "log");
         mongoc_write_concern_t *w0 = mongoc_write_concern_new ();
         bson_t *wopts = bson_new ();
         bson_t *all = bson_new ();
         int64_t n;
         mongoc_write_concern_set_w (w0, MONGOC_WRITE_CONCERN_W_UNACKNOWLEDGED);
         mongoc_write_concern_append (w0, wopts);
         for (int k = 0; k < 5; k++) {
            bson_t *entry = BCON_NEW ("seq", BCON_INT32 (k), "at", BCON_DATE_TIME (1700000000000LL + k));
            if (!mongoc_collection_insert_one (log, entry, wopts, NULL, &error)) {
               fail ("w:0 insert_one: %s", error.message);
            }
            bson_destroy (entry);
         }
         n = mongoc_collection_count_documents (log, all, NULL, NULL, NULL, &error);
         if (n != 5) {
            fail ("after 5 unacknowledged (w:0) inserts the next command sees %lld documents (%s)", (long long) n,
                  error.message);
         }
         bson_destroy (all);
         bson_destroy (wopts);
         mongoc_write_concern_destroy (w0);
         mongoc_collection_destroy (log);
      }
      ok ("2 insert_one + bulk insert (60 users), insert_many typed docs; date/binary/uuid/ObjectId/int64/"
          "double/nested/array/null round-trip exactly and match by value; 5 w:0 inserts visible to the next command");
   }

   /* ---------- 3. filtered, sorted, skipped, limited find ---------- */
   current_check = "3 find sort/skip/limit";
   {
      bson_t *filter = BCON_NEW ("age", "{", "$gte", BCON_INT32 (30), "}");
      bson_t *opts = BCON_NEW ("sort", "{", "age", BCON_INT32 (-1), "_id", BCON_INT32 (1), "}",
                               "skip", BCON_INT64 (3), "limit", BCON_INT64 (5));
      user_t *matching[N_USERS];
      int m = 0, got = 0;
      for (int i = 0; i < N_USERS; i++) {
         if (users[i].age >= 30) {
            matching[m++] = &users[i];
         }
      }
      qsort (matching, m, sizeof matching[0], cmp_age_desc_id_asc);
      cursor = mongoc_collection_find_with_opts (coll, filter, opts, NULL);
      while (mongoc_cursor_next (cursor, &doc)) {
         int want_index = 3 + got;
         if (want_index >= m || got >= 5) {
            fail ("too many documents: extra %s", json (doc));
         }
         if (doc_id (doc) != matching[want_index]->id || get_int (doc, "age") != matching[want_index]->age) {
            fail ("position %d: want _id %d age %d, got %s", got, matching[want_index]->id,
                  matching[want_index]->age, json (doc));
         }
         got++;
      }
      check_cursor_error (cursor, "find");
      mongoc_cursor_destroy (cursor);
      if (got != 5) {
         fail ("want 5 documents, got %d", got);
      }
      bson_destroy (filter);
      bson_destroy (opts);
      snprintf (msg, sizeof msg,
                "3 find age>=30 sort {age:-1,_id:1} skip 3 limit 5 = _ids %d,%d,%d,%d,%d (own computation)",
                matching[3]->id, matching[4]->id, matching[5]->id, matching[6]->id, matching[7]->id);
      ok (msg);
   }

   /* ---------- 4. multi-batch cursor ---------- */
   current_check = "4 cursor batchSize 7";
   {
      bson_t *filter = bson_new ();
      bson_t *opts = BCON_NEW ("batchSize", BCON_INT32 (BATCH));
      int seen[N_USERS] = {0};
      int total = 0, first_batches, first_getmores;
      getmore_count = 0;
      batch_count = 0;
      max_batch = 0;
      cursor = mongoc_collection_find_with_opts (coll, filter, opts, NULL);
      while (mongoc_cursor_next (cursor, &doc)) {
         int id = doc_id (doc);
         if (id < 0 || id >= N_USERS) {
            fail ("unexpected _id %d", id);
         }
         if (seen[id]++) {
            fail ("_id %d arrived twice (after %d documents, %d getMores)", id, total, getmore_count);
         }
         total++;
      }
      check_cursor_error (cursor, "cursor");
      mongoc_cursor_destroy (cursor);
      if (total != N_USERS) {
         fail ("cursor returned %d of %d documents (%d getMores)", total, N_USERS, getmore_count);
      }
      if (max_batch > BATCH) {
         fail ("a batch held %d documents, more than batchSize %d", max_batch, BATCH);
      }
      if (getmore_count < (N_USERS + BATCH - 1) / BATCH - 1) {
         fail ("only %d getMores for %d documents at batchSize %d", getmore_count, N_USERS, BATCH);
      }
      if (last_cursor_id != 0) {
         fail ("last batch did not close the cursor (cursor id %lld)", (long long) last_cursor_id);
      }
      bson_destroy (opts);
      first_batches = batch_count;
      first_getmores = getmore_count;

      /* batchSize with a limit and a sort: exactly the first 20 by _id, in order */
      opts = BCON_NEW ("batchSize", BCON_INT32 (BATCH), "limit", BCON_INT64 (20), "sort", "{", "_id", BCON_INT32 (1), "}");
      total = 0;
      cursor = mongoc_collection_find_with_opts (coll, filter, opts, NULL);
      while (mongoc_cursor_next (cursor, &doc)) {
         if (doc_id (doc) != total) {
            fail ("limit 20 batchSize 7 sort _id: position %d holds %s", total, json (doc));
         }
         total++;
      }
      check_cursor_error (cursor, "limited cursor");
      mongoc_cursor_destroy (cursor);
      if (total != 20) {
         fail ("limit 20 batchSize 7: got %d documents", total);
      }
      bson_destroy (opts);

      /* abandoning a cursor early makes the driver send killCursors */
      {
         int64_t open_id;
         bson_t *getmore;
         opts = BCON_NEW ("batchSize", BCON_INT32 (BATCH));
         killcursors_sent = 0;
         killed_cursor = 0;
         cursor = mongoc_collection_find_with_opts (coll, filter, opts, NULL);
         for (int k = 0; k < 10; k++) {
            if (!mongoc_cursor_next (cursor, &doc)) {
               check_cursor_error (cursor, "abandoned cursor");
               fail ("abandoned cursor ended after %d documents", k);
            }
         }
         open_id = mongoc_cursor_get_id (cursor);
         if (open_id == 0) {
            fail ("cursor id is 0 after 10 of 60 documents at batchSize 7");
         }
         mongoc_cursor_destroy (cursor);
         if (killcursors_sent != 1 || killed_cursor != open_id) {
            fail ("destroying an open cursor: want killCursors to report cursorsKilled [%lld], got %d killCursors, "
                  "cursorsKilled [%lld]",
                  (long long) open_id, killcursors_sent, (long long) killed_cursor);
         }
         getmore = BCON_NEW ("getMore", BCON_INT64 (open_id), "collection", BCON_UTF8 ("users"));
         if (mongoc_database_command_simple (db, getmore, NULL, &reply, &error) || error.code != 43) {
            fail ("getMore on a killed cursor: want error 43 (CursorNotFound), got code %u: %s", error.code,
                  json (&reply));
         }
         bson_destroy (&reply);
         bson_destroy (getmore);
         bson_destroy (opts);
      }
      bson_destroy (filter);
      snprintf (msg, sizeof msg,
                "4 cursor batchSize 7: %d documents in %d batches (%d getMores), none twice; limit+batchSize; "
                "early destroy sends killCursors, then getMore -> 43",
                N_USERS, first_batches, first_getmores);
      ok (msg);
   }

   /* ---------- 5. counts and distinct ---------- */
   current_check = "5 counts/distinct";
   {
      bson_t *filter;
      bson_t *opts;
      int64_t n;
      int want = 0;

      filter = BCON_NEW ("city", BCON_UTF8 ("Paris"));
      n = mongoc_collection_count_documents (coll, filter, NULL, NULL, &reply, &error);
      if (n != N_USERS / 4) {
         fail ("count_documents city=Paris: want %d got %lld (%s)", N_USERS / 4, (long long) n, error.message);
      }
      bson_destroy (&reply);
      bson_destroy (filter);

      filter = BCON_NEW ("age", "{", "$gte", BCON_INT32 (30), "}");
      opts = BCON_NEW ("skip", BCON_INT64 (2), "limit", BCON_INT64 (10));
      for (int i = 0; i < N_USERS; i++) {
         want += users[i].age >= 30;
      }
      want = want - 2 > 10 ? 10 : want - 2;
      n = mongoc_collection_count_documents (coll, filter, opts, NULL, &reply, &error);
      if (n != want) {
         fail ("count_documents age>=30 skip 2 limit 10: want %d got %lld (%s)", want, (long long) n, error.message);
      }
      bson_destroy (&reply);
      bson_destroy (opts);
      bson_destroy (filter);

      n = mongoc_collection_estimated_document_count (coll, NULL, NULL, &reply, &error);
      if (n != N_USERS) {
         fail ("estimated_document_count: want %d got %lld (%s)", N_USERS, (long long) n, error.message);
      }
      bson_destroy (&reply);

      /* the legacy count helper (deprecated, sends the `count` command) */
      filter = BCON_NEW ("active", BCON_BOOL (true));
      n = mongoc_collection_count_with_opts (coll, MONGOC_QUERY_NONE, filter, 0, 0, NULL, NULL, &error);
      if (n != N_USERS / 2) {
         fail ("mongoc_collection_count_with_opts active=true: want %d got %lld (%s)", N_USERS / 2, (long long) n,
               error.message);
      }
      bson_destroy (filter);

      /* and the count command itself */
      {
         bson_t *cmd = BCON_NEW ("count", BCON_UTF8 ("users"), "query", "{", "city", BCON_UTF8 ("Oslo"), "}");
         if (!mongoc_collection_read_command_with_opts (coll, cmd, NULL, NULL, &reply, &error)) {
            fail ("count command: %s", error.message);
         }
         if (get_int (&reply, "n") != N_USERS / 4) {
            fail ("count command city=Oslo: %s", json (&reply));
         }
         bson_destroy (&reply);
         bson_destroy (cmd);
      }

      /* distinct (no helper in libmongoc: the documented way is the command) */
      {
         bson_t *cmd = BCON_NEW ("distinct", BCON_UTF8 ("users"), "key", BCON_UTF8 ("city"));
         bson_iter_t it, values;
         int seen[4] = {0}, count = 0;
         if (!mongoc_collection_read_command_with_opts (coll, cmd, NULL, NULL, &reply, &error)) {
            fail ("distinct city: %s", error.message);
         }
         if (!bson_iter_init_find (&it, &reply, "values") || !BSON_ITER_HOLDS_ARRAY (&it)) {
            fail ("distinct reply without values: %s", json (&reply));
         }
         bson_iter_recurse (&it, &values);
         while (bson_iter_next (&values)) {
            int hit = 0;
            count++;
            for (int c = 0; c < 4; c++) {
               if (BSON_ITER_HOLDS_UTF8 (&values) && strcmp (bson_iter_utf8 (&values, NULL), CITIES[c]) == 0) {
                  seen[c]++;
                  hit = 1;
               }
            }
            if (!hit) {
               fail ("distinct city returned an unknown value: %s", json (&reply));
            }
         }
         if (count != 4 || !seen[0] || !seen[1] || !seen[2] || !seen[3]) {
            fail ("distinct city: want the 4 cities once each, got %s", json (&reply));
         }
         bson_destroy (&reply);
         bson_destroy (cmd);
      }
      {
         bson_t *cmd = BCON_NEW ("distinct", BCON_UTF8 ("users"), "key", BCON_UTF8 ("age"),
                                 "query", "{", "city", BCON_UTF8 ("Lima"), "age", "{", "$lt", BCON_INT32 (40), "}", "}");
         int expected[N_USERS], ne = 0, got = 0;
         bson_iter_t it, values;
         for (int i = 0; i < N_USERS; i++) {
            if (strcmp (users[i].city, "Lima") == 0 && users[i].age < 40 && !find_int_in_array (expected, ne, users[i].age)) {
               expected[ne++] = users[i].age;
            }
         }
         if (!mongoc_collection_read_command_with_opts (coll, cmd, NULL, NULL, &reply, &error)) {
            fail ("distinct age: %s", error.message);
         }
         if (!bson_iter_init_find (&it, &reply, "values") || !BSON_ITER_HOLDS_ARRAY (&it)) {
            fail ("distinct reply without values: %s", json (&reply));
         }
         bson_iter_recurse (&it, &values);
         while (bson_iter_next (&values)) {
            if (!find_int_in_array (expected, ne, (int) bson_iter_as_int64 (&values))) {
               fail ("distinct age (Lima, <40) returned unexpected %lld: %s", (long long) bson_iter_as_int64 (&values),
                     json (&reply));
            }
            got++;
         }
         if (got != ne) {
            fail ("distinct age (Lima, <40): want %d values, got %s", ne, json (&reply));
         }
         bson_destroy (&reply);
         bson_destroy (cmd);
      }
      ok ("5 count_documents (plain and skip/limit), estimated_document_count, legacy count helper + count "
          "command, distinct (with and without query)");
   }

   /* ---------- 9. aggregation and projection (run on the pristine data) ---------- */
   current_check = "9 aggregate/projection";
   {
      bson_t *pipeline = BCON_NEW ("pipeline", "[",
                                   "{", "$group", "{", "_id", BCON_UTF8 ("$city"),
                                        "avgAge", "{", "$avg", BCON_UTF8 ("$age"), "}",
                                        "n", "{", "$sum", BCON_INT32 (1), "}", "}", "}",
                                   "{", "$sort", "{", "avgAge", BCON_INT32 (-1), "_id", BCON_INT32 (1), "}", "}",
                                   "]");
      double avg[4] = {0};
      int cnt[4] = {0}, order[4] = {0, 1, 2, 3}, got = 0;
      for (int i = 0; i < N_USERS; i++) {
         avg[i % 4] += users[i].age;
         cnt[i % 4]++;
      }
      for (int c = 0; c < 4; c++) {
         avg[c] /= cnt[c];
      }
      for (int a = 0; a < 4; a++) { /* sort avgAge desc, then name asc */
         for (int b = a + 1; b < 4; b++) {
            int x = order[a], y = order[b];
            if (avg[y] > avg[x] || (avg[y] == avg[x] && strcmp (CITIES[y], CITIES[x]) < 0)) {
               order[a] = y;
               order[b] = x;
            }
         }
      }
      cursor = mongoc_collection_aggregate (coll, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
      while (mongoc_cursor_next (cursor, &doc)) {
         bson_iter_t it;
         int c;
         if (got >= 4) {
            fail ("extra group %s", json (doc));
         }
         c = order[got];
         if (!bson_iter_init_find (&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8 (&it) ||
             strcmp (bson_iter_utf8 (&it, NULL), CITIES[c]) != 0) {
            fail ("group %d: want %s (avg %.4f), got %s", got, CITIES[c], avg[c], json (doc));
         }
         if (!bson_iter_init_find (&it, doc, "avgAge") || !BSON_ITER_HOLDS_DOUBLE (&it) ||
             fabs (bson_iter_double (&it) - avg[c]) > 1e-9) {
            fail ("group %s: want avgAge %.6f (double), got %s", CITIES[c], avg[c], json (doc));
         }
         if (get_int (doc, "n") != cnt[c]) {
            fail ("group %s: want n %d, got %s", CITIES[c], cnt[c], json (doc));
         }
         got++;
      }
      check_cursor_error (cursor, "aggregate");
      mongoc_cursor_destroy (cursor);
      if (got != 4) {
         fail ("want 4 groups, got %d", got);
      }
      bson_destroy (pipeline);

      {
         bson_t *filter = BCON_NEW ("_id", "{", "$in", "[", BCON_INT32 (5), BCON_INT32 (6), "]", "}");
         bson_t *opts = BCON_NEW ("projection", "{", "name", BCON_INT32 (1), "age", BCON_INT32 (1), "_id", BCON_INT32 (0), "}",
                                  "sort", "{", "_id", BCON_INT32 (1), "}");
         int k = 5;
         cursor = mongoc_collection_find_with_opts (coll, filter, opts, NULL);
         while (mongoc_cursor_next (cursor, &doc)) {
            bson_iter_t it;
            if (k > 6 || bson_count_keys (doc) != 2 || !bson_iter_init_find (&it, doc, "name") ||
                strcmp (bson_iter_utf8 (&it, NULL), users[k].name) != 0 || get_int (doc, "age") != users[k].age) {
               fail ("projection {name:1, age:1, _id:0} of _id %d: want {name:%s, age:%d}, got %s", k, users[k].name,
                     users[k].age, json (doc));
            }
            k++;
         }
         check_cursor_error (cursor, "find with projection");
         mongoc_cursor_destroy (cursor);
         if (k != 7) {
            fail ("projection find returned %d documents, want 2", k - 5);
         }
         bson_destroy (filter);
         bson_destroy (opts);
      }
      snprintf (msg, sizeof msg,
                "9 aggregate $group/$avg/$sort matches own computation (%s %.2f first); find with projection",
                CITIES[order[0]], avg[order[0]]);
      ok (msg);
   }

   /* ---------- 6. updates ---------- */
   current_check = "6 updates";
   {
      bson_t *filter, *update, *opts;
      int pre = 0, paris = 0;
      bson_iter_t it;
      bson_value_t upserted;

      /* some Paris users already live in "FR" */
      filter = BCON_NEW ("city", BCON_UTF8 ("Paris"), "age", "{", "$lt", BCON_INT32 (40), "}");
      update = BCON_NEW ("$set", "{", "country", BCON_UTF8 ("FR"), "}");
      for (int i = 0; i < N_USERS; i++) {
         if (strcmp (users[i].city, "Paris") == 0) {
            paris++;
            pre += users[i].age < 40;
         }
      }
      if (!mongoc_collection_update_many (coll, filter, update, NULL, &reply, &error)) {
         fail ("update_many (pre): %s", error.message);
      }
      if (get_int (&reply, "matchedCount") != pre || get_int (&reply, "modifiedCount") != pre) {
         fail ("update_many Paris age<40 $set country: want matched=modified=%d, got %s", pre, json (&reply));
      }
      bson_destroy (&reply);
      bson_destroy (filter);

      filter = BCON_NEW ("city", BCON_UTF8 ("Paris"));
      if (!mongoc_collection_update_many (coll, filter, update, NULL, &reply, &error)) {
         fail ("update_many: %s", error.message);
      }
      if (get_int (&reply, "matchedCount") != paris || get_int (&reply, "modifiedCount") != paris - pre ||
          get_int (&reply, "upsertedCount") != 0) {
         fail ("update_many Paris $set country FR: want matched %d modified %d (%d already FR), got %s", paris,
               paris - pre, pre, json (&reply));
      }
      bson_destroy (&reply);
      bson_destroy (filter);
      bson_destroy (update);

      /* $inc and $push on one user */
      filter = BCON_NEW ("_id", BCON_INT32 (7));
      update = BCON_NEW ("$inc", "{", "age", BCON_INT32 (2), "visits", BCON_INT64 (5), "}",
                         "$push", "{", "tags", BCON_UTF8 ("vip"), "}");
      if (!mongoc_collection_update_one (coll, filter, update, NULL, &reply, &error)) {
         fail ("update_one $inc/$push: %s", error.message);
      }
      if (get_int (&reply, "matchedCount") != 1 || get_int (&reply, "modifiedCount") != 1) {
         fail ("update_one $inc/$push: %s", json (&reply));
      }
      bson_destroy (&reply);
      users[7].age += 2;
      users[7].visits += 5;
      cursor = mongoc_collection_find_with_opts (coll, filter, NULL, NULL);
      if (!mongoc_cursor_next (cursor, &doc)) {
         check_cursor_error (cursor, "find _id 7");
         fail ("_id 7 vanished");
      }
      {
         bson_t *want_tags = BCON_NEW ("tags", "[", BCON_UTF8 ("t1"), BCON_UTF8 ("all"), BCON_UTF8 ("vip"), "]");
         bson_t got_tags = BSON_INITIALIZER;
         bson_iter_t v;
         if (bson_iter_init_find (&it, doc, "tags")) {
            bson_append_iter (&got_tags, NULL, 0, &it);
         }
         if (!bson_equal (want_tags, &got_tags)) {
            fail ("$push: want %s, got %s", json (want_tags), json (doc));
         }
         if (!bson_iter_init_find (&v, doc, "age") || !BSON_ITER_HOLDS_INT32 (&v) || bson_iter_int32 (&v) != users[7].age) {
            fail ("$inc age (int32 + int32): want int32 %d, got %s", users[7].age, json (doc));
         }
         if (!bson_iter_init_find (&v, doc, "visits") || !BSON_ITER_HOLDS_INT64 (&v) ||
             bson_iter_int64 (&v) != users[7].visits) {
            fail ("$inc visits (int64 + int64): want int64 %lld, got %s", (long long) users[7].visits, json (doc));
         }
         bson_destroy (want_tags);
         bson_destroy (&got_tags);
      }
      mongoc_cursor_destroy (cursor);
      bson_destroy (filter);
      bson_destroy (update);

      /* upsert */
      filter = BCON_NEW ("email", BCON_UTF8 ("newbie@example.com"));
      update = BCON_NEW ("$set", "{", "name", BCON_UTF8 ("Newbie"), "city", BCON_UTF8 ("Oslo"), "}",
                         "$setOnInsert", "{", "joined", BCON_DATE_TIME (1700000000000LL), "}");
      opts = BCON_NEW ("upsert", BCON_BOOL (true));
      if (!mongoc_collection_update_one (coll, filter, update, opts, &reply, &error)) {
         fail ("upsert: %s", error.message);
      }
      if (get_int (&reply, "matchedCount") != 0 || get_int (&reply, "modifiedCount") != 0 ||
          get_int (&reply, "upsertedCount") != 1 || !bson_iter_init_find (&it, &reply, "upsertedId")) {
         fail ("upsert reply: want matched 0, modified 0, upsertedCount 1 and upsertedId, got %s", json (&reply));
      }
      bson_value_copy (bson_iter_value (&it), &upserted);
      bson_destroy (&reply);
      cursor = mongoc_collection_find_with_opts (coll, filter, NULL, NULL);
      if (!mongoc_cursor_next (cursor, &doc)) {
         check_cursor_error (cursor, "find upserted");
         fail ("upserted document not found by email");
      }
      {
         bson_iter_t id, name, date;
         bson_t a = BSON_INITIALIZER, b = BSON_INITIALIZER;
         bson_iter_init_find (&id, doc, "_id");
         bson_append_iter (&a, "v", 1, &id);
         bson_append_value (&b, "v", 1, &upserted);
         if (!bson_equal (&a, &b)) {
            fail ("upsertedId %s differs from the stored _id in %s", json (&b), json (doc));
         }
         if (!bson_iter_init_find (&name, doc, "name") || strcmp (bson_iter_utf8 (&name, NULL), "Newbie") != 0 ||
             !bson_iter_init_find (&date, doc, "joined") || !BSON_ITER_HOLDS_DATE_TIME (&date)) {
            fail ("upserted document lacks $set/$setOnInsert fields: %s", json (doc));
         }
         bson_destroy (&a);
         bson_destroy (&b);
      }
      mongoc_cursor_destroy (cursor);
      /* the same upsert again matches and inserts nothing */
      if (!mongoc_collection_update_one (coll, filter, update, opts, &reply, &error)) {
         fail ("second upsert: %s", error.message);
      }
      if (get_int (&reply, "matchedCount") != 1 || get_int (&reply, "modifiedCount") != 0 ||
          get_int (&reply, "upsertedCount") != 0 || has_field (&reply, "upsertedId")) {
         fail ("repeated upsert: want matched 1, modified 0, no upsertedId, got %s", json (&reply));
      }
      bson_destroy (&reply);
      bson_value_destroy (&upserted);
      bson_destroy (filter);
      bson_destroy (update);
      bson_destroy (opts);
      snprintf (msg, sizeof msg,
                "6 update_many matched %d modified %d ($set, %d already set); $inc int32/int64 + $push; upsert "
                "returns upsertedId = stored _id; repeat upsert matches",
                paris, paris - pre, pre);
      ok (msg);
   }

   /* ---------- 7. findAndModify returning the new document ---------- */
   current_check = "7 findAndModify";
   {
      bson_t *query = BCON_NEW ("_id", BCON_INT32 (3));
      bson_t *update = BCON_NEW ("$inc", "{", "age", BCON_INT32 (1), "}", "$set", "{", "status", BCON_UTF8 ("touched"), "}");
      bson_t *fields = BCON_NEW ("age", BCON_INT32 (1), "status", BCON_INT32 (1));
      mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new ();
      bson_iter_t it;
      bson_t value;
      const uint8_t *data;
      uint32_t len;
      mongoc_find_and_modify_opts_set_update (fam, update);
      mongoc_find_and_modify_opts_set_flags (fam, MONGOC_FIND_AND_MODIFY_RETURN_NEW);
      mongoc_find_and_modify_opts_set_fields (fam, fields);
      if (!mongoc_collection_find_and_modify_with_opts (coll, query, fam, &reply, &error)) {
         fail ("findAndModify: %u.%u %s", error.domain, error.code, error.message);
      }
      users[3].age += 1;
      if (!bson_iter_init_find (&it, &reply, "value") || !BSON_ITER_HOLDS_DOCUMENT (&it)) {
         fail ("findAndModify reply without a value document: %s", json (&reply));
      }
      bson_iter_document (&it, &len, &data);
      bson_init_static (&value, data, len);
      {
         bson_iter_t s;
         if (doc_id (&value) != 3 || get_int (&value, "age") != users[3].age || !bson_iter_init_find (&s, &value, "status") ||
             strcmp (bson_iter_utf8 (&s, NULL), "touched") != 0 || has_field (&value, "name")) {
            fail ("findAndModify new:true fields {age,status}: want {_id:3, age:%d, status:'touched'}, got %s",
                  users[3].age, json (&reply));
         }
      }
      bson_destroy (&reply);
      mongoc_find_and_modify_opts_destroy (fam);
      bson_destroy (query);
      bson_destroy (update);
      bson_destroy (fields);

      /* and the default (old document) form, removing nothing */
      query = BCON_NEW ("_id", BCON_INT32 (4));
      update = BCON_NEW ("$set", "{", "status", BCON_UTF8 ("seen"), "}");
      fam = mongoc_find_and_modify_opts_new ();
      mongoc_find_and_modify_opts_set_update (fam, update);
      if (!mongoc_collection_find_and_modify_with_opts (coll, query, fam, &reply, &error)) {
         fail ("findAndModify (old): %s", error.message);
      }
      if (!bson_iter_init_find (&it, &reply, "value") || !BSON_ITER_HOLDS_DOCUMENT (&it)) {
         fail ("findAndModify (old) reply without a value: %s", json (&reply));
      }
      bson_iter_document (&it, &len, &data);
      bson_init_static (&value, data, len);
      if (has_field (&value, "status") || doc_id (&value) != 4) {
         fail ("findAndModify without new: want the document before the update, got %s", json (&reply));
      }
      bson_destroy (&reply);
      mongoc_find_and_modify_opts_destroy (fam);
      bson_destroy (query);
      bson_destroy (update);
      ok ("7 findAndModify $inc/$set with RETURN_NEW + fields returns the new document (and the old one without it)");
   }

   /* ---------- 8. duplicate keys ---------- */
   current_check = "8 duplicate key";
   {
      bson_t *dup = BCON_NEW ("_id", BCON_INT32 (1000), "email", BCON_UTF8 ("user05@example.com"));
      mongoc_bulk_operation_t *bulk;
      bson_t *bopts;
      bson_iter_t it, errs;
      int nerr = 0, idx[4];
      uint32_t ret;

      if (mongoc_collection_insert_one (coll, dup, NULL, &reply, &error)) {
         fail ("insert of a duplicate email succeeded: %s", json (&reply));
      }
      if (error.code != 11000) {
         fail ("duplicate email: want error code 11000, got domain %u code %u: %s", error.domain, error.code,
               error.message);
      }
      if (!bson_iter_init_find (&it, &reply, "writeErrors")) {
         fail ("duplicate email: reply has no writeErrors: %s", json (&reply));
      }
      bson_destroy (&reply);
      bson_destroy (dup);

      dup = BCON_NEW ("_id", BCON_INT32 (5), "email", BCON_UTF8 ("unique5@example.com"));
      if (mongoc_collection_insert_one (coll, dup, NULL, &reply, &error) || error.code != 11000) {
         fail ("duplicate _id: want error code 11000, got code %u: %s", error.code, error.message);
      }
      bson_destroy (&reply);
      bson_destroy (dup);

      /* unordered bulk: 5 inserts, #1 duplicates an email and #3 an _id; the other 3 land */
      bopts = BCON_NEW ("ordered", BCON_BOOL (false));
      bulk = mongoc_collection_create_bulk_operation_with_opts (coll, bopts);
      for (int k = 0; k < 5; k++) {
         char email[48];
         bson_t *d;
         snprintf (email, sizeof email, k == 1 ? "user01@example.com" : "bulk%d@example.com", k);
         d = BCON_NEW ("_id", BCON_INT32 (k == 3 ? 5 : 200 + k), "email", BCON_UTF8 (email), "city", BCON_UTF8 ("Bulk"));
         mongoc_bulk_operation_insert_with_opts (bulk, d, NULL, &error);
         bson_destroy (d);
      }
      ret = mongoc_bulk_operation_execute (bulk, &reply, &error);
      if (ret != 0) {
         fail ("unordered bulk with duplicates reported success: %s", json (&reply));
      }
      if (error.code != 11000) {
         fail ("unordered bulk: want error code 11000, got %u: %s", error.code, error.message);
      }
      if (get_int (&reply, "nInserted") != 3) {
         fail ("unordered bulk: want nInserted 3 (carry on past duplicates), got %s", json (&reply));
      }
      if (!bson_iter_init_find (&it, &reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY (&it)) {
         fail ("unordered bulk: no writeErrors array: %s", json (&reply));
      }
      bson_iter_recurse (&it, &errs);
      while (bson_iter_next (&errs)) {
         bson_t e;
         const uint8_t *data;
         uint32_t len;
         bson_iter_document (&errs, &len, &data);
         bson_init_static (&e, data, len);
         if (nerr < 4) {
            idx[nerr] = (int) get_int (&e, "index");
         }
         if (get_int (&e, "code") != 11000) {
            fail ("write error with code other than 11000: %s", json (&reply));
         }
         nerr++;
      }
      if (nerr != 2 || idx[0] != 1 || idx[1] != 3) {
         fail ("unordered bulk: want writeErrors at index 1 and 3, got %s", json (&reply));
      }
      bson_destroy (&reply);
      mongoc_bulk_operation_destroy (bulk);
      bson_destroy (bopts);
      {
         bson_t *f = BCON_NEW ("city", BCON_UTF8 ("Bulk"));
         int64_t n = mongoc_collection_count_documents (coll, f, NULL, NULL, NULL, &error);
         if (n != 3) {
            fail ("after the unordered bulk, want 3 'Bulk' documents, found %lld", (long long) n);
         }
         bson_destroy (f);
      }

      /* ordered bulk stops at the first duplicate */
      bulk = mongoc_collection_create_bulk_operation_with_opts (coll, NULL);
      for (int k = 0; k < 3; k++) {
         char email[48];
         bson_t *d;
         snprintf (email, sizeof email, k == 1 ? "user02@example.com" : "ordered%d@example.com", k);
         d = BCON_NEW ("_id", BCON_INT32 (300 + k), "email", BCON_UTF8 (email), "city", BCON_UTF8 ("Ordered"));
         mongoc_bulk_operation_insert_with_opts (bulk, d, NULL, &error);
         bson_destroy (d);
      }
      ret = mongoc_bulk_operation_execute (bulk, &reply, &error);
      if (ret != 0 || error.code != 11000 || get_int (&reply, "nInserted") != 1) {
         fail ("ordered bulk with duplicate at #1: want failure 11000 with nInserted 1, got ret %u code %u %s", ret,
               error.code, json (&reply));
      }
      bson_destroy (&reply);
      mongoc_bulk_operation_destroy (bulk);
      ok ("8 duplicate email/_id -> bson_error_t code 11000; unordered bulk inserts 3 of 5 with writeErrors at 1,3; "
          "ordered bulk stops after 1");
   }

   /* ---------- 10. delete_many ---------- */
   current_check = "10 delete_many";
   {
      bson_t *filter = BCON_NEW ("city", "{", "$in", "[", BCON_UTF8 ("Lima"), BCON_UTF8 ("Rome"), "]", "}");
      int want = 0;
      int64_t left;
      for (int i = 0; i < N_USERS; i++) {
         if (strcmp (users[i].city, "Lima") == 0 || strcmp (users[i].city, "Rome") == 0) {
            want++;
         }
      }
      if (!mongoc_collection_delete_many (coll, filter, NULL, &reply, &error)) {
         fail ("delete_many: %s", error.message);
      }
      if (get_int (&reply, "deletedCount") != want) {
         fail ("delete_many city in [Lima, Rome]: want deletedCount %d, got %s", want, json (&reply));
      }
      bson_destroy (&reply);
      bson_destroy (filter);
      filter = bson_new ();
      left = mongoc_collection_count_documents (coll, filter, NULL, NULL, NULL, &error);
      /* 60 users + 1 upserted + 3 unordered-bulk + 1 ordered-bulk - deleted */
      if (left != N_USERS + 1 + 3 + 1 - want) {
         fail ("after delete_many: want %d documents, count_documents says %lld", N_USERS + 5 - want, (long long) left);
      }
      bson_destroy (filter);
      filter = BCON_NEW ("city", BCON_UTF8 ("Nowhere"));
      if (!mongoc_collection_delete_one (coll, filter, NULL, &reply, &error) || get_int (&reply, "deletedCount") != 0) {
         fail ("delete_one of nothing: %s", json (&reply));
      }
      bson_destroy (&reply);
      bson_destroy (filter);
      snprintf (msg, sizeof msg, "10 delete_many deletedCount %d (own computation), %lld documents left", want,
                (long long) left);
      ok (msg);
   }

   /* ---------- 11. unknown command ---------- */
   current_check = "11 unknown command";
   {
      bson_t *cmd = BCON_NEW ("noSuchCommand", BCON_INT32 (1));
      bson_t *ping = BCON_NEW ("ping", BCON_INT32 (1));
      bson_t *filter = BCON_NEW ("_id", BCON_INT32 (0));
      if (mongoc_client_command_simple (client, db_name, cmd, NULL, &reply, &error)) {
         fail ("noSuchCommand succeeded: %s", json (&reply));
      }
      if (error.code != 59 || error.domain != MONGOC_ERROR_SERVER) {
         fail ("noSuchCommand: want server error code 59, got domain %u code %u: %s", error.domain, error.code,
               error.message);
      }
      {
         bson_iter_t it;
         if (!bson_iter_init_find (&it, &reply, "codeName") || strcmp (bson_iter_utf8 (&it, NULL), "CommandNotFound") != 0) {
            fail ("noSuchCommand reply lacks codeName CommandNotFound: %s", json (&reply));
         }
      }
      bson_destroy (&reply);
      if (!mongoc_client_command_simple (client, "admin", ping, NULL, &reply, &error)) {
         fail ("ping after the unknown command failed: %s", error.message);
      }
      bson_destroy (&reply);
      if (mongoc_collection_count_documents (coll, filter, NULL, NULL, NULL, &error) != 1) {
         fail ("count after the unknown command: %s", error.message);
      }
      bson_destroy (cmd);
      bson_destroy (ping);
      bson_destroy (filter);
      ok ("11 noSuchCommand -> MONGOC_ERROR_SERVER code 59 (CommandNotFound); ping and queries still work");
   }

   /* ---------- 12. listCollections and dropDatabase ---------- */
   current_check = "12 listCollections/dropDatabase";
   {
      char **names = mongoc_database_get_collection_names_with_opts (db, NULL, &error);
      int n = 0, users_seen = 0, types_seen = 0, log_seen = 0, found;
      if (!names) {
         fail ("listCollections: %s", error.message);
      }
      for (char **p = names; *p; p++) {
         n++;
         users_seen += strcmp (*p, "users") == 0;
         types_seen += strcmp (*p, "types") == 0;
         log_seen += strcmp (*p, "log") == 0;
      }
      if (n != 3 || users_seen != 1 || types_seen != 1 || log_seen != 1) {
         msg[0] = '\0';
         for (char **p = names; *p; p++) {
            strncat (msg, *p, sizeof msg - strlen (msg) - 3);
            strcat (msg, " ");
         }
         fail ("listCollections: want exactly log, types and users, got %d names: %s", n, msg);
      }
      bson_strfreev (names);

      names = mongoc_client_get_database_names_with_opts (client, NULL, &error);
      if (!names) {
         fail ("listDatabases: %s", error.message);
      }
      found = 0;
      for (char **p = names; *p; p++) {
         found += strcmp (*p, db_name) == 0;
      }
      bson_strfreev (names);
      if (found != 1) {
         fail ("listDatabases does not show %s before the drop", db_name);
      }
      if (!mongoc_database_drop (db, &error)) {
         fail ("dropDatabase: %s", error.message);
      }
      names = mongoc_client_get_database_names_with_opts (client, NULL, &error);
      if (!names) {
         fail ("listDatabases after drop: %s", error.message);
      }
      found = 0;
      for (char **p = names; *p; p++) {
         found += strcmp (*p, db_name) == 0;
      }
      bson_strfreev (names);
      if (found) {
         fail ("%s is still listed after dropDatabase", db_name);
      }
      names = mongoc_database_get_collection_names_with_opts (db, NULL, &error);
      if (!names || names[0] != NULL) {
         fail ("listCollections after dropDatabase is not empty");
      }
      bson_strfreev (names);
      ok ("12 listCollections = {log, types, users}; dropDatabase removes it from listDatabases");
   }

   mongoc_collection_destroy (types);
   mongoc_collection_destroy (coll);
   mongoc_database_destroy (db);
   mongoc_client_destroy (client);
   mongoc_apm_callbacks_destroy (callbacks);
   mongoc_cleanup ();
   printf ("all 12 C driver (libmongoc %s) checks passed\n", MONGOC_VERSION_S);
   return 0;
}
