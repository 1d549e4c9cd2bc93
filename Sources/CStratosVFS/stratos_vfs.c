// An encrypting SQLite VFS: every page of a space's database file and of its write-ahead log is
// sealed with XChaCha20-Poly1305 (libsodium), the way SQLite3MultipleCiphers and sqleet do it at
// the VFS layer. Written here because neither is packaged for Debian and SQLCipher's package is
// too old (SQLite 3.15); see docs/threat_model.md.
//
// Layout: pages are STRATOS_PAGE_SIZE bytes; SQLite is told to leave the last 40 bytes of each
// page unused (SQLITE_FCNTL_RESERVE_BYTES), and they hold a 24-byte nonce and the 16-byte
// tag. A nonce is a 16-byte random prefix drawn once per process followed by a 64-bit counter, so
// no two seals in a process share one and sealing a page costs no system call (a fresh random
// nonce per page was one getrandom(2) per page written). The first PAGE-40 bytes are ciphertext. The additional data binds each page to its place
// (file kind and byte offset), so pages cannot be swapped or moved between files.
//
// What SQLite sees: on read, the decrypted page with its reserved bytes zeroed. SQLite keeps
// reserved bytes zero in memory for pages it creates (new pages are zero-filled) and for pages
// it reads (we return zeros), so the checksums it computes over WAL frames match on recovery. A
// page handed to xWrite whose reserved bytes are not zero is refused rather than written.
//
// The WAL: its 32-byte header and each frame's 24-byte header (page number, salts, checksums:
// no user data) stay plaintext; each frame's page is sealed like a database page.
//
// Not protected: replaying an older, validly sealed version of a page at the same offset
// (rollback of a single page). The space's signed commit log detects a rolled-back state.

#include "stratos_vfs.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#define STRATOS_PAGE_SIZE 4096
#define STRATOS_NONCE_BYTES 24
#define STRATOS_TAG_BYTES 16
#define STRATOS_RESERVED_BYTES (STRATOS_NONCE_BYTES + STRATOS_TAG_BYTES)
#define STRATOS_SEALED_BYTES (STRATOS_PAGE_SIZE - STRATOS_RESERVED_BYTES)
#define STRATOS_WAL_HEADER_BYTES 32
#define STRATOS_WAL_FRAME_HEADER_BYTES 24
#define STRATOS_KEYS_MAX 8192
#define STRATOS_NAME_MAX 128

enum { KIND_PLAIN = 0, KIND_DATABASE = 1, KIND_WAL = 2 };

typedef struct {
    char name[STRATOS_NAME_MAX];
    unsigned char key[32];
} KeyEntry;

static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;
static KeyEntry keys[STRATOS_KEYS_MAX];
static int keys_count = 0;

typedef struct {
    sqlite3_file base;
    sqlite3_file *real;
    int kind;
    unsigned char key[32];
    // A WAL frame header SQLite has written but this VFS has not yet: SQLite writes each frame
    // as two writes (the 24-byte header, then the page), and the header waits to go out with its
    // page in one pwrite(2). Any other operation on the file writes it first (`flush_header`).
    int header_pending;
    sqlite3_int64 header_offset;
    unsigned char header[STRATOS_WAL_FRAME_HEADER_BYTES];
    // The last operation on the file was a read. SQLite writes a header without its page in one
    // place: rewriting a transaction's checksums at commit (walRewriteChecksums), which reads each
    // frame and then writes its header alone, and may then make no other call on the file. Such
    // a header is written at once, never held.
    int last_was_read;
} StratosFile;

static unsigned char nonce_prefix[16];
static _Atomic uint64_t nonce_counter = 0;

static sqlite3_vfs stratos_vfs;
static sqlite3_io_methods stratos_io_methods;
static sqlite3_vfs *real_vfs = NULL;

