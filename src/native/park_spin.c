/*
 * The per-thread poll budget of a parked thread (src/FtWeave/Parking/
 * ParkSpin.cs has the policy). It lives here, in C thread-local storage,
 * because a C# [ThreadStatic] allocates its thread's block on the GC heap on
 * the first touch, and a thread's first park must allocate nothing managed.
 *
 * initial-exec, as debug.c: the library is linked with -z nodelete and its
 * TLS is in the static block, so the first touch on a thread allocates
 * nothing either. The value is a hint: a thread that never parks never
 * touches it, a fork child keeps the forking thread's, and a thread that
 * exits takes it along (no destructor, nothing to free).
 */
#include "ftw_native.h"

static __thread int park_budget __attribute__((tls_model("initial-exec")));

int *ftw_park_budget(void) { return &park_budget; }
