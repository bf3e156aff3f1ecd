using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using CdcSync.Hub;
using Microsoft.Extensions.Logging;

namespace CdcSync.Connectors.Salesforce;

/// <summary>One staging column and the sObject field it mirrors.</summary>
/// <param name="Createable">May be sent when the record is created.</param>
/// <param name="Updateable">May be sent when the record is updated.</param>
internal sealed record SalesforceField(string Column, string Field, bool Createable, bool Updateable);

/// <summary>
/// The fields of one sObject the connector reads and writes: the columns of its staging table,
/// named and flagged by the org's describe (<c>/sobjects/{type}/describe</c>: exact API name,
/// createable, updateable). An org (or sandbox) without describe falls back to the config:
/// <see cref="SalesforceObjectOptions.FieldNames"/> and <see cref="SalesforceObjectOptions.ReadOnlyColumns"/>.
/// Adding a mapped field is therefore a migration adding its column, nothing in C#.
/// </summary>
internal sealed class SalesforceObjectSchema
{
    private readonly Dictionary<string, SalesforceField> _byColumn;

    private SalesforceObjectSchema(IReadOnlyList<SalesforceField> fields)
    {
        Fields = fields;
        _byColumn = fields.ToDictionary(f => f.Column, StringComparer.Ordinal);
    }

    public IReadOnlyList<SalesforceField> Fields { get; }

    public SalesforceField? Find(string column) => _byColumn.GetValueOrDefault(column);

    /// <summary>Builds the schema from the staging table's columns and the org's describe (when it answers).</summary>
    public static async Task<SalesforceObjectSchema> LoadAsync(SalesforceClient client, HubGateway hub, SalesforceObjectOptions map, ILogger logger, CancellationToken cancellationToken)
    {
        var columns = await hub.ColumnTypesAsync(client.Name, map.Table, cancellationToken);
        var describe = await DescribeAsync(client, map.SObject, logger, cancellationToken);
        var hubOnly = new HashSet<string>(map.HubOnlyColumns, StringComparer.Ordinal) { map.KeyColumn };
        foreach (var lookup in map.Lookups)
        {
            hubOnly.Add(lookup.HubKeyColumn);
        }

        var readOnly = new HashSet<string>(map.ReadOnlyColumns, StringComparer.Ordinal) { map.IdColumn, map.DeletedColumn };
        var fields = new List<SalesforceField>();
        foreach (var column in columns.Keys.Order(StringComparer.Ordinal))
        {
            if (hubOnly.Contains(column) || column.StartsWith("cdc_", StringComparison.Ordinal))
            {
                continue;
            }

            var configured = map.FieldNames.GetValueOrDefault(column);
            if (describe is null)
            {
                var writable = !readOnly.Contains(column);
                fields.Add(new SalesforceField(column, configured ?? column, writable, writable));
                continue;
            }

            if (!describe.TryGetValue(configured ?? column, out var described))
            {
                logger.LogDebug("{Connector}: column {Column} of {Table} has no field in {SObject}'s describe; kept in the hub only", client.Name, column, map.Table, map.SObject);
                continue;
            }

            var locked = readOnly.Contains(column);
            fields.Add(new SalesforceField(column, described.Name, described.Createable && !locked, described.Updateable && !locked));
        }

        return new SalesforceObjectSchema(fields);
    }

    private static async Task<Dictionary<string, (string Name, bool Createable, bool Updateable)>?> DescribeAsync(SalesforceClient client, string sObject, ILogger logger, CancellationToken cancellationToken)
    {
        JsonNode? response;
        try
        {
            response = await client.SendAsync(HttpMethod.Get, $"{client.ApiPath}/sobjects/{Uri.EscapeDataString(sObject)}/describe", null, null, cancellationToken);
        }
        catch (SalesforceApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            logger.LogInformation("{Connector}: the org answers no describe of {SObject}; field names and read-only columns come from the config", client.Name, sObject);
            return null;
        }

        var result = new Dictionary<string, (string, bool, bool)>(StringComparer.OrdinalIgnoreCase);
        foreach (var field in response?["fields"]?.AsArray() ?? [])
        {
            if (field?["name"]?.GetValue<string>() is { } name)
            {
                result[name] = (name, field["createable"]?.GetValue<bool>() ?? false, field["updateable"]?.GetValue<bool>() ?? false);
            }
        }

        return result.Count == 0
            ? throw new SalesforceApiException($"Salesforce's describe of {sObject} lists no fields; check the integration user's access to {sObject}.", HttpStatusCode.OK, null, isTransient: false)
            : result;
    }
}

/// <summary>Schemas per sObject, loaded once per connector on first use.</summary>
internal sealed class SalesforceSchemas(SalesforceClient client, HubGateway hub, ILogger logger)
{
    private readonly ConcurrentDictionary<string, SalesforceObjectSchema> _loaded = new(StringComparer.Ordinal);

    public async Task<SalesforceObjectSchema> ForAsync(SalesforceObjectOptions map, CancellationToken cancellationToken)
    {
        if (_loaded.TryGetValue(map.SObject, out var schema))
        {
            return schema;
        }

        schema = await SalesforceObjectSchema.LoadAsync(client, hub, map, logger, cancellationToken);
        _loaded[map.SObject] = schema;
        return schema;
    }
}