#define REAL(file) (((StratosFile *)(file))->real)

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int stratos_vfs_set_key(const char *file_name, const unsigned char *key) {
    if (strlen(file_name) >= STRATOS_NAME_MAX) return -1;
    pthread_mutex_lock(&keys_lock);
    int found = -1;
    for (int i = 0; i < keys_count; i++) {
        if (strcmp(keys[i].name, file_name) == 0) { found = i; break; }
    }
    int result = 0;
    if (key == NULL) {
        if (found >= 0) {
            sodium_memzero(keys[found].key, 32);
            keys[found] = keys[keys_count - 1];
            sodium_memzero(&keys[keys_count - 1], sizeof keys[keys_count - 1]);
            keys_count--;
        }
    } else if (found >= 0) {
        memcpy(keys[found].key, key, 32);
    } else if (keys_count < STRATOS_KEYS_MAX) {
        strcpy(keys[keys_count].name, file_name);
        memcpy(keys[keys_count].key, key, 32);
        keys_count++;
    } else {
        result = -1;
    }
    pthread_mutex_unlock(&keys_lock);
    return result;
}

static int lookup_key(const char *file_name, unsigned char *out) {
    pthread_mutex_lock(&keys_lock);
    int found = 0;
    for (int i = 0; i < keys_count; i++) {
        if (strcmp(keys[i].name, file_name) == 0) {
            memcpy(out, keys[i].key, 32);
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&keys_lock);
    return found;
}

int stratos_vfs_reserved_bytes(void) { return STRATOS_RESERVED_BYTES; }
int stratos_vfs_page_size(void) { return STRATOS_PAGE_SIZE; }

// Additional data: the file kind and the page's byte offset, big-endian.
static void page_aad(int kind, sqlite3_int64 offset, unsigned char aad[9]) {
    aad[0] = (unsigned char)kind;
    for (int i = 0; i < 8; i++) aad[1 + i] = (unsigned char)((uint64_t)offset >> (56 - 8 * i));
}

// XChaCha20-Poly1305 through OpenSSL's ChaCha20-Poly1305 (RFC 8439), whose x86-64 and ARM
// assembly seals a 4 KiB page in about two thirds of libsodium's time on this machine's CPU
// (bench: 2.8-3.1 µs against 4.2-4.6 µs). XChaCha20-Poly1305 is that AEAD under a subkey:
// HChaCha20(key, nonce[0..16]) with the nonce 0^4 || nonce[16..24] (draft-irtf-cfrg-xchacha
// §2.3), so the bytes are exactly libsodium's crypto_aead_xchacha20poly1305_ietf and pages
// written by either open with the other. `register_vfs` checks that on a test vector and keeps
// libsodium alone if they ever differ. One cipher context per thread (SQLite connections run
// on many threads), freed when the thread ends.
static pthread_key_t cipher_key;
static int openssl_usable = 0;

static void free_cipher(void *context) { EVP_CIPHER_CTX_free(context); }

static EVP_CIPHER_CTX *thread_cipher(void) {
    EVP_CIPHER_CTX *context = pthread_getspecific(cipher_key);
    if (context != NULL) return context;
    context = EVP_CIPHER_CTX_new();
    if (context == NULL) return NULL;
    if (EVP_CipherInit_ex(context, EVP_chacha20_poly1305(), NULL, NULL, NULL, 1) != 1 ||
        pthread_setspecific(cipher_key, context) != 0) {
        EVP_CIPHER_CTX_free(context);
        return NULL;
    }
    return context;
}

static EVP_CIPHER_CTX *xchacha_begin(const unsigned char *nonce, const unsigned char *key, int encrypt) {
    if (!openssl_usable) return NULL;
    EVP_CIPHER_CTX *context = thread_cipher();
    if (context == NULL) return NULL;
    unsigned char subkey[32];
    unsigned char iv[12] = {0};
    crypto_core_hchacha20(subkey, nonce, key, NULL);
    memcpy(iv + 4, nonce + 16, 8);
    int ok = EVP_CipherInit_ex(context, NULL, NULL, subkey, iv, encrypt) == 1;
    sodium_memzero(subkey, sizeof subkey);
    return ok ? context : NULL;
}

// Leaves no key in the thread's context once a page is done (it would otherwise hold the page
// subkey, which under one file key and this process's nonce prefix stays the same).
static void xchacha_end(EVP_CIPHER_CTX *context, int ok) {
    static const unsigned char zeros[32] = {0};
    if (!ok) ERR_clear_error();
    if (EVP_CipherInit_ex(context, NULL, NULL, zeros, zeros, -1) != 1) ERR_clear_error();
}

// Returns 1 when sealed, 0 when OpenSSL is not usable (the caller uses libsodium).
static int xchacha_seal(unsigned char *out, unsigned char *tag, const unsigned char *in, int length,
                        const unsigned char *aad, int aad_length, const unsigned char *nonce, const unsigned char *key) {
    EVP_CIPHER_CTX *context = xchacha_begin(nonce, key, 1);
    if (context == NULL) return 0;
    int written = 0, final = 0;
    int ok = EVP_CipherUpdate(context, NULL, &written, aad, aad_length) == 1 &&
             EVP_CipherUpdate(context, out, &written, in, length) == 1 && written == length &&
             EVP_CipherFinal_ex(context, out + written, &final) == 1 &&
             EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, STRATOS_TAG_BYTES, tag) == 1;
    xchacha_end(context, ok);
    return ok;
}

