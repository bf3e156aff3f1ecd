using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
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
/// A local stand-in for NetSuite's SuiteTalk REST web services, customer record and SuiteQL only:
/// token-based authentication verified like NetSuite does, the record service's paths, status codes,
/// <c>Location</c> headers and error bodies, SuiteQL paging, a per-account concurrency limit, and
/// fault knobs on <see cref="Options"/>. Data lives in memory.
/// </summary>
public sealed class NetSuiteSandbox : IAsyncDisposable
{
    private const string RecordPath = "/services/rest/record/v1/customer";
    private const string SuiteQlPath = "/services/rest/query/v1/suiteql";
    private const int MaxSuiteQlResults = 100_000;

    private readonly WebApplication _app;
    private readonly CustomerStore _store;
    private readonly TbaAuthenticator _auth;
    private readonly Random _random;
    private int _inFlight;

    private NetSuiteSandbox(WebApplication app, NetSuiteSandboxOptions options)
    {
        _app = app;
        Options = options;
        _store = new CustomerStore(options);
        _auth = new TbaAuthenticator(options);
        _random = new Random(options.RandomSeed);
    }

    public Uri BaseUrl { get; private set; } = null!;

    public NetSuiteSandboxOptions Options { get; }

    /// <summary>Number of customers held (active and inactive).</summary>
    public int CustomerCount => _store.Count;

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
    public JsonObject? GetCustomer(long internalId)
    {
        if (_store.Get(internalId) is not { } c)
        {
            return null;
        }

        return Render(internalId, c.Fields, c.Created, c.Modified, expand: true);
    }

    public long? FindByExternalId(string externalId) => _store.ResolveExternalId(externalId);

    /// <summary>Adds a customer directly, as a user in the NetSuite UI would (no HTTP, no fault knobs).</summary>
    public long SeedCustomer(JsonObject fields) => _store.Create(fields);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }

    private void Map(WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            Options.CountRequest();
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
                if (Options.Latency > TimeSpan.Zero)
                {
                    await Task.Delay(Options.Latency, context.RequestAborted);
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

        app.MapPost(RecordPath, (Delegate)CreateAsync);
        app.MapPut(RecordPath + "/{key}", (Delegate)PutAsync);
        app.MapPatch(RecordPath + "/{key}", (Delegate)PatchAsync);
        app.MapGet(RecordPath + "/{key}", (Delegate)Get);
        app.MapDelete(RecordPath + "/{key}", (Delegate)Delete);
        app.MapPost(SuiteQlPath, (Delegate)SuiteQlAsync);
    }

    private double NextDouble()
    {
        lock (_random)
        {
            return _random.NextDouble();
        }
    }

    private async Task<IResult> CreateAsync(HttpContext context)
    {
        if (await ReadBodyAsync(context) is not { } body)
        {
            return InvalidJson();
        }

        return Write(context, () => _store.Create(body));
    }

    private async Task<IResult> PutAsync(HttpContext context, string key)
    {
        if (!key.StartsWith("eid:", StringComparison.Ordinal))
        {
            return NetSuiteErrors.Error(405, "INVALID_METHOD", "PUT is supported only for upsert by external ID: /customer/eid:{externalId}.");
        }

        if (await ReadBodyAsync(context) is not { } body)
        {
            return InvalidJson();
        }

        return Write(context, () => _store.Upsert(key[4..], body, Replace(context)).Id);
    }

    private async Task<IResult> PatchAsync(HttpContext context, string key)
    {
        if (await ReadBodyAsync(context) is not { } body)
        {
            return InvalidJson();
        }

        if (Resolve(key) is not { } id)
        {
            return NetSuiteErrors.NotFound();
        }

        return Write(context, () => _store.Update(id, body, Replace(context)) ? id : throw new KeyNotFoundException());
    }

    private IResult Get(HttpContext context, string key)
    {
        if (Resolve(key) is not { } id || _store.Get(id) is not { } c)
        {
            return NetSuiteErrors.NotFound();
        }

        var expand = context.Request.Query["expandSubResources"] == "true";
        return Results.Content(Render(id, c.Fields, c.Created, c.Modified, expand).ToJsonString(), "application/vnd.oracle.resource+json; type=singular-resource");
    }

    private IResult Delete(string key) =>
        Resolve(key) is { } id && _store.Delete(id) ? Results.NoContent() : NetSuiteErrors.NotFound();

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

        var limit = 1000;
        var offset = 0;
        if ((context.Request.Query["limit"].FirstOrDefault() is { } l && (!int.TryParse(l, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 1000))
            || (context.Request.Query["offset"].FirstOrDefault() is { } o && (!int.TryParse(o, CultureInfo.InvariantCulture, out offset) || offset < 0)))
        {
            return NetSuiteErrors.Error(400, "INVALID_PARAMETER", "Invalid query parameter value: limit must be between 1 and 1000 and offset must not be negative.");
        }

        List<Dictionary<string, string>> rows;
        try
        {
            var query = SuiteQlQuery.Parse(body["q"]!.GetValue<string>());
            rows = _store.Read(query.Run);
        }
        catch (SuiteQlException e)
        {
            return NetSuiteErrors.Error(400, "INVALID_PARAMETER", "Invalid search query. Detailed unprocessed description follows. " + e.Message);
        }

        if (rows.Count > MaxSuiteQlResults && offset + limit > MaxSuiteQlResults)
        {
            return NetSuiteErrors.Error(400, "INVALID_PARAMETER", "SuiteQL returns at most 100,000 results; narrow the query.");
        }

        var page = rows.Skip(offset).Take(limit).ToList();
        var hasMore = offset + page.Count < rows.Count;
        var self = new Uri(BaseUrl, SuiteQlPath.TrimStart('/'));
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
            var item = new JsonObject { ["links"] = new JsonArray() };
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

    private IResult Write(HttpContext context, Func<long> write)
    {
        try
        {
            var id = write();
            context.Response.Headers.Location = new Uri(BaseUrl, RecordPath.TrimStart('/') + "/" + id.ToString(CultureInfo.InvariantCulture)).ToString();
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

    private long? Resolve(string key) =>
        key.StartsWith("eid:", StringComparison.Ordinal)
            ? _store.ResolveExternalId(key[4..])
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

    private JsonObject Render(long id, JsonObject fields, DateTimeOffset created, DateTimeOffset modified, bool expand)
    {
        var self = new Uri(BaseUrl, RecordPath.TrimStart('/') + "/" + id.ToString(CultureInfo.InvariantCulture)).ToString();
        var result = new JsonObject
        {
            ["links"] = new JsonArray(new JsonObject { ["rel"] = "self", ["href"] = self }),
            ["id"] = id.ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (k, v) in fields)
        {
            result[k] = v?.DeepClone();
        }

        if (!expand)
        {
            result["addressBook"] = new JsonObject { ["links"] = new JsonArray(new JsonObject { ["rel"] = "self", ["href"] = self + "/addressBook" }) };
        }
        else
        {
            result["addressBook"] ??= new JsonObject { ["items"] = new JsonArray() };
        }

        if (result["subsidiary"] is JsonObject sub)
        {
            sub["refName"] ??= sub["id"]?.ToString() == "1" ? "Parent Company" : "Subsidiary " + sub["id"];
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
