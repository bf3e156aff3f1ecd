using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdcSync.Sandboxes.Steering;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CdcSync.Sandboxes.NetSuite;

/// <summary>
/// A local stand-in for NetSuite's SuiteTalk REST web services: the record service for the record
/// types in <see cref="NsRecordType.All"/> (customer, opportunity), SuiteQL over them and over
/// <c>deletedrecord</c>, the metadata catalog (JSON schema per record type), token-based
/// authentication verified like NetSuite does, NetSuite's status codes, <c>Location</c> headers and
/// error bodies, a per-account concurrency limit, and fault knobs on <see cref="Options"/> or over
/// HTTP under <c>/_sandbox/</c> (stats, faults, reset). Data lives in memory.
/// </summary>
public sealed class NetSuiteSandbox : IAsyncDisposable
{
    private const string RecordRoot = "/services/rest/record/v1";
    private const string CatalogPath = RecordRoot + "/metadata-catalog";
    private const string SuiteQlPath = "/services/rest/query/v1/suiteql";
    private const int MaxSuiteQlResults = 100_000;

    private readonly WebApplication _app;
    private readonly RecordStore _store;
    private readonly TbaAuthenticator _auth;
    private readonly Random _random;
    private int _inFlight;

    private NetSuiteSandbox(WebApplication app, NetSuiteSandboxOptions options)
    {
        _app = app;
        Options = options;
        _store = new RecordStore(options);
        _auth = new TbaAuthenticator(options);
        _random = new Random(options.RandomSeed);
    }

    public Uri BaseUrl { get; private set; } = null!;

    public NetSuiteSandboxOptions Options { get; }

    /// <summary>Number of customers held (active and inactive).</summary>
    public int CustomerCount => _store.Count(NsRecordType.Customer);

    /// <summary>Successful writes per record and requests per endpoint (also at <c>GET /_sandbox/stats</c>).</summary>
    public SandboxStats Stats => _store.Stats;

    /// <summary>What the sandbox does to values it receives over HTTP (also the <c>normalize</c> fault knob).</summary>
    public ValueNormalizer Normalizer => _store.Normalizer;

