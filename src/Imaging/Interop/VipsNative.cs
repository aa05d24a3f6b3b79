using System.Runtime.InteropServices;

namespace MambaSt.Batch.Imaging.Interop;

/// <summary>P/Invoke declarations for the libvips C API. Variadic functions are declared with a fixed
/// number of optional (name, value) pairs, each value an int, a pointer or a string, and a terminating
/// null: never a double, which the x86-64 varargs convention would pass in a vector register.</summary>
internal static class VipsNative
{
    public const string Library = "vips";

    public const int FormatUchar = 0;
    public const int InterpretationSrgb = 22;
    public const int SizeDown = 2;
    public const int SizeForce = 3;

    [DllImport(Library, EntryPoint = "vips_init")]
    public static extern int Init(string argv0);

    [DllImport(Library, EntryPoint = "vips_version")]
    public static extern int Version(int flag);

    [DllImport(Library, EntryPoint = "vips_concurrency_set")]
    public static extern void ConcurrencySet(int concurrency);

    [DllImport(Library, EntryPoint = "vips_cache_set_max")]
    public static extern void CacheSetMax(int max);

    [DllImport(Library, EntryPoint = "vips_cache_set_max_mem")]
    public static extern void CacheSetMaxMem(nuint maxMem);

    [DllImport(Library, EntryPoint = "vips_cache_set_max_files")]
    public static extern void CacheSetMaxFiles(int maxFiles);

    [DllImport(Library, EntryPoint = "vips_block_untrusted_set")]
    public static extern void BlockUntrustedSet(int state);

    [DllImport(Library, EntryPoint = "vips_error_buffer")]
    public static extern IntPtr ErrorBuffer();

    [DllImport(Library, EntryPoint = "vips_error_clear")]
    public static extern void ErrorClear();

    [DllImport(Library, EntryPoint = "g_object_unref")]
    public static extern void ObjectUnref(IntPtr obj);

    [DllImport(Library, EntryPoint = "g_free")]
    public static extern void Free(IntPtr mem);

    [DllImport(Library, EntryPoint = "vips_area_unref")]
    public static extern void AreaUnref(IntPtr area);

    [DllImport(Library, EntryPoint = "vips_array_double_new")]
    public static extern IntPtr ArrayDoubleNew(double[] array, int n);

    [DllImport(Library, EntryPoint = "vips_foreign_find_load_buffer")]
    public static extern IntPtr FindLoadBuffer(IntPtr data, nuint size);

    [DllImport(Library, EntryPoint = "vips_image_new_from_buffer")]
    public static extern VipsImageHandle NewFromBuffer(IntPtr data, nuint size, string optionString, IntPtr terminator);

    [DllImport(Library, EntryPoint = "vips_image_new_from_memory_copy")]
    public static extern VipsImageHandle NewFromMemoryCopy(byte[] data, nuint size, int width, int height, int bands, int format);

    /// <summary>A null <paramref name="profileName"/> ends the option list before the output profile.</summary>
    [DllImport(Library, EntryPoint = "vips_thumbnail_buffer")]
    public static extern int ThumbnailBuffer(
        IntPtr data, nuint size, out VipsImageHandle output, int width,
        string heightName, int height, string sizeName, int sizeValue, string noRotateName, int noRotate,
        string optionName, string optionValue, string? profileName, string? profileValue, IntPtr terminator);

    [DllImport(Library, EntryPoint = "vips_thumbnail_image")]
    public static extern int ThumbnailImage(
        VipsImageHandle input, out VipsImageHandle output, int width,
        string heightName, int height, string sizeName, int sizeValue, IntPtr terminator);

    [DllImport(Library, EntryPoint = "vips_colourspace")]
    public static extern int Colourspace(VipsImageHandle input, out VipsImageHandle output, int space, IntPtr terminator);

    [DllImport(Library, EntryPoint = "vips_flatten")]
    public static extern int Flatten(VipsImageHandle input, out VipsImageHandle output, string backgroundName, IntPtr background, IntPtr terminator);

    [DllImport(Library, EntryPoint = "vips_cast")]
    public static extern int Cast(VipsImageHandle input, out VipsImageHandle output, int format, IntPtr terminator);

    [DllImport(Library, EntryPoint = "vips_extract_band")]
    public static extern int ExtractBand(VipsImageHandle input, out VipsImageHandle output, int band, string countName, int count, IntPtr terminator);

    [DllImport(Library, EntryPoint = "vips_autorot")]
    public static extern int Autorot(VipsImageHandle input, out VipsImageHandle output, IntPtr terminator);

    [DllImport(Library, EntryPoint = "vips_icc_transform")]
    public static extern int IccTransform(
        VipsImageHandle input, out VipsImageHandle output, string outputProfile,
        string inputProfileName, string inputProfile, string depthName, int depth, IntPtr terminator);

    [DllImport(Library, EntryPoint = "vips_copy")]
    public static extern int Copy(VipsImageHandle input, out VipsImageHandle output, IntPtr terminator);

    [DllImport(Library, EntryPoint = "vips_image_get_width")]
    public static extern int GetWidth(VipsImageHandle image);

    [DllImport(Library, EntryPoint = "vips_image_get_height")]
    public static extern int GetHeight(VipsImageHandle image);

    [DllImport(Library, EntryPoint = "vips_image_get_bands")]
    public static extern int GetBands(VipsImageHandle image);

    [DllImport(Library, EntryPoint = "vips_image_get_format")]
    public static extern int GetFormat(VipsImageHandle image);

    [DllImport(Library, EntryPoint = "vips_image_get_interpretation")]
    public static extern int GetInterpretation(VipsImageHandle image);

    [DllImport(Library, EntryPoint = "vips_image_hasalpha")]
    public static extern int HasAlpha(VipsImageHandle image);

    [DllImport(Library, EntryPoint = "vips_image_get_typeof")]
    public static extern nuint GetTypeOf(VipsImageHandle image, string name);

    [DllImport(Library, EntryPoint = "vips_image_get_int")]
    public static extern int GetInt(VipsImageHandle image, string name, out int value);

    [DllImport(Library, EntryPoint = "vips_image_set_int")]
    public static extern void SetInt(VipsImageHandle image, string name, int value);

    [DllImport(Library, EntryPoint = "vips_image_set_string")]
    public static extern void SetString(VipsImageHandle image, string name, string value);

    [DllImport(Library, EntryPoint = "vips_image_set_kill")]
    public static extern void SetKill(VipsImageHandle image, int kill);

    [DllImport(Library, EntryPoint = "vips_image_write_to_memory")]
    public static extern VipsBufferHandle WriteToMemory(VipsImageHandle image, out nuint size);

    [DllImport(Library, EntryPoint = "vips_image_write_to_buffer")]
    public static extern int WriteToBuffer(VipsImageHandle image, string suffix, out VipsBufferHandle buffer, out nuint size, IntPtr terminator);
}
