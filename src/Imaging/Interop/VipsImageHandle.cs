using Microsoft.Win32.SafeHandles;

namespace MambaSt.Batch.Imaging.Interop;

/// <summary>Owns one reference to a <c>VipsImage</c> GObject; releasing it calls <c>g_object_unref</c>.
/// Safe to pass to libvips from any thread; libvips images are immutable once built.</summary>
internal sealed class VipsImageHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public VipsImageHandle()
        : base(ownsHandle: true)
    {
    }

    protected override bool ReleaseHandle()
    {
        VipsNative.ObjectUnref(handle);
        return true;
    }
}

/// <summary>Owns a buffer that libvips allocated with <c>g_malloc</c>; releasing it calls <c>g_free</c>.</summary>
internal sealed class VipsBufferHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public VipsBufferHandle()
        : base(ownsHandle: true)
    {
    }

    protected override bool ReleaseHandle()
    {
        VipsNative.Free(handle);
        return true;
    }

    /// <summary>Copies <paramref name="length"/> bytes into a new managed array.</summary>
    public unsafe byte[] ToArray(nuint length)
    {
        var result = GC.AllocateUninitializedArray<byte>(checked((int)length));
        new ReadOnlySpan<byte>((void*)handle, result.Length).CopyTo(result);
        return result;
    }
}
