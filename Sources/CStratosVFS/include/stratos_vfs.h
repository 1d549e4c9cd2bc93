#ifndef STRATOS_VFS_H
#define STRATOS_VFS_H

#include <stddef.h>

/// Registers the encrypting VFS "stratos-aead" as SQLite's default VFS. Idempotent and
/// thread-safe. Returns SQLITE_OK or an SQLite error code.
int stratos_vfs_register(void);

/// Sets (or, with key == NULL, removes) the 32-byte key of database files whose base name is
/// `file_name` (for example "s…26 chars….sqlite"); the file's write-ahead log uses the same key.
/// Files without a key are read and written unchanged. Returns 0, or -1 when the table is full.
int stratos_vfs_set_key(const char *file_name, const unsigned char *key);

/// The number of bytes reserved at the end of every page of an encrypted database (nonce and
/// authentication tag); set with SQLITE_FCNTL_RESERVE_BYTES before the first page is written.
int stratos_vfs_reserved_bytes(void);

/// Which implementation seals and opens pages (the bytes are the same either way):
/// "openssl" (ChaCha20-Poly1305 under an HChaCha20 subkey) or "libsodium". Valid after
/// `stratos_vfs_register`.
const char *stratos_vfs_page_cipher(void);

/// The page size encrypted databases must use.
int stratos_vfs_page_size(void);

#endif
