using CdcSync.Operations;
using Microsoft.AspNetCore.Mvc;

namespace CdcSync.WebConsole.Pages;

public sealed class DeadLettersModel : ConsolePage
{
    internal IReadOnlyList<DeadLetter> Rows { get; private set; } = [];

    public bool All { get; private set; }

    public async Task OnGetAsync(bool all, CancellationToken cancellationToken)
    {
        All = all;
        Rows = await Get<ConsoleReads>().DeadLettersAsync(all, cancellationToken);
    }

    /// <summary>As `cdcsync deadletters retry ID...`: all selected or none.</summary>
    public Task<IActionResult> OnPostRetryAsync(long[]? ids, CancellationToken cancellationToken) =>
        ActAsync(ConsoleRole.Operator, async () =>
        {
            var count = await Get<ConsoleActions>().RetryDeadLettersAsync(UserName, Selected(ids), cancellationToken);
            return $"{count} dead letter(s) queued for retry; the worker re-sends each record to its connector.";
        });

    /// <summary>As `cdcsync deadletters discard ID...`: all selected or none.</summary>
    public Task<IActionResult> OnPostDiscardAsync(long[]? ids, CancellationToken cancellationToken) =>
        ActAsync(ConsoleRole.Operator, async () =>
        {
            var count = await Get<ConsoleActions>().DiscardDeadLettersAsync(UserName, Selected(ids), cancellationToken);
            return $"{count} dead letter(s) discarded.";
        });

    private static long[] Selected(long[]? ids) => ids is { Length: > 0 }
        ? ids
        : throw new OperatorException("select at least one dead letter first.");
}
