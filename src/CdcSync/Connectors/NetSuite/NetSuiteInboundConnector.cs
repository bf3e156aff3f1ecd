using System.Globalization;
using System.Text.Json.Nodes;
using CdcSync.Connectors.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CdcSync.Connectors.NetSuite;

/// <summary>
/// Reads changed customers with SuiteQL on <c>lastmodifieddate</c>. NetSuite stamps modifications
/// to the second, so the cursor is the last (lastmodifieddate, id) read and each page asks for what
/// sorts after it (<c>limit</c> = page size, <c>offset</c> 0): paging a moving result set by offset
/// would skip a row whenever one before the offset is modified mid-scan.
/// Records carrying an external id are keyed by it, so a record this connector just created is
/// matched to its hub row even before the internal id has been written back.
/// </summary>
public sealed class NetSuiteInboundConnector : IInboundConnector, IDisposable
{
    private const string SuiteQlPath = "services/rest/query/v1/suiteql";
    private const string IsoFormat = "YYYY-MM-DD\"T\"HH24:MI:SS";
    private static readonly DateTime Epoch = new(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private static readonly string[] TextColumns = ["externalid", "entityid", "companyname", "firstname", "lastname", "email", "phone", "url", "subsidiary"];

    private readonly NetSuiteOptions _options;
    private readonly NetSuiteClient _client;
    private readonly ILogger _logger;

    public NetSuiteInboundConnector(
        string name,
        NetSuiteOptions options,
        ILogger<NetSuiteInboundConnector>? logger = null,
        TimeProvider? timeProvider = null,
        HttpMessageHandler? handler = null)
    {
        Name = name;
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _client = new NetSuiteClient(name, options, handler, timeProvider ?? TimeProvider.System, _logger);
    }

    public string Name { get; }

    public HttpResilience Resilience => _client.Resilience;

    public async Task<InboundPage> ReadChangesAsync(string? cursor, CancellationToken cancellationToken)
    {
        var (since, lastId) = ParseCursor(cursor);
        var sinceText = since.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        var query =
            "SELECT id, externalid, entityid, companyname, isperson, firstname, lastname, email, phone, url, subsidiary, isinactive, " +
            $"TO_CHAR(datecreated, '{IsoFormat}') AS datecreated_iso, TO_CHAR(lastmodifieddate, '{IsoFormat}') AS lastmodified_iso " +
            $"FROM customer WHERE lastmodifieddate > TO_TIMESTAMP('{sinceText}', 'YYYY-MM-DD HH24:MI:SS') " +
            $"OR (lastmodifieddate = TO_TIMESTAMP('{sinceText}', 'YYYY-MM-DD HH24:MI:SS') AND id > {lastId.ToString(CultureInfo.InvariantCulture)}) " +
            "ORDER BY lastmodifieddate, id";

        var response = await _client.SendAsync(
            HttpMethod.Post,
            $"{SuiteQlPath}?limit={_options.PageSize.ToString(CultureInfo.InvariantCulture)}&offset=0",
            new JsonObject { ["q"] = query },
            transient: true,
            cancellationToken);
        NetSuiteClient.EnsureSuccess(response, "SuiteQL query on customer");
        var page = JsonNode.Parse(response.Body) as JsonObject
            ?? throw new InvalidOperationException("NetSuite answered a SuiteQL query with something other than a JSON object.");

        var records = new List<InboundRecord>();
        var next = (since, lastId);
        foreach (var item in page["items"]?.AsArray() ?? [])
        {
            if (item is not JsonObject row)
            {
                continue;
            }

            var id = row["id"]!.GetValue<string>();
            var modified = ParseIso(row["lastmodified_iso"]?.GetValue<string>());
            var values = new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["internalid"] = id,
                ["isperson"] = row["isperson"]?.GetValue<string>() == "T",
                ["isinactive"] = row["isinactive"]?.GetValue<string>() == "T",
                ["datecreated"] = ParseIso(row["datecreated_iso"]?.GetValue<string>()),
                ["lastmodifieddate"] = modified,
                ["cdc_source_modified_at"] = modified,
            };

            // SuiteQL leaves empty fields out of an item; an absent field is a cleared one.
            foreach (var column in TextColumns)
            {
                values[column] = row[column]?.GetValue<string>();
            }

            var key = values["externalid"] is null ? "internalid" : "externalid";
            records.Add(new InboundRecord(_options.Table, key, values, Deleted: false));
            if (modified is { } m)
            {
                next = (m.UtcDateTime, long.Parse(id, CultureInfo.InvariantCulture));
            }
        }

        var hasMore = page["hasMore"]?.GetValue<bool>() ?? false;
        _logger.LogDebug("{Connector}: read {Count} customers modified since {Since}", Name, records.Count, sinceText);
        return new InboundPage(records, FormatCursor(next.Item1, next.Item2), hasMore);
    }

    public void Dispose() => _client.Dispose();

    private static (DateTime Since, long LastId) ParseCursor(string? cursor)
    {
        if (string.IsNullOrEmpty(cursor))
        {
            return (Epoch, 0);
        }

        var bar = cursor.IndexOf('|', StringComparison.Ordinal);
        if (bar < 0
            || !DateTime.TryParseExact(cursor[..bar], "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var since)
            || !long.TryParse(cursor[(bar + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            throw new FormatException($"NetSuite inbound cursor '{cursor}' is not '<lastmodifieddate yyyy-MM-ddTHH:mm:ssZ>|<internal id>'; reset it with cdcsync resync.");
        }

        return (since, id);
    }

    private static string FormatCursor(DateTime since, long id) =>
        since.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) + "|" + id.ToString(CultureInfo.InvariantCulture);

    // The account's time zone is UTC in the sandbox; a real account reports its own, set the
    // integration user's time zone preference to GMT so these timestamps are UTC.
    private static DateTimeOffset? ParseIso(string? text) =>
        text is null ? null : DateTimeOffset.ParseExact(text, "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
}
