using System.Text;
using System.Text.Json.Nodes;

namespace CdcSync.WebConsole.Pages;

public sealed class RecordModel : ConsolePage
{
    public string? Id { get; private set; }

    internal RecordView? View { get; private set; }

    public async Task OnGetAsync(string? id, CancellationToken cancellationToken)
    {
        Id = id?.Trim();
        if (!string.IsNullOrEmpty(Id))
        {
            View = await Get<ConsoleReads>().RecordAsync(Id, cancellationToken);
        }
    }

    /// <summary>The current row of a hub table as field/value pairs (masked by the hub), or null when there is none.</summary>
    public IReadOnlyList<(string Field, string Value)>? Fields(string obj) =>
        View?.CurrentRows.GetValueOrDefault(obj) is { } json && JsonNode.Parse(json) is JsonObject row
            ? row.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Value is JsonValue v && v.TryGetValue<string>(out var s) ? s : p.Value?.ToJsonString() ?? "null")).ToList()
            : null;

    /// <summary>An audit row's changes, one "field: before → after" per line.</summary>
    public string Changes(string? json)
    {
        if (json is null || JsonNode.Parse(json) is not JsonObject changes)
        {
            return "";
        }

        var text = new StringBuilder();
        foreach (var (field, change) in changes)
        {
            text.Append(field).Append(": ");
            text.AppendLine(change is JsonObject c && c.ContainsKey("after")
                ? $"{c["before"]?.ToJsonString() ?? "null"} → {c["after"]?.ToJsonString() ?? "null"}"
                : change?.ToJsonString() ?? "null");
        }

        return text.ToString().TrimEnd();
    }
}
