using System.Collections.Concurrent;
using Dapper;
using Npgsql;

namespace CdcSync.Hub;

/// <summary>
/// Column name to SQL type of the hub's staging tables, read once per table: writes send values as
/// text and cast them to the column's type. A table or column that does not exist is an error naming the fix.
/// </summary>
internal sealed class StagingColumns
{
    private readonly ConcurrentDictionary<string, IReadOnlyDictionary<string, string>> _types = new();

    /// <summary>The types of a table read before, else null.</summary>
    public IReadOnlyDictionary<string, string>? Cached(string table) => _types.GetValueOrDefault(table);

    public async Task<IReadOnlyDictionary<string, string>> TypesAsync(NpgsqlDataSource hub, string table, CancellationToken cancellationToken)
    {
        if (_types.TryGetValue(table, out var cached))
        {
            return cached;
        }

        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        return await TypesAsync(connection, table, cancellationToken);
    }

    public async Task<IReadOnlyDictionary<string, string>> TypesAsync(NpgsqlConnection connection, string table, CancellationToken cancellationToken)
    {
        if (_types.TryGetValue(table, out var cached))
        {
            return cached;
        }

        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, type) in await connection.QueryAsync<(string Name, string Type)>(new CommandDefinition(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod)
            FROM pg_attribute a
            WHERE a.attrelid = to_regclass(quote_ident(@table)) AND a.attnum > 0 AND NOT a.attisdropped
            """, new { table }, cancellationToken: cancellationToken)))
        {
            types[name] = type;
        }

        if (types.Count == 0)
        {
            throw new InvalidOperationException($"Staging table '{table}' does not exist in the hub; run 'cdcsync migrate' or fix the table name in the connector's configuration.");
        }

        _types[table] = types;
        return types;
    }

    public static string TypeOf(IReadOnlyDictionary<string, string> types, string table, string column) =>
        types.TryGetValue(column, out var type)
            ? type
            : throw new InvalidOperationException($"Staging table '{table}' has no column '{column}'; add it in a migration or drop the field from the connector's mapping.");
}
