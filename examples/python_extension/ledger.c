/*
 * ledger - an example C extension for free-threaded CPython built on ft_weave.
 *
 * A bank-ledger toy, small enough to read in one sitting, that shows the
 * three things a free-threaded extension usually needs:
 *
 *   1. A per-object lock. Every `ledger.Account` carries a one-byte
 *      weave_mutex_t that guards its balance. With the GIL gone (3.13t and
 *      later, and this module declares Py_MOD_GIL_NOT_USED so importing it
 *      does not bring the GIL back), two threads may call methods of the same
 *      Account at the same moment; the mutex is what keeps `balance += x`
 *      from losing updates.
 *
 *   2. Critical sections around two-object operations. `ledger.transfer(src,
 *      dst, amount)` must hold both accounts' locks. Taking them one after
 *      the other deadlocks as soon as one thread transfers a->b while another
 *      transfers b->a. WEAVE_BEGIN_CRITICAL_SECTION2 locks the two mutexes in
 *      address order (so the argument order does not matter), and like
 *      CPython's own Py_BEGIN_CRITICAL_SECTION2 it is *suspended* whenever
 *      the thread blocks, so sections nested in any order cannot deadlock
 *      either.
 *
 *   3. A per-thread cache freed at thread exit. Counting every transfer in
 *      one shared counter would make all threads fight over one cache line.
 *      Instead each thread keeps a private tally (a `weave_local void *`,
 *      allocated on the thread's first transfer) and registers a thread-exit
 *      destructor with weave_register_destructor(); when the thread ends
 *      (a threading.Thread returning, or any native thread), the destructor
 *      folds the tally into the process-wide totals and frees it. Nothing
 *      leaks, however many short-lived threads come and go.
 *
 * The module also carries a benchmark (`_bench`, driven by bench.py) that
 * times ft_weave's primitives against CPython's own PyMutex and
 * Py_BEGIN_CRITICAL_SECTION on the same objects, in C, so that Python's call
 * overhead is not part of the figures.
 *
 * Build: see README.md (setup.py uses ft_weave.setup_helpers.WeaveExtension).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <ft_weave_python.h> /* ft_weave.h plus the CPython helpers */

#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* CPython's PyMutex and PyCriticalSection are public from 3.13 on. The
 * critical-section macros lock something only in free-threaded builds (with
 * the GIL they expand to a bare block), so the benchmark times them only
 * there. */
#if PY_VERSION_HEX >= 0x030D0000
#define LEDGER_HAVE_PYMUTEX 1
#else
#define LEDGER_HAVE_PYMUTEX 0
#endif
#if PY_VERSION_HEX >= 0x030D0000 && defined(Py_GIL_DISABLED)
#define LEDGER_HAVE_PY_CRITICAL_SECTION 1
#else
#define LEDGER_HAVE_PY_CRITICAL_SECTION 0
#endif

/* ======================================================================
 * Per-thread tally (3.) and the process-wide totals it is folded into
 * ====================================================================== */

typedef struct tally {
  uint64_t transfers; /* transfers this thread made since its last flush */
  uint64_t moved;     /* sum of their amounts                            */
} tally_t;

/* One pointer per thread. `weave_local` is _Thread_local in C11: the
 * pointer is per thread, the tally it points to is ours to free. The type
 * is `void *` because that is what weave_register_destructor hands back. */
static weave_local void *t_tally;

/* Process-wide totals, updated only with atomic adds: a thread touches them
 * once, when it exits (or on an explicit flush), so they are never hot. */
static uint64_t g_flushed_transfers;
static uint64_t g_flushed_moved;
static uint64_t g_tallies_created;
static uint64_t g_tallies_freed;

static void tally_fold(tally_t *t) {
  /* Relaxed is enough: the counters are independent statistics, and a reader
   * that needs "every thread has exited" gets that ordering from join(). */
  __atomic_fetch_add(&g_flushed_transfers, t->transfers, __ATOMIC_RELAXED);
  __atomic_fetch_add(&g_flushed_moved, t->moved, __ATOMIC_RELAXED);
  t->transfers = 0;
  t->moved = 0;
}

/* The thread-exit destructor. ft_weave calls it once when the registering
 * thread ends, with the value t_tally has *at that moment* (NULL is passed
 * through). It runs after Python has let go of the thread, so it must not
 * call into Python: plain C and atomics only. */