// Returns 1 when the tag verified and `out` holds the plaintext, 0 when it did not (`out` is
// zeroed), -1 when OpenSSL is not usable.
static int xchacha_open(unsigned char *out, const unsigned char *in, int length, const unsigned char *tag,
                        const unsigned char *aad, int aad_length, const unsigned char *nonce, const unsigned char *key) {
    EVP_CIPHER_CTX *context = xchacha_begin(nonce, key, 0);
    if (context == NULL) return -1;
    unsigned char expected[STRATOS_TAG_BYTES];
    memcpy(expected, tag, sizeof expected);
    int written = 0, final = 0;
    int ok = EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, STRATOS_TAG_BYTES, expected) == 1 &&
             EVP_CipherUpdate(context, NULL, &written, aad, aad_length) == 1 &&
             EVP_CipherUpdate(context, out, &written, in, length) == 1 && written == length &&
             EVP_CipherFinal_ex(context, out + written, &final) == 1;
    if (!ok) sodium_memzero(out, (size_t)length);  // Nothing unauthenticated reaches SQLite.
    xchacha_end(context, ok);
    return ok;
}

const char *stratos_vfs_page_cipher(void) { return openssl_usable ? "openssl" : "libsodium"; }

// Whether OpenSSL's construction gives libsodium's bytes, sealing and opening, on one vector.
static int openssl_agrees_with_libsodium(void) {
    // A page's exact sizes: STRATOS_SEALED_BYTES of text and 9 bytes of additional data.
    static unsigned char plain[STRATOS_SEALED_BYTES], ours[STRATOS_SEALED_BYTES], theirs[STRATOS_SEALED_BYTES], back[STRATOS_SEALED_BYTES];
    unsigned char key[32], nonce[24], aad[9], tag[16], their_tag[16];
    for (int i = 0; i < 32; i++) key[i] = (unsigned char)(7 * i + 1);
    for (int i = 0; i < 24; i++) nonce[i] = (unsigned char)(11 * i + 3);
    for (int i = 0; i < 9; i++) aad[i] = (unsigned char)i;
    for (int i = 0; i < STRATOS_SEALED_BYTES; i++) plain[i] = (unsigned char)(i * 13);
    unsigned long long tag_length = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(theirs, their_tag, &tag_length, plain, sizeof plain, aad, sizeof aad, NULL, nonce, key);
    if (!xchacha_seal(ours, tag, plain, sizeof plain, aad, sizeof aad, nonce, key)) return 0;
    if (memcmp(ours, theirs, sizeof ours) != 0 || memcmp(tag, their_tag, sizeof tag) != 0) return 0;
    if (xchacha_open(back, theirs, sizeof back, their_tag, aad, sizeof aad, nonce, key) != 1 || memcmp(back, plain, sizeof back) != 0) return 0;
    their_tag[0] ^= 1;  // A wrong tag must be refused.
    return xchacha_open(back, theirs, sizeof back, their_tag, aad, sizeof aad, nonce, key) == 0;
}

