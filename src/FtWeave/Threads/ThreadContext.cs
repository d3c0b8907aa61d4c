using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using FtWeave.Interop;

namespace FtWeave.Threads;

/// <summary>One thread-exit destructor registration.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct DestructorEntry
{
    /// <summary>The registered variable; <c>*Var</c> is read when the destructor runs.</summary>
    public void** Var;
    /// <summary>NULL once the entry has run or was unregistered during a run.</summary>
    public delegate* unmanaged<void*, void> Destructor;
    /// <summary>0 for entries registered while the thread runs normally; n + 1 for
    /// entries a destructor of round n registered while the list was being run.</summary>
    public int Round;
    /// <summary>The pin that keeps the destructor's shared object loaded (ModulePins), or None.</summary>
    public int Pin;
}

/// <summary>
/// Everything the library keeps for one native thread, in native memory.
/// Created on the thread's first call that needs it; freed by the thread-exit
/// hook, which is registered at creation so that no context ever leaks.
/// Only its own thread touches it, so no field needs atomics.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct ThreadContext
{
    public const int LastErrorCapacity = 256;
    /// <summary>Registrations stored in the context's own block (after the struct) before any list is allocated.</summary>
    public const int InlineEntries = 8;

    /// <summary>The inline registrations, right after the struct in the same allocation
    /// (sizeof(ThreadContext) is a multiple of 8, the entries' alignment).</summary>
    public static DestructorEntry* InlineEntriesOf(ThreadContext* ctx) => (DestructorEntry*)(ctx + 1);

    public DestructorEntry* Entries;
    public int Count;
    public int Capacity;
    /// <summary>-1 while no destructor runs, else the round of the one running.</summary>
    public int RunningRound;
    /// <summary>This thread's cross-library storage (Storage/ThreadLocalValues.cs), or NULL.</summary>
    public void* Storage;
    /// <summary>The innermost critical section, tagged (Sections/CriticalSection.cs), or 0.</summary>
    public nuint SectionTop;
    /// <summary>1 during the last pass of the thread's teardown: registrations are refused.</summary>
    public int Closed;
    /// <summary>The last destructor this thread pinned and where (Threads/ModulePins.cs).</summary>
    public void* PinCode;
    public int PinSlot;
    public uint PinGeneration;
    /// <summary>1 on the process's main thread (gettid() == getpid()), else 0.</summary>
    public int IsMainThread;
    public fixed byte LastError[LastErrorCapacity];
}

/// <summary>
/// Finds or creates the calling thread's <see cref="ThreadContext"/> and tears
/// it down when the thread exits.
/// </summary>
internal static unsafe class ThreadContexts
{
    // The context pointer lives in a pthread key, not a [ThreadStatic]: NativeAOT
    // allocates a thread's thread-static block on the GC heap the first time the
    // thread touches it, and a thread's first park or lock must allocate no
    // managed memory. pthread_getspecific is a few instructions in libc.
    // The key is reserved by the library's C part when the library is loaded
    // (so a process that later uses up PTHREAD_KEYS_MAX cannot make the first
    // call fail) and has no destructor: the C part's thread-exit hook calls
    // TeardownCurrentThread instead, at a point it chooses (thread_exit.c).
    private static uint s_key;
    private static int s_keyState; // 0 not read yet, 2 ready, 3 none (no key was left at load)

    private const int KeyReady = 2;
    private const int KeyMissing = 3;

    // The key's value once the thread's teardown has finished: calls made later
    // on this thread (from another library's thread-exit callback) must not
    // create a new context, because nothing would ever free it.
    // src/native/thread_exit.c knows this value too (ftw_thread_has_context).
    private const nint TornDown = 1;

    // Where weave_last_error points when the thread has no context to hold a
    // message (allocation failed, or the thread is past its teardown). Only
    // error paths touch it, so its thread-static allocation is acceptable.
    [ThreadStatic] private static byte* t_fallbackError;

    // 1 once any thread has stored a fallback message (never cleared). Until
    // then t_fallbackError is NULL on every thread, so the paths every thread
    // takes (its exit hook, weave_last_error without a context) skip the
    // thread-static entirely: NativeAOT allocates a thread's thread-static
    // block on the GC heap the first time the thread touches one, and that
    // allocation made every exiting thread take a fresh allocation context
    // (about 8 KB zeroed: gc_heap::adjust_limit_clr; bench/ churn scenario).
    // A plain field is enough: a thread reads it only to know whether it may
    // have written its *own* t_fallbackError, and it sets the flag before
    // that write in program order.
    private static int s_fallbackUsed;

