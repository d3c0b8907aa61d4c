using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using Mutex = FtWeave.Locks.Mutex;
using FtWeave.Interop;
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
/// outer one when the section inside it ends (<see cref="EndSection"/>).
/// A condition wait does its own suspension and resumption instead (see
/// "Condition waits inside sections" below), because the mutex it waits with
/// may be a section's.
///
/// Fast paths in C. The exports weave_critical_section_begin/end and
/// 2_begin/2_end are defined in src/native/critical_section.c, which does
/// the uncontended cases itself, without the NativeAOT transition: a begin
/// whose CAS succeeds (push), a begin that is a re-entry on the innermost
/// active section, the end of a re-entry, and the end of the innermost active
/// section when the one around it is not suspended (unlock, pop). Whatever
/// else (NULL arguments, no context yet, a contended mutex, a suspended
/// section to resume, misuse, teardown) comes here through the ftw_* entry
/// points of Exports/CriticalSectionExports.cs, which are this class's
/// operations as they were when they were the exports. The rules stay here:
/// the C part only performs, with the same stores in the same order, what
/// these methods would do in those cases, and its table says which. The C
/// part reaches the chain through a thread-local pointer to
/// ThreadContext.SectionTop that <see cref="Publish"/> sets when the thread's
/// context is created and clears at its teardown, before the context is
/// freed; it holds the tag bits below as its own constants, which
/// <see cref="Publish"/> compares with these before ever publishing (a
/// mismatch keeps the fast path off: every call then comes here).
/// </summary>
/// <summary>A callback of <see cref="CriticalSections.ForEachActiveMutex"/>.</summary>
internal unsafe interface IActiveSectionVisitor
{
    /// <summary>Returns nonzero to stop the walk with that value.</summary>
    int Visit(byte* mutex);
}

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

    /// <summary>
    /// _cs_prev of a section that has ended (its _cs_mutex is then NULL), so
    /// that a second end is reported instead of unlocking again. A NULL
    /// pointer tagged "suspended": never in a chain, and distinct from a
    /// re-entry (0) and from <see cref="NotPushed"/>.
    /// </summary>
    private const nuint Ended = Inactive;

    /// <summary>
    /// The constants of src/native/critical_section.c, packed as
    /// ftw_critical_section_constants packs them: the tag bits and encodings
    /// above, then the mutex bits.
    /// </summary>
    private static ulong ExpectedNativeConstants =>
        Inactive | (ulong)TwoMutexes << 8 | (ulong)Ended << 16 | (ulong)NotPushed << 24
        | (ulong)Mutex.Locked << 32 | (ulong)Mutex.HasParked << 40;

    // 0 not checked yet, 1 the C part's constants match, 2 they do not.
    private static int s_nativeState;

    /// <summary>
    /// Hands the C fast paths the calling thread's chain head
    /// (<paramref name="ctx"/> just created) or takes it away (NULL, at the
    /// context's teardown, before it is freed).
    /// </summary>
    internal static void Publish(ThreadContext* ctx)
    {
        if (ctx == null)
        {
            Native.PublishSectionTop(null);
            return;
        }
        int state = Volatile.Read(ref s_nativeState);
        if (state == 0)
        {
            // Racing threads compute the same answer.
            state = Native.CriticalSectionConstants() == ExpectedNativeConstants ? 1 : 2;
            Volatile.Write(ref s_nativeState, state);
        }
        if (state == 1)
        {
            Native.PublishSectionTop(&ctx->SectionTop);
        }
    }

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
        return IsActive(top) && Holds(top, m);
    }

    /// <summary>
    /// Debug mode's view of the calling thread's sections: calls visit(m) for
    /// every mutex an active (not suspended) section of the chain holds,
    /// innermost first. A link whose Inactive tag is set points to a
    /// suspended section, whose mutexes are released. Only the owning thread
    /// walks its chain (no atomics, as everywhere here). Returns the first
    /// nonzero result of visit, or 0.
    /// </summary>
    internal static int ForEachActiveMutex<TVisit>(ref TVisit visit)
        where TVisit : struct, IActiveSectionVisitor
    {
        ThreadContext* ctx = ThreadContexts.Peek();
        if (ctx == null)
        {
            return 0;
        }
        nuint tag = ctx->SectionTop;
        // Bounded: a corrupted chain (a section's memory reused while pushed)
        // must not hang the debug check.
        for (int n = 0; (tag & ~TagMask) != 0 && n < 4096; n++)
        {
            var c = (weave_critical_section_t*)(tag & ~TagMask);
            if ((tag & Inactive) == 0)
            {
                int r = c->_cs_mutex != null ? visit.Visit(c->_cs_mutex) : 0;
                if (r == 0 && (tag & TwoMutexes) != 0 && ((weave_critical_section2_t*)c)->_cs_mutex2 != null)
                {
                    r = visit.Visit(((weave_critical_section2_t*)c)->_cs_mutex2);
                }
                if (r != 0)
                {
                    return r;
                }
            }
            tag = c->_cs_prev;
        }
        return 0;
    }

    internal static void Begin(weave_critical_section_t* c, byte* m)
    {
        ThreadContext* ctx = ThreadContexts.GetOrCreate(out int error);
        if (ctx == null)
        {
            BeginUntracked(c, m, error);
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
    private static void BeginUntracked(weave_critical_section_t* c, byte* m, int error)
    {
        if (error == WEAVE_E_STATE)
        {
            ThreadContexts.SetError(WEAVE_E_STATE, "weave_critical_section_begin: the thread is past its thread-exit teardown; the section locks but cannot be suspended\0"u8);
        }
        else
        {
            ThreadContexts.SetError(WEAVE_E_NOMEM, "weave_critical_section_begin: no per-thread state (out of memory); the section locks but cannot be suspended\0"u8);
        }
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
        if ((nuint)m2 < (nuint)m1)
        {
            // Address order, on every path below (the no-context one too):
            // every thread takes a pair in the same order, so two threads
            // locking the same pair cannot each hold one and wait for the other.
            byte* t = m1;
            m1 = m2;
            m2 = t;
        }
        ThreadContext* ctx = ThreadContexts.GetOrCreate(out int error);
        if (ctx == null)
        {
            c->_cs_mutex2 = null;
            BeginUntracked(&c->_cs_base, m1, error);
            Mutex.Lock(m2);
            c->_cs_mutex2 = m2;
            return;
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

    /// <summary>
    /// The C fast path of a two-mutex begin took <paramref name="m1"/> (the
    /// lower address) and failed to take <paramref name="m2"/>: what
    /// <see cref="Begin2"/> does after its first CAS succeeded. Holding m1,
    /// the innermost active section holds neither (it would hold m1 locked),
    /// so this is no re-entry.
    /// </summary>
    internal static void Begin2HoldingFirst(weave_critical_section2_t* c, byte* m1, byte* m2)
    {
        ThreadContext* ctx = ThreadContexts.Peek();
        if (ctx == null)
        {
            // Not reached: the C part calls this only while the context is
            // published. Should it be, lock untracked like BeginUntracked.
            ThreadContexts.SetError(WEAVE_E_STATE, "weave_critical_section2_begin: no per-thread state; the section locks but cannot be suspended\0"u8);
            c->_cs_base._cs_mutex = m1;
            c->_cs_base._cs_prev = NotPushed;
            c->_cs_mutex2 = null;
            Mutex.Lock(m2);
            c->_cs_mutex2 = m2;
            return;
        }
        Begin2Slow(ctx, c, m1, m2, m1Locked: true);
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

    /// <summary>A section that holds nothing and is in no chain (as a re-entry): its end does nothing.</summary>
    internal static void InitEmpty(weave_critical_section_t* c)
    {
        c->_cs_mutex = null;
        c->_cs_prev = 0;
    }

    internal static void End(weave_critical_section_t* c) => EndSection(c, two: false);

    internal static void End2(weave_critical_section2_t* c) => EndSection(&c->_cs_base, two: true);

    /// <summary>
    /// Ends <paramref name="c"/>. Only mutexes this thread holds are ever
    /// unlocked: an active section's. After it returns the library no longer
    /// refers to <paramref name="c"/>, so the caller's stack slot may go.
    ///
    ///   c is ...                            | unlocks          | reported
    ///   ------------------------------------+------------------+----------------------
    ///   the innermost, active (normal case) | its mutexes      | nothing; a suspended
    ///                                       |                  | enclosing one resumes
    ///   the innermost, suspended            | nothing          | WEAVE_E_STATE message
    ///   in the chain, not innermost         | its mutexes if   | WEAVE_E_STATE message;
    ///                                       | active           | it leaves the chain
    ///   not in this thread's chain (ended   | nothing          | WEAVE_E_STATE message
    ///   already, another thread's)          |                  |
    /// </summary>
    private static void EndSection(weave_critical_section_t* c, bool two)
    {
        if (c->_cs_mutex == null)
        {
            if (c->_cs_prev == Ended)
            {
                ThreadContexts.SetError(WEAVE_E_STATE, two
                    ? "weave_critical_section2_end: the section has already ended; nothing was unlocked\0"u8
                    : "weave_critical_section_end: the section has already ended; nothing was unlocked\0"u8);
                return;
            }
            // A re-entry: nothing was pushed or locked.
            c->_cs_prev = Ended;
            return;
        }
        if (c->_cs_prev == NotPushed)
        {
            // Locked without a context: in no chain, never suspended, so its
            // mutexes are still this thread's.
            if (two && ((weave_critical_section2_t*)c)->_cs_mutex2 != null)
            {
                Mutex.Unlock(((weave_critical_section2_t*)c)->_cs_mutex2);
            }
            Mutex.Unlock(c->_cs_mutex);
            MarkEnded(c, two);
            return;
        }
        ThreadContext* ctx = ThreadContexts.Peek();
        nuint* link = ctx != null ? LinkTo(ctx, c) : null;
        if (link == null)
        {
            // Not this thread's: its mutex may be anyone's by now. Touch nothing.
            ThreadContexts.SetError(WEAVE_E_STATE, two
                ? "weave_critical_section2_end: not a critical section of this thread (ended already, or begun on another thread); nothing was unlocked\0"u8
                : "weave_critical_section_end: not a critical section of this thread (ended already, or begun on another thread); nothing was unlocked\0"u8);
            return;
        }
        nuint tag = *link;
        nuint prev = c->_cs_prev;
        bool innermost = link == &ctx->SectionTop;
        bool held = IsActive(tag);
        if (held)
        {
            // Only an active section holds its mutexes. A suspended one
            // released them when it was suspended; another thread may hold
            // them now, and unlocking would release that thread's hold.
            Release(tag, null);
        }
        // Unlink. Inside the chain this joins the section inside c to the one
        // around it; the tag moved along describes that outer one, so the
        // chain stays as if c had never been begun (active sections remain a
        // prefix of it: removing one keeps that true).
        *link = prev;
        MarkEnded(c, (tag & TwoMutexes) != 0);
        if (!innermost)
        {
            ThreadContexts.SetError(WEAVE_E_STATE, two
                ? "weave_critical_section2_end: not the innermost critical section of this thread; ended anyway (its mutexes released if it held them), sections inside it unchanged\0"u8
                : "weave_critical_section_end: not the innermost critical section of this thread; ended anyway (its mutexes released if it held them), sections inside it unchanged\0"u8);
            return;
        }
        if (!held)
        {
            ThreadContexts.SetError(WEAVE_E_STATE, two
                ? "weave_critical_section2_end: the section is suspended, so this thread does not hold its mutexes; ended without unlocking them\0"u8
                : "weave_critical_section_end: the section is suspended, so this thread does not hold its mutex; ended without unlocking it\0"u8);
            return;
        }
        if ((prev & Inactive) != 0)
        {
            // The enclosing section was suspended while this one was inside it.
            Resume();
        }
    }

    private static void MarkEnded(weave_critical_section_t* c, bool two)
    {
        c->_cs_mutex = null;
        c->_cs_prev = Ended;
        if (two)
        {
            ((weave_critical_section2_t*)c)->_cs_mutex2 = null;
        }
    }

    /// <summary>The tagged pointer to <paramref name="c"/> in this thread's chain (in the context or in the section inside it), or NULL.</summary>
    private static nuint* LinkTo(ThreadContext* ctx, weave_critical_section_t* c)
    {
        nuint* link = &ctx->SectionTop;
        while (*link != 0)
        {
            weave_critical_section_t* s = Untag(*link);
            if (s == c)
            {
                return link;
            }
            link = &s->_cs_prev;
        }
        return null;
    }

    /// <summary>Releases every active section's mutexes and marks them suspended.</summary>
    internal static void SuspendAll()
    {
        ThreadContext* ctx = ThreadContexts.Peek();
        if (ctx == null)
        {
            return;
        }
        SuspendActive(ctx, null);
    }

    /// <summary>
    /// Suspends the active sections (a prefix of the chain), releasing their
    /// mutexes except <paramref name="keep"/>. The chain starts in the context
    /// (native memory) and continues in the sections on this thread's stack:
    /// nothing here can move.
    /// </summary>
    private static void SuspendActive(ThreadContext* ctx, byte* keep)
    {
        nuint* tagptr = &ctx->SectionTop;
        while (IsActive(*tagptr))
        {
            nuint tag = *tagptr;
            Release(tag, keep);
            *tagptr = tag | Inactive;
            tagptr = &Untag(tag)->_cs_prev;
        }
    }

    private static void Release(nuint tag, byte* keep)
    {
        weave_critical_section_t* c = Untag(tag);
        if (c->_cs_mutex == null)
        {
            return; // still locking (a begin or resume in progress): nothing held
        }
        if (c->_cs_mutex != keep)
        {
            Mutex.Unlock(c->_cs_mutex);
        }
        if ((tag & TwoMutexes) != 0)
        {
            weave_critical_section2_t* c2 = (weave_critical_section2_t*)c;
            if (c2->_cs_mutex2 != null && c2->_cs_mutex2 != keep)
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

    // ---- Condition waits inside sections --------------------------------
    //
    // weave_cond_wait(cond, m) releases m itself (once it is queued) and must
    // return holding it once. Left to the generic detach in the parking lot,
    // the sleep would also suspend the section that holds m (unlocking m a
    // second time, possibly another thread's hold) and the wake would resume
    // it (locking m) before the wait locked m again: a self-deadlock. So a
    // wait handles the sections itself, and hides the chain from the parking
    // lot meanwhile (ctx->SectionTop is 0 while it sleeps and re-locks):
    //
    // 1. PrepareWait finds the section that holds m (the nearest to the top),
    //    and the deepest section that must be active on return ("through"):
    //    that one, or the innermost when m is in no active section.
    // 2. DetachForWait suspends every active section, releasing all their
    //    mutexes but m, and detaches the chain.
    // 3. The wait parks (m released once queued) with only the CPython detach.
    // 4. ReattachAfterWait takes m and the mutexes of the sections from the
    //    innermost to "through" without ever blocking while it holds one of
    //    them (so no lock order of the caller's can deadlock with it), marks
    //    those sections active and re-attaches the chain. Sections deeper
    //    than "through" stay suspended, resumed as the ones inside them end,
    //    as after any blocking call.

    /// <summary>PrepareWait: the caller holds the wait's mutex (an active section's, or locked outside sections).</summary>
    internal const int WaitMutexHeld = 0;
    /// <summary>PrepareWait: the wait's mutex is a suspended section's, so the caller does not hold it.</summary>
    internal const int WaitMutexSuspended = 1;
    /// <summary>PrepareWait: as <see cref="WaitMutexSuspended"/>, and resuming would lock a mutex twice.</summary>
    internal const int WaitMutexUnresumable = 2;

    /// <summary>A wait's view of the caller's sections; on the waiter's stack for the whole wait.</summary>
    internal struct WaitSections
    {
        /// <summary>NULL when the thread has no section: the wait does nothing here.</summary>
        internal ThreadContext* Ctx;
        /// <summary>The deepest section that is active when the wait returns.</summary>
        internal weave_critical_section_t* Through;
        /// <summary>The chain while it is detached.</summary>
        internal nuint Chain;
    }

    /// <summary>
    /// The mutexes a wait holds on return, in the order they are tried: the
    /// wait's mutex (if not NULL), then each section's from the innermost to
    /// <c>through</c>. A mutex may come twice (the wait's mutex is usually a
    /// section's); callers skip repeats.
    /// </summary>
    private struct WaitMutexes
    {
        private readonly weave_critical_section_t* _through;
        private nuint _tag;   // the section whose mutexes come next; 0 at the end
        private byte* _first; // the wait's mutex, until returned
        private bool _second; // the section's second mutex comes next

        internal WaitMutexes(nuint chain, weave_critical_section_t* through, byte* first)
        {
            _through = through;
            _tag = chain;
            _first = first;
            _second = false;
        }

        internal bool Next(out byte* m)
        {
            if (_first != null)
            {
                m = _first;
                _first = null;
                return true;
            }
            while (_tag != 0)
            {
                weave_critical_section_t* c = Untag(_tag);
                if (!_second)
                {
                    _second = true;
                    m = c->_cs_mutex;
                }
                else
                {
                    m = (_tag & TwoMutexes) != 0 ? ((weave_critical_section2_t*)c)->_cs_mutex2 : null;
                    _second = false;
                    _tag = c == _through ? 0 : c->_cs_prev;
                }
                if (m != null)
                {
                    return true;
                }
            }
            m = null;
            return false;
        }
    }

    private static bool Holds(nuint tag, byte* m)
    {
        weave_critical_section_t* c = Untag(tag);
        return c->_cs_mutex == m || ((tag & TwoMutexes) != 0 && ((weave_critical_section2_t*)c)->_cs_mutex2 == m);
    }

    /// <summary>Whether <paramref name="m"/> is among the first <paramref name="count"/> mutexes of the walk.</summary>
    private static bool SeenBefore(nuint chain, weave_critical_section_t* through, byte* first, byte* m, int count)
    {
        var walk = new WaitMutexes(chain, through, first);
        for (int i = 0; i < count && walk.Next(out byte* seen); i++)
        {
            if (seen == m)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Step 1 (see above). Touches nothing.</summary>
    internal static int PrepareWait(byte* m, out WaitSections w)
    {
        w = default;
        ThreadContext* ctx = ThreadContexts.Peek();
        if (ctx == null || ctx->SectionTop == 0)
        {
            return WaitMutexHeld;
        }
        w.Ctx = ctx;
        nuint top = ctx->SectionTop;
        for (nuint tag = top; tag != 0; tag = Untag(tag)->_cs_prev)
        {
            if (!Holds(tag, m))
            {
                continue;
            }
            w.Through = Untag(tag);
            if (IsActive(tag))
            {
                return WaitMutexHeld;
            }
            // Active sections are a prefix of the chain: none holds m. Making
            // this one active again means making every section inside it
            // active, which is possible only if their mutexes are distinct
            // (a section begun on a mutex of a suspended outer one is not).
            var walk = new WaitMutexes(top, w.Through, null);
            int i = 0;
            while (walk.Next(out byte* x))
            {
                if (SeenBefore(top, w.Through, null, x, i))
                {
                    return WaitMutexUnresumable;
                }
                i++;
            }
            return WaitMutexSuspended;
        }
        // m is no section's (locked outside sections): the innermost section
        // resumes after the wait, as after any blocking call.
        w.Through = Untag(top);
        return WaitMutexHeld;
    }

    /// <summary>
    /// Step 2: suspends every active section, releasing its mutexes except
    /// <paramref name="keep"/> (the wait's mutex when held: the wait releases
    /// it once queued), and detaches the chain, so that the parking lot's
    /// detach and the wait's own re-locking find no section to suspend or resume.
    /// </summary>
    internal static void DetachForWait(ref WaitSections w, byte* keep)
    {
        ThreadContext* ctx = w.Ctx;
        SuspendActive(ctx, keep);
        w.Chain = ctx->SectionTop;
        ctx->SectionTop = 0;
    }

    /// <summary>
    /// Step 4: returns holding <paramref name="m"/> once and with every
    /// section from the innermost to <c>w.Through</c> active.
    /// <paramref name="holdsM"/>: the wait was handed m by its unlocker.
    /// </summary>
    internal static void ReattachAfterWait(ref WaitSections w, byte* m, bool holdsM)
    {
        if (!holdsM)
        {
            // Parks with detach like any lock; the chain is detached, so only
            // the CPython thread state is released meanwhile.
            Mutex.Lock(m);
        }
        byte* held = m;
        while (true)
        {
            byte* busy = TryLockOthers(w.Chain, w.Through, m, held);
            if (busy == null)
            {
                break;
            }
            // Never wait for one while holding another: the caller took these
            // in its own order (outer sections first, m wherever it was), and
            // re-taking them in any fixed order while blocking could deadlock
            // with a thread that follows the caller's order. Holding nothing,
            // wait for the busy one, then try the others again.
            Mutex.Unlock(held);
            Mutex.Lock(busy);
            held = busy;
        }
        // Re-attach, marking the sections from the innermost to Through active
        // (a prefix again). Only this thread reads its chain: plain stores.
        ThreadContext* ctx = w.Ctx;
        ctx->SectionTop = w.Chain;
        nuint* tagptr = &ctx->SectionTop;
        while (true)
        {
            nuint tag = *tagptr;
            *tagptr = tag & ~Inactive;
            weave_critical_section_t* c = Untag(tag);
            if (c == w.Through)
            {
                break;
            }
            tagptr = &c->_cs_prev;
        }
    }

    /// <summary>
    /// Try-locks every mutex of the set except <paramref name="held"/> (and
    /// repeats). NULL when all are now held; else releases the ones it took
    /// and returns the one that was busy.
    /// </summary>
    private static byte* TryLockOthers(nuint chain, weave_critical_section_t* through, byte* m, byte* held)
    {
        var walk = new WaitMutexes(chain, through, m);
        int i = 0;
        while (walk.Next(out byte* x))
        {
            if (x != held && !SeenBefore(chain, through, m, x, i) && !Mutex.TryLock(x))
            {
                var undo = new WaitMutexes(chain, through, m);
                for (int j = 0; j < i && undo.Next(out byte* y); j++)
                {
                    if (y != held && !SeenBefore(chain, through, m, y, j))
                    {
                        Mutex.Unlock(y);
                    }
                }
                return x;
            }
            i++;
        }
        return null;
    }
}
