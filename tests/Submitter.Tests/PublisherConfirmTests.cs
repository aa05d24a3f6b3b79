using MassTransit;
using MassTransit.RabbitMqTransport.Configuration;

namespace MambaSt.Batch.Submitter.Tests;

public class PublisherConfirmTests
{
    [Fact]
    public void MassTransit_8_confirms_publishes_on_RabbitMQ_by_default()
    {
        var configurator = new RabbitMqHostConfigurator(new Uri("rabbitmq://localhost/"));
        configurator.Settings.PublisherConfirmation.ShouldBeTrue();
    }
}