    public static async Task<NetSuiteSandbox> StartAsync(NetSuiteSandboxOptions options, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        // The host's console lifetime would take over Ctrl-C/SIGTERM from whoever embeds the sandbox.
        builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, options.Port));
        var app = builder.Build();
        var sandbox = new NetSuiteSandbox(app, options);
        sandbox.Map(app);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        sandbox.BaseUrl = new Uri(address.TrimEnd('/') + "/");
        return sandbox;
    }

    /// <summary>Reads a customer as the record service returns it (for test assertions), or null.</summary>
    public JsonObject? GetCustomer(long internalId) => GetRecord("customer", internalId);

    /// <summary>Reads a record of a type as the record service returns it, sublists expanded, or null.</summary>
    public JsonObject? GetRecord(string recordType, long internalId)
    {
        var type = Type(recordType);
        return _store.Get(type, internalId) is { } c ? Render(type, internalId, c.Fields, c.Created, c.Modified, expand: true) : null;
    }

    public long? FindByExternalId(string externalId) => _store.ResolveExternalId(NsRecordType.Customer, externalId);

    public long? FindByExternalId(string recordType, string externalId) => _store.ResolveExternalId(Type(recordType), externalId);

    /// <summary>Number of records of a type.</summary>
    public int Count(string recordType) => _store.Count(Type(recordType));

    /// <summary>Adds a customer directly, as a user in the NetSuite UI would (no HTTP, no fault knobs, no normalization).</summary>
    public long SeedCustomer(JsonObject fields) => _store.Create(NsRecordType.Customer, fields, viaApi: false);

    /// <summary>Adds a record of any type directly, as a user in the NetSuite UI would.</summary>
    public long SeedRecord(string recordType, JsonObject fields) => _store.Create(Type(recordType), fields, viaApi: false);

    /// <summary>
    /// Edits a record directly, as a user in the NetSuite UI would (stamps lastModifiedDate). Sublist
    /// lines are added to the record's, unless the sublist is named in <paramref name="replaceSublists"/>.
    /// </summary>
    public void EditRecord(string recordType, long internalId, JsonObject fields, params string[] replaceSublists)
    {
        if (!_store.Update(Type(recordType), internalId, fields, new HashSet<string>(replaceSublists, StringComparer.Ordinal), viaApi: false))
        {
            throw new KeyNotFoundException($"No {recordType} with internal id {internalId}.");
        }
    }

    /// <summary>Deletes a record directly, as a user in the NetSuite UI would (it shows up in SuiteQL's deletedrecord).</summary>
    public bool DeleteRecord(string recordType, long internalId) => _store.Delete(Type(recordType), internalId, viaApi: false);

    private static NsRecordType Type(string recordType) =>
        NsRecordType.All.GetValueOrDefault(recordType) ?? throw new ArgumentException($"The sandbox serves the record types {string.Join(", ", NsRecordType.All.Keys)}, not '{recordType}'.", nameof(recordType));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }

    private void Map(WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            if (context.Request.Path.StartsWithSegments("/_sandbox", StringComparison.Ordinal))
            {
                await next(context);
                return;
            }

            Options.CountRequest();
            _store.Stats.CountRequest(context);
            if (Options.InOutage)
            {
                await NetSuiteErrors.Error(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.").ExecuteAsync(context);
                return;
            }

            if (!_auth.IsValid(context))
            {
                Options.CountAuthFailure();
                await NetSuiteErrors.InvalidLogin().ExecuteAsync(context);
                return;
            }

            var current = Interlocked.Increment(ref _inFlight);
            var released = 0;
            void Release()
            {
                if (Interlocked.Exchange(ref released, 1) == 0)
                {
                    Interlocked.Decrement(ref _inFlight);
                }
            }

            // Leave the window before the response starts, so a client that sends its next request
            // as soon as it sees this response is never counted twice.
            context.Response.OnStarting(() =>
            {
                Release();
                return Task.CompletedTask;
            });
            try
            {
                if (current > Options.ConcurrencyLimit)
                {
                    Options.CountConcurrencyRejection();
                    await NetSuiteErrors.Error(
                        429,
                        "CONCURRENCY_LIMIT_EXCEEDED",
                        $"Request blocked by the request concurrency limit. The account allows {Options.ConcurrencyLimit} concurrent requests.").ExecuteAsync(context);
                    return;
                }

                Options.ObserveConcurrency(current);
                TimeSpan latency;
                try
                {
                    latency = Options.Latency + RequestLatency.Of(context.Request);
                }
                catch (SteeringException e)
                {
                    await NetSuiteErrors.Error(400, "INVALID_HEADER", e.Message).ExecuteAsync(context);
                    return;
                }

                if (latency > TimeSpan.Zero)
                {
                    await Task.Delay(latency, context.RequestAborted);
                }

                if (Options.TakeThrottle() is { } retryAfter)
                {
                    context.Response.Headers.RetryAfter = ((int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
                    await NetSuiteErrors.Error(429, "CONCURRENCY_LIMIT_EXCEEDED", "Request blocked by the request concurrency limit.").ExecuteAsync(context);
                    return;
                }

                if (Options.ErrorRate > 0 && NextDouble() < Options.ErrorRate)
                {
                    await NetSuiteErrors.Error(500, "UNEXPECTED_ERROR", "An unexpected error occurred. Error ID: sandbox-fault").ExecuteAsync(context);
                    return;
                }

                await next(context);
            }
            finally
            {
                Release();
            }
        });

        app.MapGet(CatalogPath, (Delegate)Catalog);
        app.MapGet(CatalogPath + "/{type}", (Delegate)Describe);
        app.MapPost(RecordRoot + "/{type}", (Delegate)CreateAsync);
        app.MapGet(RecordRoot + "/{type}", (Delegate)List);
        app.MapPut(RecordRoot + "/{type}/{key}", (Delegate)PutAsync);
        app.MapPatch(RecordRoot + "/{type}/{key}", (Delegate)PatchAsync);
        app.MapGet(RecordRoot + "/{type}/{key}", (Delegate)Get);
        app.MapGet(RecordRoot + "/{type}/{key}/{sublist}", (Delegate)GetSublist);
        app.MapDelete(RecordRoot + "/{type}/{key}", (Delegate)Delete);
        app.MapPost(SuiteQlPath, (Delegate)SuiteQlAsync);

        app.MapGet("/_sandbox/stats", () => Results.Content(StatsJson().ToJsonString(), "application/json"));
        app.MapPost("/_sandbox/reset", (Delegate)ResetAsync);
        app.MapPost("/_sandbox/faults", (Delegate)SetFaultsAsync);
        app.MapPost("/_sandbox/silent-edit", (Delegate)SilentEditAsync);
    }

    private double NextDouble()
    {
        lock (_random)
        {
            return _random.NextDouble();
        }
    }

    private async Task<IResult> CreateAsync(HttpContext context, string type)
    {
        if (NsRecordType.All.GetValueOrDefault(type) is not { } recordType)
        {
            return UnknownType(type);
        }

        if (await ReadBodyAsync(context) is not { } body)
        {
            return InvalidJson();
        }

        return Write(context, recordType, () => _store.Create(recordType, body));
    }

    private async Task<IResult> PutAsync(HttpContext context, string type, string key)
    {
        if (NsRecordType.All.GetValueOrDefault(type) is not { } recordType)
        {
            return UnknownType(type);
        }

        if (!key.StartsWith("eid:", StringComparison.Ordinal))
        {
            return NetSuiteErrors.Error(405, "INVALID_METHOD", $"PUT is supported only for upsert by external ID: /{recordType.Name}/eid:{{externalId}}.");
        }

        if (await ReadBodyAsync(context) is not { } body)
        {
            return InvalidJson();
        }

        return Write(context, recordType, () => _store.Upsert(recordType, key[4..], body, Replace(context)).Id);
    }

    private async Task<IResult> PatchAsync(HttpContext context, string type, string key)
    {
        if (NsRecordType.All.GetValueOrDefault(type) is not { } recordType)
        {
            return UnknownType(type);
        }

        if (await ReadBodyAsync(context) is not { } body)
        {
            return InvalidJson();
        }

        if (Resolve(recordType, key) is not { } id)
        {
            return NetSuiteErrors.NotFound();
        }

        return Write(context, recordType, () => _store.Update(recordType, id, body, Replace(context)) ? id : throw new KeyNotFoundException());
    }

    private IResult Get(HttpContext context, string type, string key)
    {
        if (NsRecordType.All.GetValueOrDefault(type) is not { } recordType)
        {
            return UnknownType(type);
        }

        if (Resolve(recordType, key) is not { } id || _store.Get(recordType, id) is not { } c)
        {
            return NetSuiteErrors.NotFound();
        }

        var expand = context.Request.Query["expandSubResources"] == "true";
        return Results.Content(Render(recordType, id, c.Fields, c.Created, c.Modified, expand).ToJsonString(), "application/vnd.oracle.resource+json; type=singular-resource");
    }

    /// <summary>A sublist the record links to (<c>…/customer/101/addressBook</c>): its lines, as a collection.</summary>
    private IResult GetSublist(string type, string key, string sublist)
    {
        if (NsRecordType.All.GetValueOrDefault(type) is not { } recordType)
        {
            return UnknownType(type);
        }

        if (recordType.Field(sublist) is not { Type: NsFieldType.Sublist } field)
        {
            return NetSuiteErrors.Error(404, "INVALID_ID", $"The {recordType.Name} record has no sublist '{sublist}'; see /services/rest/record/v1/metadata-catalog/{recordType.Name}.");
        }

        if (Resolve(recordType, key) is not { } id || _store.Get(recordType, id) is not { } record)
        {
            return NetSuiteErrors.NotFound();
        }

        var items = record.Fields[field.Name]?["items"] as JsonArray ?? [];
        var self = RecordUrl(recordType, id) + "/" + field.Name;
        var body = new JsonObject
        {
            ["links"] = new JsonArray(new JsonObject { ["rel"] = "self", ["href"] = self }),
            ["count"] = items.Count,
            ["hasMore"] = false,
            ["items"] = items.DeepClone(),
            ["offset"] = 0,
            ["totalResults"] = items.Count,
        };
        return Results.Content(body.ToJsonString(), "application/vnd.oracle.resource+json; type=collection");
    }

    /// <summary>The record service's list: ids with links, paged like SuiteQL (limit 1..1000, offset).</summary>
    private IResult List(HttpContext context, string type)
    {
        if (NsRecordType.All.GetValueOrDefault(type) is not { } recordType)
        {
            return UnknownType(type);
        }

        if (ReadPaging(context) is not { } paging)
        {
            return BadPaging();
        }

        var ids = _store.Ids(recordType);
        var rows = ids.Select(id => new Dictionary<string, string> { ["id"] = id.ToString(CultureInfo.InvariantCulture) }).ToList();
        return Collection(RecordRoot + "/" + recordType.Name, rows, paging.Limit, paging.Offset, row => RecordUrl(recordType, long.Parse(row["id"], CultureInfo.InvariantCulture)));
    }

    private IResult Delete(string type, string key)
    {
        if (NsRecordType.All.GetValueOrDefault(type) is not { } recordType)
        {
            return UnknownType(type);
        }

        try
        {
            return Resolve(recordType, key) is { } id && _store.Delete(recordType, id) ? Results.NoContent() : NetSuiteErrors.NotFound();
        }
        catch (RecordValidationException e)
        {
            return NetSuiteErrors.Error(400, e.Code, e.Message, e.Path);
        }
    }

    /// <summary><c>GET /metadata-catalog/</c>: the record types, each linking to its schema and its record service.</summary>
    private IResult Catalog(HttpContext context)
    {
        var select = context.Request.Query["select"].ToString().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var items = new JsonArray();
        foreach (var type in NsRecordType.All.Values.Where(t => select.Length == 0 || select.Contains(t.Name, StringComparer.OrdinalIgnoreCase)))
        {
            var schema = new Uri(BaseUrl, CatalogPath.TrimStart('/') + "/" + type.Name).ToString();
            items.Add(new JsonObject
            {
                ["name"] = type.Name,
                ["links"] = new JsonArray(
                    new JsonObject { ["rel"] = "canonical", ["href"] = schema, ["mediaType"] = "application/schema+json" },
                    new JsonObject { ["rel"] = "alternate", ["href"] = schema, ["mediaType"] = "application/swagger+json" },
                    new JsonObject { ["rel"] = "describes", ["href"] = new Uri(BaseUrl, RecordRoot.TrimStart('/') + "/" + type.Name).ToString() }),
            });
        }

        var body = new JsonObject
        {
            ["items"] = items,
            ["links"] = new JsonArray(new JsonObject { ["rel"] = "self", ["href"] = new Uri(BaseUrl, CatalogPath.TrimStart('/') + "/").ToString() }),
        };
        return Results.Content(body.ToJsonString(), "application/json");
    }

    /// <summary><c>GET /metadata-catalog/{type}</c>: the JSON schema of a record type, with the exact camelCase field names.</summary>
    private IResult Describe(HttpContext context, string type)
    {
        if (NsRecordType.All.GetValueOrDefault(type) is not { } recordType)
        {
            return UnknownType(type);
        }

        var properties = new JsonObject();
        foreach (var field in recordType.Fields)
        {
            JsonObject property = field.Type switch
            {
                NsFieldType.Boolean => new() { ["type"] = "boolean" },
                NsFieldType.Number => new() { ["type"] = "number", ["format"] = "double" },
                NsFieldType.Date => new() { ["type"] = "string", ["format"] = field.Name is "dateCreated" or "lastModifiedDate" ? "date-time" : "date" },
                NsFieldType.Reference => new()
                {
                    ["type"] = "object",
                    ["properties"] = new JsonObject { ["id"] = new JsonObject { ["type"] = "string" }, ["refName"] = new JsonObject { ["type"] = "string" } },
                    ["x-ns-referenced-record"] = field.References ?? field.Name,
                },
                NsFieldType.Sublist => new()
                {
                    ["type"] = "object",
                    ["properties"] = new JsonObject { ["items"] = new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "object" } } },
                    ["x-ns-sublist"] = true,
                },
                _ => new() { ["type"] = "string", ["format"] = field.Type switch { NsFieldType.Email => "email", NsFieldType.Url => "uri", NsFieldType.Phone => "phone", _ => null } },
            };
            if (property["format"] is null)
            {
                property.Remove("format");
            }

            property["title"] = field.Title;
            property["nullable"] = true;
            if (field.ReadOnly)
            {
                property["readOnly"] = true;
            }

            if (field.MaxLength > 0)
            {
                property["maxLength"] = field.MaxLength;
            }

            property["x-ns-filterable"] = field.Type != NsFieldType.Sublist;
            properties[field.Name] = property;
        }

        var schema = new JsonObject
        {
            ["type"] = "object",
            ["title"] = recordType.Title,
            ["properties"] = properties,
            ["x-ns-custom-field-prefix"] = recordType.CustomFieldPrefix,
        };
        if (!context.Request.Headers.Accept.ToString().Contains("swagger", StringComparison.OrdinalIgnoreCase))
        {
            return Results.Content(schema.ToJsonString(), "application/schema+json");
        }

        // Accept: application/swagger+json asks for the same schema inside an OpenAPI 3 document with the record's paths.
        JsonObject Operation(string summary) => new() { ["summary"] = summary, ["responses"] = new JsonObject() };
        var name = recordType.Name;
        var openApi = new JsonObject
        {
            ["openapi"] = "3.0.1",
            ["info"] = new JsonObject { ["title"] = "NetSuite REST Record API", ["version"] = "v1" },
            ["servers"] = new JsonArray(new JsonObject { ["url"] = new Uri(BaseUrl, RecordRoot.TrimStart('/')).ToString() }),
            ["paths"] = new JsonObject
            {
                ["/" + name] = new JsonObject { ["get"] = Operation($"Get list of records ({name})."), ["post"] = Operation($"Insert record ({name}).") },
                ["/" + name + "/{id}"] = new JsonObject
                {
                    ["get"] = Operation($"Get record ({name})."),
                    ["patch"] = Operation($"Update record ({name})."),
                    ["put"] = Operation($"Insert or update record ({name})."),
                    ["delete"] = Operation($"Remove record ({name})."),
                },
            },
            ["components"] = new JsonObject { ["schemas"] = new JsonObject { [name] = schema } },
        };
        return Results.Content(openApi.ToJsonString(), "application/swagger+json");
    }

    private async Task<IResult> SuiteQlAsync(HttpContext context)
    {
        if (!context.Request.Headers["Prefer"].Any(p => p is not null && p.Contains("transient", StringComparison.OrdinalIgnoreCase)))
        {
            return NetSuiteErrors.Error(400, "INVALID_HEADER", "Invalid header: a SuiteQL query requires the header Prefer: transient.");
        }

        if (await ReadBodyAsync(context) is not { } body || body["q"]?.GetValueKind() != JsonValueKind.String)
        {
            return NetSuiteErrors.Error(400, "INVALID_CONTENT", "The request body must be a JSON object with the query in \"q\".");
        }

        if (ReadPaging(context) is not { } paging)
        {
            return BadPaging();
        }

        List<Dictionary<string, string>> rows;
        try
        {
            var query = SuiteQlQuery.Parse(body["q"]!.GetValue<string>());
            rows = _store.Read(query.Table, query.Run);
        }
        catch (SuiteQlException e)
        {
            return NetSuiteErrors.Error(400, "INVALID_PARAMETER", "Invalid search query. Detailed unprocessed description follows. " + e.Message);
        }

        if (rows.Count > MaxSuiteQlResults && paging.Offset + paging.Limit > MaxSuiteQlResults)
        {
            return NetSuiteErrors.Error(400, "INVALID_PARAMETER", "SuiteQL returns at most 100,000 results; narrow the query.");
        }

        return Collection(SuiteQlPath, rows, paging.Limit, paging.Offset, null);
    }

    private static (int Limit, int Offset)? ReadPaging(HttpContext context)
    {
        var limit = 1000;
        var offset = 0;
        if ((context.Request.Query["limit"].FirstOrDefault() is { } l && (!int.TryParse(l, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 1000))
            || (context.Request.Query["offset"].FirstOrDefault() is { } o && (!int.TryParse(o, CultureInfo.InvariantCulture, out offset) || offset < 0)))
        {
            return null;
        }

        return (limit, offset);
    }

    private static IResult BadPaging() =>
        NetSuiteErrors.Error(400, "INVALID_PARAMETER", "Invalid query parameter value: limit must be between 1 and 1000 and offset must not be negative.");

    private static IResult UnknownType(string type) =>
        NetSuiteErrors.Error(404, "INVALID_ID", $"Record type '{type}' does not exist or is not supported by REST web services. The sandbox serves: {string.Join(", ", NsRecordType.All.Keys)}.");

    /// <summary>A collection response: links (previous/first/next/last/self), count, hasMore, items, offset, totalResults.</summary>
    private IResult Collection(string path, List<Dictionary<string, string>> rows, int limit, int offset, Func<Dictionary<string, string>, string>? itemLink)
    {
        var page = rows.Skip(offset).Take(limit).ToList();
        var hasMore = offset + page.Count < rows.Count;
        var self = new Uri(BaseUrl, path.TrimStart('/'));
        string Link(int off) => $"{self}?limit={limit.ToString(CultureInfo.InvariantCulture)}&offset={off.ToString(CultureInfo.InvariantCulture)}";
        var links = new JsonArray();
        if (offset > 0)
        {
            links.Add(new JsonObject { ["rel"] = "previous", ["href"] = Link(Math.Max(0, offset - limit)) });
            links.Add(new JsonObject { ["rel"] = "first", ["href"] = Link(0) });
        }

        if (hasMore)
        {
            links.Add(new JsonObject { ["rel"] = "next", ["href"] = Link(offset + limit) });
            links.Add(new JsonObject { ["rel"] = "last", ["href"] = Link((rows.Count - 1) / limit * limit) });
        }

        links.Add(new JsonObject { ["rel"] = "self", ["href"] = Link(offset) });
        var items = new JsonArray();
        foreach (var row in page)
        {
            var item = new JsonObject
            {
                ["links"] = itemLink is null ? new JsonArray() : new JsonArray(new JsonObject { ["rel"] = "self", ["href"] = itemLink(row) }),
            };
            foreach (var (k, v) in row)
            {
                item[k] = v;
            }

            items.Add(item);
        }

        var response = new JsonObject
        {
            ["links"] = links,
            ["count"] = page.Count,
            ["hasMore"] = hasMore,
            ["items"] = items,
            ["offset"] = offset,
            ["totalResults"] = rows.Count,
        };
        return Results.Content(response.ToJsonString(), "application/vnd.oracle.resource+json; type=collection");
    }

    private JsonObject StatsJson()
    {
        var stats = _store.Stats.ToJson();
        stats["requestCount"] = Options.RequestCount;
        stats["authenticationFailures"] = Options.AuthenticationFailures;
        stats["concurrencyRejections"] = Options.ConcurrencyRejections;
        stats["maxConcurrentRequests"] = Options.MaxConcurrentRequests;
        stats["inOutage"] = Options.InOutage;
        stats["records"] = new JsonObject([.. NsRecordType.All.Values.Select(t => KeyValuePair.Create(t.Name, (JsonNode?)_store.Count(t)))]);
        stats["normalize"] = _store.Normalizer.ToJson();
        return stats;
    }

    /// <summary>
    /// <c>POST /_sandbox/silent-edit</c> (<see cref="SilentEdit"/>): sets fields of a record, or
    /// removes it, behind the API's change tracking: lastModifiedDate stays, no <c>deletedrecord</c>
    /// entry, not counted as a write. An unknown type, id or field is a 4xx naming it.
    /// </summary>
    private async Task<IResult> SilentEditAsync(HttpContext context)
    {
        return await SteerAsync(context, body =>
        {
            var edit = SilentEdit.Parse(body);
            var type = NsRecordType.All.GetValueOrDefault(edit.Type)
                ?? throw new SteeringException($"type: the sandbox serves {string.Join(", ", NsRecordType.All.Keys)}, not '{edit.Type}'.");
            if (!long.TryParse(edit.Id, System.Globalization.NumberStyles.None, CultureInfo.InvariantCulture, out var id) || !_store.SilentEdit(type, id, edit.Fields))
            {
                throw new SteeringException($"id: no {type.Name} with internal id '{edit.Id}' in the sandbox.", 404);
            }
        });
    }

    /// <summary>
    /// <c>POST /_sandbox/reset</c>: clears every fault knob, the normalization, the counters and the
    /// stats; with <c>{"records": true}</c> it also forgets every record (ids keep counting up).
    /// </summary>
    private async Task<IResult> ResetAsync(HttpContext context)
    {
        return await SteerAsync(context, body =>
        {
            SteeringKnobs.RejectUnknown(body, "", "records");
            Options.ResetFaults();
            Options.ResetCounters();
            _store.Normalizer.Reset();
            _store.Stats.Reset();
            if (body["records"] is { } records && SteeringKnobs.Bool(records, "records"))
            {
                _store.Clear();
            }
        });
    }

    /// <summary>
    /// <c>POST /_sandbox/faults</c> with any of: <c>latencyMs</c>, <c>errorRate</c> (0..1),
    /// <c>concurrencyLimit</c>, <c>throttle {count, retryAfterSeconds}</c>, <c>outageSeconds</c> (0 ends it),
    /// <c>rejectedExternalIds [..]</c>, <c>rejectedCompanyNames [..]</c>,
    /// <c>normalize {phone, trim, case}</c>. An unknown key is a 400 naming it, and nothing is changed.
    /// </summary>
    private async Task<IResult> SetFaultsAsync(HttpContext context)
    {
        return await SteerAsync(context, body =>
        {
            SteeringKnobs.RejectUnknown(body, "", "latencyMs", "errorRate", "concurrencyLimit", "throttle", "outageSeconds", "rejectedExternalIds", "rejectedCompanyNames", "normalize");

            // Validate everything before changing anything, so a bad request changes nothing.
            var latency = body["latencyMs"] is { } l ? TimeSpan.FromMilliseconds(SteeringKnobs.Number(l, "latencyMs", 0, 600_000)) : (TimeSpan?)null;
            var errorRate = body["errorRate"] is { } e ? SteeringKnobs.Number(e, "errorRate", 0, 1) : (double?)null;
            var limit = body["concurrencyLimit"] is { } c ? (int)SteeringKnobs.Number(c, "concurrencyLimit", 1, 1000) : (int?)null;
            (int Count, TimeSpan RetryAfter)? throttle = null;
            if (body["throttle"] is { } t)
            {
                if (t is not JsonObject throttleKnob)
                {
                    throw new SteeringException("throttle: expected an object {\"count\": n, \"retryAfterSeconds\": s}.");
                }

                SteeringKnobs.RejectUnknown(throttleKnob, "throttle.", "count", "retryAfterSeconds");
                throttle = ((int)SteeringKnobs.Number(throttleKnob["count"] ?? 1, "throttle.count", 0, 1_000_000),
                    TimeSpan.FromSeconds(throttleKnob["retryAfterSeconds"] is { } ra ? SteeringKnobs.Number(ra, "throttle.retryAfterSeconds", 0, 3600) : 1));
            }

            var outage = body["outageSeconds"] is { } o ? TimeSpan.FromSeconds(SteeringKnobs.Number(o, "outageSeconds", 0, 86_400)) : (TimeSpan?)null;
            var rejectedIds = Strings(body["rejectedExternalIds"], "rejectedExternalIds");
            var rejectedNames = Strings(body["rejectedCompanyNames"], "rejectedCompanyNames");
            if (body["normalize"] is { } n && n is not JsonObject)
            {
                throw new SteeringException("normalize: expected an object {\"phone\", \"trim\", \"case\"}.");
            }

            var trial = new ValueNormalizer();
            if (body["normalize"] is JsonObject normalize)
            {
                trial.Apply(normalize);
                _store.Normalizer.Apply(normalize);
            }

            if (latency is { } latencyValue)
            {
                Options.Latency = latencyValue;
            }

            if (errorRate is { } rate)
            {
                Options.ErrorRate = rate;
            }

            if (limit is { } limitValue)
            {
                Options.ConcurrencyLimit = limitValue;
            }

            if (throttle is { } throttleValue)
            {
                Options.ThrottleNext(throttleValue.Count, throttleValue.RetryAfter);
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

            if (rejectedIds is not null)
            {
                Options.RejectedExternalIds.Clear();
                foreach (var id in rejectedIds)
                {
                    Options.RejectedExternalIds[id] = true;
                }
            }

            if (rejectedNames is not null)
            {
                Options.RejectedCompanyNames.Clear();
                foreach (var name in rejectedNames)
                {
                    Options.RejectedCompanyNames[name] = true;
                }
            }
        });
    }

    private static List<string>? Strings(JsonNode? value, string key) => value switch
    {
        null => null,
        JsonArray a => [.. a.Select(v => SteeringKnobs.Text(v, key + "[]") ?? throw new SteeringException($"{key}: null is not a value."))],
        _ => throw new SteeringException($"{key}: expected an array of strings."),
    };

    private async Task<IResult> SteerAsync(HttpContext context, Action<JsonObject> steer)
    {
        JsonObject body;
        if (context.Request.ContentLength is 0 || (context.Request.ContentLength is null && !context.Request.Headers.ContainsKey("Transfer-Encoding")))
        {
            body = [];
        }
        else if (await ReadBodyAsync(context) is { } parsed)
        {
            body = parsed;
        }
        else
        {
            return InvalidJson();
        }

        try
        {
            steer(body);
        }
        catch (SteeringException e)
        {
            return NetSuiteErrors.Error(e.Status, e.Status == 404 ? "NONEXISTENT_ID" : "INVALID_PARAMETER", e.Message);
        }
        catch (RecordValidationException e)
        {
            return NetSuiteErrors.Error(400, e.Code, e.Message);
        }

        return Results.Content(StatsJson().ToJsonString(), "application/json");
    }

    private string RecordUrl(NsRecordType type, long id) =>
        new Uri(BaseUrl, RecordRoot.TrimStart('/') + "/" + type.Name + "/" + id.ToString(CultureInfo.InvariantCulture)).ToString();

    private IResult Write(HttpContext context, NsRecordType type, Func<long> write)
    {
        try
        {
            var id = write();
            context.Response.Headers.Location = RecordUrl(type, id);
            return Results.NoContent();
        }
        catch (RecordValidationException e)
        {
            return NetSuiteErrors.Error(400, e.Code, e.Message, e.Path);
        }
        catch (KeyNotFoundException)
        {
            return NetSuiteErrors.NotFound();
        }
        catch (InvalidOperationException e)
        {
            return NetSuiteErrors.Error(400, "INVALID_CONTENT", "Error while accessing resource: " + e.Message);
        }
    }

    private long? Resolve(NsRecordType type, string key) =>
        key.StartsWith("eid:", StringComparison.Ordinal)
            ? _store.ResolveExternalId(type, key[4..])
            : long.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : null;

    private static HashSet<string> Replace(HttpContext context) =>
        [.. context.Request.Query["replace"].SelectMany(v => (v ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))];

    private static async Task<JsonObject?> ReadBodyAsync(HttpContext context)
    {
        try
        {
            return await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static IResult InvalidJson() =>
        NetSuiteErrors.Error(400, "INVALID_CONTENT", "The request could not be understood by the server due to malformed syntax.");

    private JsonObject Render(NsRecordType type, long id, JsonObject fields, DateTimeOffset created, DateTimeOffset modified, bool expand)
    {
        var self = RecordUrl(type, id);
        var result = new JsonObject
        {
            ["links"] = new JsonArray(new JsonObject { ["rel"] = "self", ["href"] = self }),
            ["id"] = id.ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (k, v) in fields)
        {
            result[k] = v?.DeepClone();
        }

        // Sublists come as links unless the client asks for expandSubResources=true.
        foreach (var sublist in type.Fields.Where(f => f.Type == NsFieldType.Sublist))
        {
            if (!expand)
            {
                result[sublist.Name] = new JsonObject { ["links"] = new JsonArray(new JsonObject { ["rel"] = "self", ["href"] = self + "/" + sublist.Name }) };
            }
            else
            {
                result[sublist.Name] ??= new JsonObject { ["items"] = new JsonArray() };
            }
        }

        foreach (var reference in type.Fields.Where(f => f.Type == NsFieldType.Reference))
        {
            if (result[reference.Name] is JsonObject r && r["refName"] is null && reference.References == "customer"
                && long.TryParse(r["id"]?.ToString(), CultureInfo.InvariantCulture, out var refId) && _store.Get(NsRecordType.Customer, refId) is { } target)
            {
                r["refName"] = target.Fields["entityId"]?.DeepClone();
            }
        }

        result["dateCreated"] = created.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        result["lastModifiedDate"] = modified.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        return result;
    }
}

/// <summary>A host lifetime that leaves process signals to the embedding program.</summary>
internal sealed class EmbeddedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