    /// <summary>False when the process had no pthread key left when the library was loaded.</summary>
    private static bool TryGetKey(out uint key)
    {
        // Acquire: pairs with the release in ReadKey, so s_key is valid.
        int state = Volatile.Read(ref s_keyState);
        if (state == 0)
        {
            state = ReadKey();
        }
        key = s_key;
        return state == KeyReady;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int ReadKey()
    {
        uint key;
        if (NativeHooks.ContextKey(&key) != 0)
        {
            Volatile.Write(ref s_keyState, KeyMissing);
            return KeyMissing;
        }
        // Installed before any context exists (every thread reads the key
        // before creating one), so no context can miss its teardown. Racing
        // threads store the same values.
        NativeHooks.SetThreadTeardown(&TeardownCurrentThread);
        s_key = key;
        Volatile.Write(ref s_keyState, KeyReady);
        return KeyReady;
    }

    private static nint Raw() => TryGetKey(out uint key) ? (nint)Pthread.GetSpecific(key) : 0;

    /// <summary>The context if the thread already has one, else NULL.</summary>
    internal static ThreadContext* Peek()
    {
        nint raw = Raw();
        return raw == TornDown ? null : (ThreadContext*)raw;
    }

    /// <summary>
    /// The calling thread's context, created on first use; NULL when the thread
    /// is past its teardown or memory ran out (<paramref name="error"/> says which).
    /// </summary>
    internal static ThreadContext* GetOrCreate(out int error)
    {
        nint raw = Raw();
        if (raw != 0 && raw != TornDown)
        {
            error = 0;
            return (ThreadContext*)raw;
        }
        return Create(raw, out error);
    }

    private static ThreadContext* Create(nint raw, out int error)
    {
        if (raw == TornDown)
        {
            error = Abi.ErrorCodes.WEAVE_E_STATE;
            return null;
        }
        if (!TryGetKey(out uint key))
        {
            // Not an allocation failure as such, but the same remedy: the
            // process ran out of a resource before the library was loaded.
            error = Abi.ErrorCodes.WEAVE_E_NOMEM;
            return null;
        }
        // The first InlineEntries registrations live in the same block, right
        // after the context: a thread that registers a few destructors pays
        // one allocation, not two (bench/ churn scenario: the second was a
        // realloc and a free per thread, ~1,000 instructions).
        ThreadContext* ctx = (ThreadContext*)Libc.Calloc(1,
            (nuint)sizeof(ThreadContext) + (nuint)ThreadContext.InlineEntries * (nuint)sizeof(DestructorEntry));
        if (ctx == null)
        {
            error = Abi.ErrorCodes.WEAVE_E_NOMEM;
            return null;
        }
        ctx->RunningRound = -1;
        ctx->Entries = ThreadContext.InlineEntriesOf(ctx);
        ctx->Capacity = ThreadContext.InlineEntries;

        // pthread_setspecific can fail only for memory (glibc allocates key
        // blocks lazily): try it first, while nothing is registered yet.
        if (Pthread.SetSpecific(key, ctx) != 0)
        {
            Libc.Free(ctx);
            error = Abi.ErrorCodes.WEAVE_E_NOMEM;
            return null;
        }

        // Every thread's context is torn down from the runtime's pthread key
        // destructor (TeardownCurrentThread, called by src/native/thread_exit.c
        // once the thread's other key destructors have had their first pass).
        // glibc runs no key destructors in exit(), so the main thread also
        // registers a thread_local-style hook: exit() runs the calling thread's
        // hooks before atexit handlers. (For main's pthread_exit glibc runs key
        // destructors but not these hooks; whichever runs first tears down,
        // the other finds the thread torn down.) The DSO handle is any address
        // in this library. Other threads register nothing here: a hook
        // registered during their pthread key destructors would never run and
        // its node would leak.
        ctx->IsMainThread = NativeHooks.IsMainThread();
        if (ctx->IsMainThread != 0)
        {
            delegate* unmanaged<void*, void> hook = &OnMainThreadExit;
            if (Pthread.CxaThreadAtExitImpl(hook, null, hook) != 0)
            {
                Pthread.SetSpecific(key, null);
                Libc.Free(ctx);
                error = Abi.ErrorCodes.WEAVE_E_NOMEM;
                return null;
            }
        }
        // From now on the critical sections' C fast paths use it too.
        Sections.CriticalSections.Publish(ctx);
        error = 0;
        return ctx;
    }

    [UnmanagedCallersOnly]
    private static void OnMainThreadExit(void* unused) => TeardownIfAny();

    /// <summary>
    /// Runs the calling thread's destructors and frees its context; then the
    /// thread is torn down for good. Called by the C part on a thread that the
    /// runtime still has attached.
    /// </summary>
    [UnmanagedCallersOnly]
    private static void TeardownCurrentThread() => TeardownIfAny();

    private static void TeardownIfAny()
    {
        ThreadContext* ctx = Peek();
        if (ctx != null)
        {
            Teardown(ctx);
        }
    }

    private static void Teardown(ThreadContext* ctx)
    {
        // Destructors first, storage values last (the destructors may still use
        // them). A storage value's destructor may register a destructor, or a
        // destructor create a storage value: run those too, for a bounded
        // number of passes. In the last pass, registrations made by storage
        // destructors are refused (WEAVE_E_STATE), never silently dropped.
        for (int pass = 0; ; pass++)
        {
            ThreadExitDestructors.RunAtExit(ctx);
            if (ctx->Storage == null)
            {
                break;
            }
            if (pass == ThreadExitDestructors.MaxRounds - 1)
            {
                ctx->Closed = 1;
            }
            // Leaves ctx->Storage NULL; a get during it returns WEAVE_E_STATE.
            Storage.ThreadLocalValues.OnThreadExit(ctx);
            if (ctx->Closed != 0 || ctx->Count == 0)
            {
                break;
            }
        }
        // From here on the thread has no context; see TornDown. (The slot
        // already exists for this key, so this set cannot fail for memory.)
        TryGetKey(out uint key);
        Pthread.SetSpecific(key, (void*)TornDown);
        // The C fast paths must never reach the context once it is freed:
        // they come to C# again, which finds the thread torn down.
        Sections.CriticalSections.Publish(null);
        if (s_fallbackUsed != 0)
        {
            t_fallbackError = null;
        }
        if (ctx->Entries != ThreadContext.InlineEntriesOf(ctx))
        {
            Libc.Free(ctx->Entries);
        }
        Libc.Free(ctx);
    }

    /// <summary>
    /// Records a message for weave_last_error and returns <paramref name="code"/>.
    /// <paramref name="message"/> must be NUL-terminated static data (a u8
    /// literal): it is copied when the thread has a context and pointed to when
    /// it has none.
    /// </summary>
    internal static int SetError(int code, ReadOnlySpan<byte> message)
    {
        ThreadContext* ctx = code != Abi.ErrorCodes.WEAVE_E_NOMEM ? GetOrCreate(out _) : Peek();
        if (ctx != null)
        {
            int n = Math.Min(message.Length, ThreadContext.LastErrorCapacity - 1);
            Span<byte> dest = new Span<byte>(ctx->LastError, ThreadContext.LastErrorCapacity);
            message.Slice(0, n).CopyTo(dest);
            dest[n] = 0;
        }
        else
        {
            fixed (byte* p = message)
            {
                s_fallbackUsed = 1;
                t_fallbackError = p;
            }
        }
        return code;
    }

    /// <summary>
    /// Starts a detailed message for weave_last_error, built in place in the
    /// thread's buffer (no allocation). Falls back to <paramref name="fallback"/>
    /// (static text) when the thread has no context.
    /// </summary>
    internal static ErrorMessage BeginError(ReadOnlySpan<byte> fallback)
    {
        ThreadContext* ctx = GetOrCreate(out _);
        if (ctx == null)
        {
            fixed (byte* p = fallback)
            {
                s_fallbackUsed = 1;
                t_fallbackError = p;
            }
            return default;
        }
        return new ErrorMessage(ctx->LastError, ThreadContext.LastErrorCapacity);
    }

    /// <summary>The calling thread's last message; never NULL.</summary>
    internal static byte* LastError()
    {
        ThreadContext* ctx = Peek();
        if (ctx != null)
        {
            return ctx->LastError;
        }
        byte* fallback = s_fallbackUsed != 0 ? t_fallbackError : null;
        if (fallback != null)
        {
            return fallback;
        }
        fixed (byte* empty = "\0"u8)
        {
            return empty;
        }
    }
}

/// <summary>
/// Appends text and numbers to a thread's last-error buffer, truncating at its
/// capacity and keeping it NUL-terminated after every append.
/// </summary>
internal unsafe struct ErrorMessage
{
    private readonly byte* _buffer;
    private readonly int _capacity;
    private int _length;

