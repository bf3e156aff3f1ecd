using System.Security.Cryptography.X509Certificates;

namespace CdcSync.Sandboxes.Salesforce;

/// <summary>How the sandbox fails the requests of a burst (see <see cref="SalesforceSandboxOptions.FailNext"/>).</summary>
public enum SalesforceFaultKind
{
    /// <summary>503 with <c>SERVER_UNAVAILABLE</c>.</summary>
    ServiceUnavailable,

    /// <summary>403 with <c>REQUEST_LIMIT_EXCEEDED</c>, what Salesforce answers past an org's API limits.</summary>
    RequestLimitExceeded,

    /// <summary>429 with <c>REQUEST_LIMIT_EXCEEDED</c>, what a gateway in front of Salesforce may answer.</summary>
    TooManyRequests,
}

/// <summary>
/// Settings and fault knobs of a <see cref="SalesforceSandbox"/>. Credentials and limits are read at
/// start; the fault knobs can be changed at any time, by tests directly or through
/// <c>POST /_sandbox/faults</c>.
/// </summary>
public sealed class SalesforceSandboxOptions
{
    /// <summary>Client id (consumer key) the sandbox accepts by default.</summary>
    public const string DefaultClientId = "cdcsync-sandbox-client";

    /// <summary>Client secret (consumer secret) the sandbox accepts by default.</summary>
    public const string DefaultClientSecret = "cdcsync-sandbox-secret";

    /// <summary>Refresh token the sandbox accepts by default for <c>grant_type=refresh_token</c>.</summary>
    public const string DefaultRefreshToken = "cdcsync-sandbox-refresh-token";

    /// <summary>The user a JWT bearer assertion may sign in as by default (<c>sub</c>), pre-authorized for the connected app.</summary>
    public const string DefaultUsername = "integration@cdcsync.sandbox";

    /// <summary>The API version the sandbox reports as its latest; any version from 46.0 up is served.</summary>
    public const string LatestApiVersion = "61.0";

    private readonly Lock _lock = new();
    private TimeSpan _latency;
    private double _errorRate;
    private string? _rejectedName;
    private int _burstRemaining;
    private SalesforceFaultKind _burstKind;
    private TimeSpan? _burstRetryAfter;
    private DateTimeOffset? _outageUntil;
    private long _requestCount;
    private long _apiRequestCount;
    private long _tokenRequestCount;
    private long _faultedRequestCount;
    private int _tokenGeneration;
    private int _bulkJobFailures;

    /// <summary>TCP port on 127.0.0.1; 0 (default) picks a free one.</summary>
    public int Port { get; set; }

    public string ClientId { get; set; } = DefaultClientId;

    public string ClientSecret { get; set; } = DefaultClientSecret;

    public string RefreshToken { get; set; } = DefaultRefreshToken;

    /// <summary>
    /// The certificate uploaded to the connected app ("Use digital signatures"): JWT bearer assertions
    /// must carry an RS256 signature its public key verifies. Null (default): every assertion is
    /// refused with <c>invalid_grant</c> "invalid assertion", as by a connected app without one.
    /// </summary>
    public X509Certificate2? JwtCertificate { get; set; }

    /// <summary>Usernames pre-authorized for the connected app (a JWT assertion's <c>sub</c>). Default <see cref="DefaultUsername"/>.</summary>
    public List<string> JwtUsernames { get; set; } = [DefaultUsername];

    /// <summary>
    /// Audiences (<c>aud</c>) accepted besides the sandbox's own URL, which stands in for the login
    /// URL in tests. Default <c>https://login.salesforce.com</c> (a production org; a sandbox org takes
    /// <c>https://test.salesforce.com</c>).
    /// </summary>
    public List<string> JwtAudiences { get; set; } = ["https://login.salesforce.com"];

    /// <summary>How long past its <c>exp</c> an assertion is still accepted, for clocks that differ. Default 0.</summary>
    public TimeSpan JwtClockSkew { get; set; }

    /// <summary>How long an access token stays valid. Default 2 hours (Salesforce's default session timeout).</summary>
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromHours(2);

    /// <summary>API requests allowed before every request gets 403 <c>REQUEST_LIMIT_EXCEEDED</c>. Default 100,000.</summary>
    public long RequestLimit { get; set; } = 100_000;

    /// <summary>
    /// Where the counter behind new record Ids starts. Default 4096. Salesforce never hands out an Id
    /// twice; give each run of a sandbox a different start (e.g. the current Unix time) when a hub or
    /// a client may still hold Ids from an earlier run.
    /// </summary>
    public long FirstIdSequence { get; set; } = 0x1000;

    /// <summary>Records per query batch when the client sends no <c>Sforce-Query-Options: batchSize</c>. Default 2000.</summary>
    public int DefaultQueryBatchSize { get; set; } = 2000;

    /// <summary>
    /// Records per Bulk API 2.0 results page when the client sends no <c>maxRecords</c>. Default
    /// 50,000 (Salesforce sizes pages by itself; clients that need smaller ones send maxRecords).
    /// </summary>
    public int BulkResultsPageSize { get; set; } = 50_000;

    /// <summary>TCP port on 127.0.0.1 of the Pub/Sub API (gRPC over HTTP/2 with TLS); 0 (default) picks a free one.</summary>
    public int PubSubPort { get; set; }

    /// <summary>
    /// Where the Pub/Sub endpoint's self-signed certificate is written as PEM, for clients to trust.
    /// Default: a new file in the temp directory, removed when the sandbox stops.
    /// </summary>
    public string? PubSubCertificatePath { get; set; }

