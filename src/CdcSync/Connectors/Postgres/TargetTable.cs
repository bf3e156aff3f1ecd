using CdcSync.Hub;
using CdcSync.Replication;
using Npgsql;

namespace CdcSync.Connectors.Postgres;

/// <summary>
/// How one hub relation (as the stream currently describes it) is written to its target table:
/// which hub ordinals feed which target columns, and the key. Rebuilt when the relation changes.
/// </summary>
internal sealed class TargetTable
{
    private TargetTable(RelationInfo relation, string qualifiedTarget, IReadOnlyList<int> sourceOrdinals, IReadOnlyList<string> targetColumns, IReadOnlyList<string> targetTypes, IReadOnlyList<int> keyIndexes, int serial)
    {
        Relation = relation;
        QualifiedTarget = qualifiedTarget;
        SourceOrdinals = sourceOrdinals;
        TargetColumns = targetColumns;
        TargetTypes = targetTypes;
        KeyIndexes = keyIndexes;
        TempTable = $"cdc_tmp_{serial}";
    }

    public RelationInfo Relation { get; }

    /// <summary>Quoted "schema"."table".</summary>
    public string QualifiedTarget { get; }

    /// <summary>For mapped column i: its ordinal in the hub row.</summary>
    public IReadOnlyList<int> SourceOrdinals { get; }

    public IReadOnlyList<string> TargetColumns { get; }

    public IReadOnlyList<string> TargetTypes { get; }

    /// <summary>Indexes (into the mapped columns) of the target's primary key.</summary>
    public IReadOnlyList<int> KeyIndexes { get; }

    public string TempTable { get; }

    public bool TempCreated { get; set; }

    /// <summary>A direct COPY of "new" rows hit an existing key once; upsert from now on.</summary>
    public bool DirectInsertFailed { get; set; }

    public static async Task<TargetTable> ResolveAsync(string connector, NpgsqlConnection target, RelationInfo relation, PostgresTableMapping? mapping, bool binary, int serial, CancellationToken cancellationToken)
    {
        TableName parsed;
        try
        {
            parsed = mapping?.Target is { } t ? TableName.Parse(t, relation.Schema) : new TableName(relation.Schema, relation.Name);
        }
        catch (FormatException e)
        {
            throw new OperatorException($"Connectors:{connector}:Tables: {e.Message}");
        }

        var (schema, table) = (parsed.Schema, parsed.Name);
        var route = $"connector '{connector}', hub table {relation.QualifiedName} -> {schema}.{table}";

        await using var cmd = new NpgsqlCommand(
            """
            SELECT a.attname, a.atttypid, format_type(a.atttypid, a.atttypmod),
                   coalesce(a.attnum = ANY (i.indkey), false) AS is_key
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
            WHERE n.nspname = $1 AND c.relname = $2
            ORDER BY a.attnum
            """, target);
        cmd.Parameters.Add(new NpgsqlParameter { Value = schema });
        cmd.Parameters.Add(new NpgsqlParameter { Value = table });
        var columns = new Dictionary<string, (uint Oid, string Type, bool IsKey)>(StringComparer.Ordinal);
        await using (var reader = await cmd.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                columns[reader.GetString(0)] = (reader.GetFieldValue<uint>(1), reader.GetString(2), reader.GetBoolean(3));
            }
        }

        if (columns.Count == 0)
        {
            throw new OperatorException($"Target table {schema}.{table} does not exist ({route}); create it in the target database or fix Connectors:{connector}:Tables.");
        }

        if (mapping?.Columns is not { Count: > 0 })
        {
            // Without a column list every hub column must land somewhere: a column added to the hub
            // table must not be dropped on the floor silently.
            var missing = relation.Columns.Where(c => !columns.ContainsKey(c.Name)).Select(c => c.Name).ToList();
            if (missing.Count > 0)
            {
                throw new OperatorException(
                    $"Hub table {relation.QualifiedName} has column(s) {string.Join(", ", missing)} that {schema}.{table} lacks ({route}); add them to the target (ALTER TABLE ... ADD COLUMN) or list the columns to write under Connectors:{connector}:Tables:{relation.QualifiedName}:Columns.");
            }
        }

        var sourceToTarget = mapping?.Columns is { Count: > 0 } map
            ? map
            : relation.Columns.ToDictionary(c => c.Name, c => c.Name);

        var ordinals = new List<int>();
        var targetColumns = new List<string>();
        var types = new List<string>();
        var keys = new List<int>();
        foreach (var (source, targetColumn) in sourceToTarget)
        {
            if (!relation.TryGetOrdinal(source, out var ordinal))
            {
                throw new OperatorException($"Column '{source}' is not in hub table {relation.QualifiedName} ({route}); fix the column mapping or add the column in the hub.");
            }

            if (!columns.TryGetValue(targetColumn, out var info))
            {
                throw new OperatorException($"Target table {schema}.{table} has no column '{targetColumn}' ({route}); add it to the target (ALTER TABLE ... ADD COLUMN) or change the column mapping.");
            }

            var sourceOid = relation.Columns[ordinal].TypeOid;
            // Binary values are passed through to COPY untouched, so built-in types must match exactly.
            if (binary && sourceOid != info.Oid && sourceOid < 16384 && info.Oid < 16384)
            {
                throw new OperatorException(
                    $"Column '{source}' has type oid {sourceOid} in the hub but {info.Type} in {schema}.{table} ({route}); CdcSync copies binary values as they are, so give the target column the hub's type.");
            }

            if (info.IsKey)
            {
                keys.Add(targetColumns.Count);
            }

            ordinals.Add(ordinal);
            targetColumns.Add(targetColumn);
            types.Add(info.Type);
        }

        var targetKeyCount = columns.Values.Count(c => c.IsKey);
        if (targetKeyCount == 0)
        {
            throw new OperatorException($"Target table {schema}.{table} has no primary key ({route}); CdcSync upserts by key, so add one.");
        }

        if (keys.Count != targetKeyCount)
        {
            throw new OperatorException($"Not every primary-key column of {schema}.{table} is mapped from the hub ({route}); map them all.");
        }

        return new TargetTable(relation, $"{HubSql.Quote(schema)}.{HubSql.Quote(table)}", ordinals, targetColumns, types, keys, serial);
    }
}
