using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using Mutex = FtWeave.Locks.Mutex;
using FtWeave.Locks;
using FtWeave.Threads;
using static FtWeave.Abi.ErrorCodes;

namespace FtWeave.Sections;

/// <summary><c>weave_critical_section_t</c>: lives on the caller's stack.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct weave_critical_section_t
{
    public nuint _cs_prev;  // uintptr_t: tagged pointer to the enclosing section
    public byte* _cs_mutex; // weave_mutex_t*: NULL while locking, and for a re-entry
}

/// <summary><c>weave_critical_section2_t</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct weave_critical_section2_t
{
    public weave_critical_section_t _cs_base;
    public byte* _cs_mutex2; // weave_mutex_t*
}

/// <summary>
/// PEP 703 critical sections over weave_mutex_t, as CPython's
/// Python/critical_section.c, with the thread's innermost section in its
/// ThreadContext (native memory) instead of a PyThreadState field:
///
///   tag bit | meaning (in ThreadContext.SectionTop and in every section's _cs_prev)
///   --------+----------------------------------------------------------
///   0x1     | the section pointed to is suspended (its mutexes released)
///   0x2     | the section pointed to is a weave_critical_section2_t
///
/// Only the owning thread reads or writes its chain, so no atomics are needed
/// here; the mutexes provide all cross-thread ordering.
///
/// Suspension is what makes opposite lock orders safe: a thread about to sleep
/// on a contended mutex (or in weave_park with detach) releases every section's
/// mutexes first (<see cref="SuspendAll"/>, called from ThreadDetach); after
/// waking, only the innermost is re-acquired (<see cref="Resume"/>), and each
/// outer one when the section inside it ends (<see cref="Pop"/>).
/// </summary>
internal static unsafe class CriticalSections
{
    private const nuint Inactive = 1;
    private const nuint TwoMutexes = 2;
    private const nuint TagMask = 3;

    /// <summary>
    /// _cs_prev of a section that could not be pushed because the thread has
    /// no context (out of memory, or past its teardown): its mutex is locked
    /// and End only unlocks it. Never a real tagged pointer (those are non-NULL).
    /// </summary>
    private const nuint NotPushed = TagMask;

    private static weave_critical_section_t* Untag(nuint tag) => (weave_critical_section_t*)(tag & ~TagMask);

    private static bool IsActive(nuint tag) => tag != 0 && (tag & Inactive) == 0;

    /// <summary>Whether the calling thread is inside any section (cheap; used before sleeping).</summary>
    internal static bool Any
    {
        get
        {
            ThreadContext* ctx = ThreadContexts.Peek();
            return ctx != null && ctx->SectionTop != 0;
        }
    }

    /// <summary>True when the innermost active section already holds <paramref name="m"/>.</summary>
    private static bool TopHolds(ThreadContext* ctx, byte* m)
    {
        nuint top = ctx->SectionTop;
        if (!IsActive(top))
        {
            return false;
        }
        weave_critical_section_t* c = Untag(top);
        return c->_cs_mutex == m || ((top & TwoMutexes) != 0 && ((weave_critical_section2_t*)c)->_cs_mutex2 == m);
    }

    internal static void Begin(weave_critical_section_t* c, byte* m)
    {
        ThreadContext* ctx = ThreadContexts.GetOrCreate(out _);
        if (ctx == null)
        {
            BeginUntracked(c, m);
            return;
        }
        // Fast path: an uncontended CAS, then push.
        if (Interlocked.CompareExchange(ref *m, Mutex.Locked, 0) == 0)
        {
            c->_cs_mutex = m;
            c->_cs_prev = ctx->SectionTop;
            ctx->SectionTop = (nuint)c;
            return;
        }
        BeginSlow(ctx, c, m);
    }

