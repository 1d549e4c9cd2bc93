/*
 * floor_server: a MongoDB wire server that does no work. It answers every message at once with
 * a canned reply of the right shape (hello, ok, a one-document cursor, n: 1), so a client's
 * throughput against it is the most any server could give that client: the client's floor.
 * bench/floor.py reports StratosDB against it. One thread per connection, blocking I/O.
 *
 *   cc -O2 -pthread -o floor_server bench/floor_server.c && ./floor_server 27999
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    uint8_t *bytes;
    size_t length, capacity;
    size_t starts[8];
    int depth;
} Buffer;

static void put(Buffer *b, const void *data, size_t n) {
    if (b->length + n > b->capacity) {
        b->capacity = (b->length + n) * 2;
        b->bytes = realloc(b->bytes, b->capacity);
    }
    memcpy(b->bytes + b->length, data, n);
    b->length += n;
}
static void put32(Buffer *b, int32_t v) { uint8_t x[4]; for (int i = 0; i < 4; i++) x[i] = (uint8_t)((uint32_t)v >> (8 * i)); put(b, x, 4); }
static void put64(Buffer *b, int64_t v) { uint8_t x[8]; for (int i = 0; i < 8; i++) x[i] = (uint8_t)((uint64_t)v >> (8 * i)); put(b, x, 8); }
static void key(Buffer *b, uint8_t type, const char *k) { put(b, &type, 1); put(b, k, strlen(k) + 1); }
static void begin(Buffer *b) { b->starts[b->depth++] = b->length; put32(b, 0); }
static void end(Buffer *b) {
    uint8_t zero = 0;
    put(b, &zero, 1);
    size_t start = b->starts[--b->depth];
    int32_t n = (int32_t)(b->length - start);
    for (int i = 0; i < 4; i++) b->bytes[start + i] = (uint8_t)((uint32_t)n >> (8 * i));
}
static void i32(Buffer *b, const char *k, int32_t v) { key(b, 0x10, k); put32(b, v); }
static void i64(Buffer *b, const char *k, int64_t v) { key(b, 0x12, k); put64(b, v); }
static void dbl(Buffer *b, const char *k, double v) { union { double d; int64_t i; } u = {.d = v}; key(b, 0x01, k); put64(b, u.i); }
static void boolean(Buffer *b, const char *k, int v) { uint8_t x = (uint8_t)v; key(b, 0x08, k); put(b, &x, 1); }
static void str(Buffer *b, const char *k, const char *v) { key(b, 0x02, k); put32(b, (int32_t)strlen(v) + 1); put(b, v, strlen(v) + 1); }
static void subdoc(Buffer *b, const char *k) { key(b, 0x03, k); begin(b); }
static void subarr(Buffer *b, const char *k) { key(b, 0x04, k); begin(b); }

/* The profile document every find returns (~1 KB, like the benchmark's documents). */
static void profile(Buffer *b, const char *k) {
    static char bio[801];
    memset(bio, 'b', 800);
    subdoc(b, k);
    str(b, "_id", "user0000000001");
    str(b, "name", "Person 1");
    str(b, "email", "person1@example.org");
    i32(b, "age", 31);
    subdoc(b, "address"); str(b, "city", "London"); str(b, "street", "1 Example Street"); end(b);
    str(b, "bio", bio);
    end(b);
}

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The reply document to a command named `name`. */
static void reply(Buffer *b, const char *name) {
    begin(b);
    if (!strcmp(name, "hello") || !strcmp(name, "isMaster") || !strcmp(name, "ismaster")) {
        boolean(b, "helloOk", 1);
        boolean(b, "ismaster", 1);
        boolean(b, "isWritablePrimary", 1);
        i32(b, "maxBsonObjectSize", 16 * 1024 * 1024);
        i32(b, "maxMessageSizeBytes", 48000000);
        i32(b, "maxWriteBatchSize", 100000);
        key(b, 0x09, "localTime"); put64(b, now_ms());
        i32(b, "logicalSessionTimeoutMinutes", 30);
        i32(b, "connectionId", 1);
        i32(b, "minWireVersion", 0);
        i32(b, "maxWireVersion", 21);
        boolean(b, "readOnly", 0);
    } else if (!strcmp(name, "find") || !strcmp(name, "aggregate")) {
        subdoc(b, "cursor");
        subarr(b, "firstBatch"); profile(b, "0"); end(b);
        i64(b, "id", 0);
        str(b, "ns", "bench.users");
        end(b);
    } else if (!strcmp(name, "getMore")) {
        subdoc(b, "cursor"); subarr(b, "nextBatch"); end(b); i64(b, "id", 0); str(b, "ns", "bench.users"); end(b);
    } else if (!strcmp(name, "insert") || !strcmp(name, "delete") || !strcmp(name, "count")) {
        i32(b, "n", 1);
    } else if (!strcmp(name, "update")) {
        i32(b, "n", 1);
        i32(b, "nModified", 1);
    } else if (!strcmp(name, "findAndModify")) {
        profile(b, "value");
    }
    dbl(b, "ok", 1.0);
    end(b);
}

static int read_all(int fd, uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int32_t get32(const uint8_t *p) { return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24); }

static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    uint8_t *message = malloc(48000000);
    Buffer out = {0};
    for (;;) {
        if (read_all(fd, message, 16)) break;
        int32_t length = get32(message), request = get32(message + 4), opcode = get32(message + 12);
        if (length < 16 || length > 48000000 || read_all(fd, message + 16, (size_t)length - 16)) break;
        const char *name = "";
        if (opcode == 2013 && length > 26) name = (const char *)message + 26;        /* OP_MSG: flags, kind 0, doc: len, type, key */
        else if (opcode == 2004) {                                                 /* OP_QUERY: flags, ns, skip, limit, doc */
            const uint8_t *p = message + 20;
            p += strlen((const char *)p) + 1 + 8;
            name = (const char *)p + 5;
        }
        out.length = 0;
        put32(&out, 0); put32(&out, 0); put32(&out, request);
        if (opcode == 2004) {
            put32(&out, 1);                                                        /* OP_REPLY */
            put32(&out, 0); put64(&out, 0); put32(&out, 0); put32(&out, 1);
        } else {
            put32(&out, 2013);
            put32(&out, 0);
            uint8_t kind = 0;
            put(&out, &kind, 1);
        }
        reply(&out, name);
        int32_t total = (int32_t)out.length;
        for (int i = 0; i < 4; i++) out.bytes[i] = (uint8_t)((uint32_t)total >> (8 * i));
        static int32_t next_id = 1;
        int32_t id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
        for (int i = 0; i < 4; i++) out.bytes[4 + i] = (uint8_t)((uint32_t)id >> (8 * i));
        if (write(fd, out.bytes, out.length) != (ssize_t)out.length) break;
    }
    free(message);
    free(out.bytes);
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    int port = argc > 1 ? atoi(argv[1]) : 27999;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 64)) { perror("floor_server"); return 1; }
    printf("ready %d\n", port);
    fflush(stdout);
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t thread;
        pthread_create(&thread, NULL, serve, (void *)(intptr_t)fd);
        pthread_detach(thread);
    }
}
