using System;
using FtWeave.Interop;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Threads;

/// <summary>
/// Per-thread destructor registrations for thread-local <c>void*</c> variables,
/// with ft_utils <c>weave</c> semantics: registration order, one run per
/// registration, <c>*var</c> read when the destructor runs.
///
/// Registrations live in the calling thread's <see cref="ThreadContext"/>; no
/// other thread ever reads them, so registering and unregistering take no lock
/// and need no atomics.
///
/// A destructor may register or unregister destructors. Entries it registers
/// join the list in the next round and run in the same teardown, up to
/// <see cref="MaxRounds"/> rounds (as PTHREAD_DESTRUCTOR_ITERATIONS bounds
/// pthread key destructors); a registration that would exceed the bound fails
/// with WEAVE_E_STATE instead of being silently dropped.
/// </summary>
internal static unsafe class ThreadExitDestructors
{
    internal const int MaxRounds = 4;

    internal static int Register(void** var, delegate* unmanaged<void*, void> destructor)
    {
        if (var == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_register_destructor: var is NULL\0"u8);
        }
        if (destructor == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_register_destructor: destructor is NULL\0"u8);
        }
        ThreadContext* ctx = ThreadContexts.GetOrCreate(out int error);
        if (ctx == null)
        {
            return error == WEAVE_E_STATE
                ? ThreadContexts.SetError(error, "weave_register_destructor: the thread has already run its thread-exit destructors\0"u8)
                : ThreadContexts.SetError(error, "weave_register_destructor: out of memory for the thread's context\0"u8);
        }

        if (ctx->Closed != 0)
        {
            return ThreadContexts.SetError(WEAVE_E_STATE,
                "weave_register_destructor: the thread has finished running its thread-exit destructors\0"u8);
        }

        int round = 0;
        if (ctx->RunningRound >= 0)
        {
            round = ctx->RunningRound + 1;
            if (round >= MaxRounds)
            {
                return ThreadContexts.SetError(WEAVE_E_STATE,
                    "weave_register_destructor: destructors registered more destructors for too many rounds (limit 4)\0"u8);
            }
        }

        if (ctx->Count == ctx->Capacity)
        {
            int newCapacity = ctx->Capacity * 2;
            nuint bytes = (nuint)newCapacity * (nuint)sizeof(DestructorEntry);
            DestructorEntry* grown;
            if (ctx->Entries == ThreadContext.InlineEntriesOf(ctx))
            {
                // The first growth leaves the context's inline entries: copy
                // them into a list of their own (the inline ones stay unused).
                grown = (DestructorEntry*)Libc.Malloc(bytes);
                if (grown != null)
                {
                    Buffer.MemoryCopy(ctx->Entries, grown, (long)bytes, (long)ctx->Count * sizeof(DestructorEntry));
                }
            }
            else
            {
                // realloc leaves the old block intact on failure: nothing half-stored.
                grown = (DestructorEntry*)Libc.Realloc(ctx->Entries, bytes);
            }
            if (grown == null)
            {
                return ThreadContexts.SetError(WEAVE_E_NOMEM, "weave_register_destructor: out of memory growing the registration list\0"u8);
            }
            ctx->Entries = grown;
            ctx->Capacity = newCapacity;
        }

        DestructorEntry* entry = &ctx->Entries[ctx->Count];
        entry->Var = var;
        entry->Destructor = destructor;
        entry->Round = round;
        // The destructor's shared object stays loaded until the entry has run
        // or been unregistered, even through a dlclose.
        entry->Pin = ModulePins.Pin(destructor, ctx);
        ctx->Count++;
        if (ctx->IsMainThread != 0)
        {
            // In a CPython program, the main thread's destructors must run
            // before the interpreter frees the memory they may point into.
            Python.PythonAtExit.OnMainThreadRegistration();
        }
        return WEAVE_OK;
    }

    /// <summary>1 if any registration of <paramref name="var"/> was removed, else 0.</summary>
    internal static int Unregister(void** var)
    {
        if (var == null)
        {
            return ThreadContexts.SetError(WEAVE_E_INVALID, "weave_unregister_destructor: var is NULL\0"u8);
        }
        ThreadContext* ctx = ThreadContexts.Peek();
        if (ctx == null)
        {
            return 0;
        }

        bool removed = false;
        if (ctx->RunningRound >= 0)
        {
            // A run is walking the list by index: clear matching entries in place
            // so that indices stay valid; the run skips cleared entries.
            // As in ft_utils, whose run takes the thread's whole list before
            // calling the first destructor: the entries of the rounds already
            // started are no longer registered, so an unregister from a
            // destructor does not see them (they still run, and it returns 0
            // for them); it removes only what destructors registered since
            // (later rounds, each of which ft_utils also takes whole).
            int running = ctx->RunningRound;
            for (int i = 0; i < ctx->Count; i++)
            {
                if (ctx->Entries[i].Var == var && ctx->Entries[i].Destructor != null && ctx->Entries[i].Round > running)
                {
                    ctx->Entries[i].Destructor = null;
                    ModulePins.Unpin(ctx->Entries[i].Pin);
                    removed = true;
                }
            }
            return removed ? 1 : 0;
        }

        int kept = 0;
        for (int i = 0; i < ctx->Count; i++)
        {
            if (ctx->Entries[i].Var == var)
            {
                ModulePins.Unpin(ctx->Entries[i].Pin);
                removed = true;
                continue;
            }
            ctx->Entries[kept++] = ctx->Entries[i];
        }
        ctx->Count = kept;
        return removed ? 1 : 0;
    }

    /// <summary>weave_run_thread_destructors: run and clear now; returns how many ran.</summary>
    internal static int RunNow()
    {
        ThreadContext* ctx = ThreadContexts.Peek();
        if (ctx == null)
        {
            return 0;
        }
        if (ctx->RunningRound >= 0)
        {
            return ThreadContexts.SetError(WEAVE_E_STATE,
                "weave_run_thread_destructors: called from a destructor while destructors are running\0"u8);
        }
        return Run(ctx);
    }

    /// <summary>Called by the thread's teardown (ThreadContexts), before the runtime detaches the thread.</summary>
    internal static void RunAtExit(ThreadContext* ctx)
    {
        // weave_run_thread_destructors is refused while a run is in progress, so
        // the hook never finds one half done (the hook cannot fire during a run).
        Run(ctx);
    }

    private static int Run(ThreadContext* ctx)
    {
        int ran = 0;
        // Count is re-read every iteration: a destructor may append entries
        // (they run later in this same walk) and realloc may move Entries.
        for (int i = 0; i < ctx->Count; i++)
        {
            DestructorEntry* entry = &ctx->Entries[i];
            delegate* unmanaged<void*, void> destructor = entry->Destructor;
            if (destructor == null)
            {
                continue;
            }
            void** var = entry->Var;
            ctx->RunningRound = entry->Round;
            // Cleared before the call: an unregister of this var from inside the
            // destructor must not report an entry that is already running.
            entry->Destructor = null;
            int pin = entry->Pin;
            destructor(*var);
            // After the call: it ran in an object that was kept loaded for it.
            // (entry may have moved: the destructor may have grown the list.)
            ModulePins.Unpin(pin);
            ran++;
        }
        ctx->Count = 0;
        ctx->RunningRound = -1;
        return ran;
    }
}
