using System;
using System.Runtime.InteropServices;
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
    public fixed byte LastError[LastErrorCapacity];
}

/// <summary>
/// Finds or creates the calling thread's <see cref="ThreadContext"/> and tears
/// it down when the thread exits.
/// </summary>
internal static unsafe class ThreadContexts
{
    // A pointer-sized thread static: after the thread's first call, reaching the
    // context is one TLS load with no managed allocation.
    [ThreadStatic] private static ThreadContext* t_current;

    // Set once the exit hook has finished: calls made later on this thread (from
    // another library's thread-exit callback) must not create a new context,
    // because no exit hook would ever run to free it.
    [ThreadStatic] private static bool t_tornDown;

    // Where weave_last_error points when the thread has no context to hold a
    // message (allocation failed, or the thread is past its teardown).
    [ThreadStatic] private static byte* t_fallbackError;

    internal static bool IsTornDown => t_tornDown;

    /// <summary>The context if the thread already has one, else NULL.</summary>
    internal static ThreadContext* Peek() => t_current;

    /// <summary>
    /// The calling thread's context, created on first use; NULL when the thread
    /// is past its teardown or memory ran out (<paramref name="error"/> says which).
    /// </summary>
    internal static ThreadContext* GetOrCreate(out int error)
    {
        ThreadContext* ctx = t_current;
        if (ctx != null)
        {
            error = 0;
            return ctx;
        }
        return Create(out error);
    }

    private static ThreadContext* Create(out int error)
    {
        if (t_tornDown)
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
        delegate* unmanaged<void*, void> hook = &OnThreadExit;
        if (Pthread.CxaThreadAtExitImpl(hook, ctx, hook) != 0)
        {
            Libc.Free(ctx);
            error = Abi.ErrorCodes.WEAVE_E_NOMEM;
            return null;
        }
        t_current = ctx;
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
        // From here on the thread has no context; see t_tornDown.
        t_tornDown = true;
        t_current = null;
        t_fallbackError = null;
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
        ThreadContext* ctx = t_current;
        if (ctx == null && !t_tornDown && code != Abi.ErrorCodes.WEAVE_E_NOMEM)
        {
            ctx = Create(out _);
        }
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
        ThreadContext* ctx = t_current;
        if (ctx == null && !t_tornDown)
        {
            ctx = Create(out _);
        }
        if (ctx == null)
        {
            fixed (byte* p = fallback)
            {
                t_fallbackError = p;
            }
            return default;
        }
        return new ErrorMessage(ctx->LastError, ThreadContext.LastErrorCapacity);
    }

    /// <summary>The calling thread's last message; never NULL.</summary>
    internal static byte* LastError()
    {
        ThreadContext* ctx = t_current;
        if (ctx != null)
        {
            return ctx->LastError;
        }
        byte* fallback = t_fallbackError;
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