static void tally_at_thread_exit(void *value) {
  tally_t *t = (tally_t *)value;
  if (t == NULL) {
    return;
  }
  tally_fold(t);
  free(t);
  __atomic_fetch_add(&g_tallies_freed, 1, __ATOMIC_RELAXED);
}

/* The calling thread's tally, created on first use. NULL with a Python
 * exception set on failure. */
static tally_t *tally_get(void) {
  tally_t *t = (tally_t *)t_tally;
  int rc;
  if (t != NULL) {
    return t;
  }
  t = (tally_t *)calloc(1, sizeof(*t));
  if (t == NULL) {
    PyErr_NoMemory();
    return NULL;
  }
  t_tally = t;
  /* Registered on the variable, not the value: the destructor frees
   * whatever t_tally points to when the thread exits. */
  rc = weave_register_destructor(&t_tally, tally_at_thread_exit);
  if (rc != 0) {
    /* Bad input or out of memory: a documented code and a message, never a
     * crash. Report it as a Python exception and leave nothing behind. */
    t_tally = NULL;
    free(t);
    PyErr_Format(PyExc_RuntimeError, "ledger: cannot register the thread-exit destructor: %s (%s)",
                 weave_strerror(rc), weave_last_error());
    return NULL;
  }
  __atomic_fetch_add(&g_tallies_created, 1, __ATOMIC_RELAXED);
  return t;
}

/* ======================================================================
 * The Account type (1.)
 * ====================================================================== */

typedef struct {
  PyObject_HEAD
  weave_mutex_t lock; /* guards every field below (zero = unlocked)   */
  int64_t balance;    /* never negative                               */
  uint64_t ops;       /* deposits, withdrawals and transfers applied  */

  /* Benchmark only (see _bench below). */
#if LEDGER_HAVE_PYMUTEX
  PyMutex py_lock;    /* CPython's one-byte mutex, for comparison     */
#endif
  uint64_t bench_counter; /* the "tiny critical region" of the benchmark */
  uint32_t bench_gate;    /* start barrier of one benchmark run          */
} AccountObject;

/* Module state: the Account type and the exception, created per module
 * object (multi-phase initialisation, PEP 489). */
typedef struct {
  PyTypeObject *account_type;
  PyObject *insufficient_funds;
} ledger_state;

static ledger_state *state_of_module(PyObject *module) {
  return (ledger_state *)PyModule_GetState(module);
}

/* Account is not subclassable, so the type of `self` is ours. */
static ledger_state *state_of_account(PyObject *self) {
  return (ledger_state *)PyType_GetModuleState(Py_TYPE(self));
}

static int check_amount(long long amount) {
  if (amount < 0) {
    PyErr_SetString(PyExc_ValueError, "ledger: amounts must not be negative");
    return -1;
  }
  return 0;
}

static PyObject *Account_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"balance", NULL};
  long long balance = 0;
  AccountObject *self;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|L:Account", kwlist, &balance)) {
    return NULL;
  }
  if (check_amount(balance) != 0) {
    return NULL;
  }
  self = (AccountObject *)type->tp_alloc(type, 0);
  if (self == NULL) {
    return NULL;
  }
  /* tp_alloc zeroes the object: the mutexes start unlocked. Nobody else can
   * see the object yet, so no lock is needed here. */
  self->balance = (int64_t)balance;
  return (PyObject *)self;
}

static void Account_dealloc(PyObject *self) {
  /* The last reference is gone, so no other thread can hold the lock. */
  PyTypeObject *type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type); /* instances of heap types own a reference to the type */
}

static PyObject *Account_get_balance(PyObject *op, void *closure) {
  AccountObject *self = (AccountObject *)op;
  int64_t balance;
  (void)closure;
  /* Even a read takes the lock: a 64-bit read racing a write is a data race
   * in C, and a thread could otherwise see a balance in the middle of a
   * transfer. A one-object critical section is the idiom; here it is the
   * same as weave_mutex_lock/unlock. */
  WEAVE_BEGIN_CRITICAL_SECTION(&self->lock);
  balance = self->balance;
  WEAVE_END_CRITICAL_SECTION();
  return PyLong_FromLongLong((long long)balance);
}

static PyObject *Account_get_ops(PyObject *op, void *closure) {
  AccountObject *self = (AccountObject *)op;
  uint64_t ops;
  (void)closure;
  weave_mutex_lock(&self->lock);
  ops = self->ops;
  weave_mutex_unlock(&self->lock);
  return PyLong_FromUnsignedLongLong((unsigned long long)ops);
}

