/* libFuzzer target over the cross-library storage key/size API:
 * weave_tls_get, weave_static_get and weave_tls_set_destructor with fuzzed
 * keys (embedded NULs, empty, longer than WEAVE_STORAGE_KEY_MAX, missing
 * terminator inside the input) and sizes.
 *
 * Built with clang-14 -fsanitize=fuzzer,address,undefined and run by CTest
 * for a bounded time (fuzz_storage in ctests/reliability/CMakeLists.txt).
 *
 * Input layout: byte 0 selects the operation, bytes 1..2 the size, byte 3
 * how the key is cut; the rest is the key. The key is copied into a heap
 * buffer of exactly the bytes the input provides, with a NUL appended only
 * when the cut says so; otherwise the NUL comes from the input itself, or
 * the key runs to the end of the buffer and is terminated there. ASan sees
 * every byte the library reads.
 *
 * The registry never frees a key (by design: any thread may cache a pointer
 * to an entry without a lock), so every distinct valid key stays allocated
 * until exit. To keep a long run's memory bounded, the bytes of a valid key
 * (before its first NUL) are folded into a small alphabet, and only its first
 * four bytes vary: at most 256 keys per length. Bytes after the first NUL and
 * invalid keys (empty, longer than WEAVE_STORAGE_KEY_MAX) are left as fuzzed.
 * CTest runs with -detect_leaks=0 as well: the keys are reachable only from
 * the registry, and LeakSanitizer cannot see pointers held in the .NET
 * runtime's memory.
 */
#include <ft_weave.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Sizes near SIZE_MAX are part of the input space: the library must answer
 * NULL (WEAVE_E_NOMEM), which needs ASan's allocator to return NULL instead
 * of reporting the request. Leak detection: see above. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1:detect_leaks=0"; }

static int init_fill(void *storage, void *arg) {
  /* The value must be zeroed before init, and exactly `size` bytes long:
   * touch the first and last byte (ASan catches an undersized block). */
  size_t size = *(size_t *)arg;
  unsigned char *p = storage;
  if (p[0] != 0 || p[size - 1] != 0) {
    return -1; /* reported as a failed init: the fuzzer checks below abort */
  }
  p[0] = 0xA5;
  p[size - 1] = 0x5A;
  return 0;
}

static int init_fail(void *storage, void *arg) {
  (void)storage;
  (void)arg;
  return -1;
}

static void destructor_noop(void *value) { (void)value; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (n < 4) {
    return 0;
  }
  uint8_t op = data[0];
  /* Sizes 0..1023, plus a few huge ones, so values stay small during a run. */
  size_t size = (size_t)(data[1] | (data[2] << 8)) & 1023;
  if ((data[2] & 0xF0) == 0xF0) {
    size = (size_t)-1 - (data[1] & 3); /* SIZE_MAX and neighbours: out of memory */
  }
  uint8_t cut = data[3];
  const uint8_t *key_bytes = data + 4;
  size_t key_len = n - 4;
  /* Long inputs make long keys: everything past WEAVE_STORAGE_KEY_MAX + 1 is
   * "too long" alike, so cap the copy at twice that. */
  if (key_len > 2 * WEAVE_STORAGE_KEY_MAX) {
    key_len = 2 * WEAVE_STORAGE_KEY_MAX;
  }
  char *key = malloc(key_len + 1);
  if (key == NULL) {
    return 0;
  }
  memcpy(key, key_bytes, key_len);
  key[key_len] = 0; /* the library must stop at the first NUL, or after 1025 bytes */
  if (cut & 1) {
    key[(cut >> 1) % (key_len + 1)] = 0; /* an embedded NUL / empty key */
  }
  size_t first_nul = strlen(key);
  if (first_nul >= 1 && first_nul <= WEAVE_STORAGE_KEY_MAX) {
    for (size_t i = 0; i < first_nul; ++i) {
      key[i] = i < 4 ? (char)('a' + ((unsigned char)key[i] & 3)) : 'z';
    }
  }
  size_t measured = strlen(key);
  int valid_key = measured >= 1 && measured <= WEAVE_STORAGE_KEY_MAX;

  void *v = NULL;
  int rc = 0;
  switch (op % 6) {
    case 0:
      v = weave_tls_get(key, size, NULL, NULL);
      break;
    case 1:
      v = weave_static_get(key, size, NULL, NULL);
      break;
    case 2:
      v = weave_tls_get(key, size, size != 0 && size < 4096 ? init_fill : NULL, &size);
      break;
    case 3:
      v = weave_static_get(key, size, init_fail, NULL);
      if (v != NULL && size != 0 && size < 4096) {
        /* A static initialised earlier without init_fail: still usable. */
        memset(v, 0, size);
      }
      break;
    case 4:
      rc = weave_tls_set_destructor(key, (op & 8) ? NULL : destructor_noop);
      if (!valid_key && rc != WEAVE_E_INVALID) {
        abort();
      }
      if (rc != 0 && rc != WEAVE_E_INVALID && rc != WEAVE_E_MISMATCH) {
        abort();
      }
      break;
    default:
      /* A thread's value survives a failed get of another key. */
      v = weave_tls_get(key, size, NULL, NULL);
      (void)weave_tls_get("", 8, NULL, NULL);
      (void)weave_static_get(NULL, 8, NULL, NULL);
      break;
  }
  if (v != NULL) {
    /* Success implies a valid key and a usable block of `size` bytes. */
    if (!valid_key || size == 0) {
      abort();
    }
    if (size < 4096) {
      ((volatile unsigned char *)v)[0] ^= 1;
      ((volatile unsigned char *)v)[size - 1] ^= 1;
    }
  } else if (op % 6 != 4 && weave_last_error()[0] == 0) {
    abort(); /* a NULL comes with a message (none was ever recorded here) */
  }
  if (!valid_key && v != NULL) {
    abort();
  }
  free(key);
  return 0;
}