    internal ErrorMessage(byte* buffer, int capacity)
    {
        _buffer = buffer;
        _capacity = capacity;
        _length = 0;
        if (buffer != null)
        {
            buffer[0] = 0;
        }
    }

    internal ErrorMessage Append(ReadOnlySpan<byte> text)
    {
        if (_buffer == null)
        {
            return this;
        }
        int room = _capacity - 1 - _length;
        int n = Math.Min(room, text.Length);
        // Stop at an embedded NUL (u8 literals passed with a trailing "\0").
        int nul = text.Slice(0, n).IndexOf((byte)0);
        if (nul >= 0)
        {
            n = nul;
        }
        text.Slice(0, n).CopyTo(new Span<byte>(_buffer + _length, room));
        _length += n;
        _buffer[_length] = 0;
        return this;
    }

    internal ErrorMessage Append(byte* text, int length, int limit)
    {
        if (text == null)
        {
            return Append("(null)"u8);
        }
        Append(new ReadOnlySpan<byte>(text, Math.Min(length, limit)));
        return length > limit ? Append("..."u8) : this;
    }

    internal ErrorMessage Append(ulong number)
    {
        Span<byte> digits = stackalloc byte[20];
        number.TryFormat(digits, out int written);
        return Append(digits.Slice(0, written));
    }

    internal ErrorMessage Append(long number)
    {
        Span<byte> digits = stackalloc byte[21];
        number.TryFormat(digits, out int written);
        return Append(digits.Slice(0, written));
    }
}
