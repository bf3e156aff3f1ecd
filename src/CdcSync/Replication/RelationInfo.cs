namespace CdcSync.Replication;

public sealed record ColumnInfo(string Name, uint TypeOid, int TypeModifier, bool IsKey);

/// <summary>A table as described by the last pgoutput Relation message for it.</summary>
public sealed class RelationInfo
{
    private readonly Dictionary<string, int> _ordinals;

    public RelationInfo(uint id, string schema, string name, char replicaIdentity, IReadOnlyList<ColumnInfo> columns)
    {
        Id = id;
        Schema = schema;
        Name = name;
        ReplicaIdentity = replicaIdentity;
        Columns = columns;
        _ordinals = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < columns.Count; i++)
        {
            _ordinals[columns[i].Name] = i;
        }
    }

    public uint Id { get; }
    public string Schema { get; }
    public string Name { get; }

    /// <summary>d = default (primary key), f = full, i = index, n = nothing.</summary>
    public char ReplicaIdentity { get; }

    public IReadOnlyList<ColumnInfo> Columns { get; }

    public string QualifiedName => $"{Schema}.{Name}";

    public int Ordinal(string column) =>
        _ordinals.TryGetValue(column, out var i)
            ? i
            : throw new KeyNotFoundException($"Column '{column}' is not in table {QualifiedName} as the replication stream describes it.");

    public bool TryGetOrdinal(string column, out int ordinal) => _ordinals.TryGetValue(column, out ordinal);

    public bool SameShape(RelationInfo other)
    {
        if (other.Columns.Count != Columns.Count || other.Schema != Schema || other.Name != Name)
        {
            return false;
        }

        for (var i = 0; i < Columns.Count; i++)
        {
            if (Columns[i] != other.Columns[i])
            {
                return false;
            }
        }

        return true;
    }
}
