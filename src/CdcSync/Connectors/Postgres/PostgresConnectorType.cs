using CdcSync.Configuration;
using Microsoft.Extensions.Logging;

namespace CdcSync.Connectors.Postgres;

/// <summary>The PostgreSQL connector in the registry: outbound only, its checkpoint kept in the target with the rows.</summary>
internal static class PostgresConnectorType
{
    public static ConnectorType Type { get; } = ConnectorType.Of(
        "postgres",
        new PostgresConnectorOptionsValidator(),
        context => new PostgresOutboundConnector(
            context.Name,
            ConnectorFactory.BindValidated(context.Section, context.Path, new PostgresConnectorOptionsValidator()),
            context.Loggers.CreateLogger($"CdcSync.Connectors.{context.Name}"),
            context.Gateway)) with
    {
        Aliases = ["postgresql"],
        CheckpointInTarget = true,
        CheckConnectivityAsync = PostgresTargetCheck.CheckAsync,
    };
}
