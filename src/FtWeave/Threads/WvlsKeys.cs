using FtWeave.Interop;

namespace FtWeave.Threads;

/// <summary>
/// wvls_key_create / wvls_key_delete: pthread keys whose destructor's shared
/// object stays loaded while the key exists (any thread's exit may call it).
/// </summary>
internal static unsafe class WvlsKeys
{
    private const int EINVAL = 22; // Linux errno value, as pthread functions return it
    private const int KeysMax = 1024; // PTHREAD_KEYS_MAX on glibc

    // Pin slot + 1 per key index (0: none). A key is created and deleted by
    // the program in that order, so each index is written by one call at a time.
    private static readonly int* s_pins = (int*)Libc.Calloc(KeysMax, sizeof(int));

    internal static int Create(uint* key, delegate* unmanaged<void*, void> destructor)
    {
        if (key == null)
        {
            return EINVAL;
        }
        int rc = Pthread.KeyCreate(key, destructor);
        if (rc == 0 && destructor != null && *key < KeysMax && s_pins != null)
        {
            s_pins[*key] = ModulePins.Pin(destructor, ThreadContexts.Peek()) + 1;
        }
        return rc;
    }

    internal static int Delete(uint key)
    {
        int rc = Pthread.KeyDelete(key);
        if (rc == 0 && key < KeysMax && s_pins != null)
        {
            int pin = s_pins[key] - 1;
            s_pins[key] = 0;
            ModulePins.Unpin(pin);
        }
        return rc;
    }
}
