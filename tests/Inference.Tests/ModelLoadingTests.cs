using MambaSt.Batch.Contracts;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Inference.Tests;

/// <summary>Wrong, corrupt, truncated or custom-op models give a clear ModelError at load, never a crash.</summary>
public sealed class ModelLoadingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mambast-model-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string GoldenFile(string file) => Path.Combine(Golden.ModelDirectory("sequential"), file);

    private InferenceException LoadFails(string? customOpLibrary = null)
    {
        var options = new InferenceOptions { ModelDirectory = _dir };
        if (customOpLibrary is not null) options.CustomOpLibrary = customOpLibrary;
        var ex = Should.Throw<InferenceException>(() => MambaStEngine.Create(options));
        ex.Code.ShouldBe(StylizationErrorCode.ModelError);
        return ex;
    }

    private void Write(string file, byte[] bytes) => File.WriteAllBytes(Path.Combine(_dir, file), bytes);

    private void CopyGolden(string from, string to) => File.Copy(GoldenFile(from), Path.Combine(_dir, to));

    [Fact]
    public void A_missing_graph_is_named()
    {
        CopyGolden(ModelFiles.StyleEncoder, ModelFiles.StyleEncoder);
        LoadFails().Message.ShouldContain(Path.Combine(_dir, ModelFiles.Stylizer));
    }

    [Fact]
    public void The_tiny_affine_model_is_refused_for_missing_metadata()
    {
        File.Copy(Path.Combine(RepoPaths.Fixtures, "tiny", "affine.onnx"), Path.Combine(_dir, ModelFiles.StyleEncoder));
        CopyGolden(ModelFiles.Stylizer, ModelFiles.Stylizer);

        var message = LoadFails().Message;

        message.ShouldContain(ModelFiles.StyleEncoder);
        message.ShouldContain("mambast.format");
        message.ShouldContain("expected '1'");
    }

    [Fact]
    public void A_graph_with_the_wrong_graph_metadata_names_key_expected_and_found()
    {
        CopyGolden(ModelFiles.Stylizer, ModelFiles.StyleEncoder);
        CopyGolden(ModelFiles.Stylizer, ModelFiles.Stylizer);

        var message = LoadFails().Message;

        message.ShouldContain(Path.Combine(_dir, ModelFiles.StyleEncoder));
        message.ShouldContain("'mambast.graph'");
        message.ShouldContain("expected 'style_encoder'");
        message.ShouldContain("found 'stylizer'");
    }

    [Fact]
    public void Graphs_of_two_different_exports_are_refused()
    {
        CopyGolden(ModelFiles.StyleEncoder, ModelFiles.StyleEncoder);
        File.Copy(Path.Combine(Golden.ModelDirectory("parallel"), ModelFiles.Stylizer), Path.Combine(_dir, ModelFiles.Stylizer));

        LoadFails().Message.ShouldContain("mambast.scan_variant");
    }

    [Fact]
    public void Random_bytes_are_not_a_model()
    {
        var bytes = new byte[4096];
        new Random(1).NextBytes(bytes);
        Write(ModelFiles.StyleEncoder, bytes);
        CopyGolden(ModelFiles.Stylizer, ModelFiles.Stylizer);

        var message = LoadFails().Message;

        message.ShouldContain(ModelFiles.StyleEncoder);
        message.ShouldContain("not a valid ONNX model");
    }

    [Fact]
    public void A_truncated_model_is_refused()
    {
        CopyGolden(ModelFiles.StyleEncoder, ModelFiles.StyleEncoder);
        var stylizer = File.ReadAllBytes(GoldenFile(ModelFiles.Stylizer));
        Write(ModelFiles.Stylizer, stylizer[..(stylizer.Length / 2)]);

        var message = LoadFails().Message;

        message.ShouldContain(ModelFiles.Stylizer);
        message.ShouldContain("truncated");
    }

    [Fact]
    public void An_empty_file_is_refused()
    {
        CopyGolden(ModelFiles.StyleEncoder, ModelFiles.StyleEncoder);
        Write(ModelFiles.Stylizer, []);
        LoadFails().Message.ShouldContain(ModelFiles.Stylizer);
    }

    [Fact]
    public void A_custom_op_domain_needs_the_custom_op_library_and_says_how_to_build_it()
    {
        Write(ModelFiles.StyleEncoder, WithOpsetImport(File.ReadAllBytes(GoldenFile(ModelFiles.StyleEncoder)), "mambast", 1));
        CopyGolden(ModelFiles.Stylizer, ModelFiles.Stylizer);

        ModelProtoHeader.Read(Path.Combine(_dir, ModelFiles.StyleEncoder)).CustomDomains.ShouldBe(["mambast"]);
        // The library may be built next to the app (make native); point at one that is certainly absent.
        var message = LoadFails(Path.Combine(_dir, "libmambast_ops.so")).Message;

        message.ShouldContain("mambast");
        message.ShouldContain("libmambast_ops.so");
        message.ShouldContain("make native");
    }

    [Fact]
    public void The_golden_graphs_use_only_the_standard_domain()
    {
        var header = ModelProtoHeader.Read(GoldenFile(ModelFiles.Stylizer));
        header.OpsetImports.ShouldContainKeyAndValue("", 17L);
        header.CustomDomains.ShouldBeEmpty();
        header.IrVersion.ShouldBeGreaterThan(0);
    }

    // Appends ModelProto field 8 (opset_import) = { 1: domain, 2: version }; protobuf merges repeated fields in any order.
    private static byte[] WithOpsetImport(byte[] model, string domain, int version)
    {
        var name = System.Text.Encoding.UTF8.GetBytes(domain);
        byte[] opset = [0x0A, (byte)name.Length, .. name, 0x10, (byte)version];
        return [.. model, 0x42, (byte)opset.Length, .. opset];
    }
}
