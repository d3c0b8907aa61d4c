using System.Runtime.CompilerServices;

// Every export and P/Invoke signature is blittable; the runtime never has to
// marshal anything, so there is no hidden allocation or copy at the boundary.
[assembly: DisableRuntimeMarshalling]
