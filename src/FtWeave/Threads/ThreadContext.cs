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

    public DestructorEntry* Entries;
    public int Count;
    public int Capacity;
    /// <summary>-1 while no destructor runs, else the round of the one running.</summary>
    public int RunningRound;
    /// <summary>This thread's cross-library storage (Storage/ThreadLocalValues.cs), or NULL.</summary>
    public void* Storage;
    /// <summary>The innermost critical section, tagged (Sections/CriticalSection.cs), or 0.</summary>
    public nuint SectionTop;
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
    // The key has no destructor (the exit hook frees the context, earlier).
    private static uint s_key;
    private static int s_keyState; // 0 none, 1 being created, 2 ready

    // The key's value once the exit hook has finished: calls made later on
    // this thread (from another library's thread-exit callback) must not
    // create a new context, because no exit hook would ever run to free it.
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

    private static uint Key
    {
        get
        {
            // Acquire: pairs with the release in CreateKey, so s_key is valid.
            return Volatile.Read(ref s_keyState) == 2 ? s_key : CreateKey();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static uint CreateKey()
    {
        if (Interlocked.CompareExchange(ref s_keyState, 1, 0) == 0)
        {
            uint key;
            // pthread_key_create fails only when the process has used up all
            // PTHREAD_KEYS_MAX (1024) keys; nothing in this library can work
            // without per-thread state then.
            if (Pthread.KeyCreate(&key, null) != 0)
            {
                Environment.FailFast("ft_weave: pthread_key_create failed (PTHREAD_KEYS_MAX reached)");
            }
            s_key = key;
            Volatile.Write(ref s_keyState, 2);
            return key;
        }
        // Another thread is creating it: a few instructions away.
        while (Volatile.Read(ref s_keyState) != 2)
        {
            Thread.SpinWait(1);
        }
        return s_key;
    }

    private static nint Raw() => (nint)Pthread.GetSpecific(Key);

    internal static bool IsTornDown => Raw() == TornDown;

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
        ThreadContext* ctx = (ThreadContext*)Libc.Calloc(1, (nuint)sizeof(ThreadContext));
        if (ctx == null)
        {
            error = Abi.ErrorCodes.WEAVE_E_NOMEM;
            return null;
        }
        ctx->RunningRound = -1;

        // Registering from inside managed code means the runtime has already
        // attached this thread and registered its own detach callback; glibc
        // runs these callbacks last-in first-out, so ours runs first, while the
        // thread can still execute managed code. (A pthread key destructor would
        // run after the detach.) The DSO handle is any address in this library.
        // pthread_setspecific can fail only for memory (glibc allocates key
        // blocks lazily): try it first, while nothing is registered yet.
        if (Pthread.SetSpecific(Key, ctx) != 0)
        {
            Libc.Free(ctx);
            error = Abi.ErrorCodes.WEAVE_E_NOMEM;
            return null;
        }
        delegate* unmanaged<void*, void> hook = &OnThreadExit;
        if (Pthread.CxaThreadAtExitImpl(hook, ctx, hook) != 0)
        {
            Pthread.SetSpecific(Key, null);
            Libc.Free(ctx);
            error = Abi.ErrorCodes.WEAVE_E_NOMEM;
            return null;
        }
        error = 0;
        return ctx;
    }

    [UnmanagedCallersOnly]
    private static void OnThreadExit(void* obj)
    {
        ThreadContext* ctx = (ThreadContext*)obj;
        ThreadExitDestructors.RunAtExit(ctx);
        // Storage values last: the destructors above may still use them.
        Storage.ThreadLocalValues.OnThreadExit(ctx);
        // From here on the thread has no context; see TornDown. (The slot
        // already exists for this key, so this set cannot fail for memory.)
        Pthread.SetSpecific(Key, (void*)TornDown);
        if (s_fallbackUsed != 0)
        {
            t_fallbackError = null;
        }
        Libc.Free(ctx->Entries);
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
