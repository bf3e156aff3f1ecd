using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Mvc;

namespace CdcSync.WebConsole.Pages;

/// <summary>Data-quality checks: each deployed check, its last run and that run's sample rows (masked); operators run one now.</summary>
public sealed class ChecksModel : ConsolePage
{
    internal ChecksView Data { get; private set; } = new([], new Dictionary<string, string>());

    public async Task OnGetAsync(CancellationToken cancellationToken) => Data = await Get<ConsoleReads>().ChecksAsync(cancellationToken);

    /// <summary>As `cdcsync checks run --name NAME`.</summary>
    public Task<IActionResult> OnPostRunAsync(string? name, CancellationToken cancellationToken) =>
        ActAsync(ConsoleRole.Operator, async () =>
        {
            var result = await Get<ConsoleActions>().RunCheckAsync(UserName, name ?? "", cancellationToken);
            return result.Error is { } error
                ? $"Check {result.Name} could not run: {error}"
                : $"Check {result.Name} ran: {result.FailingRows} failing row(s).";
        });

    /// <summary>The sample of a check's last run as a table: the columns in first-seen order and each row's values as text.</summary>
    internal (IReadOnlyList<string> Columns, IReadOnlyList<IReadOnlyList<string>> Rows) Sample(string check)
    {
        if (!Data.Samples.TryGetValue(check, out var json))
        {
            return ([], []);
        }

        using var doc = JsonDocument.Parse(json);
        var columns = new List<string>();
        foreach (var row in doc.RootElement.EnumerateArray().Where(r => r.ValueKind == JsonValueKind.Object))
        {
            columns.AddRange(row.EnumerateObject().Select(p => p.Name).Where(n => !columns.Contains(n)).ToList());
        }

        var rows = doc.RootElement.EnumerateArray()
            .Select(r => (IReadOnlyList<string>)columns.Select(c => r.ValueKind == JsonValueKind.Object && r.TryGetProperty(c, out var v) ? Text(v) : "").ToList())
            .ToList();
        return (columns, rows);
    }

    private static string Text(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Null => "∅",
        JsonValueKind.String => value.GetString() ?? "",
        _ => value.GetRawText(),
    };

    public static string Stamp(DateTime? at) => at is { } t ? t.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "never";
}
