/*
 * c_client: the same single-document workloads from C against a MongoDB-wire server (libmongoc)
 * or PostgreSQL (libpq), so that bench/floor.py can compare servers rather than Python clients.
 *
 *   c_client mongo <uri> <workload> <clients> <ops per client> <records> <durable 0|1>
 *   c_client pg <conninfo> <workload> <clients> <ops per client> <records> <durable 0|1>
 *
 * Workloads: ping, point_read, insert, update. Each client is a thread with its own connection.
 * Records are `user%010d` ids that bench/floor.py loaded beforehand (documents of ~1 KB; in
 * PostgreSQL a `users(id text primary key, doc jsonb)` table). Durable: the write concern is
 * {w: 1, j: true} for MongoDB and synchronous_commit=on for PostgreSQL; otherwise w: 1 and
 * synchronous_commit=off. Prints one JSON line: operations, seconds, ops/s, p50/p99 in µs.
 */
#include <libpq-fe.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *mode, *target, *workload;
static int clients, ops, records, durable;

typedef struct {
    int index;
    int64_t *latencies;
    int failures;
} Worker;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static uint64_t next_random(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static char bio[801];

static void profile_json(char *out, size_t size, const char *id, int n) {
    snprintf(out, size,
             "{\"_id\": \"%s\", \"name\": \"Person %d\", \"email\": \"person%d@example.org\", \"age\": %d, "
             "\"address\": {\"city\": \"London\", \"street\": \"1 Example Street\"}, \"bio\": \"%s\"}",
             id, n, n, 20 + n % 50, bio);
}

static void *run_mongo(void *arg) {
    Worker *w = arg;
    mongoc_client_t *client = mongoc_client_new(target);
    mongoc_collection_t *users = mongoc_client_get_collection(client, "bench", "users");
    mongoc_write_concern_t *concern = mongoc_write_concern_new();
    mongoc_write_concern_set_w(concern, 1);
    if (durable) mongoc_write_concern_set_journal(concern, true);
    bson_t write_options = BSON_INITIALIZER;
    mongoc_write_concern_append(concern, &write_options);
    bson_t *find_options = BCON_NEW("limit", BCON_INT64(1));
    uint64_t random = 0x9E3779B97F4A7C15ull ^ (uint64_t)(w->index + 1) * 7919;
    char id[32], json[2048];
    bson_error_t error;
    for (int i = 0; i < ops; i++) {
        int64_t started = now_ns();
        bool ok = true;
        if (!strcmp(workload, "ping")) {
            bson_t *command = BCON_NEW("ping", BCON_INT32(1));
            ok = mongoc_client_command_simple(client, "admin", command, NULL, NULL, &error);
            bson_destroy(command);
        } else if (!strcmp(workload, "point_read")) {
            snprintf(id, sizeof id, "user%010d", (int)(next_random(&random) % (uint64_t)records));
            bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
            mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(users, filter, find_options, NULL);
            const bson_t *document;
            int found = 0;
            while (mongoc_cursor_next(cursor, &document)) found++;
            ok = found == 1 && !mongoc_cursor_error(cursor, &error);
            mongoc_cursor_destroy(cursor);
            bson_destroy(filter);
        } else if (!strcmp(workload, "insert")) {
            snprintf(id, sizeof id, "c%d-%d-%lld", w->index, i, (long long)started);
            profile_json(json, sizeof json, id, i);
            bson_t *document = bson_new_from_json((const uint8_t *)json, -1, &error);
            ok = document && mongoc_collection_insert_one(users, document, &write_options, NULL, &error);
            bson_destroy(document);
        } else if (!strcmp(workload, "update")) {
            snprintf(id, sizeof id, "user%010d", (int)(next_random(&random) % (uint64_t)records));
            bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
            bson_t *update = BCON_NEW("$inc", "{", "age", BCON_INT32(1), "}");
            ok = mongoc_collection_update_one(users, filter, update, &write_options, NULL, &error);
            bson_destroy(filter);
            bson_destroy(update);
        }
        if (!ok) w->failures++;
        w->latencies[i] = now_ns() - started;
    }
    bson_destroy(find_options);
    bson_destroy(&write_options);
    mongoc_write_concern_destroy(concern);
    mongoc_collection_destroy(users);
    mongoc_client_destroy(client);
    return NULL;
}

static void *run_pg(void *arg) {
    Worker *w = arg;
    PGconn *connection = PQconnectdb(target);
    if (PQstatus(connection) != CONNECTION_OK) {
        fprintf(stderr, "c_client: %s", PQerrorMessage(connection));
        exit(1);
    }
    PQclear(PQexec(connection, durable ? "SET synchronous_commit TO on" : "SET synchronous_commit TO off"));
    PQclear(PQprepare(connection, "ping", "SELECT 1", 0, NULL));
    PQclear(PQprepare(connection, "read", "SELECT doc FROM users WHERE id = $1", 1, NULL));
    PQclear(PQprepare(connection, "insert", "INSERT INTO users(id, doc) VALUES ($1, $2::jsonb)", 2, NULL));
    PQclear(PQprepare(connection, "update",
                      "UPDATE users SET doc = jsonb_set(doc, '{age}', to_jsonb((doc->>'age')::int + 1)) WHERE id = $1", 1, NULL));
    uint64_t random = 0x9E3779B97F4A7C15ull ^ (uint64_t)(w->index + 1) * 7919;
    char id[32], json[2048];
    for (int i = 0; i < ops; i++) {
        int64_t started = now_ns();
        PGresult *result = NULL;
        if (!strcmp(workload, "ping")) {
            result = PQexecPrepared(connection, "ping", 0, NULL, NULL, NULL, 0);
        } else if (!strcmp(workload, "point_read")) {
            snprintf(id, sizeof id, "user%010d", (int)(next_random(&random) % (uint64_t)records));
            const char *values[1] = {id};
            result = PQexecPrepared(connection, "read", 1, values, NULL, NULL, 0);
            if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) != 1) w->failures++;
        } else if (!strcmp(workload, "insert")) {
            snprintf(id, sizeof id, "c%d-%d-%lld", w->index, i, (long long)started);
            profile_json(json, sizeof json, id, i);
            const char *values[2] = {id, json};
            result = PQexecPrepared(connection, "insert", 2, values, NULL, NULL, 0);
        } else if (!strcmp(workload, "update")) {
            snprintf(id, sizeof id, "user%010d", (int)(next_random(&random) % (uint64_t)records));
            const char *values[1] = {id};
            result = PQexecPrepared(connection, "update", 1, values, NULL, NULL, 0);
        }
        ExecStatusType status = PQresultStatus(result);
        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) w->failures++;
        PQclear(result);
        w->latencies[i] = now_ns() - started;
    }
    PQfinish(connection);
    return NULL;
}

