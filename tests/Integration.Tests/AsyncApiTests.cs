using System.Diagnostics;
using System.Text.Json.Nodes;
using MambaSt.Batch.Contracts;
using MambaSt.Batch.ContractsGen;
using MambaSt.Batch.Processing;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Integration.Tests;

/// <summary>contracts/asyncapi.yaml names exactly the exchanges, queues, messages and error codes the code uses.</summary>
public class AsyncApiTests
{
    private const string Fix = "update contracts/asyncapi.yaml (and docs/integration.md) to match the code";

    private static readonly Lazy<JsonObject> Document = new(Load);

    private static JsonObject Load()
    {
        var path = Path.Combine(RepoPaths.Root, "contracts", "asyncapi.yaml");
        var psi = new ProcessStartInfo("/usr/bin/python3", ["-c", "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)", path])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(psi)!;
        var json = process.StandardOutput.ReadToEnd();
        var err = process.StandardError.ReadToEnd();
        process.WaitForExit();
        process.ExitCode.ShouldBe(0, $"asyncapi.yaml does not parse: {err}");
        return JsonNode.Parse(json)!.AsObject();
    }

    private static JsonObject Channels => Document.Value["channels"]!.AsObject();

    private static JsonObject Messages => Document.Value["components"]!["messages"]!.AsObject();

    private static IEnumerable<(string Kind, string Name)> DocumentedTopology() =>
        Channels.Select(c => c.Value!["bindings"]!["amqp"]!).SelectMany(b => new[]
        {
            b["exchange"]?["name"] is { } e ? ("exchange", e.GetValue<string>()) : default,
            b["queue"]?["name"] is { } q ? ("queue", q.GetValue<string>()) : default,
        }).Where(x => x.Item1 is not null);

    private static IEnumerable<(string Kind, string Name)> CodeTopology()
    {
        var queue = new WorkerOptions().QueueName;
        yield return ("queue", queue);
        yield return ("exchange", queue); // MassTransit's exchange in front of a receive endpoint has the queue's name
        yield return ("queue", $"{queue}_error");
        yield return ("queue", QueueTopology.QuarantineQueue(new WorkerOptions()));
        yield return ("exchange", QueueTopology.QuarantineQueue(new WorkerOptions())); // the dead-letter exchange of the job queue
        yield return ("queue", QueueTopology.IsolationQueue(new WorkerOptions()));
        yield return ("exchange", QueueTopology.IsolationQueue(new WorkerOptions())); // MassTransit's, in front of the isolation endpoint
        yield return ("queue", $"{queue}-delay-{{seconds}}s"); // RabbitMqDelayQueueRedelivery
        foreach (var e in BatchTopology.EventExchanges) yield return ("exchange", e);
        yield return ("exchange", BatchTopology.BatchEventsExchange);
        yield return ("queue", BatchPaths.WatchQueue("{batchId}"));
        yield return ("exchange", CloudEventsOptions.DefaultExchange);
    }

    [Fact]
    public void Every_exchange_and_queue_in_the_code_is_documented_and_nothing_else()
    {
        var documented = DocumentedTopology().ToHashSet();
        var code = CodeTopology().ToHashSet();
        code.Except(documented).Select(x => $"{x.Kind} {x.Name}").ShouldBeEmpty($"in the code but not in asyncapi.yaml: {Fix}");
        documented.Except(code).Select(x => $"{x.Kind} {x.Name}").ShouldBeEmpty($"in asyncapi.yaml but not in the code: {Fix}");
        BatchTopology.MessageExchange<ImageStylized>().ShouldBe("MambaSt.Batch.Contracts:ImageStylized");
    }

    [Fact]
    public void Every_message_type_is_documented_with_its_MassTransit_urn_and_schema()
    {
        var documented = Messages.Where(m => m.Value!["x-masstransit-urn"] is not null)
            .ToDictionary(m => m.Value!["x-masstransit-urn"]!.GetValue<string>(), m => m.Value!["payload"]!["$ref"]!.GetValue<string>());
        var code = ContractSchemas.Messages.ToDictionary(t => $"urn:message:{t.Namespace}:{t.Name}", t => $"./schemas/{ContractSchemas.FileName(t)}");
        documented.ShouldBe(code, ignoreOrder: true, $"message URNs and schema files: {Fix}");
        foreach (var schema in code.Values)
        {
            File.Exists(Path.Combine(RepoPaths.Root, "contracts", schema)).ShouldBeTrue($"{schema} missing: run `{ContractSchemas.RegenerateCommand}`");
        }
    }

    [Fact]
    public void The_CloudEvents_types_and_the_batch_header_match_the_code()
    {
        Messages.Select(m => m.Value!["x-cloudevents-type"]?.GetValue<string>()).OfType<string>()
            .ShouldBe([CloudEventsPublisher.StylizedType, CloudEventsPublisher.FailedType], ignoreOrder: true, Fix);
        Document.Value["components"]!["schemas"]!["EventHeaders"]!["required"]!.AsArray().Single()!.GetValue<string>().ShouldBe(EventHeaders.BatchId);
        Channels["cloudEvents"]!["parameters"]!["eventType"]!["enum"]!.AsArray().Select(n => n!.GetValue<string>())
            .ShouldBe([CloudEventsPublisher.StylizedType, CloudEventsPublisher.FailedType], ignoreOrder: true, Fix);
    }

    [Fact]
    public void Every_error_code_is_explained()
    {
        var documented = Document.Value["info"]!["x-error-codes"]!.AsObject().Select(p => p.Key);
        documented.ShouldBe(Enum.GetNames<StylizationErrorCode>(), ignoreOrder: true, $"info.x-error-codes: {Fix}");
        var docs = File.ReadAllText(Path.Combine(RepoPaths.Root, "docs", "integration.md"));
        foreach (var code in Enum.GetNames<StylizationErrorCode>()) docs.ShouldContain($"`{code}`", customMessage: "docs/integration.md: error code table");
    }
}
