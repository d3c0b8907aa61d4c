/* A thread that CPython would end while it re-attaches after a detached
 * wait, in a program whose main thread then ends with pthread_exit.
 *
 * A native thread attaches (PyGILState_Ensure) and blocks in
 * weave_mutex_lock on a mutex the main thread holds (the library detaches
 * it). The main thread finalizes the interpreter, then unlocks: the worker
 * wakes inside the library and re-attaches to a finalized interpreter.
 * CPython 3.11-3.13 would end it there (pthread_exit); the library parks it
 * for good instead, in C (src/native/python_probe.c). Checked:
 *   - the worker never returns from weave_mutex_lock;
 *   - it is still there (parked, not exited) 200 ms after the unlock;
 *   - main's pthread_exit still ends the process with status 0: the parked
 *     thread does not keep it alive (src/native/process_exit.c).
 * alarm(20) turns a hang into exit status 2. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <ft_weave.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "embed_check.h"

static weave_mutex_t g_mutex;
static int g_worker_tid;
static int g_worker_returned;

static void on_alarm(int sig) {
  static const char msg[] = "detach_pthread_exit: timed out (the parked thread kept the process alive?)\n";
  ssize_t ignored;
  (void)sig;
  ignored = write(2, msg, sizeof msg - 1);
  (void)ignored;
  _exit(2);
}

static uint64_t unparks(void) {
  weave_stats_t s;
  return weave_stats(&s) == 0 ? s.unparks : 0;
}

static uint64_t parks(void) {
  weave_stats_t s;
  return weave_stats(&s) == 0 ? s.parks : 0;
}

static int thread_exists(int tid) {
  char path[64];
  struct stat st;
  snprintf(path, sizeof path, "/proc/self/task/%d", tid);
  return stat(path, &st) == 0;
}

static void *worker(void *arg) {
  PyGILState_STATE g;
  (void)arg;
  __atomic_store_n(&g_worker_tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
  g = PyGILState_Ensure();
  weave_mutex_lock(&g_mutex); /* attached: parks with WEAVE_LOCK_DETACH */
  /* Only if the interpreter was still alive when it re-attached. */
  __atomic_store_n(&g_worker_returned, 1, __ATOMIC_RELEASE);
  (void)weave_mutex_unlock(&g_mutex);
  PyGILState_Release(g);
  return NULL;
}

int main(void) {
  pthread_t t;
  uint64_t parks_before, unparks_before;
  double deadline;
  int tid;

  signal(SIGALRM, on_alarm);
  alarm(20);
  weave_mutex_lock(&g_mutex);
  Py_InitializeEx(0);
  parks_before = parks();
  {
    PyThreadState *main_state = PyEval_SaveThread();
    REQUIRE(pthread_create(&t, NULL, worker, NULL) == 0, 1);
    deadline = embed_now() + 10;
    while (parks() < parks_before + 1 && embed_now() < deadline) {
      usleep(1000);
    }
    REQUIRE(parks() >= parks_before + 1, 1);
    PyEval_RestoreThread(main_state);
  }
  REQUIRE(Py_FinalizeEx() == 0, 1);

  unparks_before = unparks();
  CHECK(weave_mutex_unlock(&g_mutex) == 0);
  CHECK(unparks() == unparks_before + 1);
  usleep(200 * 1000);
  tid = __atomic_load_n(&g_worker_tid, __ATOMIC_ACQUIRE);
  CHECK(!__atomic_load_n(&g_worker_returned, __ATOMIC_ACQUIRE));
  CHECK(tid != 0 && thread_exists(tid)); /* parked for good, not ended */
  if (embed_result("detach_pthread_exit") != 0) {
    return 1;
  }
  fflush(stdout);
  pthread_exit(NULL); /* the process must still end, with status 0 */
}
