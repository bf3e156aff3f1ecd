using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using CdcSync.Sandboxes.Salesforce.PubSub;
using CdcSync.Sandboxes.Steering;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CdcSync.Sandboxes.Salesforce;

/// <summary>
/// A local stand-in for the slice of the Salesforce REST API CdcSync uses, served by Kestrel on
/// 127.0.0.1: the OAuth 2.0 token endpoint (client credentials, refresh token and JWT bearer grants), query and
/// queryAll with SOQL and <c>nextRecordsUrl</c> paging, sObject rows, and sObject Collections
/// (create, update, upsert by external id, delete), Bulk API 2.0 query jobs (<see cref="SalesforceBulkQueries"/>),
/// with Salesforce's JSON shapes and error codes.
/// Data lives in memory. Credentials accepted by default: client id
/// <see cref="SalesforceSandboxOptions.DefaultClientId"/>, client secret
/// <see cref="SalesforceSandboxOptions.DefaultClientSecret"/>, refresh token
/// <see cref="SalesforceSandboxOptions.DefaultRefreshToken"/>.
/// </summary>
public sealed class SalesforceSandbox : IAsyncDisposable
{
    private const string JsonType = "application/json;charset=UTF-8";
    private const int MaxCollectionSize = 200;
    private const int MaxCompositeSubrequests = 25;
    private const string OrgId = "00D5g00000CdcSyncEAA";

    // Salesforce writes "+0000" and non-ASCII text as is, not as \u escapes.
    private static readonly System.Text.Json.JsonSerializerOptions WireJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly WebApplication _app;
    private readonly SalesforceStore _store;
    private readonly SalesforceBulkQueries _bulk;
    private readonly ConcurrentDictionary<string, (DateTimeOffset Expires, int Generation)> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, QueryCursor> _cursors = new(StringComparer.Ordinal);
    private readonly Random _random;

    // The API call being handled, as a change event's changeOrigin names it ("" outside API calls: a user's edit).
    private readonly AsyncLocal<string?> _changeOrigin = new();
    private long _locatorSequence = 0x100;
    private bool _ownsCertificateFile;

    private SalesforceSandbox(WebApplication app, SalesforceSandboxOptions options, ChangeEventBus bus, X509Certificate2 certificate)
    {
        _app = app;
        Options = options;
        _store = new SalesforceStore(options);
        _bulk = new SalesforceBulkQueries(options, _store);
        _random = new Random(options.RandomSeed);
        ChangeEvents = bus;
        PubSubCertificate = certificate;
    }

    /// <summary>The instance URL, e.g. <c>http://127.0.0.1:50123/</c>; the token endpoint is <c>services/oauth2/token</c> under it.</summary>
    public Uri BaseUrl { get; private set; } = null!;

    public SalesforceSandboxOptions Options { get; }

    /// <summary>The Pub/Sub API endpoint as gRPC clients take it: <c>127.0.0.1:port</c> (TLS with <see cref="PubSubCertificate"/>).</summary>
    public string PubSubEndpoint { get; private set; } = null!;

    /// <summary>The Pub/Sub endpoint's self-signed certificate, made at start.</summary>
    public X509Certificate2 PubSubCertificate { get; }

    /// <summary>The PEM file of <see cref="PubSubCertificate"/>, the CA file a client trusts.</summary>
    public string PubSubCertificatePath { get; private set; } = null!;

    /// <summary>Change Data Capture: the change events on the bus and the Pub/Sub knobs (also at <c>POST /_sandbox/pubsub</c>).</summary>
    internal ChangeEventBus ChangeEvents { get; }

    /// <summary>Successful API writes per record and requests per endpoint (also at <c>GET /_sandbox/stats</c>).</summary>
    public SandboxStats Stats { get; } = new();

    /// <summary>What the sandbox does to values it receives over the API (also the <c>normalize</c> fault knob).</summary>
    public ValueNormalizer Normalizer { get; } = new();

    /// <summary>
    /// For tests that fix an order of events: run before an API request (method, path and query) is
    /// handled, e.g. a user's edit that lands right before a given write.
    /// </summary>
    public Func<string, string, Task>? BeforeRequest { get; set; }

    /// <summary>Starts the sandbox and returns once it accepts connections.</summary>
    public static async Task<SalesforceSandbox> StartAsync(SalesforceSandboxOptions options, CancellationToken cancellationToken) =>
        await StartAsync(options, null, cancellationToken);

