using CdcSync.Hub;

namespace CdcSync.Schema;

/// <summary>
/// For <c>cdcsync check</c>: is the hub's SQL what is on disk? Lists each migration not yet applied
/// and each transform new or changed since it was deployed, from the same DbUp journal
/// <c>cdcsync migrate</c> reads, so the two always agree.
/// </summary>
internal static class DeploymentCheck
{
    /// <summary>The hub's deployment state, or null when the hub cannot be reached (the connectivity check reports that, once).</summary>
    public static async Task<DeploymentState?> TryGetAsync(string connectionString, ScriptSet scripts, CancellationToken cancellationToken)
    {
        try
        {
            await (await HubConnection.OpenAsync(connectionString, "Hub:ConnectionString", cancellationToken)).DisposeAsync();
        }
        catch (OperatorException)
        {
            return null;
        }

        return await new HubMigrator(connectionString, scripts).DeploymentStateAsync(cancellationToken);
    }

    /// <summary>One line per pending script; a hub never migrated gets one line for all of them (the config check already says it is not migrated).</summary>
    public static IReadOnlyList<string> Describe(DeploymentState state)
    {
        if (state.Pending.Count == 0)
        {
            return [];
        }

        if (!state.JournalExists)
        {
            var migrations = state.Pending.Count(p => p.Reason == PendingReason.NewMigration);
            var checks = state.Pending.Count(p => p.Reason == PendingReason.NewCheck);
            return [$"the hub has no migration journal (cdc.schema_journal): {migrations} migration(s), {state.Pending.Count - migrations - checks} transform(s) and {checks} check(s) not deployed"];
        }

        return state.Pending.Select(p => p.Describe()).ToList();
    }
}
