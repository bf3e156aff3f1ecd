using NpgsqlTypes;

namespace CdcSync.Replication;

/// <summary>What one pgoutput message was, as far as the replication session has to act on it.</summary>
internal enum PgOutputMessageKind : byte
{
    /// <summary>Type ('Y'), logical decoding message ('M') or a tag this reader does not know: nothing to do.</summary>
    Ignored,
    Begin,
    Commit,
    Origin,
    Relation,

    /// <summary>Insert, Update, Delete or Truncate: <see cref="PgOutputMessage.Changes"/> holds the decoded rows.</summary>
    Change,
    StreamStart,
    StreamStop,
    StreamCommit,
    StreamAbort,
}

/// <summary>
/// One decoded pgoutput message. A value, not a class hierarchy: the decoder runs for every message
/// of the WAL (100k+ a second) and a heap object per Begin/Commit would be garbage the reader never
/// needed. Only the properties the <see cref="Kind"/> names are set; the rest keep their defaults.
/// </summary>
internal readonly record struct PgOutputMessage(PgOutputMessageKind Kind)
{
    /// <summary>
    /// Begin, StreamStart, StreamAbort, StreamCommit: the transaction's xid. Change: the
    /// (sub)transaction the change belongs to (inside a stream the message's own xid, else Begin's).
    /// </summary>
    public uint Xid { get; init; }

    /// <summary>StreamAbort: the aborted subtransaction, or <see cref="Xid"/> itself when the whole transaction aborted.</summary>
    public uint SubXid { get; init; }

    /// <summary>Begin: the transaction's final LSN. Commit, StreamCommit: the commit's LSN.</summary>
    public NpgsqlLogSequenceNumber CommitLsn { get; init; }

    /// <summary>Commit, StreamCommit: the end of the transaction's commit record, the position to confirm once it is durable.</summary>
    public NpgsqlLogSequenceNumber EndLsn { get; init; }

    /// <summary>Begin, Commit, StreamCommit: commit time (UTC).</summary>
    public DateTime CommitTime { get; init; }

    /// <summary>Commit: the transaction its changes were handed out with (the same instance).</summary>
    public TransactionInfo? Transaction { get; init; }

    /// <summary>Origin: the replication origin the transaction was written under.</summary>
    public string? Origin { get; init; }

    /// <summary>Relation: the table as now cached (the earlier instance when its shape did not change).</summary>
    public RelationInfo? Relation { get; init; }

    /// <summary>Relation: an earlier description of the same table had other columns.</summary>
    public bool ShapeChanged { get; init; }

    /// <summary>
    /// Change: the decoded row changes (one, or one per table of a Truncate). The decoder reuses the
    /// list, so it is valid until the next message is decoded; the events in it are immutable.
    /// </summary>
    public IReadOnlyList<ChangeEvent>? Changes { get; init; }
}
