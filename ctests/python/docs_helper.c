/* libmyhelper.so for the Python examples of docs/python.md (run by
 * run_doc_examples.py): a thread-local slot, a destructor that frees what it
 * holds, and a count of the frees. */
#include <stdatomic.h>
#include <stdlib.h>

static _Thread_local void *slot;
static atomic_int freed_count;

void **slot_address(void) { return &slot; }

void free_slot(void *p) {
  if (p != NULL) {
    free(p);
    atomic_fetch_add(&freed_count, 1);
  }
}

int freed(void) { return atomic_load(&freed_count); }