    /// <summary>
    /// No context to push onto (out of memory, or the thread is past its
    /// teardown): still lock, so the caller's data stays protected; the section
    /// is just not suspended while the thread sleeps.
    /// </summary>
    private static void BeginUntracked(weave_critical_section_t* c, byte* m)
    {
        ThreadContexts.SetError(WEAVE_E_NOMEM, "weave_critical_section_begin: no per-thread state; the section locks but cannot be suspended\0"u8);
        Mutex.Lock(m);
        c->_cs_mutex = m;
        c->_cs_prev = NotPushed;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void BeginSlow(ThreadContext* ctx, weave_critical_section_t* c, byte* m)
    {
        if (TopHolds(ctx, m))
        {
            // Re-entry: the innermost section already protects m. Nothing is
            // pushed; End recognises the NULL mutex and does nothing.
            c->_cs_mutex = null;
            c->_cs_prev = 0;
            return;
        }
        // Push before blocking, with no mutex yet: if the lock below parks and
        // suspends this thread's sections, this one has nothing to release,
        // and the resume after waking re-locks nothing for it.
        c->_cs_mutex = null;
        c->_cs_prev = ctx->SectionTop;
        ctx->SectionTop = (nuint)c;
        Mutex.LockSlow(m);
        c->_cs_mutex = m;
    }

    internal static void Begin2(weave_critical_section2_t* c, byte* m1, byte* m2)
    {
        if (m1 == m2)
        {
            c->_cs_mutex2 = null;
            Begin(&c->_cs_base, m1);
            return;
        }
        ThreadContext* ctx = ThreadContexts.GetOrCreate(out _);
        if (ctx == null)
        {
            c->_cs_mutex2 = null;
            BeginUntracked(&c->_cs_base, m1);
            Mutex.Lock(m2);
            c->_cs_mutex2 = m2;
            return;
        }
        if ((nuint)m2 < (nuint)m1)
        {
            // Address order: every thread takes a pair in the same order.
            byte* t = m1;
            m1 = m2;
            m2 = t;
        }
        if (TopHolds(ctx, m1) && TopHolds(ctx, m2))
        {
            // Re-entry on both mutexes of the innermost section.
            c->_cs_base._cs_mutex = null;
            c->_cs_base._cs_prev = 0;
            c->_cs_mutex2 = null;
            return;
        }
        bool m1Locked = Interlocked.CompareExchange(ref *m1, Mutex.Locked, 0) == 0;
        if (m1Locked && Interlocked.CompareExchange(ref *m2, Mutex.Locked, 0) == 0)
        {
            c->_cs_base._cs_mutex = m1;
            c->_cs_mutex2 = m2;
            c->_cs_base._cs_prev = ctx->SectionTop;
            ctx->SectionTop = (nuint)c | TwoMutexes;
            return;
        }
        Begin2Slow(ctx, c, m1, m2, m1Locked);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Begin2Slow(ThreadContext* ctx, weave_critical_section2_t* c, byte* m1, byte* m2, bool m1Locked)
    {
        c->_cs_base._cs_mutex = null;
        c->_cs_mutex2 = null;
        c->_cs_base._cs_prev = ctx->SectionTop;
        ctx->SectionTop = (nuint)c | TwoMutexes;
        if (!m1Locked)
        {
            Mutex.LockSlow(m1);
        }
        // If the lock of m2 parks, suspension releases the outer sections but
        // not m1 (this section's fields are still NULL), so hold-m1-wait-m2 is
        // the only order anyone waits in for this pair: no deadlock.
        Mutex.LockSlow(m2);
        c->_cs_base._cs_mutex = m1;
        c->_cs_mutex2 = m2;
    }

    internal static void End(weave_critical_section_t* c)
    {
        if (c->_cs_mutex == null)
        {
            return; // a re-entry: nothing was pushed or locked
        }
        if (c->_cs_prev == NotPushed)
        {
            Mutex.Unlock(c->_cs_mutex);
            return;
        }
        ThreadContext* ctx = ThreadContexts.Peek();
        if (ctx == null || Untag(ctx->SectionTop) != c)
        {
            ThreadContexts.SetError(WEAVE_E_STATE, "weave_critical_section_end: not the innermost critical section of this thread\0"u8);
            return;
        }
        Mutex.Unlock(c->_cs_mutex);
        Pop(ctx, c);
    }

    internal static void End2(weave_critical_section2_t* c)
    {
        if (c->_cs_base._cs_mutex == null)
        {
            return; // a re-entry (or one mutex twice, re-entered)
        }
        if (c->_cs_base._cs_prev == NotPushed)
        {
            if (c->_cs_mutex2 != null)
            {
                Mutex.Unlock(c->_cs_mutex2);
            }
            Mutex.Unlock(c->_cs_base._cs_mutex);
            return;
        }
        ThreadContext* ctx = ThreadContexts.Peek();
        if (ctx == null || Untag(ctx->SectionTop) != &c->_cs_base)
        {
            ThreadContexts.SetError(WEAVE_E_STATE, "weave_critical_section2_end: not the innermost critical section of this thread\0"u8);
            return;
        }
        if (c->_cs_mutex2 != null)
        {
            Mutex.Unlock(c->_cs_mutex2);
        }
        Mutex.Unlock(c->_cs_base._cs_mutex);
        Pop(ctx, &c->_cs_base);
    }

    private static void Pop(ThreadContext* ctx, weave_critical_section_t* c)
    {
        ctx->SectionTop = c->_cs_prev;
        if ((c->_cs_prev & Inactive) != 0)
        {
            // The enclosing section was suspended while this one was inside it.
            Resume();
        }
    }

    /// <summary>Releases every active section's mutexes and marks them suspended.</summary>
    internal static void SuspendAll()
    {
        ThreadContext* ctx = ThreadContexts.Peek();
        if (ctx == null)
        {
            return;
        }
        // The chain starts in the context (native memory) and continues in
        // the sections on this thread's stack: nothing here can move.
        nuint* tagptr = &ctx->SectionTop;
        while (IsActive(*tagptr))
        {
            nuint tag = *tagptr;
            Release(tag);
            *tagptr = tag | Inactive;
            tagptr = &Untag(tag)->_cs_prev;
        }
    }

    private static void Release(nuint tag)
    {
        weave_critical_section_t* c = Untag(tag);
        if (c->_cs_mutex == null)
        {
            return; // still locking (a begin or resume in progress): nothing held
        }
        Mutex.Unlock(c->_cs_mutex);
        if ((tag & TwoMutexes) != 0)
        {
            weave_critical_section2_t* c2 = (weave_critical_section2_t*)c;
            if (c2->_cs_mutex2 != null)
            {
                Mutex.Unlock(c2->_cs_mutex2);
            }
        }
    }

    /// <summary>Re-acquires the innermost section's mutexes if it is suspended.</summary>
    internal static void Resume()
    {
        ThreadContext* ctx = ThreadContexts.Peek();
        if (ctx == null)
        {
            return;
        }
        nuint top = ctx->SectionTop;
        if (top == 0 || IsActive(top))
        {
            return;
        }
        weave_critical_section_t* c = Untag(top);
        // Cleared while locking: if a lock below parks and suspends again, the
        // nested suspend and resume see nothing to release or re-take here.
        byte* m1 = c->_cs_mutex;
        c->_cs_mutex = null;
        byte* m2 = null;
        weave_critical_section2_t* c2 = null;
        if ((top & TwoMutexes) != 0)
        {
            c2 = (weave_critical_section2_t*)c;
            m2 = c2->_cs_mutex2;
            c2->_cs_mutex2 = null;
        }
        if (m1 != null)
        {
            Mutex.LockSlow(m1);
        }
        if (m2 != null)
        {
            Mutex.LockSlow(m2);
        }
        c->_cs_mutex = m1;
        if (c2 != null)
        {
            c2->_cs_mutex2 = m2;
        }
        ctx->SectionTop &= ~Inactive;
    }
}
