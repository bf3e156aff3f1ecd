using System.Text.Json.Nodes;
using Dapper;
using Npgsql;

namespace CdcSync.Onboarding;

/// <summary>
/// The review queue of onboarding matches (<c>cdc.match_review</c>, <c>cdc.match_candidates</c>)
/// and its decisions, which are SQL (<c>cdc.match_accept</c>, <c>cdc.match_reject</c>,
/// <c>cdc.match_unlink</c>): a decision is written to the hub, and the transforms and the outbound
/// flow carry it to both systems.
/// </summary>
internal sealed class MatchService(NpgsqlDataSource hub)
{
    private const string Columns =
        """
        id AS Id, object_a AS ObjectA, hub_a AS HubA, object_b AS ObjectB, hub_b AS HubB, score AS Score,
        keys::text AS Keys, status AS Status, link_id AS LinkId, decided_by AS DecidedBy, decided_at AS DecidedAt,
        created_at AS CreatedAt
        """;

    /// <summary>The open reviews, one JSON object per row of <c>cdc.match_review</c> (its columns as they are).</summary>
    public async Task<IReadOnlyList<JsonObject>> ListAsync(CancellationToken cancellationToken)
    {
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT to_jsonb(r)::text FROM cdc.match_review r", cancellationToken: cancellationToken));
        return rows.Select(r => (JsonObject)JsonNode.Parse(r)!).ToList();
    }

    /// <summary>A candidate row and every candidate of the same record (the review group), plus the review rows of that record.</summary>
    public async Task<(IReadOnlyList<MatchCandidate> Candidates, IReadOnlyList<JsonObject> Review)> ShowAsync(long id, CancellationToken cancellationToken)
    {
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        var row = await FindAsync(connection, id, cancellationToken);
        var group = await connection.QueryAsync<MatchCandidate>(new CommandDefinition(
            $"""
            SELECT {Columns} FROM cdc.match_candidates
            WHERE id = @id OR (object_a = @ObjectA AND hub_a = @HubA AND status = @Status)
            ORDER BY score DESC NULLS LAST, id
            """,
            new { id, row.ObjectA, row.HubA, row.Status }, cancellationToken: cancellationToken));
        var review = await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT to_jsonb(r)::text FROM cdc.match_review r WHERE to_jsonb(r) @> jsonb_build_object('hub_a', @hubA::text)",
            new { hubA = row.HubA.ToString() }, cancellationToken: cancellationToken));
        return (group.AsList(), review.Select(r => (JsonObject)JsonNode.Parse(r)!).ToList());
    }

    /// <summary>Links the record of review <paramref name="id"/> with its candidate (or, in a tie, the one <paramref name="with"/> names). Returns the link id.</summary>
    public async Task<Guid> AcceptAsync(long id, Guid? with, string decidedBy, CancellationToken cancellationToken)
    {
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        await FindAsync(connection, id, cancellationToken);
        return await DecideAsync(() => connection.ExecuteScalarAsync<Guid>(new CommandDefinition(
            "SELECT cdc.match_accept(@id, @with, @by)", new { id, with, by = decidedBy }, cancellationToken: cancellationToken)));
    }

    /// <summary>Rejects review <paramref name="id"/>: the record is created as new on the other side.</summary>
    public async Task RejectAsync(long id, string decidedBy, CancellationToken cancellationToken)
    {
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        await FindAsync(connection, id, cancellationToken);
        await DecideAsync(() => connection.ExecuteAsync(new CommandDefinition(
            "SELECT cdc.match_reject(@id, @by)", new { id, by = decidedBy }, cancellationToken: cancellationToken)));
    }

    /// <summary>Undoes link <paramref name="link"/>: both records stand alone, held for review.</summary>
    public async Task UnlinkAsync(Guid link, string decidedBy, CancellationToken cancellationToken)
    {
        await using var connection = await hub.OpenConnectionAsync(cancellationToken);
        if (!await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
                "SELECT EXISTS (SELECT 1 FROM cdc.identity_links WHERE link_id = @link)", new { link }, cancellationToken: cancellationToken)))
        {
            throw new OperatorException($"no link {link} in the hub (see cdcsync matches list, or the link_id column of cdc.match_candidates).");
        }

        await DecideAsync(() => connection.ExecuteAsync(new CommandDefinition(
            "SELECT cdc.match_unlink(@link, @by)", new { link, by = decidedBy }, cancellationToken: cancellationToken)));
    }

    private static async Task<MatchCandidate> FindAsync(NpgsqlConnection connection, long id, CancellationToken cancellationToken) =>
        await connection.QuerySingleOrDefaultAsync<MatchCandidate>(new CommandDefinition(
            $"SELECT {Columns} FROM cdc.match_candidates WHERE id = @id", new { id }, cancellationToken: cancellationToken))
        ?? throw new OperatorException($"no match candidate with id {id} (see cdcsync matches list).");

    /// <summary>A decision the SQL refuses (already decided, a candidate not in the group) is the operator's to fix: one line.</summary>
    private static async Task<T> DecideAsync<T>(Func<Task<T>> decide)
    {
        try
        {
            return await decide();
        }
        catch (PostgresException e) when (e.SqlState.StartsWith("P0", StringComparison.Ordinal) || e.SqlState.StartsWith("22", StringComparison.Ordinal) || e.SqlState.StartsWith("23", StringComparison.Ordinal))
        {
            throw new OperatorException(e.MessageText, e);
        }
    }
}
