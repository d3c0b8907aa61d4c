using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FtWeave.Abi;

// Mirrors of the structs in ft_weave.h, with the C names and C field names.
// The locks' algorithms work on the fields directly through pointers (a
// weave_mutex_t* is a byte*); these types fix the layouts the header asserts.
// C# has no static_assert on sizeof: src/FtWeave.AbiCheck (CTest abi_check)
// compares every mirror's size and field offsets with the header's.

/// <summary><c>typedef struct { uint8_t _bytes[2]; } weave_mutex_t;</c> (_locked, _parked)</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct weave_mutex_t
{
    public MutexBytes _bytes; // uint8_t[2]
}

/// <summary>weave_mutex_t's <c>uint8_t _bytes[2]</c>: [0] is _locked, [1] is _parked.</summary>
[InlineArray(2)]
internal struct MutexBytes
{
    public byte _element0;
}

/// <summary><c>typedef struct { uintptr_t v; } weave_raw_mutex_t;</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal struct weave_raw_mutex_t
{
    public nuint v; // uintptr_t
}

/// <summary><c>typedef struct { uint8_t v; } weave_event_t;</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal struct weave_event_t
{
    public byte v; // uint8_t
}

/// <summary><c>typedef struct { uint8_t v; } weave_once_t;</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal struct weave_once_t
{
    public byte v; // uint8_t
}

/// <summary><c>typedef struct { weave_mutex_t mutex; uint64_t thread; size_t level; } weave_recursive_mutex_t;</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal struct weave_recursive_mutex_t
{
    public weave_mutex_t mutex; // weave_mutex_t, offset 0
    public ulong thread;        // uint64_t, offset 8
    public nuint level;         // size_t, offset 16
}

/// <summary><c>typedef struct { uintptr_t bits; } weave_rwmutex_t;</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal struct weave_rwmutex_t
{
    public nuint bits; // uintptr_t
}

/// <summary><c>weave__rwmutex_slot_t</c>: one slot of the RW mutexes' visible-readers table (internal to the header).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct weave__rwmutex_slot_t
{
    public nuint @lock; // uintptr_t, offset 0
    public ulong owner; // uint64_t, offset 8
}

/// <summary><c>typedef struct { uint32_t sequence; } weave_seqlock_t;</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal struct weave_seqlock_t
{
    public uint sequence; // uint32_t
}

/// <summary><c>typedef struct { uint8_t v; } weave_cond_t;</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal struct weave_cond_t
{
    public byte v; // uint8_t
}

/// <summary><c>typedef struct { uint64_t parks, unparks, handoffs, spins, managed_bytes; } weave_stats_t;</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal struct weave_stats_t
{
    public ulong parks;         // uint64_t
    public ulong unparks;       // uint64_t
    public ulong handoffs;      // uint64_t
    public ulong spins;         // uint64_t
    public ulong managed_bytes; // uint64_t
}

/// <summary>
/// <c>typedef struct { void *(*thread_state_get)(void); int (*gil_state_check)(void);
/// void *(*save_thread)(void); void (*restore_thread)(void *); int (*make_pending_calls)(void); } weave_python_api_t;</c>
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct weave_python_api_t
{
    public delegate* unmanaged<void*> thread_state_get;      // offset 0
    public delegate* unmanaged<int> gil_state_check;         // offset 8
    public delegate* unmanaged<void*> save_thread;           // offset 16
    public delegate* unmanaged<void*, void> restore_thread;  // offset 24
    public delegate* unmanaged<int> make_pending_calls;      // offset 32
}

/// <summary>
/// <c>typedef struct { void (*set_string)(void *type, const char *message); void *value_error;
/// void *memory_error; void *runtime_error; } weave_python_errors_t;</c>
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct weave_python_errors_t
{
    public delegate* unmanaged<void*, byte*, void> set_string; // offset 0
    public void* value_error;                                  // offset 8
    public void* memory_error;                                 // offset 16
    public void* runtime_error;                                // offset 24
}
