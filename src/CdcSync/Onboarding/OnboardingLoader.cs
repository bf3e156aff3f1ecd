using CdcSync.Inbound;

namespace CdcSync.Onboarding;

/// <summary>How far the load of one system has come.</summary>
/// <param name="Connector">The inbound connector.</param>
/// <param name="Records">Records written into the hub by this run so far.</param>
/// <param name="Done">The system has nothing more to read.</param>
internal sealed record LoadProgress(string Connector, long Records, bool Done);

/// <summary>
/// Reads one system completely into the hub: from the stored cursor (none at first) page after
/// page until the connector has nothing more, each page written with the cursor after it, so a
/// kill resumes after the last page written.
/// </summary>
internal sealed class OnboardingLoader
{
    public async Task<long> LoadAsync(IInboundConnector connector, OnboardingHub hub, IProgress<LoadProgress>? progress, CancellationToken cancellationToken)
    {
        var cursor = await hub.ReadCursorAsync(connector.Name, cancellationToken);
        long records = 0;
        InboundPage page;
        do
        {
            page = await connector.ReadChangesAsync(cursor, cancellationToken);
            await hub.ApplyPageAsync(connector.Name, page, cancellationToken);
            records += page.Records.Count;
            cursor = page.NextCursor ?? cursor;
            progress?.Report(new LoadProgress(connector.Name, records, !page.HasMore));
        }
        while (page.HasMore);

        return records;
    }
}