static int seal_page(StratosFile *file, const unsigned char *plain, unsigned char *sealed, sqlite3_int64 offset) {
    for (int i = STRATOS_SEALED_BYTES; i < STRATOS_PAGE_SIZE; i++) {
        if (plain[i] != 0) return SQLITE_IOERR_WRITE;  // See the header comment.
    }
    unsigned char aad[9];
    page_aad(file->kind, offset, aad);
    unsigned char *nonce = sealed + STRATOS_SEALED_BYTES;
    unsigned char *tag = nonce + STRATOS_NONCE_BYTES;
    uint64_t count = atomic_fetch_add_explicit(&nonce_counter, 1, memory_order_relaxed);
    memcpy(nonce, nonce_prefix, sizeof nonce_prefix);
    for (int i = 0; i < 8; i++) nonce[16 + i] = (unsigned char)(count >> (8 * i));
    if (!xchacha_seal(sealed, tag, plain, STRATOS_SEALED_BYTES, aad, sizeof aad, nonce, file->key)) {
        unsigned long long tag_length = 0;
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
            sealed, tag, &tag_length, plain, STRATOS_SEALED_BYTES, aad, sizeof aad, NULL, nonce, file->key);
    }
    return SQLITE_OK;
}

static int open_page(StratosFile *file, const unsigned char *sealed, unsigned char *plain, sqlite3_int64 offset) {
    unsigned char aad[9];
    page_aad(file->kind, offset, aad);
    const unsigned char *nonce = sealed + STRATOS_SEALED_BYTES;
    const unsigned char *tag = nonce + STRATOS_NONCE_BYTES;
    int opened = xchacha_open(plain, sealed, STRATOS_SEALED_BYTES, tag, aad, sizeof aad, nonce, file->key);
    if (opened < 0) {
        opened = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                     plain, NULL, sealed, STRATOS_SEALED_BYTES, tag, aad, sizeof aad, nonce, file->key) == 0;
    }
    if (!opened) return SQLITE_IOERR_DATA;  // Tampered, damaged, or the wrong key.
    memset(plain + STRATOS_SEALED_BYTES, 0, STRATOS_RESERVED_BYTES);
    return SQLITE_OK;
}

// The byte offset of the page that contains `offset`, for pages sealed in this file; -1 when
// `offset` is in a WAL header region.
static sqlite3_int64 page_start(int kind, sqlite3_int64 offset) {
    if (kind == KIND_DATABASE) return offset - offset % STRATOS_PAGE_SIZE;
    if (offset < STRATOS_WAL_HEADER_BYTES) return -1;
    sqlite3_int64 frame = STRATOS_WAL_FRAME_HEADER_BYTES + STRATOS_PAGE_SIZE;
    sqlite3_int64 within = (offset - STRATOS_WAL_HEADER_BYTES) % frame;
    sqlite3_int64 frame_start = offset - within;
    if (within < STRATOS_WAL_FRAME_HEADER_BYTES) return -1;
    return frame_start + STRATOS_WAL_FRAME_HEADER_BYTES;
}

// Writes the WAL frame header held back by `stratos_write`, if any.
static int flush_header(StratosFile *file) {
    if (!file->header_pending) return SQLITE_OK;
    int rc = file->real->pMethods->xWrite(file->real, file->header, STRATOS_WAL_FRAME_HEADER_BYTES, file->header_offset);
    if (rc == SQLITE_OK) file->header_pending = 0;
    return rc;
}

static int is_frame_header(sqlite3_int64 offset, int amount) {
    return amount == STRATOS_WAL_FRAME_HEADER_BYTES && offset >= STRATOS_WAL_HEADER_BYTES &&
           (offset - STRATOS_WAL_HEADER_BYTES) % (STRATOS_WAL_FRAME_HEADER_BYTES + STRATOS_PAGE_SIZE) == 0;
}

