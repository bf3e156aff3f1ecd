using System.Buffers.Binary;
using System.Text;
using CdcSync.Replication;
using NpgsqlTypes;

namespace CdcSync.Tests.Pipeline;

/// <summary>Builds changes as the reader would decode them (binary values), for tests without a replication stream.</summary>
internal static class TestChanges
{
    /// <summary>Stands for a TOASTed value the server did not send with an update.</summary>
    public static readonly object Unchanged = new();

    /// <summary>A table with an int4 key and a text column.</summary>
    public static RelationInfo Table(string name, string schema = "public", uint id = 16400) =>
        new(id, schema, name, 'd', [new("id", 23, -1, true), new("name", 25, -1, false)]);

    public static TransactionInfo Transaction(ulong commitLsn, string? origin = null) =>
        new((uint)commitLsn, new NpgsqlLogSequenceNumber(commitLsn), DateTime.UnixEpoch, origin);

    public static ChangeEvent Insert(RelationInfo relation, TransactionInfo transaction, int position, params object?[] values) =>
        new(relation, ChangeKind.Insert, Row(values), null, transaction, position);

    public static ChangeEvent Update(RelationInfo relation, TransactionInfo transaction, int position, params object?[] values) =>
        new(relation, ChangeKind.Update, Row(values), null, transaction, position);

    /// <summary>A delete as REPLICA IDENTITY DEFAULT sends it: the key, the other columns null.</summary>
    public static ChangeEvent Delete(RelationInfo relation, TransactionInfo transaction, int position, params object?[] key) =>
        new(relation, ChangeKind.Delete, null, Row([.. key, .. Enumerable.Repeat<object?>(null, relation.Columns.Count - key.Length)]), transaction, position);

    /// <summary>The idempotency key the writer's connector sees for a change (commit LSN / position).</summary>
    public static string Key(ulong commitLsn, int position) => $"{new NpgsqlLogSequenceNumber(commitLsn)}/{position}";

    /// <summary>A row in the binary send format: int as int4, long as int8, string as text, null, or <see cref="Unchanged"/>.</summary>
    public static RowValues Row(params object?[] values)
    {
        var builder = new RowValues.Builder();
        foreach (var value in values)
        {
            switch (value)
            {
                case null:
                    builder.Add(ValueKind.Null, default);
                    break;
                case var u when ReferenceEquals(u, Unchanged):
                    builder.Add(ValueKind.Unchanged, default);
                    break;
                case int i:
                    BinaryPrimitives.WriteInt32BigEndian(builder.AddRaw(ValueKind.Binary, 4).Span, i);
                    break;
                case long l:
                    BinaryPrimitives.WriteInt64BigEndian(builder.AddRaw(ValueKind.Binary, 8).Span, l);
                    break;
                case string s:
                    builder.Add(ValueKind.Binary, Encoding.UTF8.GetBytes(s));
                    break;
                default:
                    throw new ArgumentException($"no binary form for {value.GetType()} in tests", nameof(values));
            }
        }

        return builder.Build();
    }
}
