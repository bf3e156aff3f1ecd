using CdcSync.Configuration;
using CdcSync.Connectors.Postgres;
using CdcSync.Hub;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CdcSync.Connectors;

/// <summary>Builds outbound connectors from their config sections (Type picks the kind).</summary>
public static class ConnectorFactory
{
    public static IOutboundConnector CreateOutbound(string name, IConfigurationSection section, NpgsqlDataSource hub, ILoggerFactory loggers)
    {
        var type = section["Type"]?.ToLowerInvariant();
        switch (type)
        {
            case "postgres" or "postgresql":
            {
                var options = BindValidated<PostgresConnectorOptions>(section, $"Connectors:{name}");
                return new PostgresOutboundConnector(name, options, loggers.CreateLogger($"CdcSync.Connectors.{name}"));
            }

            default:
                throw new OperatorException(
                    $"Config key Connectors:{name}:Type is '{section["Type"]}'; use one of: postgres, salesforce, netsuite, webhook.");
        }
    }

    public static T BindValidated<T>(IConfigurationSection section, string path)
        where T : new()
    {
        var options = new T();
        try
        {
            section.Bind(options);
        }
        catch (InvalidOperationException e)
        {
            throw new OperatorException($"Config section {path}: {e.Message}");
        }

        ConfigLoader.Validate(options, path);
        return options;
    }
}
