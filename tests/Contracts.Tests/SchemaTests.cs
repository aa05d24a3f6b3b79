using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MambaSt.Batch.ContractsGen;
using MambaSt.Batch.Testing;
using MassTransit;
using MassTransit.Serialization;
using MassTransit.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace MambaSt.Batch.Contracts.Tests;

public class SchemaTests
{
    private static string SchemaFolder => Path.Combine(RepoPaths.Root, ContractSchemas.SchemaFolder);

    [Fact]
    public void The_checked_in_schemas_match_the_contracts()
    {
        var generated = ContractSchemas.Generate();
        var onDisk = Directory.GetFiles(SchemaFolder, "*.schema.json").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
        var problems = new List<string>();
        foreach (var (name, content) in generated)
        {
            var path = Path.Combine(SchemaFolder, name);
            if (!File.Exists(path)) problems.Add($"{name} is missing");
            else if (File.ReadAllText(path).ReplaceLineEndings("\n") != content) problems.Add($"{name} differs from the contracts");
        }

        problems.AddRange(onDisk.Except(generated.Keys).Select(n => $"{n} has no contract type"));
        problems.ShouldBeEmpty($"{ContractSchemas.SchemaFolder} is out of date; regenerate with `{ContractSchemas.RegenerateCommand}` and commit the result");
    }

    [Fact]
    public void Every_contract_type_has_a_schema_or_is_part_of_a_message()
    {
        var reachable = new HashSet<Type>();
        void Walk(Type t)
        {
            t = Nullable.GetUnderlyingType(t) ?? t;
            if (t.Assembly != typeof(StylizeImage).Assembly || !reachable.Add(t)) return;
            foreach (var p in t.GetProperties()) Walk(p.PropertyType);
        }

        foreach (var m in ContractSchemas.Messages) Walk(m);
        var orphans = typeof(StylizeImage).Assembly.GetExportedTypes()
            .Where(t => !t.IsAbstract || !t.IsSealed) // static classes (EventHeaders) are not messages
            .Where(t => !reachable.Contains(t))
            .Select(t => t.Name)
            .ToArray();
        orphans.ShouldBeEmpty($"new contract types need a place in ContractSchemas.Messages (tools/ContractsGen), contracts/asyncapi.yaml and `{ContractSchemas.RegenerateCommand}`");
    }

    [Fact]
    public void Schemas_state_required_fields_enum_names_and_descriptions()
    {
        var schemas = ContractSchemas.Generate();
        var failed = JsonNode.Parse(schemas["ImageStylizationFailed.schema.json"])!;
        failed["$schema"]!.GetValue<string>().ShouldBe("https://json-schema.org/draft/2020-12/schema");
        failed["required"]!.AsArray().Select(n => n!.GetValue<string>()).ShouldBe(["jobId", "batchId", "errorCode", "message", "attemptCount", "transient"], ignoreOrder: true);
        failed["properties"]!["errorCode"]!["enum"]!.AsArray().Select(n => n!.GetValue<long>()).ShouldBe(Enum.GetValues<StylizationErrorCode>().Select(v => (long)v));
        failed["properties"]!["errorCode"]!["x-enumNames"]!.AsArray().Select(n => n!.GetValue<string>()).ShouldBe(Enum.GetNames<StylizationErrorCode>());
        failed["properties"]!["transient"]!["description"]!.GetValue<string>().ShouldContain("transient");
        var codes = JsonNode.Parse(schemas["StylizationErrorCode.schema.json"])!;
        codes["x-enum-descriptions"]!["InvalidRequest"]!.GetValue<string>().ShouldContain("unusable");
    }

    [Fact]
    public async Task Messages_serialized_by_MassTransit_validate_against_the_schemas()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var provider = new ServiceCollection()
            .AddMassTransitTestHarness(x => x.AddConsumer<CaptureConsumer>())
            .BuildServiceProvider(true);
        var harness = provider.GetTestHarness();
        await harness.Start().WaitAsync(ct);

        await harness.Bus.Publish(ContractSerializationTests.SampleCommand(), ct);
        await harness.Bus.Publish(Examples.Stylized(), ct);
        await harness.Bus.Publish(Examples.Failed(), ct);
        (await harness.Consumed.Any<ImageStylizationFailed>(ct)).ShouldBeTrue();
        (await harness.Consumed.Any<ImageStylized>(ct)).ShouldBeTrue();
        (await harness.Consumed.Any<StylizeImage>(ct)).ShouldBeTrue();

        foreach (var type in ContractSchemas.Messages)
        {
            var body = harness.Consumed.Select(m => m.MessageType == type, ct).Single().Context.ReceiveContext.Body.GetBytes();
            var envelope = Encoding.UTF8.GetString(body);
            JsonNode.Parse(envelope)!["messageType"]!.AsArray().Select(n => n!.GetValue<string>()).ShouldContain($"urn:message:MambaSt.Batch.Contracts:{type.Name}");
            var (exit, output) = await SchemaValidator.ValidateAsync(type.Name, [envelope], ct);
            exit.ShouldBe(0, output);
        }
    }

    [Fact]
    public async Task The_validator_rejects_a_message_that_breaks_the_schema()
    {
        var ct = TestContext.Current.CancellationToken;
        var node = JsonSerializer.SerializeToNode(Examples.Failed(), SystemTextJsonMessageSerializer.Options)!.AsObject();
        node.Remove("jobId");
        node["errorCode"] = "NoSuchCode";
        var (exit, output) = await SchemaValidator.ValidateAsync(nameof(ImageStylizationFailed), [node.ToJsonString()], ct);
        exit.ShouldBe(1, output);
        output.ShouldContain("jobId");
        output.ShouldContain("NoSuchCode");
    }

    private sealed class CaptureConsumer : IConsumer<StylizeImage>, IConsumer<ImageStylized>, IConsumer<ImageStylizationFailed>
    {
        public Task Consume(ConsumeContext<StylizeImage> context) => Task.CompletedTask;

        public Task Consume(ConsumeContext<ImageStylized> context) => Task.CompletedTask;

        public Task Consume(ConsumeContext<ImageStylizationFailed> context) => Task.CompletedTask;
    }
}