static PyObject *Account_deposit(PyObject *op, PyObject *args) {
  AccountObject *self = (AccountObject *)op;
  long long amount;
  int overflow = 0;
  int64_t balance = 0;
  if (!PyArg_ParseTuple(args, "L:deposit", &amount) || check_amount(amount) != 0) {
    return NULL;
  }
  /* Keep the section short and free of Python calls: decide under the lock,
   * raise after it. */
  weave_mutex_lock(&self->lock);
  if (self->balance > INT64_MAX - (int64_t)amount) {
    overflow = 1;
  } else {
    self->balance += (int64_t)amount;
    self->ops++;
    balance = self->balance;
  }
  weave_mutex_unlock(&self->lock);
  if (overflow) {
    PyErr_SetString(PyExc_OverflowError, "ledger: the balance would exceed 2**63-1");
    return NULL;
  }
  return PyLong_FromLongLong((long long)balance);
}

static PyObject *Account_withdraw(PyObject *op, PyObject *args) {
  AccountObject *self = (AccountObject *)op;
  long long amount;
  int short_of_funds = 0;
  int64_t balance = 0;
  if (!PyArg_ParseTuple(args, "L:withdraw", &amount) || check_amount(amount) != 0) {
    return NULL;
  }
  weave_mutex_lock(&self->lock);
  if (self->balance < (int64_t)amount) {
    short_of_funds = 1;
    balance = self->balance;
  } else {
    self->balance -= (int64_t)amount;
    self->ops++;
    balance = self->balance;
  }
  weave_mutex_unlock(&self->lock);
  if (short_of_funds) {
    PyErr_Format(state_of_account(op)->insufficient_funds,
                 "ledger: cannot withdraw %lld from a balance of %lld", amount, (long long)balance);
    return NULL;
  }
  return PyLong_FromLongLong((long long)balance);
}

static PyObject *Account_repr(PyObject *op) {
  AccountObject *self = (AccountObject *)op;
  int64_t balance;
  weave_mutex_lock(&self->lock);
  balance = self->balance;
  weave_mutex_unlock(&self->lock);
  return PyUnicode_FromFormat("<ledger.Account balance=%lld>", (long long)balance);
}