static int compare(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: c_client mongo|pg <uri|conninfo> ping|point_read|insert|update <clients> <ops> <records> <durable>\n");
        return 2;
    }
    mode = argv[1], target = argv[2], workload = argv[3];
    clients = atoi(argv[4]), ops = atoi(argv[5]), records = atoi(argv[6]), durable = atoi(argv[7]);
    memset(bio, 'b', 800);
    int mongo = !strcmp(mode, "mongo");
    if (mongo) mongoc_init();
    Worker *workers = calloc((size_t)clients, sizeof *workers);
    pthread_t *threads = calloc((size_t)clients, sizeof *threads);
    for (int c = 0; c < clients; c++) {
        workers[c].index = c;
        workers[c].latencies = calloc((size_t)ops, sizeof(int64_t));
    }
    int64_t started = now_ns();
    for (int c = 0; c < clients; c++) pthread_create(&threads[c], NULL, mongo ? run_mongo : run_pg, &workers[c]);
    for (int c = 0; c < clients; c++) pthread_join(threads[c], NULL);
    double seconds = (double)(now_ns() - started) / 1e9;
    size_t total = (size_t)clients * (size_t)ops;
    int64_t *all = malloc(total * sizeof(int64_t));
    int failures = 0;
    for (int c = 0; c < clients; c++) {
        memcpy(all + (size_t)c * (size_t)ops, workers[c].latencies, (size_t)ops * sizeof(int64_t));
        failures += workers[c].failures;
    }
    qsort(all, total, sizeof(int64_t), compare);
    printf("{\"operations\": %zu, \"seconds\": %.6f, \"opsPerSecond\": %.1f, \"p50Micros\": %.1f, \"p99Micros\": %.1f, \"failures\": %d}\n",
           total, seconds, (double)total / seconds, (double)all[total / 2] / 1e3, (double)all[total * 99 / 100] / 1e3, failures);
    if (mongo) mongoc_cleanup();
    return failures ? 1 : 0;
}
