namespace MambaSt.Batch.Imaging.Tests;

public sealed class LimitTests
{
    private static readonly VipsImageCodec Codec = new(new ImagingOptions { MaxPixels = 50_000_000 });

    [Fact]
    public void Png_header_claiming_60000x60000_is_refused_before_decoding()
    {
        var bomb = ImageCorpus.PngBomb();
        bomb.Length.ShouldBeLessThan(100);

        var error = Should.Throw<ImageException>(() => Codec.Decode(bomb));

        error.Kind.ShouldBe(ImageErrorKind.TooManyPixels);
        error.Message.ShouldContain("60000x60000");
        error.Message.ShouldContain("MaxPixels limit of 50000000");
    }

    [Fact]
    public void Jpeg_header_claiming_60000x60000_is_refused_before_decoding()
    {
        var error = Should.Throw<ImageException>(() => Codec.Decode(ImageCorpus.JpegBomb()));

        error.Kind.ShouldBe(ImageErrorKind.TooManyPixels);
        error.ErrorCode.ShouldBe(Contracts.StylizationErrorCode.ImageTooLarge);
        error.Message.ShouldContain("60000x60000");
    }

    [Fact]
    public void Zero_bytes_is_empty()
    {
        var error = Should.Throw<ImageException>(() => Codec.Decode(ReadOnlyMemory<byte>.Empty));

        error.Kind.ShouldBe(ImageErrorKind.Empty);
        error.ErrorCode.ShouldBe(Contracts.StylizationErrorCode.InvalidImage);
    }

    [Fact]
    public void Empty_stream_is_empty()
    {
        Should.Throw<ImageException>(() => Codec.Decode(new MemoryStream())).Kind.ShouldBe(ImageErrorKind.Empty);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_bytes_are_unsupported(int seed)
    {
        var noise = new byte[4096];
        new Random(seed).NextBytes(noise);

        var error = Should.Throw<ImageException>(() => Codec.Decode(noise));

        error.Kind.ShouldBe(ImageErrorKind.UnsupportedFormat);
        error.Message.ShouldContain("accepted: JPEG, PNG, WebP, TIFF, HEIF/AVIF, GIF");
    }

    [Fact]
    public void Recognised_but_refused_formats_are_unsupported()
    {
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><rect width=\"10\" height=\"10\"/></svg>"u8.ToArray();
        var ppm = "P6\n2 2\n255\n"u8.ToArray().Concat(new byte[12]).ToArray();

        Should.Throw<ImageException>(() => Codec.Decode(svg)).Kind.ShouldBe(ImageErrorKind.UnsupportedFormat);
        Should.Throw<ImageException>(() => Codec.Decode(ppm)).Kind.ShouldBe(ImageErrorKind.UnsupportedFormat);
    }

    [Theory]
    [InlineData(".jpg[Q=90]")]
    [InlineData(".png")]
    [InlineData(".webp[Q=90]")]
    [InlineData(".gif")]
    public void Truncated_files_are_corrupt(string suffix)
    {
        var whole = ImageCorpus.Save(Noise(256, 256), 256, 256, 3, suffix);
        var truncated = whole.AsMemory(0, whole.Length / 2);

        var error = Should.Throw<ImageException>(() => Codec.Decode(truncated));

        error.Kind.ShouldBe(ImageErrorKind.Corrupt);
        error.ErrorCode.ShouldBe(Contracts.StylizationErrorCode.InvalidImage);
    }

    [Fact]
    public void Input_over_max_bytes_is_refused_for_memory_and_streams()
    {
        var codec = new VipsImageCodec(new ImagingOptions { MaxInputBytes = 1000 });
        var bytes = ImageCorpus.Save(Noise(64, 64), 64, 64, 3, ".png");
        bytes.Length.ShouldBeGreaterThan(1000);

        var fromMemory = Should.Throw<ImageException>(() => codec.Decode(bytes));
        var fromStream = Should.Throw<ImageException>(() => codec.Decode(new NonSeekableStream(bytes)));

        fromMemory.Kind.ShouldBe(ImageErrorKind.TooManyBytes);
        fromMemory.Message.ShouldContain($"{bytes.Length} bytes");
        fromMemory.Message.ShouldContain("MaxInputBytes limit of 1000");
        fromStream.Kind.ShouldBe(ImageErrorKind.TooManyBytes);
    }

    [Fact]
    public void Image_just_over_max_pixels_is_refused_and_just_under_is_decoded()
    {
        var bytes = ImageCorpus.QuadrantFile(".png", 100, 100);

        Should.Throw<ImageException>(() => new VipsImageCodec(new ImagingOptions { MaxPixels = 9_999 }).Decode(bytes))
            .Kind.ShouldBe(ImageErrorKind.TooManyPixels);
        new VipsImageCodec(new ImagingOptions { MaxPixels = 10_000 }).Decode(bytes).Width.ShouldBe(100);
    }

    [Fact]
    public void Invalid_options_are_refused_naming_the_setting()
    {
        var error = Should.Throw<System.ComponentModel.DataAnnotations.ValidationException>(
            () => new VipsImageCodec(new ImagingOptions { MaxPixels = 0 }));

        error.Message.ShouldContain("MaxPixels");
    }

    internal static byte[] Noise(int width, int height)
    {
        var pixels = new byte[width * height * 3];
        new Random(42).NextBytes(pixels);
        return pixels;
    }

    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