static PyGetSetDef Account_getset[] = {
    {"balance", Account_get_balance, NULL, "The current balance (read under the account's lock).", NULL},
    {"ops", Account_get_ops, NULL, "How many deposits, withdrawals and transfers were applied.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Account_methods[] = {
    {"deposit", Account_deposit, METH_VARARGS, "deposit(amount) -> new balance"},
    {"withdraw", Account_withdraw, METH_VARARGS,
     "withdraw(amount) -> new balance; raises InsufficientFunds (nothing changes) when short"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Account_slots[] = {
    {Py_tp_doc, (void *)"Account(balance=0): a balance guarded by its own ft_weave mutex."},
    {Py_tp_new, (void *)Account_new},
    {Py_tp_dealloc, (void *)Account_dealloc},
    {Py_tp_repr, (void *)Account_repr},
    {Py_tp_getset, (void *)Account_getset},
    {Py_tp_methods, (void *)Account_methods},
    {0, NULL},
};

static PyType_Spec Account_spec = {
    "ledger.Account", sizeof(AccountObject), 0,
    /* No Py_TPFLAGS_BASETYPE: keeps state_of_account() valid. Instances hold
     * no references to other objects, so no GC support is needed. */
    Py_TPFLAGS_DEFAULT, Account_slots,
};

/* ======================================================================
 * Two-object operations (2.)
 * ====================================================================== */

/* Parses (Account, Account, amount) for a module-level function. */
static int parse_pair(PyObject *module, PyObject *args, const char *format, AccountObject **a,
                      AccountObject **b, long long *amount) {
  ledger_state *st = state_of_module(module);
  PyObject *x, *y;
  if (!PyArg_ParseTuple(args, format, &x, &y, amount)) {
    return -1;
  }
  if (!Py_IS_TYPE(x, st->account_type) || !Py_IS_TYPE(y, st->account_type)) {
    PyErr_Format(PyExc_TypeError, "ledger: expected two Account objects, got %s and %s",
                 Py_TYPE(x)->tp_name, Py_TYPE(y)->tp_name);
    return -1;
  }
  *a = (AccountObject *)x;
  *b = (AccountObject *)y;
  return 0;
}

enum transfer_result { TRANSFER_OK, TRANSFER_SHORT, TRANSFER_OVERFLOW };

static PyObject *ledger_transfer(PyObject *module, PyObject *args) {
  AccountObject *src, *dst;
  long long amount;
  enum transfer_result result = TRANSFER_OK;
  int64_t available = 0;
  tally_t *tally;
  if (parse_pair(module, args, "OOL:transfer", &src, &dst, &amount) != 0 || check_amount(amount) != 0) {
    return NULL;
  }
  /* Allocate the tally before taking any lock: it may fail and raise. */
  tally = tally_get();
  if (tally == NULL) {
    return NULL;
  }
  /* Both locks, in address order whatever the argument order, so that
   * transfer(a, b) and transfer(b, a) running at once cannot deadlock.
   * transfer(a, a) is fine too: the same mutex is locked once. */
  WEAVE_BEGIN_CRITICAL_SECTION2(&src->lock, &dst->lock);
  available = src->balance;
  if (src->balance < (int64_t)amount) {
    result = TRANSFER_SHORT;
  } else if (src != dst && dst->balance > INT64_MAX - (int64_t)amount) {
    result = TRANSFER_OVERFLOW;
  } else {
    /* Between these two lines the money is in neither account; no other
     * thread can observe that, because every reader takes the locks. */
    src->balance -= (int64_t)amount;
    src->ops++;
    dst->balance += (int64_t)amount;
    if (src != dst) {
      dst->ops++;
    }
  }
  WEAVE_END_CRITICAL_SECTION2();

  /* Exceptions are raised after the section: creating them allocates, and
   * allocation may run the garbage collector. */
  switch (result) {
  case TRANSFER_SHORT:
    PyErr_Format(state_of_module(module)->insufficient_funds,
                 "ledger: cannot transfer %lld from a balance of %lld", amount, (long long)available);
    return NULL;
  case TRANSFER_OVERFLOW:
    PyErr_SetString(PyExc_OverflowError, "ledger: the destination balance would exceed 2**63-1");
    return NULL;
  case TRANSFER_OK:
    break;
  }
  /* The tally is this thread's alone: no lock, no atomics. */
  tally->transfers++;
  tally->moved += (uint64_t)amount;
  Py_RETURN_NONE;
}

static PyObject *ledger_snapshot(PyObject *module, PyObject *args) {
  ledger_state *st = state_of_module(module);
  PyObject *x, *y;
  AccountObject *a, *b;
  int64_t ba, bb;
  if (!PyArg_ParseTuple(args, "OO:snapshot", &x, &y)) {
    return NULL;
  }
  if (!Py_IS_TYPE(x, st->account_type) || !Py_IS_TYPE(y, st->account_type)) {
    PyErr_Format(PyExc_TypeError, "ledger: expected two Account objects, got %s and %s",
                 Py_TYPE(x)->tp_name, Py_TYPE(y)->tp_name);
    return NULL;
  }
  a = (AccountObject *)x;
  b = (AccountObject *)y;
  /* Both balances at one instant: no transfer between a and b can be half
   * done while we hold both locks. */
  WEAVE_BEGIN_CRITICAL_SECTION2(&a->lock, &b->lock);
  ba = a->balance;
  bb = b->balance;
  WEAVE_END_CRITICAL_SECTION2();
  return Py_BuildValue("(LL)", (long long)ba, (long long)bb);
}

static PyObject *ledger_thread_tally(PyObject *module, PyObject *unused) {
  tally_t *t = (tally_t *)t_tally;
  (void)module;
  (void)unused;
  if (t == NULL) {
    Py_RETURN_NONE; /* this thread has made no transfer yet */
  }
  return Py_BuildValue("(KK)", (unsigned long long)t->transfers, (unsigned long long)t->moved);
}

static PyObject *ledger_flush_tally(PyObject *module, PyObject *unused) {
  tally_t *t = (tally_t *)t_tally;
  (void)module;
  (void)unused;
  if (t != NULL) {
    tally_fold(t); /* the tally stays allocated; the destructor still frees it */
  }
  Py_RETURN_NONE;
}

static PyObject *ledger_stats(PyObject *module, PyObject *unused) {
  (void)module;
  (void)unused;
  return Py_BuildValue(
      "{s:K,s:K,s:K,s:K}", "transfers",
      (unsigned long long)__atomic_load_n(&g_flushed_transfers, __ATOMIC_RELAXED), "moved",
      (unsigned long long)__atomic_load_n(&g_flushed_moved, __ATOMIC_RELAXED), "tallies_created",
      (unsigned long long)__atomic_load_n(&g_tallies_created, __ATOMIC_RELAXED), "tallies_freed",
      (unsigned long long)__atomic_load_n(&g_tallies_freed, __ATOMIC_RELAXED));
}

/* ======================================================================
 * Benchmark: ft_weave against CPython's own primitives
 * ======================================================================
 *
 * _bench(kind, a, b, n, parties, swap) runs n iterations of
 *     lock; a->bench_counter++; unlock
 * with the primitive `kind` on the account a (b is the second object of the
 * two-object sections, named first when swap is true) and returns
 * (start_ns, end_ns) of the loop on CLOCK_MONOTONIC. The `parties` threads
 * of one run first meet at a start gate (reset by _bench_reset), so that
 * the loops overlap; the caller
 * computes ns/op from the earliest start and the latest end. Timing happens
 * here, in C, within one call per thread: Python's call overhead is not
 * part of the figures. The loop runs attached to the interpreter, as the
 * code of an extension method does; both libraries release the thread
 * state only when a thread has to park.
 */
enum bench_kind {
  BENCH_WEAVE_MUTEX,   /* weave_mutex_lock / weave_mutex_unlock            */
  BENCH_PY_MUTEX,      /* PyMutex_Lock / PyMutex_Unlock                    */
  BENCH_WEAVE_CS,      /* WEAVE_BEGIN/END_CRITICAL_SECTION(&a->lock)        */
  BENCH_PY_CS,         /* Py_BEGIN/END_CRITICAL_SECTION(a)                 */
  BENCH_WEAVE_CS2,     /* WEAVE_BEGIN/END_CRITICAL_SECTION2(&a->lock, &b->lock) */
  BENCH_PY_CS2,        /* Py_BEGIN/END_CRITICAL_SECTION2(a, b)             */
  BENCH_KINDS
};

static const char *const bench_names[BENCH_KINDS] = {
    "weave_mutex", "PyMutex", "WEAVE_CRITICAL_SECTION", "Py_CRITICAL_SECTION",
    "WEAVE_CRITICAL_SECTION2", "Py_CRITICAL_SECTION2",
};

static int bench_available(int kind) {
  switch (kind) {
  case BENCH_PY_MUTEX:
    return LEDGER_HAVE_PYMUTEX;
  case BENCH_PY_CS:
  case BENCH_PY_CS2:
    return LEDGER_HAVE_PY_CRITICAL_SECTION;
  default:
    return kind >= 0 && kind < BENCH_KINDS;
  }
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static PyObject *ledger_bench_reset(PyObject *module, PyObject *args) {
  ledger_state *st = state_of_module(module);
  PyObject *x;
  AccountObject *a;
  if (!PyArg_ParseTuple(args, "O!:_bench_reset", st->account_type, &x)) {
    return NULL;
  }
  a = (AccountObject *)x;
  weave_mutex_lock(&a->lock);
  a->bench_counter = 0;
  weave_mutex_unlock(&a->lock);
  __atomic_store_n(&a->bench_gate, 0, __ATOMIC_RELEASE);
  Py_RETURN_NONE;
}

static PyObject *ledger_bench_counter(PyObject *module, PyObject *args) {
  ledger_state *st = state_of_module(module);
  PyObject *x;
  AccountObject *a;
  uint64_t value;
  if (!PyArg_ParseTuple(args, "O!:_bench_counter", st->account_type, &x)) {
    return NULL;
  }
  a = (AccountObject *)x;
  weave_mutex_lock(&a->lock);
  value = a->bench_counter;
  weave_mutex_unlock(&a->lock);
  return PyLong_FromUnsignedLongLong((unsigned long long)value);
}

static PyObject *ledger_bench(PyObject *module, PyObject *args) {
  ledger_state *st = state_of_module(module);
  int kind, parties, swap = 0;
  PyObject *x, *y, *first, *second;
  AccountObject *a, *fa, *fb;
  Py_ssize_t n, i;
  int64_t start, end;
  if (!PyArg_ParseTuple(args, "iO!O!ni|p:_bench", &kind, st->account_type, &x, st->account_type, &y,
                        &n, &parties, &swap)) {
    return NULL;
  }
  if (kind < 0 || kind >= BENCH_KINDS) {
    PyErr_Format(PyExc_ValueError, "ledger: unknown benchmark kind %d", kind);
    return NULL;
  }
  if (!bench_available(kind)) {
    PyErr_Format(PyExc_NotImplementedError, "ledger: %s is not available in this CPython build",
                 bench_names[kind]);
    return NULL;
  }
  if (n < 0 || parties < 1) {
    PyErr_SetString(PyExc_ValueError, "ledger: _bench needs n >= 0 and parties >= 1");
    return NULL;
  }
  a = (AccountObject *)x;
  first = swap ? y : x;
  second = swap ? x : y;
  fa = (AccountObject *)first;
  fb = (AccountObject *)second;

  /* Start gate. Waiting detached (no thread state), so that a garbage
   * collection in another thread does not wait for us. */
  Py_BEGIN_ALLOW_THREADS
  __atomic_fetch_add(&a->bench_gate, 1, __ATOMIC_ACQ_REL);
  while (__atomic_load_n(&a->bench_gate, __ATOMIC_ACQUIRE) < (uint32_t)parties) {
    sched_yield();
  }
  Py_END_ALLOW_THREADS

  start = now_ns();
  switch (kind) {
  case BENCH_WEAVE_MUTEX:
    for (i = 0; i < n; i++) {
      weave_mutex_lock(&a->lock);
      a->bench_counter++;
      weave_mutex_unlock(&a->lock);
    }
    break;
  case BENCH_WEAVE_CS:
    for (i = 0; i < n; i++) {
      WEAVE_BEGIN_CRITICAL_SECTION(&a->lock);
      a->bench_counter++;
      WEAVE_END_CRITICAL_SECTION();
    }
    break;
  case BENCH_WEAVE_CS2:
    for (i = 0; i < n; i++) {
      WEAVE_BEGIN_CRITICAL_SECTION2(&fa->lock, &fb->lock);
      a->bench_counter++;
      WEAVE_END_CRITICAL_SECTION2();
    }
    break;
#if LEDGER_HAVE_PYMUTEX
  case BENCH_PY_MUTEX:
    /* Guards bench_counter with the PyMutex instead of the weave mutex:
     * only one kind runs at a time (the caller's contract). */
    for (i = 0; i < n; i++) {
      PyMutex_Lock(&a->py_lock);
      a->bench_counter++;
      PyMutex_Unlock(&a->py_lock);
    }
    break;
#endif
#if LEDGER_HAVE_PY_CRITICAL_SECTION
  case BENCH_PY_CS:
    for (i = 0; i < n; i++) {
      Py_BEGIN_CRITICAL_SECTION(x);
      a->bench_counter++;
      Py_END_CRITICAL_SECTION();
    }
    break;
  case BENCH_PY_CS2:
    for (i = 0; i < n; i++) {
      Py_BEGIN_CRITICAL_SECTION2(first, second);
      a->bench_counter++;
      Py_END_CRITICAL_SECTION2();
    }
    break;
#endif
  default:
    break; /* unreachable: bench_available() said no */
  }
  end = now_ns();
  return Py_BuildValue("(LL)", (long long)start, (long long)end);
}

static PyObject *ledger_bench_kinds(PyObject *module, PyObject *unused) {
  PyObject *d = PyDict_New();
  int k;
  (void)module;
  (void)unused;
  if (d == NULL) {
    return NULL;
  }
  for (k = 0; k < BENCH_KINDS; k++) {
    PyObject *v;
    if (!bench_available(k)) {
      continue;
    }
    v = PyLong_FromLong(k);
    if (v == NULL || PyDict_SetItemString(d, bench_names[k], v) != 0) {
      Py_XDECREF(v);
      Py_DECREF(d);
      return NULL;
    }
    Py_DECREF(v);
  }
  return d;
}

/* ======================================================================
 * Module
 * ====================================================================== */

static PyMethodDef ledger_methods[] = {
    {"transfer", ledger_transfer, METH_VARARGS,
     "transfer(src, dst, amount): move amount from src to dst atomically (both locks held);\n"
     "raises InsufficientFunds (nothing changes) when src is short. Deadlock-free in any order."},
    {"snapshot", ledger_snapshot, METH_VARARGS,
     "snapshot(a, b) -> (a.balance, b.balance) read at one instant (both locks held)"},
    {"thread_tally", ledger_thread_tally, METH_NOARGS,
     "thread_tally() -> (transfers, moved) not yet flushed by this thread, or None before its first transfer"},
    {"flush_tally", ledger_flush_tally, METH_NOARGS,
     "flush_tally(): fold this thread's tally into stats() now (thread exit does it too)"},
    {"stats", ledger_stats, METH_NOARGS,
     "stats() -> dict: transfers and moved folded from per-thread tallies (at thread exit or\n"
     "flush_tally), tallies_created and tallies_freed (freed by the thread-exit destructor)"},
    {"_bench", ledger_bench, METH_VARARGS,
     "_bench(kind, a, b, n, parties, swap=False) -> (start_ns, end_ns): see bench.py"},
    {"_bench_reset", ledger_bench_reset, METH_VARARGS, "_bench_reset(a): reset a's benchmark counter and start gate"},
    {"_bench_counter", ledger_bench_counter, METH_VARARGS, "_bench_counter(a) -> a's benchmark counter"},
    {"_bench_kinds", ledger_bench_kinds, METH_NOARGS,
     "_bench_kinds() -> {name: kind} of the primitives this build can time"},
    {NULL, NULL, 0, NULL},
};

static int ledger_exec(PyObject *module) {
  ledger_state *st = state_of_module(module);
  /* Hands CPython's thread-state and error functions to ft_weave. The
   * library finds them by itself when CPython is in the global symbol scope
   * (always the case for a `python` process importing an extension); handing
   * them over also covers programs that embed CPython loaded with
   * RTLD_LOCAL. It is what lets a thread blocked on a weave_mutex_t release
   * its thread state, so that a stop-the-world pause (gc.collect() on 3.13t)
   * never waits for it. The first complete set wins; repeating is harmless. */
  weave_py_tell_library();

  st->account_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Account_spec, NULL);
  if (st->account_type == NULL || PyModule_AddType(module, st->account_type) != 0) {
    return -1;
  }
  st->insufficient_funds = PyErr_NewExceptionWithDoc(
      "ledger.InsufficientFunds", "The source account holds less than the amount; nothing changed.",
      PyExc_ValueError, NULL);
  if (st->insufficient_funds == NULL) {
    return -1;
  }
  Py_INCREF(st->insufficient_funds);
  if (PyModule_AddObject(module, "InsufficientFunds", st->insufficient_funds) != 0) {
    Py_DECREF(st->insufficient_funds);
    return -1;
  }
  if (PyModule_AddStringConstant(module, "ft_weave_version", weave_version()) != 0 ||
      PyModule_AddIntConstant(module, "HAVE_PYMUTEX", LEDGER_HAVE_PYMUTEX) != 0 ||
      PyModule_AddIntConstant(module, "HAVE_PY_CRITICAL_SECTION", LEDGER_HAVE_PY_CRITICAL_SECTION) != 0) {
    return -1;
  }
  return 0;
}

static int ledger_traverse(PyObject *module, visitproc visit, void *arg) {
  ledger_state *st = state_of_module(module);
  Py_VISIT(st->account_type);
  Py_VISIT(st->insufficient_funds);
  return 0;
}

static int ledger_clear(PyObject *module) {
  ledger_state *st = state_of_module(module);
  Py_CLEAR(st->account_type);
  Py_CLEAR(st->insufficient_funds);
  return 0;
}

static void ledger_free(void *module) {
  (void)ledger_clear((PyObject *)module);
}

static PyModuleDef_Slot ledger_slots[] = {
    {Py_mod_exec, (void *)ledger_exec},
#ifdef Py_mod_gil
    /* The promise that makes this module free-threading ready: everything it
     * shares between threads is guarded by its own locks, so a free-threaded
     * CPython keeps the GIL disabled when it is imported (without this slot,
     * 3.13t re-enables the GIL and warns). */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef ledger_module = {
    PyModuleDef_HEAD_INIT,
    "ledger",
    "A bank-ledger example of ft_weave in a free-threaded CPython extension.",
    sizeof(ledger_state),
    ledger_methods,
    ledger_slots,
    ledger_traverse,
    ledger_clear,
    ledger_free,
};

PyMODINIT_FUNC PyInit_ledger(void) {
  return PyModuleDef_Init(&ledger_module);
}
