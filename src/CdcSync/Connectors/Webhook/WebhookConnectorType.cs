using CdcSync.Configuration;
using CdcSync.Connectors.Http;
using Microsoft.Extensions.Logging;

namespace CdcSync.Connectors.Webhook;

/// <summary>The webhook connector in the registry: outbound only.</summary>
internal static class WebhookConnectorType
{
    public static ConnectorType Type { get; } = ConnectorType.Of(
        "webhook",
        new WebhookOptionsValidator(),
        context => new WebhookOutboundConnector(
            context.Name,
            ConnectorFactory.BindValidated(context.Section, context.Path, new WebhookOptionsValidator()),
            context.Gateway,
            context.Http.CreateClient(ConnectorHttpClients.Webhook),
            context.Loggers.CreateLogger<WebhookOutboundConnector>(),
            null));
}
