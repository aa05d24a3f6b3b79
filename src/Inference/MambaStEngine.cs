using System.Buffers;
using MambaSt.Batch.Contracts;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace MambaSt.Batch.Inference;

/// <summary>
/// Mamba-ST on ONNX Runtime: owns the style-encoder and stylizer sessions and their <see cref="SessionOptions"/>.
/// Create once per process (loading takes seconds) and call <see cref="EncodeStyle"/> and <see cref="Stylize"/> from
/// any number of threads: ONNX Runtime sessions are safe for concurrent runs and the engine keeps no other mutable
/// state. Every tensor handed to or returned by ONNX Runtime is disposed before a call returns.
/// <see cref="Dispose"/> releases the native sessions; no call may be in flight or follow it.
/// </summary>
public sealed class MambaStEngine : IStyleEncoder, IStylizer, IDisposable
{
    private readonly SessionOptions _sessionOptions;
    private readonly InferenceSession _styleEncoder;
    private readonly InferenceSession _stylizer;
    private readonly InferenceOptions _options;
    private readonly string _modelKey;

    private MambaStEngine(InferenceOptions options, SessionOptions sessionOptions, InferenceSession styleEncoder,
        InferenceSession stylizer, ModelInfo model, ExecutionProviderKind provider)
    {
        _options = options;
        _sessionOptions = sessionOptions;
        _styleEncoder = styleEncoder;
        _stylizer = stylizer;
        Model = model;
        ExecutionProvider = provider;
        _modelKey = $"{model.Id}@{model.Version}";
    }

    public ModelInfo Model { get; }

    /// <summary>The provider the sessions actually run on (Cpu after a CUDA fallback).</summary>
    public ExecutionProviderKind ExecutionProvider { get; }

    public int MaxSide => _options.MaxSide;

    /// <summary>The custom-op library the graphs run with (the fused scan), or null (plain ONNX).</summary>
    public string? CustomOpLibrary { get; private init; }

    /// <summary>Why <see cref="ScanMode.Auto"/> fell back to the plain-ONNX scan, or null when it did not.</summary>
    public string? ScanFallback { get; private init; }

    /// <summary>Loads and checks both graphs. Throws <see cref="InferenceException"/> (ModelError) naming the file
    /// when a graph is missing, corrupt, or not a Mamba-ST format-1 export; disposes whatever it built on failure.</summary>
    public static MambaStEngine Create(InferenceOptions options, ILogger<MambaStEngine>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ILogger log = logger ?? NullLogger<MambaStEngine>.Instance;
        var encoderPath = Path.Combine(options.ModelDirectory, ModelFiles.StyleEncoder);
        var stylizerPath = Path.Combine(options.ModelDirectory, ModelFiles.Stylizer);
        foreach (var path in new[] { encoderPath, stylizerPath })
        {
            if (!File.Exists(path))
            {
                throw new InferenceException(StylizationErrorCode.ModelError,
                    $"Model file {path} does not exist (Inference:ModelDirectory = '{options.ModelDirectory}').");
            }
        }

        _ = OrtEnvironment.Instance; // telemetry off and ONNX Runtime's log captured before any other call
        var scan = ScanSelector.Choose(options);
        if (scan.Fallback is not null)
        {
            log.LogWarning(
                "Selective scan: falling back to the plain-ONNX (sequential) scan, about 3.5x slower on a CPU: {Reason} " +
                "Inference:Scan=sequential selects it without this warning.", scan.Fallback);
        }

        try
        {
            return Open(options, scan, log, forceCpu: false);
        }
        catch (CudaSessionFailure failure) when (options.CudaFallback == CudaFallback.Cpu)
        {
            log.LogWarning(failure.InnerException, "CUDA provider could not open the model ({Reason}); Inference:CudaFallback=Cpu, running on the CPU",
                failure.InnerException!.Message);
            return Open(options, scan, log, forceCpu: true);
        }
        catch (CudaSessionFailure failure)
        {
            throw new InferenceException(StylizationErrorCode.ModelError,
                $"{failure.InnerException!.Message} (with the CUDA execution provider; if the cause is the GPU, not the model, " +
                "Inference:CudaFallback=Cpu runs on the CPU instead)",
                failure.InnerException);
        }
    }

