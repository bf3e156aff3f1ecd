using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using CdcSync.Hub;
using Microsoft.Extensions.Logging;

namespace CdcSync.Connectors.NetSuite;

/// <summary>How a staging column travels: SuiteQL returns booleans as T/F and needs TO_CHAR for stamps; the record service wants references as {"id"} and sublists as {"items"}.</summary>
internal enum NetSuiteFieldKind
{
    Scalar,
    Boolean,
    Timestamp,
    Date,
    Reference,
    Sublist,
}

/// <summary>One staging column and the record field it mirrors.</summary>
/// <param name="Field">REST record service name (camelCase).</param>
/// <param name="SuiteQlName">SuiteQL column (lower case); null for sublists, which SuiteQL does not return.</param>
internal sealed record NetSuiteField(string Column, string Field, string? SuiteQlName, NetSuiteFieldKind Kind, bool Writable);

/// <summary>
/// The fields of one record type the connector reads and writes: the columns of its staging table,
/// named, typed and flagged by the account's metadata catalog
/// (<c>/services/rest/record/v1/metadata-catalog/{type}</c>, a JSON schema), or by the record's
/// config where the catalog is not available. The staging column types decide the SuiteQL
/// conversions (boolean, timestamptz) and which columns are sublists (jsonb).
/// </summary>
internal sealed class NetSuiteRecordSchema
{
    private NetSuiteRecordSchema(IReadOnlyList<NetSuiteField> fields) => Fields = fields;

    public IReadOnlyList<NetSuiteField> Fields { get; }

    public NetSuiteField? Find(string column) => Fields.FirstOrDefault(f => f.Column == column);

    public static async Task<NetSuiteRecordSchema> LoadAsync(NetSuiteClient client, HubGateway hub, NetSuiteRecordOptions map, string connector, ILogger logger, CancellationToken cancellationToken)
    {
        var columns = await hub.ColumnTypesAsync(connector, map.Table, cancellationToken);
        foreach (var column in map.Lookups.SelectMany(l => new[] { l.Column, l.HubKeyColumn }).Where(c => !columns.ContainsKey(c)))
        {
            throw new InvalidOperationException(
                $"Connectors:{connector}:Records ({map.RecordType}): lookup column '{column}' is not a column of {map.Table}; fix Lookups or add the column in a migration.");
        }

        var catalog = await CatalogAsync(client, map.RecordType, connector, logger, cancellationToken);
        var hubOnly = new HashSet<string>(map.HubOnlyColumns.Concat(map.Lookups.Select(l => l.HubKeyColumn)), StringComparer.Ordinal) { map.KeyColumn };
        var readOnly = new HashSet<string>(map.ReadOnlyColumns, StringComparer.Ordinal) { map.IdColumn };
        var references = new HashSet<string>(map.References, StringComparer.Ordinal);
        var fields = new List<NetSuiteField>();
        foreach (var (column, type) in columns.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            if (hubOnly.Contains(column) || column.StartsWith("cdc_", StringComparison.Ordinal))
            {
                continue;
            }

            var name = map.FieldNames.GetValueOrDefault(column) ?? (column == map.IdColumn ? "id" : column);
            var locked = readOnly.Contains(column);
            var reference = references.Contains(column);
            if (catalog is not null)
            {
                if (!catalog.TryGetValue(name, out var property))
                {
                    logger.LogDebug("{Connector}: column {Column} of {Table} is not a field of {RecordType}; kept in the hub only", connector, column, map.Table, map.RecordType);
                    continue;
                }

                name = property.Name;
                locked |= property.ReadOnly;
                reference |= property.Reference;
            }

            var kind = type switch
            {
                "jsonb" or "json" => NetSuiteFieldKind.Sublist,
                "boolean" => NetSuiteFieldKind.Boolean,
                "timestamp with time zone" or "timestamp without time zone" => NetSuiteFieldKind.Timestamp,
                "date" => NetSuiteFieldKind.Date,
                _ when reference => NetSuiteFieldKind.Reference,
                _ => NetSuiteFieldKind.Scalar,
            };
            var suiteQl = kind == NetSuiteFieldKind.Sublist ? null : column == map.IdColumn ? "id" : name.ToLowerInvariant();
            fields.Add(new NetSuiteField(column, name, suiteQl, kind, !locked && column != map.IdColumn));
        }

        return new NetSuiteRecordSchema(fields);
    }

    private static async Task<Dictionary<string, (string Name, bool ReadOnly, bool Reference)>?> CatalogAsync(NetSuiteClient client, string recordType, string connector, ILogger logger, CancellationToken cancellationToken)
    {
        var response = await client.SendAsync(HttpMethod.Get, $"services/rest/record/v1/metadata-catalog/{Uri.EscapeDataString(recordType)}", null, false, "application/schema+json", cancellationToken);
        if (response.StatusCode is 404 or 400)
        {
            logger.LogInformation("{Connector}: the account answers no metadata catalog for {RecordType}; field names, references and read-only columns come from the config", connector, recordType);
            return null;
        }

        NetSuiteClient.EnsureSuccess(response, "metadata catalog of " + recordType);
        var result = new Dictionary<string, (string, bool, bool)>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, property) in JsonNode.Parse(response.Body)?["properties"]?.AsObject() ?? [])
        {
            // A reference is an object schema with an id (a $ref to another record); sublists are
            // collections, told apart by the staging column's type.
            var reference = property?["$ref"] is not null || property?["properties"]?["id"] is not null;
            result[name] = (name, property?["readOnly"]?.GetValue<bool>() ?? false, reference);
        }

        return result;
    }
}

/// <summary>Schemas per record type, loaded once per connector on first use.</summary>
internal sealed class NetSuiteSchemas(NetSuiteClient client, HubGateway hub, string connector, ILogger logger)
{
    private readonly ConcurrentDictionary<string, NetSuiteRecordSchema> _loaded = new(StringComparer.Ordinal);

    public async Task<NetSuiteRecordSchema> ForAsync(NetSuiteRecordOptions map, CancellationToken cancellationToken)
    {
        if (_loaded.TryGetValue(map.Table, out var schema))
        {
            return schema;
        }

        schema = await NetSuiteRecordSchema.LoadAsync(client, hub, map, connector, logger, cancellationToken);
        _loaded[map.Table] = schema;
        return schema;
    }
}
