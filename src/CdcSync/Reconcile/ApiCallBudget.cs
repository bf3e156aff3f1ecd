namespace CdcSync.Reconcile;

/// <summary>
/// The API calls a reconcile run makes, counted at the HTTP layer of its own clients (every
/// request to a system, retries included) and capped: the request past the cap is not sent.
/// </summary>
internal sealed class ApiCallBudget(long? max)
{
    private long _used;

    public long Used => Interlocked.Read(ref _used);

    public long? Max { get; } = max;

    /// <summary>Takes one call from the budget, or throws <see cref="ApiCallCapReachedException"/> when it is spent.</summary>
    public void Take()
    {
        var used = Interlocked.Increment(ref _used);
        if (Max is { } max && used > max)
        {
            Interlocked.Decrement(ref _used);
            throw new ApiCallCapReachedException(max);
        }
    }
}

/// <summary>A reconcile run reached its API call cap (<c>--max-api-calls</c>, <c>Reconcile:MaxApiCalls</c>).</summary>
internal sealed class ApiCallCapReachedException(long max)
    : Exception($"the API call cap ({max}) was reached before every system was read")
{
    public long Max { get; } = max;
}

/// <summary>Counts each request against a <see cref="ApiCallBudget"/> before sending it.</summary>
internal sealed class CountingHandler(ApiCallBudget budget) : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        budget.Take();
        return base.SendAsync(request, cancellationToken);
    }
}

/// <summary>
/// The HTTP clients of a reconcile run: their own connection pool, every request counted. A
/// connector registry built on this factory gets its own system clients (they are kept per
/// factory), so the worker's running pipeline neither shares nor spends this run's budget.
/// </summary>
internal sealed class CountingHttpClientFactory(ApiCallBudget budget) : IHttpClientFactory, IDisposable
{
    private readonly SocketsHttpHandler _sockets = new() { PooledConnectionLifetime = TimeSpan.FromMinutes(5) };

    public HttpClient CreateClient(string name) =>
        new(new CountingHandler(budget) { InnerHandler = _sockets }, disposeHandler: false) { Timeout = Timeout.InfiniteTimeSpan };

    public void Dispose() => _sockets.Dispose();
}