    private static MambaStEngine Open(InferenceOptions options, ScanChoice scan, ILogger log, bool forceCpu)
    {
        var sessionOptions = SessionFactory.CreateOptions(options, scan.Library, log, out var provider, forceCpu);
        InferenceSession? encoder = null, stylizer = null;
        try
        {
            encoder = SessionFactory.Open(scan.StyleEncoder, sessionOptions, provider);
            stylizer = SessionFactory.Open(scan.Stylizer, sessionOptions, provider);
            var model = GraphContract.Validate(scan.StyleEncoder, encoder, scan.Stylizer, stylizer);
            log.LogInformation(
                "Mamba-ST {ModelId} version {ModelVersion} ({Config}, {ScanVariant} scan) loaded from {ModelDirectory} on execution provider {Provider}",
                model.Id, model.Version, model.Config, model.ScanVariant, options.ModelDirectory, provider);
            log.LogInformation("Selective scan: {ScanVariant} ({Source}; Inference:Scan={ScanSetting})", model.ScanVariant,
                scan.Library is null ? "plain ONNX, no custom-op library" : $"custom op mambast::SelectiveScan from {scan.Library}", options.Scan);
            return new MambaStEngine(options, sessionOptions, encoder, stylizer, model, provider)
            {
                CustomOpLibrary = scan.Library,
                ScanFallback = scan.Fallback,
            };
        }
        catch (InferenceException e) when (provider == ExecutionProviderKind.Cuda && e.InnerException is OnnxRuntimeException)
        {
            stylizer?.Dispose();
            encoder?.Dispose();
            sessionOptions.Dispose();
            throw new CudaSessionFailure(e);
        }
        catch
        {
            stylizer?.Dispose();
            encoder?.Dispose();
            sessionOptions.Dispose();
            throw;
        }
    }

    /// <summary>ONNX Runtime refused to create a session with the CUDA provider appended.</summary>
    private sealed class CudaSessionFailure(InferenceException inner) : Exception(inner.Message, inner);

    public (int GridWidth, int GridHeight) StyleGrid(int width, int height)
    {
        var (w, h) = ImageTensor.FittedStyleSize(width, height, _options.StyleMaxSide, out _, out _);
        return (w / ImageTensor.PatchSize, h / ImageTensor.PatchSize);
    }

    /// <summary>Fits the style to <see cref="InferenceOptions.StyleMaxSide"/> (area downscale, centre crop to multiples
    /// of 8) and encodes it.</summary>
    public StyleEncoding EncodeStyle(RgbPixels style)
    {
        var fitted = ImageTensor.FitStyle(style, _options.StyleMaxSide);
        var input = new float[3 * fitted.Width * fitted.Height];
        ImageTensor.WriteReflectPadded(fitted, input, fitted.Height, fitted.Width);
        var (tokens, count) = RunStyleEncoder(input, 1, fitted.Height, fitted.Width);
        var gridH = fitted.Height / ImageTensor.PatchSize;
        var gridW = fitted.Width / ImageTensor.PatchSize;
        if (count != gridH * gridW)
        {
            throw new InferenceException(StylizationErrorCode.ModelError,
                $"The style encoder returned {count} tokens for a {fitted.Width}x{fitted.Height} style; expected {gridH * gridW}.");
        }

        return new StyleEncoding(tokens, gridH, gridW, Model.DModel, _modelKey);
    }

