using System.Globalization;
using System.Text.Json.Nodes;
using CdcSync.Conflicts;
using Microsoft.AspNetCore.Mvc;

namespace CdcSync.WebConsole.Pages;

public sealed class ConflictsModel : ConsolePage
{
    internal IReadOnlyList<ConflictRecord> Rows { get; private set; } = [];

    public bool All { get; private set; }

    public async Task OnGetAsync(bool all, CancellationToken cancellationToken)
    {
        All = all;
        Rows = await Get<ConsoleReads>().ConflictsAsync(all, cancellationToken);
    }

    /// <summary>Keeps the value one system holds, as `cdcsync conflicts resolve ID --take SYSTEM`.</summary>
    public Task<IActionResult> OnPostTakeAsync(long id, string system, CancellationToken cancellationToken) =>
        ActAsync(ConsoleRole.Reviewer, async () =>
        {
            var decided = await Get<ConsoleActions>().ResolveTakingAsync(UserName, id, system, cancellationToken);
            return $"Conflict {id} resolved: {decided.Decision}; the value goes to both systems.";
        });

    /// <summary>Keeps a value typed in, as `cdcsync conflicts resolve ID --value FIELD=VALUE` (empty means null).</summary>
    public Task<IActionResult> OnPostSetAsync(long id, string field, string? value, CancellationToken cancellationToken) =>
        ActAsync(ConsoleRole.Reviewer, async () =>
        {
            var decided = await Get<ConsoleActions>().ResolveWithValueAsync(UserName, id, field, string.IsNullOrEmpty(value) ? null : value, cancellationToken);
            return $"Conflict {id} resolved: {decided.Decision}; the value goes to both systems.";
        });

    /// <summary>A JSON value as a person reads it: strings without quotes, null as "null".</summary>
    public string Show(string? json) => json is null ? "null" : JsonNode.Parse(json) is JsonValue v && v.TryGetValue<string>(out var text) ? text : json;

    public string Stamp(DateTime? at) => at?.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture) ?? "unknown time";
}
