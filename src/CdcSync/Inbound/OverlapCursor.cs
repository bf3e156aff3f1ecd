using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CdcSync.Inbound;

/// <summary>
/// An inbound cursor that never misses: every scan starts <see cref="InboundOptions.OverlapWindow"/>
/// behind the newest stamp read, and what the overlap brings again is dropped by record id plus a
/// fingerprint (the modified stamp and a hash of the content), so a second edit with the same
/// second-precision stamp still counts as new. Serialized as JSON into <c>cdc.inbound_cursors</c>.
/// </summary>
internal sealed class OverlapCursor
{
    /// <summary>Newest modified stamp read so far.</summary>
    [JsonPropertyName("hwm")]
    public DateTimeOffset? HighWater { get; set; }

    /// <summary>Lower bound of the scan in progress (null between scans).</summary>
    [JsonPropertyName("scan")]
    public DateTimeOffset? ScanFrom { get; set; }

    /// <summary>Keyset position inside the scan in progress (system-specific), or a query locator.</summary>
    [JsonPropertyName("after")]
    public string? After { get; set; }

    /// <summary>Record id to "stamp-ticks|content hash" of the versions read within the overlap window.</summary>
    [JsonPropertyName("seen")]
    public Dictionary<string, string> Seen { get; set; } = new(StringComparer.Ordinal);

    public static OverlapCursor Parse(string? text, string connector)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return new OverlapCursor();
        }

        try
        {
            return JsonSerializer.Deserialize<OverlapCursor>(text) ?? new OverlapCursor();
        }
        catch (JsonException)
        {
            // Cursors written by older versions had other shapes: start over, upserts of what the hub holds write nothing.
            return new OverlapCursor();
        }
        catch (NotSupportedException e)
        {
            throw new InvalidOperationException($"The inbound cursor of connector '{connector}' cannot be read ({e.Message}); delete its row in cdc.inbound_cursors to re-read from the start.", e);
        }
    }

    public override string ToString() => JsonSerializer.Serialize(this);

    /// <summary>Where a new scan starts: the overlap window behind the newest stamp read (null: from the beginning).</summary>
    public DateTimeOffset? NewScanFrom(TimeSpan overlap) => HighWater - overlap;

    /// <summary>True when this version of the record was not read before; remembers it.</summary>
    public bool TryAccept(string id, DateTimeOffset stamp, string content)
    {
        var fingerprint = stamp.UtcTicks.ToString(CultureInfo.InvariantCulture) + "|" + Hash(content);
        if (Seen.TryGetValue(id, out var seen) && seen == fingerprint)
        {
            return false;
        }

        Seen[id] = fingerprint;
        if (HighWater is null || stamp > HighWater)
        {
            HighWater = stamp;
        }

        return true;
    }

    /// <summary>Forgets versions older than the overlap window (they can no longer be read again) and caps the rest.</summary>
    public void Prune(TimeSpan overlap, int max)
    {
        if (HighWater is not { } hwm)
        {
            return;
        }

        // Queries filter datetimes to the second (SOQL and SuiteQL literals), so a scan may bring
        // back up to one second more than the window: keep those versions too.
        var floor = (hwm - overlap - TimeSpan.FromSeconds(1)).UtcTicks;
        var entries = Seen
            .Select(kv => (kv.Key, kv.Value, Ticks: long.Parse(kv.Value.AsSpan(0, kv.Value.IndexOf('|', StringComparison.Ordinal)), CultureInfo.InvariantCulture)))
            .Where(e => e.Ticks >= floor)
            .OrderByDescending(e => e.Ticks)
            .Take(max)
            .ToList();
        Seen = entries.ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
    }

    private static string Hash(string content) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(content)).AsSpan(0, 8));
}