    /// <summary>Stylizes a batch of same-size images with one style in one ONNX Runtime run. Each item keeps its own seed
    /// (style-token order) and strength. Sizes are reflect-padded to multiples of 8 and cropped back. Cancelling
    /// <paramref name="cancellationToken"/> terminates the ONNX Runtime run between operators
    /// (<see cref="OperationCanceledException"/>).</summary>
    public IReadOnlyList<StylizedImage> Stylize(StyleEncoding style, IReadOnlyList<ContentItem> batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(style);
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
        {
            return [];
        }

        if (style.ModelId != _modelKey || style.DModel != Model.DModel)
        {
            throw new ArgumentException($"The style was encoded by model {style.ModelId}; this engine runs {_modelKey}.", nameof(style));
        }

        int width = batch[0].Content.Width, height = batch[0].Content.Height;
        CheckContentSize(width, height);
        for (var i = 0; i < batch.Count; i++)
        {
            var item = batch[i];
            if (item.Content.Width != width || item.Content.Height != height)
            {
                throw new ArgumentException(
                    $"Batch items must share one size: item 0 is {width}x{height}, item {i} is {item.Content.Width}x{item.Content.Height}.", nameof(batch));
            }

            if (!(item.Strength is >= 0f and <= 1f))
            {
                throw new ArgumentOutOfRangeException(nameof(batch), item.Strength, $"Strength of item {i} must lie in [0, 1].");
            }
        }

        int b = batch.Count, paddedH = ImageTensor.PadToPatch(height), paddedW = ImageTensor.PadToPatch(width);
        int imageFloats = 3 * paddedH * paddedW, tokens = paddedH / 8 * (paddedW / 8), styleFloats = style.Tokens.Length;
        var content = ArrayPool<float>.Shared.Rent(b * imageFloats);
        var styleTokens = ArrayPool<float>.Shared.Rent(b * styleFloats);
        var index = ArrayPool<long>.Shared.Rent(b * tokens);
        var strength = new float[b];
        try
        {
            for (var i = 0; i < b; i++)
            {
                ImageTensor.WriteReflectPadded(batch[i].Content, content.AsSpan(i * imageFloats, imageFloats), paddedH, paddedW);
                style.Tokens.Span.CopyTo(styleTokens.AsSpan(i * styleFloats, styleFloats));
                StyleIndex.Generate(batch[i].Seed, style.TokenCount, tokens, index.AsSpan(i * tokens, tokens));
                strength[i] = batch[i].Strength;
            }

            var results = new StylizedImage[b];
            RunStylizer(content.AsMemory(0, b * imageFloats), b, paddedH, paddedW, styleTokens.AsMemory(0, b * styleFloats),
                style.TokenCount, index.AsMemory(0, b * tokens), strength, output =>
                {
                    for (var i = 0; i < b; i++)
                    {
                        var rgb = new byte[3 * width * height];
                        ImageTensor.ReadCropped(output.Slice(i * imageFloats, imageFloats), paddedH, paddedW, width, height, rgb);
                        if (batch[i].PreserveContentColor)
                        {
                            ImageTensor.PreserveColor(batch[i].Content.Rgb.Span, rgb);
                        }

                        results[i] = new StylizedImage
                        {
                            Pixels = new RgbPixels(rgb, width, height),
                            Seed = batch[i].Seed,
                            Strength = batch[i].Strength,
                        };
                    }
                },
                cancellationToken);
            return results;
        }
        finally
        {
            ArrayPool<float>.Shared.Return(content);
            ArrayPool<float>.Shared.Return(styleTokens);
            ArrayPool<long>.Shared.Return(index);
        }
    }

    private void CheckContentSize(int width, int height)
    {
        if (width < ImageTensor.MinContentSide || height < ImageTensor.MinContentSide)
        {
            throw new InferenceException(StylizationErrorCode.InvalidImage,
                $"Content image {width}x{height} is too small: each side must be at least {ImageTensor.MinContentSide} px.");
        }

        if (Math.Max(width, height) > _options.MaxSide)
        {
            throw new InferenceException(StylizationErrorCode.ImageTooLarge,
                $"Content image {width}x{height} exceeds Inference:MaxSide = {_options.MaxSide} px on its longest side; " +
                "shrink it on decode or use tiling.");
        }
    }

