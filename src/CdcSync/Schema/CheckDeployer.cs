using CdcSync.Hub;
using Dapper;
using Npgsql;

namespace CdcSync.Schema;

/// <summary>
/// Deploys <c>checks/*.sql</c> for <c>cdcsync migrate</c>: each check becomes the view
/// <c>cdc_checks."NAME"</c> and a row of <c>cdc.checks</c> (header and file hash). All checks are
/// deployed in one transaction, so the hub holds either the old set or the new one; a check whose
/// file is gone is dropped. The hash is the journal: a check whose file changed is pending, as a
/// changed transform is.
/// </summary>
internal static class CheckDeployer
{
    /// <summary>The checks <c>migrate</c> would deploy or drop, by file and reason.</summary>
    public static async Task<IReadOnlyList<PendingScript>> PendingAsync(string connectionString, IReadOnlyList<CheckDefinition> checks, CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(cancellationToken);
        var deployed = await DeployedAsync(conn, null, cancellationToken);
        var pending = new List<PendingScript>();
        foreach (var check in checks)
        {
            if (!deployed.TryGetValue(check.Name, out var row))
            {
                pending.Add(new PendingScript(check.File, PendingReason.NewCheck));
            }
            else if (row.Hash != check.Hash || row.File != check.File)
            {
                pending.Add(new PendingScript(check.File, PendingReason.ChangedCheck));
            }
        }

        pending.AddRange(deployed.Values.Where(d => checks.All(c => c.Name != d.Name))
            .Select(d => new PendingScript(d.File, PendingReason.RemovedCheck)));
        return pending;
    }

    /// <summary>
    /// Drops every deployed check's view (not its row), before migrations and transforms run: a
    /// view pins the columns and functions it reads, which would make a migration that changes
    /// them fail. <see cref="DeployAsync"/> creates them again afterwards.
    /// </summary>
    public static async Task DropViewsAsync(string connectionString, CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        foreach (var name in (await DeployedAsync(conn, tx, cancellationToken)).Keys)
        {
            await conn.ExecuteAsync(new CommandDefinition($"DROP VIEW IF EXISTS {CheckDefinition.Schema}.{HubSql.Quote(name)}", transaction: tx, cancellationToken: cancellationToken));
        }

        await tx.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Creates every check's view and records its header, drops checks whose file is gone, all in
    /// one transaction. Returns the files that were new, changed or removed. A check whose query
    /// PostgreSQL rejects is an <see cref="OperatorException"/> naming its file and line; nothing
    /// is deployed then.
    /// </summary>
    public static async Task<IReadOnlyList<string>> DeployAsync(string connectionString, IReadOnlyList<CheckDefinition> checks, Action<string>? progress, CancellationToken cancellationToken)
    {
        var changed = (await PendingAsync(connectionString, checks, cancellationToken)).ToList();
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        var deployed = await DeployedAsync(conn, tx, cancellationToken);
        foreach (var gone in deployed.Values.Where(d => checks.All(c => c.Name != d.Name)))
        {
            progress?.Invoke($"dropping check {gone.Name} ({gone.File} is gone)");
            await conn.ExecuteAsync(new CommandDefinition($"DROP VIEW IF EXISTS {CheckDefinition.Schema}.{HubSql.Quote(gone.Name)}", transaction: tx, cancellationToken: cancellationToken));
            await conn.ExecuteAsync(new CommandDefinition("DELETE FROM cdc.checks WHERE name = @name", new { name = gone.Name }, tx, cancellationToken: cancellationToken));
        }

        foreach (var check in checks)
        {
            if (changed.Any(p => p.File == check.File))
            {
                progress?.Invoke($"applying {check.File}");
            }

            // Dropped first: CREATE OR REPLACE VIEW cannot drop or rename a column.
            await conn.ExecuteAsync(new CommandDefinition($"DROP VIEW IF EXISTS {check.View}", transaction: tx, cancellationToken: cancellationToken));
            try
            {
                await using var create = new NpgsqlCommand(check.CreateViewSql, conn, tx);
                await create.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (PostgresException e)
            {
                await tx.RollbackAsync(CancellationToken.None);
                // The statement starts on the query's line of the file; the position counts from there.
                var line = check.QueryLine + (e.Position > 0 ? SqlErrorLocation.CountLines(check.CreateViewSql, e.Position - 1) : 1) - 1;
                var detail = e.Detail is { Length: > 0 } d ? $" ({d})" : string.Empty;
                throw new OperatorException($"{check.File}:{line}: {e.MessageText}{detail} — fix {check.File} ('cdcsync transforms test' runs it) and run migrate again; no check was deployed.", e);
            }

            await conn.ExecuteAsync(new CommandDefinition(
                """
                INSERT INTO cdc.checks (name, file, severity, schedule, description, hash, deployed_at)
                VALUES (@Name, @File, @severity, @Schedule, @Description, @Hash, now())
                ON CONFLICT (name) DO UPDATE SET file = EXCLUDED.file, severity = EXCLUDED.severity, schedule = EXCLUDED.schedule,
                    description = EXCLUDED.description, hash = EXCLUDED.hash,
                    deployed_at = CASE WHEN cdc.checks.hash = EXCLUDED.hash THEN cdc.checks.deployed_at ELSE now() END
                """,
                new { check.Name, check.File, severity = check.SeverityText, check.Schedule, check.Description, check.Hash }, tx, cancellationToken: cancellationToken));
        }

        await tx.CommitAsync(cancellationToken);
        return changed.Select(p => p.File).ToList();
    }

    private sealed record DeployedRow(string Name, string File, string Hash);

    private static async Task<Dictionary<string, DeployedRow>> DeployedAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, CancellationToken cancellationToken)
    {
        if (!await conn.ExecuteScalarAsync<bool>(new CommandDefinition("SELECT to_regclass('cdc.checks') IS NOT NULL", transaction: tx, cancellationToken: cancellationToken)))
        {
            return [];
        }

        var rows = await conn.QueryAsync<DeployedRow>(new CommandDefinition(
            "SELECT name AS \"Name\", file AS \"File\", hash AS \"Hash\" FROM cdc.checks", transaction: tx, cancellationToken: cancellationToken));
        return rows.ToDictionary(r => r.Name, StringComparer.Ordinal);
    }
}
