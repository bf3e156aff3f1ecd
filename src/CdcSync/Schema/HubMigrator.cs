using Dapper;
using DbUp;
using DbUp.Engine;
using DbUp.Engine.Output;
using DbUp.Engine.Transactions;
using DbUp.Support;
using Npgsql;

namespace CdcSync.Schema;

internal sealed record MigrationResult(bool Succeeded, IReadOnlyList<string> Applied, string? Error);

/// <summary>Why a script would run: a migration never applied, a transform never deployed, or one whose file changed since.</summary>
internal enum PendingReason
{
    NewMigration,
    NewTransform,
    ChangedTransform,
    NewCheck,
    ChangedCheck,
    RemovedCheck,
}

/// <summary>A script <c>cdcsync migrate</c> would run: its file (relative to the scripts folder) and why.</summary>
internal sealed record PendingScript(string File, PendingReason Reason)
{
    public string Describe() => Reason switch
    {
        PendingReason.NewMigration => $"{File}: migration not yet applied",
        PendingReason.NewTransform => $"{File}: transform not yet deployed",
        PendingReason.NewCheck => $"{File}: check not yet deployed",
        PendingReason.ChangedCheck => $"{File}: check changed since it was deployed",
        PendingReason.RemovedCheck => $"{File}: check deployed but its file is gone (migrate drops it)",
        _ => $"{File}: transform changed since it was deployed",
    };
}

/// <summary>What the hub's journal says against the files: <see cref="JournalExists"/> is false on a hub never migrated.</summary>
internal sealed record DeploymentState(bool JournalExists, IReadOnlyList<PendingScript> Pending);

/// <summary>
/// Deploys the hub with DbUp: migrations once each, then transforms whose content changed, one
/// transaction per script, journaled in <c>cdc.schema_journal</c>. A failing script rolls back
/// alone and stops the run, so the journal always matches what is in the database. Then the
/// checks (<see cref="CheckDeployer"/>), all in one transaction.
/// </summary>
internal sealed class HubMigrator(string connectionString, ScriptSet scripts, Action<string>? progress = null)
{
    public const string JournalSchema = "cdc";
    public const string JournalTable = "schema_journal";

    /// <summary>Journal names of the scripts a run would execute, in order.</summary>
    public async Task<IReadOnlyList<string>> PendingAsync(CancellationToken cancellationToken)
    {
        var executed = await ExecutedAsync(cancellationToken);
        return AllScripts().Where(s => !executed.Contains(s.JournalName)).Select(s => s.JournalName).ToList();
    }

    /// <summary>
    /// The scripts a run would execute, by file and reason. A transform is journaled under its name
    /// plus a hash of its content, so a journaled name with another hash means the file changed.
    /// </summary>
    public async Task<DeploymentState> DeploymentStateAsync(CancellationToken cancellationToken)
    {
        var executed = await ExecutedAsync(cancellationToken);
        var journalExists = executed.Count > 0 || await JournalExistsAsync(cancellationToken);
        var deployedTransforms = executed.Select(n => n.Split('@')[0]).ToHashSet(StringComparer.Ordinal);
        var pending = AllScripts()
            .Where(s => !executed.Contains(s.JournalName))
            .Select(s => new PendingScript(s.RelativePath,
                !s.IsTransform ? PendingReason.NewMigration
                : deployedTransforms.Contains(s.RelativePath) ? PendingReason.ChangedTransform
                : PendingReason.NewTransform))
            .ToList();
        if (scripts.HasChecksFolder)
        {
            pending.AddRange(await CheckDeployer.PendingAsync(connectionString, CheckDefinition.ParseAll(scripts, CheckSchedule.Validate), cancellationToken));
        }

        return new DeploymentState(journalExists, pending);
    }

    public async Task<MigrationResult> MigrateAsync(CancellationToken cancellationToken)
    {
        // A bad check header stops the run before anything is applied.
        var checks = CheckDefinition.ParseAll(scripts, CheckSchedule.Validate);
        await EnsureJournalSchemaAsync(cancellationToken);
        // Without a checks/ folder the deployed checks are left as they are (not dropped, not recreated).
        var scriptsPending = scripts.HasChecksFolder && (await PendingAsync(cancellationToken)).Count > 0;
        if (scriptsPending)
        {
            await CheckDeployer.DropViewsAsync(connectionString, cancellationToken);
        }

        var byName = AllScripts().ToDictionary(s => s.JournalName);
        var log = new ProgressLog(progress);
        var upgrader = DeployChanges.To
            .PostgresqlDatabase(connectionString)
            .WithScripts(new FileScripts(AllScripts()))
            .JournalToPostgresqlTable(JournalSchema, JournalTable)
            .WithTransactionPerScript()
            // $name$ is dollar quoting in PostgreSQL, not a DbUp variable.
            .WithVariablesDisabled()
            .LogTo(log)
            .Build();

        var result = await Task.Run(upgrader.PerformUpgrade, cancellationToken);
        var applied = result.Scripts.Select(s => s.Name).ToList();
        if (result.Successful)
        {
            try
            {
                if (scripts.HasChecksFolder)
                {
                    applied.AddRange(await CheckDeployer.DeployAsync(connectionString, checks, progress, cancellationToken));
                }
            }
            catch (OperatorException e)
            {
                return new MigrationResult(false, applied, e.Message);
            }

            return new MigrationResult(true, applied, null);
        }

        if (scriptsPending)
        {
            try
            {
                // The views were dropped for the scripts; those that still compile come back.
                await CheckDeployer.DeployAsync(connectionString, checks, null, cancellationToken);
            }
            catch (Exception e) when (e is OperatorException or NpgsqlException)
            {
                // The script's error is the one to report; the checks are deployed by the next migrate.
            }
        }

        var failed = result.ErrorScript;
        string message;
        if (failed is not null && byName.TryGetValue(failed.Name, out var file) && FindPostgresException(result.Error) is { } pg)
        {
            message = await LocateAsync(file, pg, cancellationToken) + $" — fix {file.RelativePath} and run migrate again; it and later scripts were not applied.";
        }
        else
        {
            message = $"{failed?.Name ?? "migration"}: {result.Error?.Message}";
        }

        return new MigrationResult(false, applied, message);
    }