static int stratos_read(sqlite3_file *handle, void *buffer, int amount, sqlite3_int64 offset) {
    StratosFile *file = (StratosFile *)handle;
    if (file->kind == KIND_PLAIN) return file->real->pMethods->xRead(file->real, buffer, amount, offset);
    int flushed = flush_header(file);
    if (flushed != SQLITE_OK) return flushed;
    file->last_was_read = 1;
    unsigned char sealed[STRATOS_PAGE_SIZE];
    unsigned char plain[STRATOS_PAGE_SIZE];
    unsigned char *out = buffer;
    sqlite3_int64 position = offset;
    sqlite3_int64 end = offset + amount;
    int short_read = 0;
    while (position < end) {
        sqlite3_int64 start = page_start(file->kind, position);
        if (start < 0) {
            // A plaintext WAL header region: read it up to the next page (or the end).
            sqlite3_int64 next = position + 1;
            while (next < end && page_start(file->kind, next) < 0) next++;
            int rc = file->real->pMethods->xRead(file->real, out + (position - offset), (int)(next - position), position);
            if (rc == SQLITE_IOERR_SHORT_READ) short_read = 1; else if (rc != SQLITE_OK) return rc;
            position = next;
            continue;
        }
        int rc = file->real->pMethods->xRead(file->real, sealed, STRATOS_PAGE_SIZE, start);
        sqlite3_int64 stop = start + STRATOS_PAGE_SIZE < end ? start + STRATOS_PAGE_SIZE : end;
        if (rc == SQLITE_IOERR_SHORT_READ) {
            // Past the end of the file (or a torn tail): nothing sealed here; SQLite wants zeros.
            memset(out + (position - offset), 0, (size_t)(stop - position));
            short_read = 1;
        } else if (rc != SQLITE_OK) {
            return rc;
        } else {
            rc = open_page(file, sealed, plain, start);
            if (rc != SQLITE_OK) {
                // WAL recovery reads whole frames (header and page in one read) and stops at the
                // first frame whose checksum fails. A frame torn by a crash before it was synced
                // does not decrypt: hand recovery zeros, which fail the checksum, so it stops
                // there as it would without encryption. Every other read of a bad page is an error.
                int recovery_read = file->kind == KIND_WAL && offset <= start - STRATOS_WAL_FRAME_HEADER_BYTES;
                if (!recovery_read) return rc;
                memset(plain, 0, STRATOS_PAGE_SIZE);
            }
            memcpy(out + (position - offset), plain + (position - start), (size_t)(stop - position));
        }
        position = stop;
    }
    return short_read ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

static int stratos_write(sqlite3_file *handle, const void *buffer, int amount, sqlite3_int64 offset) {
    StratosFile *file = (StratosFile *)handle;
    if (file->kind == KIND_PLAIN) return file->real->pMethods->xWrite(file->real, buffer, amount, offset);
    if (file->kind == KIND_WAL) {
        int after_read = file->last_was_read;
        file->last_was_read = 0;
        if (is_frame_header(offset, amount) && !after_read) {
            int rc = flush_header(file);
            if (rc != SQLITE_OK) return rc;
            memcpy(file->header, buffer, STRATOS_WAL_FRAME_HEADER_BYTES);
            file->header_offset = offset;
            file->header_pending = 1;
            return SQLITE_OK;
        }
        if (file->header_pending && offset == file->header_offset + STRATOS_WAL_FRAME_HEADER_BYTES && amount == STRATOS_PAGE_SIZE) {
            // The frame's page: header and sealed page in one write.
            unsigned char frame[STRATOS_WAL_FRAME_HEADER_BYTES + STRATOS_PAGE_SIZE];
            memcpy(frame, file->header, STRATOS_WAL_FRAME_HEADER_BYTES);
            file->header_pending = 0;
            int rc = seal_page(file, buffer, frame + STRATOS_WAL_FRAME_HEADER_BYTES, offset);
            if (rc != SQLITE_OK) return rc;
            return file->real->pMethods->xWrite(file->real, frame, (int)sizeof frame, file->header_offset);
        }
        int rc = flush_header(file);
        if (rc != SQLITE_OK) return rc;
    }
    const unsigned char *in = buffer;
    unsigned char sealed[STRATOS_PAGE_SIZE];
    sqlite3_int64 position = offset;
    sqlite3_int64 end = offset + amount;
    while (position < end) {
        sqlite3_int64 start = page_start(file->kind, position);
        if (start < 0) {
            sqlite3_int64 next = position + 1;
            while (next < end && page_start(file->kind, next) < 0) next++;
            int rc = file->real->pMethods->xWrite(file->real, in + (position - offset), (int)(next - position), position);
            if (rc != SQLITE_OK) return rc;
            position = next;
            continue;
        }
        // SQLite writes whole pages to database files and to WAL frames.
        if (start != position || end - position < STRATOS_PAGE_SIZE) return SQLITE_IOERR_WRITE;
        int rc = seal_page(file, in + (position - offset), sealed, start);
        if (rc != SQLITE_OK) return rc;
        rc = file->real->pMethods->xWrite(file->real, sealed, STRATOS_PAGE_SIZE, start);
        if (rc != SQLITE_OK) return rc;
        position += STRATOS_PAGE_SIZE;
    }
    return SQLITE_OK;
}

static int stratos_close(sqlite3_file *handle) {
    StratosFile *file = (StratosFile *)handle;
    int flushed = flush_header(file);
    sodium_memzero(file->key, sizeof file->key);
    int rc = file->real->pMethods->xClose(file->real);
    return flushed != SQLITE_OK ? flushed : rc;
}
static int stratos_truncate(sqlite3_file *f, sqlite3_int64 size) {
    int rc = flush_header((StratosFile *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int stratos_sync(sqlite3_file *f, int flags) {
    int rc = flush_header((StratosFile *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int stratos_file_size(sqlite3_file *f, sqlite3_int64 *size) {
    int rc = flush_header((StratosFile *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int stratos_lock(sqlite3_file *f, int level) { return REAL(f)->pMethods->xLock(REAL(f), level); }
static int stratos_unlock(sqlite3_file *f, int level) { return REAL(f)->pMethods->xUnlock(REAL(f), level); }
static int stratos_check_reserved_lock(sqlite3_file *f, int *out) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out); }
static int stratos_file_control(sqlite3_file *f, int op, void *arg) { return REAL(f)->pMethods->xFileControl(REAL(f), op, arg); }
static int stratos_sector_size(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int stratos_device_characteristics(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int stratos_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out) {
    return REAL(f)->pMethods->xShmMap(REAL(f), page, size, extend, out);
}
static int stratos_shm_lock(sqlite3_file *f, int offset, int n, int flags) { return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags); }
static void stratos_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int stratos_shm_unmap(sqlite3_file *f, int delete_flag) { return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag); }

// Memory-mapped reads would hand SQLite sealed bytes: encrypted files never map, so SQLite
// falls back to xRead; plaintext files map as usual.
static int stratos_fetch(sqlite3_file *handle, sqlite3_int64 offset, int amount, void **out) {
    StratosFile *file = (StratosFile *)handle;
    if (file->kind != KIND_PLAIN) { *out = NULL; return SQLITE_OK; }
    return file->real->pMethods->xFetch(file->real, offset, amount, out);
}
static int stratos_unfetch(sqlite3_file *handle, sqlite3_int64 offset, void *page) {
    StratosFile *file = (StratosFile *)handle;
    if (file->kind != KIND_PLAIN) return SQLITE_OK;
    return file->real->pMethods->xUnfetch(file->real, offset, page);
}

static int stratos_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *handle, int flags, int *out_flags) {
    StratosFile *file = (StratosFile *)handle;
    memset(file, 0, sizeof *file);
    file->real = (sqlite3_file *)(file + 1);
    int rc = real_vfs->xOpen(real_vfs, name, file->real, flags, out_flags);
    if (rc != SQLITE_OK) return rc;
    file->kind = KIND_PLAIN;
    if (name != NULL) {
        const char *database = NULL;
        if (flags & SQLITE_OPEN_MAIN_DB) database = name;
        else if (flags & SQLITE_OPEN_WAL) database = sqlite3_filename_database(name);
        if (database != NULL && lookup_key(base_name(database), file->key)) {
            file->kind = (flags & SQLITE_OPEN_MAIN_DB) ? KIND_DATABASE : KIND_WAL;
        } else if ((flags & SQLITE_OPEN_MAIN_JOURNAL) && sqlite3_filename_database(name) != NULL) {
            // Encrypted databases run in WAL mode: a rollback journal would hold plaintext page
            // images. The one journal SQLite opens is for switching a new, empty file to WAL,
            // when there is no page to copy; any other is refused.
            const char *main_path = sqlite3_filename_database(name);
            unsigned char unused[32];
            struct stat info;
            if (lookup_key(base_name(main_path), unused) && !(stat(main_path, &info) == 0 && info.st_size == 0)) {
                sodium_memzero(unused, sizeof unused);
                file->real->pMethods->xClose(file->real);
                return SQLITE_CANTOPEN;
            }
            sodium_memzero(unused, sizeof unused);
        }
    }
    file->base.pMethods = &stratos_io_methods;
    return SQLITE_OK;
}

static int stratos_delete(sqlite3_vfs *v, const char *name, int sync) { return real_vfs->xDelete(real_vfs, name, sync); }
static int stratos_access(sqlite3_vfs *v, const char *name, int flags, int *out) { return real_vfs->xAccess(real_vfs, name, flags, out); }
static int stratos_full_pathname(sqlite3_vfs *v, const char *name, int size, char *out) {
    return real_vfs->xFullPathname(real_vfs, name, size, out);
}
static void *stratos_dl_open(sqlite3_vfs *v, const char *name) { return real_vfs->xDlOpen(real_vfs, name); }
static void stratos_dl_error(sqlite3_vfs *v, int size, char *out) { real_vfs->xDlError(real_vfs, size, out); }
static void (*stratos_dl_sym(sqlite3_vfs *v, void *lib, const char *symbol))(void) { return real_vfs->xDlSym(real_vfs, lib, symbol); }
static void stratos_dl_close(sqlite3_vfs *v, void *lib) { real_vfs->xDlClose(real_vfs, lib); }
static int stratos_randomness(sqlite3_vfs *v, int size, char *out) { return real_vfs->xRandomness(real_vfs, size, out); }
static int stratos_sleep(sqlite3_vfs *v, int microseconds) { return real_vfs->xSleep(real_vfs, microseconds); }
static int stratos_current_time(sqlite3_vfs *v, double *out) { return real_vfs->xCurrentTime(real_vfs, out); }
static int stratos_get_last_error(sqlite3_vfs *v, int size, char *out) { return real_vfs->xGetLastError(real_vfs, size, out); }
static int stratos_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out) { return real_vfs->xCurrentTimeInt64(real_vfs, out); }

static pthread_once_t register_once = PTHREAD_ONCE_INIT;
static int register_result = SQLITE_ERROR;

static void register_vfs(void) {
    if (sodium_init() < 0) { register_result = SQLITE_ERROR; return; }
    randombytes_buf(nonce_prefix, sizeof nonce_prefix);
    // No exit-time cleanup of OpenSSL: threads' cipher contexts may be freed after it would run.
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    if (pthread_key_create(&cipher_key, free_cipher) == 0) {
        openssl_usable = 1;
        openssl_usable = openssl_agrees_with_libsodium();
    }
    real_vfs = sqlite3_vfs_find(NULL);
    if (real_vfs == NULL) { register_result = SQLITE_ERROR; return; }
    stratos_io_methods = (sqlite3_io_methods){
        .iVersion = 3, .xClose = stratos_close, .xRead = stratos_read, .xWrite = stratos_write,
        .xTruncate = stratos_truncate, .xSync = stratos_sync, .xFileSize = stratos_file_size, .xLock = stratos_lock,
        .xUnlock = stratos_unlock, .xCheckReservedLock = stratos_check_reserved_lock, .xFileControl = stratos_file_control,
        .xSectorSize = stratos_sector_size, .xDeviceCharacteristics = stratos_device_characteristics,
        .xShmMap = stratos_shm_map, .xShmLock = stratos_shm_lock, .xShmBarrier = stratos_shm_barrier,
        .xShmUnmap = stratos_shm_unmap, .xFetch = stratos_fetch, .xUnfetch = stratos_unfetch,
    };
    stratos_vfs = (sqlite3_vfs){
        .iVersion = 2, .szOsFile = (int)sizeof(StratosFile) + real_vfs->szOsFile, .mxPathname = real_vfs->mxPathname,
        .zName = "stratos-aead", .xOpen = stratos_open, .xDelete = stratos_delete, .xAccess = stratos_access,
        .xFullPathname = stratos_full_pathname, .xDlOpen = stratos_dl_open, .xDlError = stratos_dl_error,
        .xDlSym = stratos_dl_sym, .xDlClose = stratos_dl_close, .xRandomness = stratos_randomness,
        .xSleep = stratos_sleep, .xCurrentTime = stratos_current_time, .xGetLastError = stratos_get_last_error,
        .xCurrentTimeInt64 = stratos_current_time_int64,
    };
    register_result = sqlite3_vfs_register(&stratos_vfs, 1);
}

int stratos_vfs_register(void) {
    pthread_once(&register_once, register_vfs);
    return register_result;
}
