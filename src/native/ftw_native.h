/*
 * The small C part of libft_weave.so (src/native/): what must run where
 * managed code cannot, at a thread's or the process's end. Private to the
 * library: hidden symbols, reached from C# through direct P/Invoke
 * (FtWeave.csproj, DirectPInvoke "ftw_native").
 */
#ifndef FTW_NATIVE_H
#define FTW_NATIVE_H

#include <stdint.h>

#pragma GCC visibility push(hidden)

/* thread_exit.c */
int ftw_context_key(uint32_t *key);
void ftw_set_thread_teardown(void (*teardown)(void));
int ftw_thread_has_context(void);
int ftw_is_main_thread(void);

/* process_exit.c */
void ftw_process_exit_init(void);
void ftw_main_thread_exiting(void);

#pragma GCC visibility pop

#endif