    /// <summary>
    /// DbUp runs a script statement by statement and does not say which one failed; replay them in
    /// a transaction that is rolled back to find it, so the error can name the line.
    /// </summary>
    private async Task<string> LocateAsync(SqlFile file, PostgresException original, CancellationToken cancellationToken)
    {
        try
        {
            var commands = new DbUp.Postgresql.PostgresqlConnectionManager(connectionString).SplitScriptIntoCommands(file.Contents).ToList();
            await using var conn = new NpgsqlConnection(connectionString);
            await conn.OpenAsync(cancellationToken);
            await using var tx = await conn.BeginTransactionAsync(cancellationToken);
            var searchFrom = 0;
            foreach (var command in commands)
            {
                var at = file.Contents.IndexOf(command.Trim(), searchFrom, StringComparison.Ordinal);
                try
                {
                    await conn.ExecuteAsync(new CommandDefinition(command.Trim(), transaction: tx, cancellationToken: cancellationToken));
                }
                catch (PostgresException e)
                {
                    var linesBefore = at < 0 ? 0 : file.Contents[..at].Count(c => c == '\n');
                    var lineInCommand = SqlErrorLocation.LineOf(command.Trim(), e) ?? 1;
                    var detail = e.Detail is { Length: > 0 } d ? $" ({d})" : string.Empty;
                    return $"{file.RelativePath}:{linesBefore + lineInCommand}: {e.MessageText}{detail}";
                }

                if (at >= 0)
                {
                    searchFrom = at + command.Trim().Length;
                }
            }
        }
        catch (NpgsqlException)
        {
            // Fall through to the original error without a line.
        }

        return SqlErrorLocation.Describe(file.RelativePath, file.Contents, original);
    }

    private IEnumerable<SqlFile> AllScripts() => scripts.Migrations.Concat(scripts.Transforms);

    private async Task EnsureJournalSchemaAsync(CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(cancellationToken);
        try
        {
            await conn.ExecuteAsync(new CommandDefinition($"CREATE SCHEMA IF NOT EXISTS {JournalSchema}", cancellationToken: cancellationToken));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new OperatorException(
                $"The hub user {conn.UserName} may not create schemas in database {conn.Database} ({e.MessageText}); run GRANT CREATE ON DATABASE {Hub.HubSql.Quote(conn.Database ?? string.Empty)} TO {Hub.HubSql.Quote(conn.UserName ?? string.Empty)}; or migrate as the database owner.", e);
        }
    }

    private async Task<bool> JournalExistsAsync(CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(cancellationToken);
        return await JournalExistsAsync(conn, cancellationToken);
    }

    private static async Task<bool> JournalExistsAsync(NpgsqlConnection conn, CancellationToken cancellationToken)
    {
        return await conn.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT to_regclass(@table) IS NOT NULL", new { table = $"{JournalSchema}.{JournalTable}" }, cancellationToken: cancellationToken));
    }

    private async Task<HashSet<string>> ExecutedAsync(CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(cancellationToken);
        if (!await JournalExistsAsync(conn, cancellationToken))
        {
            return [];
        }

        var names = await conn.QueryAsync<string>(new CommandDefinition($"SELECT scriptname FROM {JournalSchema}.{JournalTable}", cancellationToken: cancellationToken));
        return names.ToHashSet(StringComparer.Ordinal);
    }

    private static PostgresException? FindPostgresException(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is PostgresException pg)
            {
                return pg;
            }
        }

        return null;
    }

    private sealed class FileScripts(IEnumerable<SqlFile> files) : IScriptProvider
    {
        public IEnumerable<SqlScript> GetScripts(IConnectionManager connectionManager) =>
            files.Select(f => new SqlScript(f.JournalName, f.Contents, new SqlScriptOptions
            {
                ScriptType = ScriptType.RunOnce,
                RunGroupOrder = f.IsTransform ? 1 : 0,
            }));
    }

    private sealed class ProgressLog(Action<string>? progress) : IUpgradeLog
    {
        public void LogTrace(string format, params object[] args)
        {
        }

        public void LogDebug(string format, params object[] args)
        {
        }

        public void LogInformation(string format, params object[] args)
        {
            if (format.StartsWith("Executing Database Server script", StringComparison.Ordinal))
            {
                progress?.Invoke($"applying {args[0]}");
            }
        }

        public void LogWarning(string format, params object[] args)
        {
        }

        public void LogError(string format, params object[] args)
        {
        }

        public void LogError(Exception ex, string format, params object[] args)
        {
        }
    }
}
