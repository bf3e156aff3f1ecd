using System.Globalization;
using CdcSync.Operations;

namespace CdcSync.WebConsole.Pages;

public sealed class IndexModel : ConsolePage
{
    internal Overview Data { get; private set; } = null!;

    internal TimeSpan Window => StatusHistory.Kept;

    public async Task OnGetAsync(CancellationToken cancellationToken) => Data = await Get<ConsoleReads>().OverviewAsync(cancellationToken);

    internal IReadOnlyList<StatusSample> HistoryOf(string connector) => Data.History.Where(s => s.Connector == connector).ToList();

    public string Bytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.#", CultureInfo.InvariantCulture) + " KiB",
        < 1024L * 1024 * 1024 => (bytes / 1048576.0).ToString("0.#", CultureInfo.InvariantCulture) + " MiB",
        _ => (bytes / 1073741824.0).ToString("0.##", CultureInfo.InvariantCulture) + " GiB",
    };

    public string Stamp(DateTime at) => at.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
}
