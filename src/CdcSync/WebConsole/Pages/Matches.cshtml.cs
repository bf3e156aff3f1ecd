using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Mvc;

namespace CdcSync.WebConsole.Pages;

public sealed class MatchesModel : ConsolePage
{
    internal IReadOnlyList<JsonObject> Reviews { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken) => Reviews = await Get<ConsoleReads>().MatchReviewsAsync(cancellationToken);

    public Task<IActionResult> OnPostAcceptAsync(long id, Guid? with, CancellationToken cancellationToken) =>
        ActAsync(ConsoleRole.Reviewer, async () =>
        {
            await Get<ConsoleActions>().AcceptMatchAsync(UserName, id, with, cancellationToken);
            return $"Match {id} accepted: the two records are linked and sync from now on.";
        });

    public Task<IActionResult> OnPostRejectAsync(long id, CancellationToken cancellationToken) =>
        ActAsync(ConsoleRole.Reviewer, async () =>
        {
            await Get<ConsoleActions>().RejectMatchAsync(UserName, id, cancellationToken);
            return $"Match {id} rejected: the record is created as new on the other side.";
        });
}
