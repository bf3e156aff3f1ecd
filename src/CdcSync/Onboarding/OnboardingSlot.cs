using CdcSync.Configuration;
using CdcSync.Replication;
using Microsoft.Extensions.Logging;

namespace CdcSync.Onboarding;

/// <summary>
/// An onboarding run outside the worker writes rows the systems must receive (links, merged
/// values, counterparts to create): the publication and the slot must exist before its first
/// write, or those rows would never be streamed. The worker started afterwards streams them.
/// </summary>
internal static class OnboardingSlot
{
    public static Task EnsureAsync(CdcSyncOptions options, ILogger logger, CancellationToken cancellationToken) =>
        new SlotManager(options.Hub.ConnectionString, logger).EnsureAsync(
            options.Hub.Slot, options.Hub.Publication, options.Routes.Keys.Select(k => TableName.Parse(k)).ToList(), cancellationToken);
}