    /// <summary>Starts the sandbox, logging requests to <paramref name="loggerFactory"/> when given.</summary>
    public static async Task<SalesforceSandbox> StartAsync(SalesforceSandboxOptions options, ILoggerFactory? loggerFactory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        if (loggerFactory is not null)
        {
            builder.Services.AddSingleton(loggerFactory);
        }

        var certificate = Salesforce.PubSub.PubSubCertificate.Create();
        builder.WebHost.UseKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, options.Port);
            // The Pub/Sub API is gRPC: HTTP/2 over TLS on a port of its own, as api.pubsub.salesforce.com:7443.
            k.Listen(IPAddress.Loopback, options.PubSubPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                listen.UseHttps(certificate);
            });
        });
        var bus = new ChangeEventBus(options.TimeProvider, SalesforceStore.DefaultOwnerId, options.ChangeDataCaptureObjects);
        bus.Log.Retention = options.ChangeEventRetention;
        builder.Services.AddGrpc();
        SalesforceSandbox? created = null;
        builder.Services.AddSingleton(_ => new PubSubService(bus, new PubSubAuthenticator(t => created!.IsValidToken(t), () => created!.BaseUrl, OrgId), options));
        var app = builder.Build();
        var sandbox = created = new SalesforceSandbox(app, options, bus, certificate);
        sandbox.Map(app);
        await app.StartAsync(cancellationToken);
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        var address = addresses.First(a => a.StartsWith("http://", StringComparison.Ordinal));
        sandbox.BaseUrl = new Uri(address.EndsWith('/') ? address : address + "/");
        var pubSub = new Uri(addresses.First(a => a.StartsWith("https://", StringComparison.Ordinal)));
        sandbox.PubSubEndpoint = $"{pubSub.Host}:{pubSub.Port}";
        sandbox._ownsCertificateFile = options.PubSubCertificatePath is null;
        sandbox.PubSubCertificatePath = options.PubSubCertificatePath
            ?? Path.Combine(Path.GetTempPath(), $"cdcsync-salesforce-pubsub-{pubSub.Port}-{Guid.NewGuid():N}.pem");
        Salesforce.PubSub.PubSubCertificate.WritePem(certificate, sandbox.PubSubCertificatePath);
        return sandbox;
    }

    public async ValueTask DisposeAsync()
    {
        ChangeEvents.DropStreams();
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
        if (_ownsCertificateFile)
        {
            File.Delete(PubSubCertificatePath);
        }

        PubSubCertificate.Dispose();
    }

    /// <summary>Publishes a gap event for records now, as when Salesforce cannot build a change's event (GAP_CREATE, GAP_UPDATE, GAP_DELETE, GAP_UNDELETE).</summary>
    public void EmitGapEvent(IReadOnlyList<string> recordIds, string changeType = "GAP_UPDATE")
    {
        var schema = SObjectSchema.ForId(recordIds[0]) ?? throw new ArgumentException($"'{recordIds[0]}' is not an Id of an object the sandbox holds.", nameof(recordIds));
        ChangeEvents.PublishGap(schema.Name, recordIds, changeType);
    }

    /// <summary>Publishes a GAP_OVERFLOW event for an object now.</summary>
    public void EmitOverflowEvent(string sObject) => ChangeEvents.PublishOverflow(Schema(sObject).Name);

    /// <summary>The next <paramref name="count"/> committed changes publish gap events instead of their change events.</summary>
    public void GapNextChanges(int count) => ChangeEvents.GapNext(count);

    /// <summary>Ends every open Subscribe stream with UNAVAILABLE.</summary>
    public void DropPubSubStreams() => ChangeEvents.DropStreams();

    /// <summary>How long change events stay replayable (a replay id older than that is refused).</summary>
    public TimeSpan ChangeEventRetention
    {
        get => ChangeEvents.Log.Retention;
        set => ChangeEvents.Log.Retention = value;
    }

    /// <summary>Change events published so far (the newest replay id).</summary>
    public long ChangeEventCount => ChangeEvents.Log.LastReplayId;

    /// <summary>Creates a record directly (as a user would in the UI); returns its Id. Throws when Salesforce would reject it.</summary>
    public string Insert(string sObject, JsonObject fields)
    {
        var schema = Schema(sObject);
        var result = Committed(string.Empty, () => _store.Create(schema, fields));
        return result.Success ? result.Id! : throw new InvalidOperationException($"{result.Errors[0].StatusCode}: {result.Errors[0].Message}");
    }

    /// <summary>Updates a record directly. Throws when Salesforce would reject the update.</summary>
    public void Update(string id, JsonObject fields)
    {
        var result = Committed(string.Empty, () => _store.Update(null, id, fields));
        if (!result.Success)
        {
            throw new InvalidOperationException($"{result.Errors[0].StatusCode}: {result.Errors[0].Message}");
        }
    }

    /// <summary>
    /// Updates several records in one transaction (as a user's mass edit, or a collection update with
    /// allOrNone, makes it): all or none, their change events published together in this order with
    /// one transactionKey. Returns the replay ids of those events (none for objects not selected for
    /// change notifications). Throws when Salesforce would reject one of the updates.
    /// </summary>
    public IReadOnlyList<long> UpdateTogether(IReadOnlyList<KeyValuePair<string, JsonObject>> edits)
    {
        lock (_store.Sync)
        {
            // Every commit publishes under the store's lock: the replay ids between these two are this transaction's.
            var before = ChangeEvents.Log.LastReplayId;
            SaveResult? failed = Committed(string.Empty, () =>
            {
                _store.Begin();
                foreach (var (id, fields) in edits)
                {
                    if (_store.Update(null, id, fields) is { Success: false } result)
                    {
                        _store.Rollback();
                        return result;
                    }
                }

                _store.Complete();
                return null;
            });
            if (failed is not null)
            {
                throw new InvalidOperationException($"{failed.Errors[0].StatusCode}: {failed.Errors[0].Message}");
            }

            var after = ChangeEvents.Log.LastReplayId;
            return [.. Enumerable.Range(0, (int)(after - before)).Select(i => before + 1 + i)];
        }
    }

    /// <summary>Subscribe calls the Pub/Sub API took (the newest 100): where each started and what it delivered.</summary>
    public IReadOnlyList<PubSubSubscription> PubSubSubscriptions => ChangeEvents.Subscriptions;

    /// <summary>Deletes a record directly (it stays visible to queryAll with IsDeleted = true).</summary>
    public void Delete(string id)
    {
        var result = Committed(string.Empty, () => _store.Delete(id));
        if (!result.Success)
        {
            throw new InvalidOperationException($"{result.Errors[0].StatusCode}: {result.Errors[0].Message}");
        }
    }

    /// <summary>A copy of a record's fields, deleted or not; null when the id is unknown.</summary>
    public JsonObject? Get(string id)
    {
        lock (_store.Sync)
        {
            var normalized = SalesforceIds.Normalize(id);
            return normalized is null ? null : (JsonObject?)_store.Get(normalized)?.Fields.DeepClone();
        }
    }

    /// <summary>Copies of all records of a type, in creation order.</summary>
    public IReadOnlyList<JsonObject> Records(string sObject, bool includeDeleted = false)
    {
        var schema = Schema(sObject);
        lock (_store.Sync)
        {
            return [.. _store.All(schema).Where(r => includeDeleted || !r.IsDeleted).OrderBy(r => r.Id, StringComparer.Ordinal).Select(r => (JsonObject)r.Fields.DeepClone())];
        }
    }

    private static SObjectSchema Schema(string sObject) =>
        SObjectSchema.All.GetValueOrDefault(sObject) ?? throw new ArgumentException($"The sandbox serves {string.Join(", ", SObjectSchema.All.Keys)}, not '{sObject}'.", nameof(sObject));

    private void Map(WebApplication app)
    {
        app.Use(FaultsAndAuthAsync);

        app.MapPost("/services/oauth2/token", TokenAsync);
        app.MapGet("/services/data", () => Json(new JsonArray(new JsonObject
        {
            ["label"] = "Summer '24",
            ["url"] = $"/services/data/v{SalesforceSandboxOptions.LatestApiVersion}",
            ["version"] = SalesforceSandboxOptions.LatestApiVersion,
        })));

        var api = app.MapGroup("/services/data/v{version}");
        api.AddEndpointFilter(async (ctx, next) =>
        {
            var version = ctx.HttpContext.Request.RouteValues["version"] as string;
            return decimal.TryParse(version, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out var v) && v >= 46.0m && v <= 61.0m && version!.Contains('.', StringComparison.Ordinal)
                ? await next(ctx)
                : Error(404, "NOT_FOUND", "The requested resource does not exist");
        });
        api.MapGet("/limits", () => Json(new JsonObject
        {
            ["DailyApiRequests"] = new JsonObject { ["Max"] = Options.RequestLimit, ["Remaining"] = Math.Max(0, Options.RequestLimit - Options.ApiRequestCount) },
            ["DailyBulkV2QueryJobs"] = new JsonObject { ["Max"] = SalesforceBulkQueries.DailyJobs, ["Remaining"] = Math.Max(0, SalesforceBulkQueries.DailyJobs - _bulk.Created) },
        }));
        api.MapGet("/query", (string version, HttpRequest request) => Query(version, request, includeDeleted: false));
        api.MapGet("/queryAll", (string version, HttpRequest request) => Query(version, request, includeDeleted: true));
        api.MapGet("/query/{locator}", (string version, string locator) => MoreResults(version, locator));
        api.MapGet("/queryAll/{locator}", (string version, string locator) => MoreResults(version, locator));
        api.MapGet("/sobjects", (string version) => DescribeGlobal(version));
        api.MapGet("/sobjects/{type}", (string version, string type) => BasicInfo(version, type));
        api.MapGet("/sobjects/{type}/describe", (string version, string type) => Describe(version, type));
        api.MapGet("/sobjects/{type}/updated", (string type, HttpRequest request) => Replication(type, request, deleted: false));
        api.MapGet("/sobjects/{type}/deleted", (string type, HttpRequest request) => Replication(type, request, deleted: true));
        api.MapGet("/sobjects/{type}/{id}", (string version, string type, string id) => Retrieve(version, type, id));
        api.MapPost("/sobjects/{type}", CreateOneAsync);
        api.MapPatch("/sobjects/{type}/{id}", UpdateOneAsync);
        api.MapPatch("/sobjects/{type}/{field}/{value}", UpsertOneAsync);
        api.MapDelete("/sobjects/{type}/{id}", (string type, string id) => DeleteOne(type, id));
        api.MapPost("/composite", (HttpRequest request) => CompositeAsync(request));
        api.MapPost("/composite/sobjects", (HttpRequest request) => CollectionAsync(request, null, null, request.HttpContext.RequestAborted));
        api.MapPatch("/composite/sobjects", (HttpRequest request) => CollectionAsync(request, null, "Id", request.HttpContext.RequestAborted));
        api.MapPatch("/composite/sobjects/{type}/{field}", (HttpRequest request, string type, string field) => CollectionAsync(request, type, field, request.HttpContext.RequestAborted));
        api.MapDelete("/composite/sobjects", DeleteCollection);
        _bulk.Map(api);

        api.MapGet("/tooling/query", (string version, HttpRequest request) => ToolingQuery(version, request));
        app.MapGrpcService<PubSubService>();

        app.MapGet("/_sandbox/stats", StatsResult);
        app.MapPost("/_sandbox/pubsub", SteerPubSubAsync);
        app.MapPost("/_sandbox/reset", ResetAsync);
        app.MapPost("/_sandbox/faults", SetFaultsAsync);
        app.MapPost("/_sandbox/silent-edit", SilentEditAsync);
    }

    private async Task FaultsAndAuthAsync(HttpContext context, Func<Task> next)
    {
        var path = context.Request.Path;
        if (!path.StartsWithSegments("/services", StringComparison.Ordinal))
        {
            await next();
            return;
        }

        if (BeforeRequest is { } before)
        {
            await before(context.Request.Method, path + context.Request.QueryString);
        }

        var isToken = path.StartsWithSegments("/services/oauth2", StringComparison.Ordinal);
        var count = Options.CountRequest(isToken);
        Stats.CountRequest(context);
        if (Options.InOutage)
        {
            Options.CountFault();
            await WriteAsync(context, Error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable. Please try again later."));
            return;
        }

        TimeSpan latency;
        try
        {
            latency = Options.Latency + RequestLatency.Of(context.Request);
        }
        catch (SteeringException e)
        {
            await WriteAsync(context, Error(400, "INVALID_HEADER", e.Message));
            return;
        }

        if (latency > TimeSpan.Zero)
        {
            await Task.Delay(latency, Options.TimeProvider, context.RequestAborted);
        }

        if (isToken || path.Value is "/services/data" or "/services/data/")
        {
            await next();
            return;
        }

        if (!Authenticated(context.Request))
        {
            await WriteAsync(context, Error(401, "INVALID_SESSION_ID", "Session expired or invalid"));
            return;
        }

        _changeOrigin.Value = ChangeOrigin(context.Request);

        if (Options.TryTakeBurst(out var kind, out var retryAfter))
        {
            Options.CountFault();
            if (retryAfter is { } delay)
            {
                context.Response.Headers.RetryAfter = ((int)Math.Ceiling(delay.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            await WriteAsync(context, kind switch
            {
                SalesforceFaultKind.ServiceUnavailable => Error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable. Please try again later."),
                SalesforceFaultKind.TooManyRequests => Error(429, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
                _ => Error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
            });
            return;
        }

        bool fail;
        lock (_random)
        {
            fail = Options.ErrorRate > 0 && _random.NextDouble() < Options.ErrorRate;
        }

        if (fail)
        {
            Options.CountFault();
            await WriteAsync(context, Error(500, "UNKNOWN_EXCEPTION", $"An unexpected error occurred. Please include this ErrorId if you contact support: {Guid.NewGuid():N} (-1)"));
            return;
        }

        if (count > Options.RequestLimit)
        {
            await WriteAsync(context, Error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."));
            return;
        }

        context.Response.Headers["Sforce-Limit-Info"] = $"api-usage={count}/{Options.RequestLimit}";
        await next();
    }

    private bool Authenticated(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        string? token = null;
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            token = header[7..].Trim();
        }
        else if (header.StartsWith("OAuth ", StringComparison.OrdinalIgnoreCase))
        {
            token = header[6..].Trim();
        }

        return token is not null && IsValidToken(token);
    }

    /// <summary>An access token the sandbox issued, not expired nor revoked (REST calls and the Pub/Sub API alike).</summary>
    private bool IsValidToken(string token) =>
        _tokens.TryGetValue(token, out var entry)
        && entry.Generation == Options.TokenGeneration
        && Options.TimeProvider.GetUtcNow() < entry.Expires;

    private async Task<IResult> TokenAsync(HttpRequest request)
    {
        if (!request.HasFormContentType)
        {
            return OAuthError("invalid_request", "invalid content type");
        }

        var form = await request.ReadFormAsync(request.HttpContext.RequestAborted);
        string? clientId = form["client_id"];
        string? clientSecret = form["client_secret"];
        var basic = request.Headers.Authorization.ToString();
        if (basic.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                var pair = Encoding.UTF8.GetString(Convert.FromBase64String(basic[6..].Trim()));
                var colon = pair.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0)
                {
                    clientId = Uri.UnescapeDataString(pair[..colon]);
                    clientSecret = Uri.UnescapeDataString(pair[(colon + 1)..]);
                }
            }
            catch (FormatException)
            {
                return OAuthError("invalid_client", "invalid client credentials", 401);
            }
        }

        var grantType = form["grant_type"].ToString();
        if (grantType == JwtBearerGrant.GrantType)
        {
            // The assertion names the connected app (iss) and the user (sub); no client id or secret is sent.
            var (username, error, description) = new JwtBearerGrant(Options).Verify(form["assertion"], BaseUrl);
            return username is null ? OAuthError(error!, description!) : IssueToken("api");
        }

        if (grantType is not ("client_credentials" or "refresh_token"))
        {
            return OAuthError("unsupported_grant_type", "grant type not supported");
        }

        if (clientId != Options.ClientId)
        {
            return OAuthError("invalid_client_id", "client identifier invalid");
        }

        if (grantType == "refresh_token")
        {
            if (form["refresh_token"] != Options.RefreshToken)
            {
                return OAuthError("invalid_grant", "expired access/refresh token");
            }

            // A connected app may skip the secret on refresh; a wrong one is still rejected.
            if (!string.IsNullOrEmpty(clientSecret) && clientSecret != Options.ClientSecret)
            {
                return OAuthError("invalid_client", "invalid client credentials");
            }
        }
        else if (clientSecret != Options.ClientSecret)
        {
            return OAuthError("invalid_client", "invalid client credentials");
        }

        return IssueToken("api refresh_token");
    }

    private IResult IssueToken(string scope)
    {
        var now = Options.TimeProvider.GetUtcNow();
        var token = $"{OrgId[..15]}!{Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(48)).Replace('+', '.').Replace('/', '_').TrimEnd('=')}";
        _tokens[token] = (now + Options.AccessTokenLifetime, Options.TokenGeneration);
        var idUrl = new Uri(BaseUrl, $"id/{OrgId}/{SalesforceStore.DefaultOwnerId}").ToString();
        var issuedAt = now.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var signature = Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(Encoding.UTF8.GetBytes(Options.ClientSecret), Encoding.UTF8.GetBytes(idUrl + issuedAt)));
        return Json(new JsonObject
        {
            ["access_token"] = token,
            ["signature"] = signature,
            ["scope"] = scope,
            ["instance_url"] = BaseUrl.ToString().TrimEnd('/'),
            ["id"] = idUrl,
            ["token_type"] = "Bearer",
            ["issued_at"] = issuedAt,
        });
    }

    private IResult Query(string version, HttpRequest request, bool includeDeleted)
    {
        var q = request.Query["q"].ToString();
        if (string.IsNullOrWhiteSpace(q))
        {
            return Error(400, "MALFORMED_QUERY", "A query string must be provided.");
        }

        var batchSize = Options.DefaultQueryBatchSize;
        var queryOptions = request.Headers["Sforce-Query-Options"].ToString();
        foreach (var part in queryOptions.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (part.StartsWith("batchSize=", StringComparison.OrdinalIgnoreCase)
                && int.TryParse(part["batchSize=".Length..], System.Globalization.CultureInfo.InvariantCulture, out var requested))
            {
                // Salesforce treats batchSize as a hint between 200 and 2000.
                batchSize = Math.Clamp(requested, 200, 2000);
            }
        }

        try
        {
            List<JsonObject> rows;
            lock (_store.Sync)
            {
                var query = SoqlQuery.Parse(q, Options.TimeProvider.GetUtcNow());
                var matched = query.Run(_store.All(query.Schema), _store, includeDeleted);
                if (query.IsCountOnly)
                {
                    // COUNT() answers with totalSize alone.
                    return Json(new JsonObject { ["totalSize"] = matched.Count, ["done"] = true, ["records"] = new JsonArray() });
                }

                rows = query.IsAggregate
                    ? [query.Aggregate(matched, _store)]
                    : [.. matched.Select(r => query.Project(r, _store, version, includeDeleted))];
            }

            return Page(version, new QueryCursor(rows, batchSize), 0, null);
        }
        catch (SandboxApiException e)
        {
            return Error(e.Status, e.ErrorCode, e.Message);
        }
    }

    private IResult MoreResults(string version, string locator)
    {
        var dash = locator.LastIndexOf('-');
        if (dash <= 0
            || !int.TryParse(locator[(dash + 1)..], System.Globalization.CultureInfo.InvariantCulture, out var offset)
            || !_cursors.TryGetValue(locator[..dash], out var cursor)
            || offset < 0 || offset > cursor.Rows.Count)
        {
            return Error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
        }

        return Page(version, cursor, offset, locator[..dash]);
    }

    private IResult Page(string version, QueryCursor cursor, int offset, string? locatorId)
    {
        var end = Math.Min(cursor.Rows.Count, offset + cursor.BatchSize);
        var json = new JsonObject { ["totalSize"] = cursor.Rows.Count, ["done"] = end >= cursor.Rows.Count };
        if (end < cursor.Rows.Count)
        {
            if (locatorId is null)
            {
                locatorId = SalesforceIds.Create("01g", Interlocked.Increment(ref _locatorSequence));
                _cursors[locatorId] = cursor;
            }

            json["nextRecordsUrl"] = $"/services/data/v{version}/query/{locatorId}-{end}";
        }
        else if (locatorId is not null)
        {
            _cursors.TryRemove(locatorId, out _);
        }

        json["records"] = new JsonArray([.. cursor.Rows.Skip(offset).Take(end - offset).Select(r => (JsonNode)r.DeepClone())]);
        return Json(json);
    }

    private IResult Retrieve(string version, string type, string id)
    {
        var schema = SObjectSchema.All.GetValueOrDefault(type);
        if (schema is null)
        {
            return Error(404, "NOT_FOUND", "The requested resource does not exist");
        }

        lock (_store.Sync)
        {
            var normalized = SalesforceIds.Normalize(id);
            var record = normalized is null ? null : _store.Get(normalized);
            if (record is null || record.IsDeleted || record.Schema != schema)
            {
                return Error(404, "NOT_FOUND", "The requested resource does not exist");
            }

            var json = new JsonObject { ["attributes"] = new JsonObject { ["type"] = schema.Name, ["url"] = $"/services/data/v{version}/sobjects/{schema.Name}/{record.Id}" } };
            foreach (var field in schema.Fields)
            {
                json[field.Name] = record.Fields[field.Name]?.DeepClone();
            }

            return Json(json);
        }
    }

    private async Task<IResult> CreateOneAsync(HttpRequest request, string type)
    {
        var schema = SObjectSchema.All.GetValueOrDefault(type);
        if (schema is null)
        {
            return Error(404, "NOT_FOUND", "The requested resource does not exist");
        }

        return await WithBodyAsync(request, body =>
        {
            var result = CommittedByCall(() => _store.Create(schema, Normalize(schema, body)));
            CountWrites(schema, [result]);
            return result.Success ? Json(new JsonObject { ["id"] = result.Id, ["success"] = true, ["errors"] = new JsonArray() }, 201) : RecordError(result);
        });
    }

    private async Task<IResult> UpdateOneAsync(HttpRequest request, string type, string id)
    {
        var schema = SObjectSchema.All.GetValueOrDefault(type);
        if (schema is null)
        {
            return Error(404, "NOT_FOUND", "The requested resource does not exist");
        }

        var condition = request.Headers.IfUnmodifiedSince.Count > 0 ? request.Headers.IfUnmodifiedSince.ToString() : null;
        return await WithBodyAsync(request, body =>
        {
            var (status, response) = UpdateOne(schema, id, body, condition);
            return response is null ? Results.StatusCode(status) : Json(response, status);
        });
    }

    /// <summary>
    /// One record's update as <c>PATCH sobjects/{type}/{id}</c> makes it, also for a <c>/composite</c>
    /// subrequest: 204, or 404, 412 or 400 with Salesforce's error body. A conditional update
    /// (REST API "Conditional Request Headers"): <c>If-Unmodified-Since</c> is compared with the
    /// record's LastModifiedDate to the second, as HTTP dates go; a later one answers 412 and changes nothing.
    /// </summary>
    private (int Status, JsonNode? Body) UpdateOne(SObjectSchema schema, string id, JsonObject body, string? ifUnmodifiedSince)
    {
        DateTimeOffset? unmodifiedSince = null;
        if (ifUnmodifiedSince is not null)
        {
            if (!DateTimeOffset.TryParseExact(ifUnmodifiedSince, "R", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out var since))
            {
                return (400, ErrorBody("INVALID_HEADER_TYPE", $"If-Unmodified-Since must be an HTTP date, e.g. {DateTimeOffset.UnixEpoch.ToString("R", CultureInfo.InvariantCulture)}"));
            }

            unmodifiedSince = since;
        }

        var result = CommittedByCall(() =>
        {
            if (unmodifiedSince is { } since
                && SalesforceIds.Normalize(id) is { } key
                && _store.Get(key) is { } current
                && DateTimeOffset.TryParse(current.Fields["LastModifiedDate"]?.ToString()?.Replace("+0000", "Z", StringComparison.Ordinal), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out var modified)
                && modified.UtcTicks - (modified.UtcTicks % TimeSpan.TicksPerSecond) > since.UtcTicks)
            {
                return null;
            }

            return _store.Update(schema, id, Normalize(schema, body));
        });
        if (result is null)
        {
            return (412, ErrorBody("PRECONDITION_FAILED", "The requested resource has been modified since the If-Unmodified-Since date."));
        }

        CountWrites(schema, [result]);
        return result.Success ? (204, null)
            : result.Errors[0].StatusCode is "INVALID_CROSS_REFERENCE_KEY" or "MALFORMED_ID" ? (404, ErrorBody("NOT_FOUND", "The requested resource does not exist"))
            : (400, RecordErrorBody(result));
    }

    /// <summary>
    /// <c>POST /composite</c>: up to 25 subrequests in one call, each answered in <c>compositeResponse</c>
    /// with its own status, headers and body. The sandbox runs <c>PATCH sobjects/{type}/{id}</c>
    /// subrequests (with their <c>httpHeaders</c>, e.g. If-Unmodified-Since) and <c>allOrNone: false</c>;
    /// anything else is refused with a message naming what it supports.
    /// </summary>
    private Task<IResult> CompositeAsync(HttpRequest request) => WithBodyAsync(request, body =>
    {
        if (body["compositeRequest"] is not JsonArray subrequests)
        {
            return Error(400, "INVALID_FIELD", "Required field compositeRequest is missing");
        }

        if (subrequests.Count > MaxCompositeSubrequests)
        {
            return Error(400, "LIMIT_EXCEEDED", $"Limit exceeded: you can send at most {MaxCompositeSubrequests} subrequests in one composite request");
        }

        if (body["allOrNone"] is JsonValue flag && flag.GetValueKind() == System.Text.Json.JsonValueKind.True)
        {
            return Error(400, "INVALID_FIELD", "The sandbox runs composite requests with allOrNone false only");
        }

        var responses = new JsonArray();
        foreach (var node in subrequests)
        {
            var sub = node as JsonObject;
            var referenceId = sub?["referenceId"]?.ToString();
            var method = sub?["method"]?.ToString();
            var url = sub?["url"]?.ToString() ?? string.Empty;
            var match = System.Text.RegularExpressions.Regex.Match(url, "^/services/data/v[0-9.]+/sobjects/([A-Za-z0-9_]+)/([A-Za-z0-9]{15,18})$");
            (int Status, JsonNode? Body) answer;
            if (sub is null || referenceId is null || method is null)
            {
                answer = (400, ErrorBody("INVALID_FIELD", "Each subrequest needs method, url and referenceId"));
            }
            else if (method != "PATCH" || !match.Success)
            {
                answer = (400, ErrorBody("INVALID_INPUT", $"The sandbox runs PATCH /services/data/vXX.X/sobjects/{{type}}/{{id}} subrequests, not {method} {url}"));
            }
            else if (SObjectSchema.All.GetValueOrDefault(match.Groups[1].Value) is not { } schema)
            {
                answer = (404, ErrorBody("NOT_FOUND", "The requested resource does not exist"));
            }
            else if (sub["body"] is not JsonObject fields)
            {
                answer = (400, ErrorBody("JSON_PARSER_ERROR", "The subrequest body must be a JSON object"));
            }
            else
            {
                var condition = sub["httpHeaders"]?["If-Unmodified-Since"]?.ToString();
                answer = UpdateOne(schema, match.Groups[2].Value, (JsonObject)fields.DeepClone(), condition);
            }

            responses.Add(new JsonObject
            {
                ["body"] = answer.Body,
                ["httpHeaders"] = new JsonObject(),
                ["httpStatusCode"] = answer.Status,
                ["referenceId"] = referenceId,
            });
        }

        return Json(new JsonObject { ["compositeResponse"] = responses });
    });

    private async Task<IResult> UpsertOneAsync(HttpRequest request, string type, string field, string value)
    {
        var schema = SObjectSchema.All.GetValueOrDefault(type);
        if (schema is null)
        {
            return Error(404, "NOT_FOUND", "The requested resource does not exist");
        }

        return await WithBodyAsync(request, body =>
        {
            body[schema.Find(field)?.Name ?? field] = value;
            var result = CommittedByCall(() => _store.Upsert(schema, field, Normalize(schema, body)));
            CountWrites(schema, [result]);
            return result.Success ? Json(result.ToJson(), result.Created == true ? 201 : 200) : RecordError(result);
        });
    }

    private IResult DeleteOne(string type, string id)
    {
        if (SObjectSchema.All.GetValueOrDefault(type) is not { } schema)
        {
            return Error(404, "NOT_FOUND", "The requested resource does not exist");
        }

        var result = CommittedByCall(() => _store.Delete(id));
        CountWrites(schema, [result]);
        return result.Success ? Results.NoContent()
            : result.Errors[0].StatusCode == "ENTITY_IS_DELETED" ? Error(404, "ENTITY_IS_DELETED", "entity is deleted")
            : Error(404, "NOT_FOUND", "The requested resource does not exist");
    }

    /// <summary>sObject Collections create (no field), update by Id (field "Id") and upsert by an external id field.</summary>
    private async Task<IResult> CollectionAsync(HttpRequest request, string? type, string? field, CancellationToken cancellationToken)
    {
        JsonObject? body;
        try
        {
            body = await JsonNode.ParseAsync(request.Body, cancellationToken: cancellationToken) as JsonObject;
        }
        catch (System.Text.Json.JsonException e)
        {
            return Error(400, "JSON_PARSER_ERROR", $"Unexpected character: {e.Message}");
        }

        if (body?["records"] is not JsonArray records)
        {
            return Error(400, "INVALID_FIELD", "Required field records is missing");
        }

        if (records.Count > MaxCollectionSize)
        {
            return Error(400, "EXCEEDED_ID_LIMIT", $"record limit reached. cannot submit more than {MaxCollectionSize} records into this call");
        }

        var allOrNone = body["allOrNone"] is JsonValue flag && flag.GetValueKind() == System.Text.Json.JsonValueKind.True;
        SObjectSchema? upsertSchema = null;
        if (type is not null)
        {
            upsertSchema = SObjectSchema.All.GetValueOrDefault(type);
            if (upsertSchema is null)
            {
                return Error(404, "NOT_FOUND", "The requested resource does not exist");
            }
        }

        try
        {
            var results = new List<SaveResult>();
            lock (_store.Sync)
            {
                _store.BeginJournal();
                using var publish = new PublishOnExit(this);
                _store.Begin();
                try
                {
                    var seenKeys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                    foreach (var node in records)
                    {
                        if (node is not JsonObject record)
                        {
                            throw new SandboxApiException(400, "JSON_PARSER_ERROR", "Each record must be a JSON object");
                        }

                        var recordType = record["attributes"]?["type"]?.ToString();
                        var schema = recordType is null ? null : SObjectSchema.All.GetValueOrDefault(recordType);
                        if (schema is null)
                        {
                            throw new SandboxApiException(400, "INVALID_TYPE", recordType is null ? "Must specify a type in the attributes map of each record" : $"sObject type '{recordType}' is not supported.");
                        }

                        if (upsertSchema is not null && schema != upsertSchema)
                        {
                            throw new SandboxApiException(400, "INVALID_TYPE", $"The record type {schema.Name} does not match the sObject type {upsertSchema.Name} in the request URI");
                        }

                        results.Add(SaveOne(schema, Normalize(schema, record), field, seenKeys));
                    }
                }
                catch
                {
                    _store.Rollback();
                    throw;
                }

                if (allOrNone && results.Any(r => !r.Success))
                {
                    _store.Rollback();
                    results = [.. results.Select(r => r.Success
                        ? SaveResult.Fail(null, "ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records were valid and the request was using AllOrNone header")
                        : r)];
                }
                else
                {
                    _store.Complete();
                }
            }

            CountWrites(null, results);
            return Json(new JsonArray([.. results.Select(r => (JsonNode)r.ToJson())]));
        }
        catch (SandboxApiException e)
        {
            return Error(e.Status, e.ErrorCode, e.Message, e.Fields);
        }
    }

    private SaveResult SaveOne(SObjectSchema schema, JsonObject record, string? field, HashSet<string> seenKeys)
    {
        var idProperty = record.FirstOrDefault(p => p.Key.Equals("Id", StringComparison.OrdinalIgnoreCase));
        if (field is null)
        {
            return idProperty.Value is not null
                ? SaveResult.Fail(null, "INVALID_FIELD", "cannot specify Id in an insert call", "Id")
                : _store.Create(schema, record);
        }

        if (field.Equals("Id", StringComparison.OrdinalIgnoreCase))
        {
            var id = idProperty.Value?.ToString();
            if (string.IsNullOrEmpty(id))
            {
                return SaveResult.Fail(null, "MISSING_ARGUMENT", "Id not specified in an update call", "Id");
            }

            var body = (JsonObject)record.DeepClone();
            body.Remove(idProperty.Key);
            return _store.Update(schema, id, body);
        }

        var key = record.FirstOrDefault(p => p.Key.Equals(field, StringComparison.OrdinalIgnoreCase)).Value?.ToString();
        if (!string.IsNullOrEmpty(key) && !seenKeys.Add(key))
        {
            return SaveResult.Fail(null, "DUPLICATE_EXTERNAL_ID", $"Duplicate external id specified: {key}", field);
        }

        return idProperty.Value is not null
            ? SaveResult.Fail(null, "INVALID_FIELD", "Upsert by external id must not specify Id", "Id")
            : _store.Upsert(schema, field, record);
    }

    private IResult DeleteCollection(HttpRequest request)
    {
        var ids = request.Query["ids"].ToString().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (ids.Length == 0)
        {
            return Error(400, "MISSING_ARGUMENT", "ids parameter is required");
        }

        if (ids.Length > MaxCollectionSize)
        {
            return Error(400, "EXCEEDED_ID_LIMIT", $"record limit reached. cannot submit more than {MaxCollectionSize} records into this call");
        }

        var allOrNone = string.Equals(request.Query["allOrNone"], "true", StringComparison.OrdinalIgnoreCase);
        List<SaveResult> results;
        lock (_store.Sync)
        {
            _store.BeginJournal();
            using var publish = new PublishOnExit(this);
            _store.Begin();
            results = [.. ids.Select(_store.Delete)];
            if (allOrNone && results.Any(r => !r.Success))
            {
                _store.Rollback();
                results = [.. results.Select(r => r.Success
                    ? SaveResult.Fail(r.Id, "ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records were valid and the request was using AllOrNone header")
                    : r)];
            }
            else
            {
                _store.Complete();
            }
        }

        CountWrites(null, results);
        return Json(new JsonArray([.. results.Select(r => (JsonNode)r.ToJson())]));
    }

    private IResult StatsResult()
    {
        lock (_store.Sync)
        {
            var stats = Stats.ToJson();
            return Json(new JsonObject
            {
                ["requestCount"] = Options.RequestCount,
                ["apiRequestCount"] = Options.ApiRequestCount,
                ["tokenRequestCount"] = Options.TokenRequestCount,
                ["faultedRequestCount"] = Options.FaultedRequestCount,
                ["inOutage"] = Options.InOutage,
                ["records"] = new JsonObject([.. SObjectSchema.All.Values.Select(t => KeyValuePair.Create(t.Name, (JsonNode?)_store.All(t).Count()))]),
                ["writes"] = Stats.Writes,
                ["writesPerRecord"] = stats["writesPerRecord"]!.DeepClone(),
                ["requestsPerEndpoint"] = stats["requestsPerEndpoint"]!.DeepClone(),
                ["millisecondsPerEndpoint"] = stats["millisecondsPerEndpoint"]!.DeepClone(),
                ["normalize"] = Normalizer.ToJson(),
                ["latencyMs"] = Options.Latency.TotalMilliseconds,
                ["errorRate"] = Options.ErrorRate,
                ["bulkJobFailures"] = Options.PendingBulkJobFailures,
            });
        }
    }

    /// <summary>
    /// <c>POST /_sandbox/faults</c> with any of: <c>latencyMs</c>, <c>errorRate</c> (0..1), <c>rejectedName</c>,
    /// <c>burst {count, kind: ServiceUnavailable|RequestLimitExceeded|TooManyRequests, retryAfterSeconds}</c>,
    /// <c>outageSeconds</c>, <c>expireTokens</c>, <c>requestLimit</c>, <c>normalize {phone, trim, case}</c>,
    /// <c>bulkJobFailures</c> (the next n Bulk API 2.0 query jobs end Failed).
    /// An unknown key or a bad value is a 400 naming it, and nothing is changed.
    /// </summary>
    private async Task<IResult> SetFaultsAsync(HttpRequest request)
    {
        return await WithSteeringBodyAsync(request, body =>
        {
            SteeringKnobs.RejectUnknown(body, "", "latencyMs", "errorRate", "rejectedName", "burst", "outageSeconds", "expireTokens", "requestLimit", "normalize", "bulkJobFailures");

            // Validate everything before changing anything, so a bad request changes nothing.
            var latency = body["latencyMs"] is { } l ? TimeSpan.FromMilliseconds(SteeringKnobs.Number(l, "latencyMs", 0, 600_000)) : (TimeSpan?)null;
            var errorRate = body["errorRate"] is { } e ? SteeringKnobs.Number(e, "errorRate", 0, 1) : (double?)null;
            var rejectedName = body.ContainsKey("rejectedName") ? SteeringKnobs.Text(body["rejectedName"], "rejectedName") : null;
            (int Count, SalesforceFaultKind Kind, TimeSpan? RetryAfter)? burst = null;
            if (body["burst"] is { } b)
            {
                if (b is not JsonObject burstKnob)
                {
                    throw new SteeringException("burst: expected an object {\"count\", \"kind\", \"retryAfterSeconds\"}.");
                }

                SteeringKnobs.RejectUnknown(burstKnob, "burst.", "count", "kind", "retryAfterSeconds");
                var kindText = SteeringKnobs.Text(burstKnob["kind"], "burst.kind") ?? nameof(SalesforceFaultKind.ServiceUnavailable);
                if (!Enum.TryParse<SalesforceFaultKind>(kindText, ignoreCase: true, out var kind) || !Enum.IsDefined(kind))
                {
                    throw new SteeringException($"burst.kind: '{kindText}' is not one of {string.Join(", ", Enum.GetNames<SalesforceFaultKind>())}.");
                }

                burst = ((int)SteeringKnobs.Number(burstKnob["count"] ?? 1, "burst.count", 0, 1_000_000), kind,
                    burstKnob["retryAfterSeconds"] is { } ra ? TimeSpan.FromSeconds(SteeringKnobs.Number(ra, "burst.retryAfterSeconds", 0, 3600)) : null);
            }

            var outage = body["outageSeconds"] is { } o ? TimeSpan.FromSeconds(SteeringKnobs.Number(o, "outageSeconds", 0, 86_400)) : (TimeSpan?)null;
            var expire = body["expireTokens"] is { } x && SteeringKnobs.Bool(x, "expireTokens");
            var requestLimit = body["requestLimit"] is { } rl ? (long)SteeringKnobs.Number(rl, "requestLimit", 1, 1e12) : (long?)null;
            var bulkJobFailures = body["bulkJobFailures"] is { } bf ? (int)SteeringKnobs.Number(bf, "bulkJobFailures", 0, 1_000_000) : (int?)null;
            if (body["normalize"] is { } n)
            {
                if (n is not JsonObject normalize)
                {
                    throw new SteeringException("normalize: expected an object {\"phone\", \"trim\", \"case\"}.");
                }

                new ValueNormalizer().Apply(normalize);
                Normalizer.Apply(normalize);
            }

            if (latency is { } latencyValue)
            {
                Options.Latency = latencyValue;
            }

            if (errorRate is { } rate)
            {
                Options.ErrorRate = rate;
            }

            if (body.ContainsKey("rejectedName"))
            {
                Options.RejectedName = rejectedName;
            }

            if (burst is { } burstValue)
            {
                Options.FailNext(burstValue.Count, burstValue.Kind, burstValue.RetryAfter);
            }

            if (outage is { } outageValue)
            {
                if (outageValue > TimeSpan.Zero)
                {
                    Options.StartOutage(outageValue);
                }
                else
                {
                    Options.EndOutage();
                }
            }

            if (expire)
            {
                Options.ExpireAccessTokens();
            }

            if (requestLimit is { } limitValue)
            {
                Options.RequestLimit = limitValue;
            }

            if (bulkJobFailures is { } failures)
            {
                Options.FailNextBulkJobs(failures);
            }
        });
    }

    /// <summary><c>GET …/tooling/query?q=SELECT … FROM PlatformEventChannelMember</c>: the objects selected for Change Data Capture.</summary>
    private IResult ToolingQuery(string version, HttpRequest request)
    {
        var q = request.Query["q"].ToString();
        if (string.IsNullOrWhiteSpace(q))
        {
            return Error(400, "MALFORMED_QUERY", "A query string must be provided.");
        }

        var (result, errorCode, message) = PlatformEventChannelMembers.Query(version, q, ChangeEvents.EnabledObjects);
        return result is null ? Error(400, errorCode!, message!) : Json(result);
    }

    /// <summary>
    /// <c>POST /_sandbox/pubsub</c> with any of: <c>gap {"recordIds": [...], "changeType": "GAP_UPDATE"}</c>
    /// (a gap event now), <c>gapNext</c> (the next n committed changes publish gap events instead),
    /// <c>overflow {"object": "Account"}</c> (a GAP_OVERFLOW event now), <c>overflowThreshold</c>
    /// (changes per transaction before the rest become overflow events; 100,000), <c>dropStreams</c>
    /// (end open Subscribe streams with UNAVAILABLE), <c>retentionSeconds</c> (how long events stay
    /// replayable; 259,200), <c>changeDataCapture [objects]</c> (the objects selected for change
    /// events, null for all). Answers the Pub/Sub state; a bad request is a 400 naming the key and changes nothing.
    /// </summary>
    private async Task<IResult> SteerPubSubAsync(HttpRequest request)
    {
        var answer = await WithSteeringBodyAsync(request, body => PubSubSteering.Apply(this, body));
        return answer is IStatusCodeHttpResult { StatusCode: 400 } ? answer : Json(PubSubSteering.State(this));
    }

    /// <summary>
    /// <c>POST /_sandbox/silent-edit</c> (<see cref="SilentEdit"/>): sets fields of a record, or
    /// removes it, behind the API's change tracking: LastModifiedDate and SystemModstamp stay, no
    /// recycle-bin entry, not counted as a write. An unknown sObject, Id or field is a 4xx naming it.
    /// </summary>
    private async Task<IResult> SilentEditAsync(HttpRequest request)
    {
        return await WithSteeringBodyAsync(request, body =>
        {
            var edit = SilentEdit.Parse(body);
            var schema = SObjectSchema.All.GetValueOrDefault(edit.Type)
                ?? throw new SteeringException($"type: the sandbox serves {string.Join(", ", SObjectSchema.All.Keys)}, not '{edit.Type}'.");
            lock (_store.Sync)
            {
                _store.SilentEdit(schema, edit.Id, edit.Fields);
            }
        });
    }

    /// <summary>
    /// <c>POST /_sandbox/reset</c>: clears every fault knob, the normalization and the stats; with
    /// <c>{"records": true}</c> it also forgets every record (Ids keep counting up).
    /// </summary>
    private async Task<IResult> ResetAsync(HttpRequest request)
    {
        return await WithSteeringBodyAsync(request, body =>
        {
            SteeringKnobs.RejectUnknown(body, "", "records");
            var records = body["records"] is { } r && SteeringKnobs.Bool(r, "records");
            Options.ResetFaults();
            ChangeEvents.ResetKnobs();
            Normalizer.Reset();
            Stats.Reset();
            if (records)
            {
                lock (_store.Sync)
                {
                    _store.Clear();
                }

                _bulk.Clear();
            }
        });
    }

    private async Task<IResult> WithSteeringBodyAsync(HttpRequest request, Action<JsonObject> steer)
    {
        JsonObject body = [];
        if (request.ContentLength is not 0 && (request.ContentLength is not null || request.Headers.ContainsKey("Transfer-Encoding")))
        {
            try
            {
                body = await JsonNode.ParseAsync(request.Body, cancellationToken: request.HttpContext.RequestAborted) as JsonObject
                    ?? throw new SteeringException("The body must be a JSON object.");
            }
            catch (System.Text.Json.JsonException e)
            {
                return Error(400, "JSON_PARSER_ERROR", $"Unexpected character: {e.Message}");
            }
            catch (SteeringException e)
            {
                return Error(400, "INVALID_FIELD", e.Message);
            }
        }

        try
        {
            steer(body);
        }
        catch (SteeringException e)
        {
            return Error(e.Status, e.Status == 404 ? "NOT_FOUND" : "INVALID_FIELD", e.Message);
        }
        catch (SandboxApiException e)
        {
            return Error(e.Status, e.ErrorCode, e.Message);
        }

        return StatsResult();
    }

    /// <summary>Applies the normalization knob to the text fields of a body received over the API.</summary>
    private JsonObject Normalize(SObjectSchema schema, JsonObject body)
    {
        if (Normalizer.IsOff)
        {
            return body;
        }

        var normalized = new JsonObject();
        foreach (var (name, value) in body)
        {
            var field = schema.Find(name);
            normalized[name] = field is { Type: SFieldType.String } ? Normalizer.Normalize(field.Name, value?.DeepClone(), field.IsPhone) : value?.DeepClone();
        }

        return normalized;
    }

    private void CountWrites(SObjectSchema? schema, IEnumerable<SaveResult> results)
    {
        foreach (var result in results.Where(r => r.Success && r.Id is not null))
        {
            Stats.CountWrite((schema ?? SObjectSchema.ForId(result.Id!))?.Name ?? "unknown", result.Id!);
        }
    }

    /// <summary>
    /// <c>GET /sobjects/X/updated|deleted?start=&amp;end=</c> (getUpdated / getDeleted): ids changed, or
    /// ids and deletion dates, in a window of at most 30 days within the last 30; seconds of start and
    /// end are ignored, as Salesforce rounds both down to the minute.
    /// </summary>
    private IResult Replication(string type, HttpRequest request, bool deleted)
    {
        if (SObjectSchema.All.GetValueOrDefault(type) is not { } schema)
        {
            return Error(404, "NOT_FOUND", "The requested resource does not exist");
        }

        static DateTimeOffset? Minute(string? text) =>
            DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var value)
                ? new DateTimeOffset(value.UtcTicks - (value.UtcTicks % TimeSpan.TicksPerMinute), TimeSpan.Zero)
                : null;

        var now = Options.TimeProvider.GetUtcNow();
        if (Minute(request.Query["start"]) is not { } start || Minute(request.Query["end"]) is not { } end)
        {
            return Error(400, "MISSING_ARGUMENT", "start and end are required, as ISO 8601 date-times (e.g. 2024-01-31T10:00:00+00:00)");
        }

        if (end <= start)
        {
            return Error(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate by more than one minute");
        }

        if (start < now.AddDays(-30) || end - start > TimeSpan.FromDays(30))
        {
            return Error(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago, and the range cannot exceed 30 days");
        }

        // An end in the future is covered up to now, so a test sees a deletion made a moment ago.
        var covered = end < now ? end : now;
        lock (_store.Sync)
        {
            var changed = _store.All(schema).Where(r => r.IsDeleted == deleted && r.Modstamp >= start && r.Modstamp < covered).OrderBy(r => r.Modstamp).ToList();
            if (!deleted)
            {
                return Json(new JsonObject
                {
                    ["ids"] = new JsonArray([.. changed.Select(r => (JsonNode?)JsonValue.Create(r.Id))]),
                    ["latestDateCovered"] = SalesforceStore.FormatDateTime(covered),
                });
            }

            return Json(new JsonObject
            {
                ["deletedRecords"] = new JsonArray([.. changed.Select(r => (JsonNode)new JsonObject { ["id"] = r.Id, ["deletedDate"] = SalesforceStore.FormatDateTime(r.Modstamp) })]),
                ["earliestDateAvailable"] = SalesforceStore.FormatDateTime(now.AddDays(-30)),
                ["latestDateCovered"] = SalesforceStore.FormatDateTime(covered),
            });
        }
    }

    /// <summary><c>GET /sobjects</c> (describeGlobal): every sObject type with its capabilities and URLs.</summary>
    private static IResult DescribeGlobal(string version) => Json(new JsonObject
    {
        ["encoding"] = "UTF-8",
        ["maxBatchSize"] = MaxCollectionSize,
        ["sobjects"] = new JsonArray([.. SObjectSchema.All.Values.Select(s => (JsonNode)Summary(version, s))]),
    });

    /// <summary><c>GET /sobjects/X</c>: the type's summary and its recently viewed records (none here).</summary>
    private static IResult BasicInfo(string version, string type) =>
        SObjectSchema.All.GetValueOrDefault(type) is { } schema
            ? Json(new JsonObject { ["objectDescribe"] = Summary(version, schema), ["recentItems"] = new JsonArray() })
            : Error(404, "NOT_FOUND", "The requested resource does not exist");

    private static JsonObject Summary(string version, SObjectSchema schema) => new()
    {
        ["name"] = schema.Name,
        ["label"] = schema.Label,
        ["labelPlural"] = schema.LabelPlural,
        ["keyPrefix"] = schema.KeyPrefix,
        ["custom"] = false,
        ["customSetting"] = false,
        ["activateable"] = false,
        ["createable"] = true,
        ["updateable"] = true,
        ["deletable"] = true,
        ["undeletable"] = true,
        ["mergeable"] = schema.Name is "Account" or "Contact",
        ["queryable"] = true,
        ["retrieveable"] = true,
        ["searchable"] = true,
        ["layoutable"] = true,
        ["replicateable"] = true,
        ["triggerable"] = true,
        ["feedEnabled"] = false,
        ["deprecatedAndHidden"] = false,
        ["urls"] = new JsonObject
        {
            ["sobject"] = $"/services/data/v{version}/sobjects/{schema.Name}",
            ["describe"] = $"/services/data/v{version}/sobjects/{schema.Name}/describe",
            ["rowTemplate"] = $"/services/data/v{version}/sobjects/{schema.Name}/{{ID}}",
        },
    };

    /// <summary><c>GET /sobjects/X/describe</c>: the fields (name, type, createable, updateable, externalId, nillable, ...) and child relationships.</summary>
    private static IResult Describe(string version, string type)
    {
        if (SObjectSchema.All.GetValueOrDefault(type) is not { } schema)
        {
            return Error(404, "NOT_FOUND", "The requested resource does not exist");
        }

        var describe = Summary(version, schema);
        describe["fields"] = new JsonArray([.. schema.Fields.Select(f => (JsonNode)DescribeField(f))]);
        describe["childRelationships"] = new JsonArray([.. schema.Children.Select(c => (JsonNode)new JsonObject
        {
            ["childSObject"] = c.Child.Name,
            ["field"] = c.Field.Name,
            ["relationshipName"] = c.RelationshipName,
            ["cascadeDelete"] = true,
            ["restrictedDelete"] = false,
            ["deprecatedAndHidden"] = false,
        })]);
        describe["recordTypeInfos"] = new JsonArray();
        describe["supportedScopes"] = new JsonArray(new JsonObject { ["label"] = "All " + schema.LabelPlural.ToLowerInvariant(), ["name"] = "everything" });
        return Json(describe);
    }

    private static JsonObject DescribeField(SField f)
    {
        var system = f.ReadOnly || f.Type == SFieldType.Id;
        var describeType = f.DescribeType;
        var field = new JsonObject
        {
            ["name"] = f.Name,
            ["label"] = Label(f.Name),
            ["type"] = describeType,
            ["soapType"] = f.Type switch
            {
                SFieldType.Id or SFieldType.Reference => "tns:ID",
                SFieldType.Boolean => "xsd:boolean",
                SFieldType.Double => "xsd:double",
                SFieldType.Int => "xsd:int",
                SFieldType.DateTime => "xsd:dateTime",
                SFieldType.Date => "xsd:date",
                _ => "xsd:string",
            },
            ["length"] = f.Type == SFieldType.String ? f.Length : 0,
            ["byteLength"] = f.Type == SFieldType.String ? f.Length * 3 : f.Type is SFieldType.Id or SFieldType.Reference ? 18 : 0,
            ["precision"] = f.Type == SFieldType.Double ? 18 : 0,
            ["scale"] = f.Type == SFieldType.Double ? 2 : 0,
            ["digits"] = f.Type == SFieldType.Int ? 9 : 0,
            ["createable"] = !system,
            ["updateable"] = !system,
            ["nillable"] = !f.Required && !system && f.Type != SFieldType.Boolean,
            ["defaultedOnCreate"] = system || f.Name == "OwnerId",
            ["externalId"] = f.ExternalId,
            ["idLookup"] = f.ExternalId || f.Type == SFieldType.Id,
            ["unique"] = f.ExternalId,
            ["caseSensitive"] = false,
            ["custom"] = f.Name.EndsWith("__c", StringComparison.Ordinal),
            ["calculated"] = false,
            ["autoNumber"] = false,
            ["filterable"] = describeType != "textarea",
            ["sortable"] = describeType != "textarea",
            ["groupable"] = describeType is not ("textarea" or "double" or "currency" or "percent" or "datetime"),
            ["nameField"] = f.Name == "Name",
            ["restrictedPicklist"] = false,
            ["picklistValues"] = new JsonArray([.. (f.Picklist ?? []).Select(v => (JsonNode)new JsonObject
            {
                ["active"] = true,
                ["defaultValue"] = false,
                ["label"] = v,
                ["validFor"] = null,
                ["value"] = v,
            })]),
            ["referenceTo"] = new JsonArray([.. (f.ReferenceTo is null ? f.Name == "OwnerId" ? ["User"] : [] : new[] { f.ReferenceTo }).Select(r => (JsonNode?)JsonValue.Create(r))]),
            ["relationshipName"] = f.RelationshipName ?? (f.Name == "OwnerId" ? "Owner" : null),
            ["deprecatedAndHidden"] = false,
        };
        return field;
    }

    /// <summary>A field's label from its API name: BillingCity is "Billing City", NetSuite_Id__c is "NetSuite Id".</summary>
    private static string Label(string name)
    {
        var text = name.EndsWith("__c", StringComparison.Ordinal) ? name[..^3].Replace('_', ' ') : name;
        var label = new StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            if (i > 0 && char.IsUpper(text[i]) && char.IsLower(text[i - 1]))
            {
                label.Append(' ');
            }

            label.Append(text[i]);
        }

        return label.ToString();
    }

    /// <summary>
    /// Runs one API write as a transaction; its committed changes become change events whose
    /// changeOrigin is the call's. Changes made under the store's lock outside <see cref="Committed"/>
    /// (a silent edit) make no event.
    /// </summary>
    private T CommittedByCall<T>(Func<T> action) => Committed(_changeOrigin.Value ?? string.Empty, action);

    private T Committed<T>(string changeOrigin, Func<T> action)
    {
        lock (_store.Sync)
        {
            _store.BeginJournal();
            try
            {
                return action();
            }
            finally
            {
                ChangeEvents.Publish(_store.EndJournal(), changeOrigin);
            }
        }
    }

    /// <summary>
    /// changeOrigin of a change made by an API call: <c>com/salesforce/api/rest/61.0</c>, with
    /// <c>;client=id</c> when the call named its client in <c>Sforce-Call-Options: client=id</c>.
    /// </summary>
    private static string ChangeOrigin(HttpRequest request)
    {
        var segments = request.Path.Value!.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var version = segments.Length > 2 && segments[1] == "data" && segments[2].StartsWith('v') ? segments[2][1..] : SalesforceSandboxOptions.LatestApiVersion;
        var api = segments.Contains("ingest") ? "bulkapi" : "rest";
        var client = request.Headers["Sforce-Call-Options"].ToString()
            .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Where(o => o.StartsWith("client=", StringComparison.OrdinalIgnoreCase))
            .Select(o => o["client=".Length..])
            .FirstOrDefault();
        return string.IsNullOrEmpty(client) ? $"com/salesforce/api/{api}/{version}" : $"com/salesforce/api/{api}/{version};client={client}";
    }

    private static async Task<IResult> WithBodyAsync(HttpRequest request, Func<JsonObject, IResult> handle)
    {
        JsonObject? body;
        try
        {
            body = await JsonNode.ParseAsync(request.Body, cancellationToken: request.HttpContext.RequestAborted) as JsonObject;
        }
        catch (System.Text.Json.JsonException e)
        {
            return Error(400, "JSON_PARSER_ERROR", $"Unexpected character: {e.Message}");
        }

        if (body is null)
        {
            return Error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object");
        }

        try
        {
            return handle(body);
        }
        catch (SandboxApiException e)
        {
            return Error(e.Status, e.ErrorCode, e.Message, e.Fields);
        }
    }

    private static IResult RecordError(SaveResult result) => Json(RecordErrorBody(result), 400);

    private static JsonArray RecordErrorBody(SaveResult result) =>
        new([.. result.Errors.Select(e => (JsonNode)new JsonObject
        {
            ["message"] = e.Message,
            ["errorCode"] = e.StatusCode,
            ["fields"] = new JsonArray([.. e.Fields.Select(f => (JsonNode?)JsonValue.Create(f))]),
        })]);

    private static JsonArray ErrorBody(string errorCode, string message) =>
        new(new JsonObject { ["message"] = message, ["errorCode"] = errorCode });

    /// <summary>Salesforce's error body for a whole request: an array of {message, errorCode[, fields]}.</summary>
    internal static IResult Error(int status, string errorCode, string message, IReadOnlyList<string>? fields = null)
    {
        var error = new JsonObject { ["message"] = message, ["errorCode"] = errorCode };
        if (fields is { Count: > 0 })
        {
            error["fields"] = new JsonArray([.. fields.Select(f => (JsonNode?)JsonValue.Create(f))]);
        }

        return Json(new JsonArray(error), status);
    }

    private static IResult OAuthError(string error, string description, int status = 400) =>
        Json(new JsonObject { ["error"] = error, ["error_description"] = description }, status);

    internal static IResult Json(JsonNode node, int status = 200) => Results.Text(node.ToJsonString(WireJson), JsonType, Encoding.UTF8, status);

    private static Task WriteAsync(HttpContext context, IResult result) => result.ExecuteAsync(context);

    private sealed record QueryCursor(List<JsonObject> Rows, int BatchSize);

    /// <summary>Publishes the journal's committed changes when a collection request leaves its lock.</summary>
    private readonly struct PublishOnExit(SalesforceSandbox sandbox) : IDisposable
    {
        public void Dispose() => sandbox.ChangeEvents.Publish(sandbox._store.EndJournal(), sandbox._changeOrigin.Value ?? string.Empty);
    }
}