    /// <summary>Runs style_encoder.onnx on NCHW floats; returns tokens [batch, Ls, d_model] and Ls.</summary>
    internal (float[] Tokens, int TokenCount) RunStyleEncoder(float[] style, int batch, int height, int width)
    {
        try
        {
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, style.AsMemory(),
                [batch, 3, height, width]);
            using var runOptions = new RunOptions();
            using var outputs = _styleEncoder.Run(runOptions, [GraphContract.StyleInput], [input], [GraphContract.StyleTokens]);
            var shape = outputs[0].GetTensorTypeAndShape().Shape;
            if (shape.Length != 3 || shape[0] != batch || shape[2] != Model.DModel)
            {
                throw new InferenceException(StylizationErrorCode.ModelError,
                    $"style_encoder.onnx returned shape [{string.Join(", ", shape)}]; expected [{batch}, Ls, {Model.DModel}].");
            }

            return (outputs[0].GetTensorDataAsSpan<float>().ToArray(), (int)shape[1]);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException(StylizationErrorCode.ModelError, $"style_encoder.onnx failed on a {width}x{height} style: {e.Message}", e);
        }
    }

    internal delegate void OutputReader(ReadOnlySpan<float> stylized);

    /// <summary>Runs stylizer.onnx; <paramref name="read"/> sees the output [batch, 3, height, width] before it is freed.</summary>
    internal void RunStylizer(Memory<float> content, int batch, int height, int width, Memory<float> styleTokens, int styleTokenCount,
        Memory<long> styleIndex, float[] strength, OutputReader read, CancellationToken cancellationToken = default)
    {
        try
        {
            var memory = OrtMemoryInfo.DefaultInstance;
            using var contentValue = OrtValue.CreateTensorValueFromMemory(memory, content, [batch, 3, height, width]);
            using var tokensValue = OrtValue.CreateTensorValueFromMemory(memory, styleTokens, [batch, styleTokenCount, Model.DModel]);
            using var indexValue = OrtValue.CreateTensorValueFromMemory(memory, styleIndex, [batch, height / 8 * (width / 8)]);
            using var strengthValue = OrtValue.CreateTensorValueFromMemory(strength, [batch]);
            using var runOptions = new RunOptions();

            // ONNX Runtime checks the flag before the run and between operators; an already cancelled token sets it
            // at once. Disposed before runOptions: Dispose waits for a callback in flight.
            using var terminate = cancellationToken.Register(static o => ((RunOptions)o!).Terminate = true, runOptions);
            using var outputs = _stylizer.Run(runOptions,
                [GraphContract.ContentInput, GraphContract.StyleTokens, GraphContract.StyleIndexInput, GraphContract.StrengthInput],
                [contentValue, tokensValue, indexValue, strengthValue], [GraphContract.StylizedOutput]);
            var shape = outputs[0].GetTensorTypeAndShape().Shape;
            if (shape.Length != 4 || shape[0] != batch || shape[1] != 3 || shape[2] != height || shape[3] != width)
            {
                throw new InferenceException(StylizationErrorCode.ModelError,
                    $"stylizer.onnx returned shape [{string.Join(", ", shape)}]; expected [{batch}, 3, {height}, {width}].");
            }

            read(outputs[0].GetTensorDataAsSpan<float>());
        }
        catch (OnnxRuntimeException e) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException($"stylizer.onnx run on a batch of {batch} {width}x{height} images was cancelled", e, cancellationToken);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException(StylizationErrorCode.ModelError, $"stylizer.onnx failed on a batch of {batch} {width}x{height} images: {e.Message}", e);
        }
    }

    public void Dispose()
    {
        _stylizer.Dispose();
        _styleEncoder.Dispose();
        _sessionOptions.Dispose();
    }
}
