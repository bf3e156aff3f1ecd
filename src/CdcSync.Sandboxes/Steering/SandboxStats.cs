using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CdcSync.Sandboxes.Steering;

/// <summary>
/// What a sandbox was asked to do: requests per endpoint (method and route template) and successful
/// writes per record. Tests count writes with it to prove that a change costs exactly the expected
/// writes and that echoes stop. It also sums the time each endpoint's requests spent in the sandbox
/// (arrival to the response's end, injected latency included): the API's own time, which a
/// benchmark tells apart from its client's.
/// </summary>
public sealed class SandboxStats
{
    private readonly ConcurrentDictionary<string, long> _endpoints = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _records = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _ticks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _answered = new(StringComparer.Ordinal);
    private long _writes;

    /// <summary>Successful record writes (create, update, upsert, delete) since the last reset.</summary>
    public long Writes => Interlocked.Read(ref _writes);

    /// <summary>Successful writes of one record, keyed <c>type/id</c> (e.g. <c>Account/001...</c>, <c>customer/101</c>).</summary>
    public long WritesOf(string type, string id) => _records.GetValueOrDefault(type + "/" + id);

    /// <summary>Requests to one endpoint, keyed <c>METHOD template</c> (e.g. <c>PATCH /services/rest/record/v1/{type}/{key}</c>).</summary>
    public long RequestsTo(string endpoint) => _endpoints.GetValueOrDefault(endpoint);

    /// <summary>Milliseconds one endpoint's answered requests spent in the sandbox, from arrival to the end of the response, summed.</summary>
    public double MillisecondsIn(string endpoint) => Stopwatch.GetElapsedTime(0, _ticks.GetValueOrDefault(endpoint)).TotalMilliseconds;

    /// <summary>
    /// Mean milliseconds of one endpoint's answered requests (0 before the first): a request still
    /// being answered — the last one, whose records a caller may already see stored — is not in it.
    /// </summary>
    public double MeanMillisecondsIn(string endpoint) =>
        _answered.GetValueOrDefault(endpoint) is > 0 and var answered ? MillisecondsIn(endpoint) / answered : 0;

    public void CountWrite(string type, string id)
    {
        Interlocked.Increment(ref _writes);
        _records.AddOrUpdate(type + "/" + id, 1, (_, n) => n + 1);
    }

    internal void CountRequest(HttpContext context)
    {
        var template = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText;
        var key = context.Request.Method + " " + (template is null ? "(no endpoint)" : "/" + template.TrimStart('/'));
        _endpoints.AddOrUpdate(key, 1, (_, n) => n + 1);
        var arrived = Stopwatch.GetTimestamp();
        context.Response.OnCompleted(() =>
        {
            var spent = Stopwatch.GetTimestamp() - arrived;
            _ticks.AddOrUpdate(key, spent, (_, n) => n + spent);
            _answered.AddOrUpdate(key, 1, (_, n) => n + 1);
            return Task.CompletedTask;
        });
    }

    public void Reset()
    {
        _endpoints.Clear();
        _records.Clear();
        _ticks.Clear();
        _answered.Clear();
        Interlocked.Exchange(ref _writes, 0);
    }

    public JsonObject ToJson() => new()
    {
        ["writes"] = Writes,
        ["writesPerRecord"] = new JsonObject([.. _records.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))]),
        ["requestsPerEndpoint"] = new JsonObject([.. _endpoints.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))]),
        ["millisecondsPerEndpoint"] = new JsonObject([.. _ticks.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, (JsonNode?)Math.Round(MillisecondsIn(p.Key), 1)))]),
    };
}