    /// <summary>How long a subscriber waiting for events goes without a keepalive (an empty FetchResponse). Default 270 s, as Salesforce.</summary>
    public TimeSpan PubSubKeepaliveInterval { get; set; } = TimeSpan.FromSeconds(270);

    /// <summary>How long change events stay replayable (also the <c>retentionSeconds</c> knob). Default 72 hours, as Salesforce.</summary>
    public TimeSpan ChangeEventRetention { get; set; } = TimeSpan.FromHours(72);

    /// <summary>
    /// Objects selected for Change Data Capture (PlatformEventChannelMember of the ChangeEvents
    /// channel; also the <c>changeDataCapture</c> knob). Null (default): every object the sandbox holds.
    /// </summary>
    public List<string>? ChangeDataCaptureObjects { get; set; }

    /// <summary>Clock for SystemModstamp, token expiry and outage windows.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Seed of the random numbers behind <see cref="ErrorRate"/>.</summary>
    public int RandomSeed { get; set; } = 42;

    /// <summary>Delay added to every API and token request.</summary>
    public TimeSpan Latency
    {
        get { lock (_lock) { return _latency; } }
        set { lock (_lock) { _latency = value; } }
    }

    /// <summary>Share (0..1) of API requests answered with 500 <c>UNKNOWN_EXCEPTION</c>.</summary>
    public double ErrorRate
    {
        get { lock (_lock) { return _errorRate; } }
        set { lock (_lock) { _errorRate = Math.Clamp(value, 0, 1); } }
    }

    /// <summary>
    /// A record whose Name (Account) or LastName (Contact) equals this is always rejected with
    /// <c>FIELD_CUSTOM_VALIDATION_EXCEPTION</c>, as by a validation rule.
    /// </summary>
    public string? RejectedName
    {
        get { lock (_lock) { return _rejectedName; } }
        set { lock (_lock) { _rejectedName = value; } }
    }

    /// <summary>Every request that reached the sandbox (admin endpoints excluded).</summary>
    public long RequestCount => Interlocked.Read(ref _requestCount);

    /// <summary>Requests to <c>/services/data</c>.</summary>
    public long ApiRequestCount => Interlocked.Read(ref _apiRequestCount);

    /// <summary>Requests to <c>/services/oauth2/token</c>.</summary>
    public long TokenRequestCount => Interlocked.Read(ref _tokenRequestCount);

    /// <summary>Requests failed on purpose (outage, burst, error rate).</summary>
    public long FaultedRequestCount => Interlocked.Read(ref _faultedRequestCount);

    /// <summary>The next <paramref name="count"/> API requests fail with <paramref name="kind"/>, sending <c>Retry-After</c> when given.</summary>
    public void FailNext(int count, SalesforceFaultKind kind, TimeSpan? retryAfter = null)
    {
        lock (_lock)
        {
            _burstRemaining = count;
            _burstKind = kind;
            _burstRetryAfter = retryAfter;
        }
    }

    /// <summary>Every request (token endpoint included) fails with 503 for <paramref name="duration"/> from now.</summary>
    public void StartOutage(TimeSpan duration)
    {
        lock (_lock)
        {
            _outageUntil = TimeProvider.GetUtcNow() + duration;
        }
    }

    public void EndOutage()
    {
        lock (_lock)
        {
            _outageUntil = null;
        }
    }

    public bool InOutage
    {
        get
        {
            lock (_lock)
            {
                return _outageUntil is { } until && TimeProvider.GetUtcNow() < until;
            }
        }
    }

    /// <summary>The next <paramref name="count"/> Bulk API 2.0 query jobs end in the state Failed (with an errorMessage) instead of JobComplete.</summary>
    public void FailNextBulkJobs(int count) => Interlocked.Exchange(ref _bulkJobFailures, Math.Max(0, count));

    /// <summary>Query jobs still to fail (see <see cref="FailNextBulkJobs"/>).</summary>
    public int PendingBulkJobFailures => Volatile.Read(ref _bulkJobFailures);

    /// <summary>Invalidates every access token issued so far: the next API request gets 401 <c>INVALID_SESSION_ID</c>.</summary>
    public void ExpireAccessTokens() => Interlocked.Increment(ref _tokenGeneration);

    /// <summary>Clears all fault knobs (latency, error rate, burst, outage, rejected name, failing bulk jobs).</summary>
    public void ResetFaults()
    {
        lock (_lock)
        {
            _latency = TimeSpan.Zero;
            _errorRate = 0;
            _rejectedName = null;
            _burstRemaining = 0;
            _outageUntil = null;
        }

        Interlocked.Exchange(ref _bulkJobFailures, 0);
    }

    internal int TokenGeneration => Volatile.Read(ref _tokenGeneration);

    internal long CountRequest(bool token)
    {
        Interlocked.Increment(ref _requestCount);
        if (token)
        {
            Interlocked.Increment(ref _tokenRequestCount);
            return 0;
        }

        return Interlocked.Increment(ref _apiRequestCount);
    }

    /// <summary>True when the job being created is to fail (and counts it off).</summary>
    internal bool TryTakeBulkJobFailure()
    {
        while (true)
        {
            var left = Volatile.Read(ref _bulkJobFailures);
            if (left <= 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _bulkJobFailures, left - 1, left) == left)
            {
                return true;
            }
        }
    }

    internal void CountFault() => Interlocked.Increment(ref _faultedRequestCount);

    internal bool TryTakeBurst(out SalesforceFaultKind kind, out TimeSpan? retryAfter)
    {
        lock (_lock)
        {
            kind = _burstKind;
            retryAfter = _burstRetryAfter;
            if (_burstRemaining <= 0)
            {
                return false;
            }

            _burstRemaining--;
            return true;
        }
    }
}
