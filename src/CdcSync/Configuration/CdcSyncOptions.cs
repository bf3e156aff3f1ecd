using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace CdcSync.Configuration;

/// <summary>The hub and how the worker reads it. Section "Hub".</summary>
public sealed partial class HubOptions : IValidatableObject
{
    /// <summary>Hub connection string. Default: ${CDCSYNC_DB}.</summary>
    [Required(ErrorMessage = "Hub:ConnectionString is required (or set CDCSYNC_DB).")]
    public string ConnectionString { get; set; } = "${CDCSYNC_DB}";

    /// <summary>Logical replication slot name (lower-case letters, digits, underscores). Default: cdcsync.</summary>
    [RegularExpression("^[a-z0-9_]{1,63}$", ErrorMessage = "Hub:Slot must be 1-63 lower-case letters, digits or underscores (a PostgreSQL rule for slot names).")]
    public string Slot { get; set; } = "cdcsync";

    /// <summary>Publication name. Default: cdcsync.</summary>
    [Required]
    [StringLength(63, MinimumLength = 1)]
    public string Publication { get; set; } = "cdcsync";

    /// <summary>Ask for binary values (PostgreSQL 14+). Default: true.</summary>
    public bool Binary { get; set; } = true;

    /// <summary>Stream large in-progress transactions (PostgreSQL 14+), spooled to disk until commit. Default: true.</summary>
    public bool Streaming { get; set; } = true;

    /// <summary>How often an idle hub gets a heartbeat so the slot keeps advancing. Default: 10 s.</summary>
    [DurationRange("100ms", "1h")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the slot's confirmed position is reported. Default: 1 s.</summary>
    [DurationRange("50ms", "10m")]
    public TimeSpan StatusInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Changes buffered per connector before the reader waits. Default: 5000 (20000 held 30-40 MB more at peak for no throughput, docs/BENCHMARKS.md).</summary>
    [Range(16, 10_000_000)]
    public int ChannelCapacity { get; set; } = 5_000;

    /// <summary>Most megabytes of row data buffered per connector before the reader waits. Default: 64.</summary>
    [Range(1, 65536)]
    public int MaxMegabytesInFlight { get; set; } = 64;

    /// <summary>How long a connector waits at a transaction boundary for the next transaction before committing. Default: 0 (commit as soon as nothing is queued; what arrives during a commit makes the next batch: 40,000 changes/s p50 12.6 -> 4.1 ms, p99 51.6 -> 39.2 ms against 2 ms, docs/BENCHMARKS.md).</summary>
    [DurationRange("0", "1s")]
    public TimeSpan CommitLinger { get; set; } = TimeSpan.Zero;

    /// <summary>Longest a batch of transactions waits for its target commit (bounds latency under load). Default: 10 ms (bench/results/HISTORY.md: 50 ms put the p50 of 5,000 one-row transactions/s at 20 ms; 10 ms costs no backlog throughput).</summary>
    [DurationRange("0", "1m")]
    public TimeSpan MaxCommitDelay { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Changes handed to a connector per write call. Default: 5000 (see <see cref="ChannelCapacity"/>).</summary>
    [Range(1, 1_000_000)]
    public int ChunkSize { get; set; } = 5_000;

    /// <summary>Most changes in one target commit (several transactions are grouped up to this). Default: 200000.</summary>
    [Range(1, 10_000_000)]
    public int MaxBatchChanges { get; set; } = 200_000;

    /// <summary>How often inbound connectors ask their system for changes when caught up. Default: 5 s.</summary>
    [DurationRange("50ms", "1h")]
    public TimeSpan InboundPollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>First wait before restarting after a transient failure (outage, restart of a server). Default: 1 s.</summary>
    [DurationRange("10ms", "10m")]
    public TimeSpan InitialRestartDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long the pipeline must run without failing before the restart backoff starts over from InitialRestartDelay. Default: 30 s.</summary>
    [DurationRange("1s", "1h")]
    public TimeSpan HealthyPeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest wait between restarts after a failure (backoff doubles from InitialRestartDelay, with jitter). Default: 30 s.</summary>
    [DurationRange("1s", "1h")]
    public TimeSpan MaxRestartDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Replay window, by size: the slot is confirmed at most this many bytes of WAL behind what
    /// every connector has applied, so `cdcsync replay` can go back that far. Also the cap of the
    /// age window. 0 turns the replay window off. Default: 1 GiB.
    /// </summary>
    public long ReplayRetentionBytes { get; set; } = 1L << 30;

    /// <summary>
    /// Replay window, by age: WAL the worker read within this long is kept, up to
    /// <see cref="ReplayRetentionBytes"/>; older WAL is released. 00:00:00 keeps exactly
    /// <see cref="ReplayRetentionBytes"/>. Default: 24 h.
    /// </summary>
    [DurationRange("0", "30d")]
    public TimeSpan ReplayRetentionAge { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Where the worker serves /healthz, /readyz and /metrics; empty turns it off. Default: http://127.0.0.1:9187.</summary>
    public string MetricsUrl { get; set; } = "http://127.0.0.1:9187";

    /// <summary>How often the worker logs a one-line progress summary and records its status in cdc.connector_status. Default: 30 s.</summary>
    [DurationRange("1s", "1h")]
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Rules no attribute says well. ReplayRetentionBytes has only a lower bound, and the options
    /// validation source generator would print [Range(0L, long.MaxValue)] as "between 0 and
    /// 9.223372036854776E+18" (it drops a Range's ErrorMessage); the generated validator calls this.
    /// </summary>
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext validationContext)
    {
        if (ReplayRetentionBytes < 0)
        {
            yield return new ValidationResult("Hub:ReplayRetentionBytes must be 0 or more (0 turns the replay window off).", [nameof(ReplayRetentionBytes)]);
        }
    }
}

/// <summary>
/// Root of the config file. Each property is a top-level section: the unknown-key check knows the
/// sections from here (ConfigSchema.Sections); ConnectorConfig.BindAll and
/// ConnectorConfig.AddCdcSyncOptions bind each and run its generated validator.
/// </summary>
public sealed class CdcSyncOptions
{
    public HubOptions Hub { get; set; } = new();

    public LoggingOptions Logging { get; set; } = new();

    /// <summary>Where alerts go and the thresholds that make a problem (off without Alerts:WebhookUrl).</summary>
    public AlertsOptions Alerts { get; set; } = new();
    public ConsoleOptions Console { get; set; } = new();

    /// <summary>Hub table (schema.table) to the names of the connectors it is sent to.</summary>
    public Dictionary<string, string[]> Routes { get; set; } = [];

    /// <summary>Connector sections by name; each has a Type (postgres, salesforce, netsuite, webhook).</summary>
    public Dictionary<string, IConfigurationSection> Connectors { get; set; } = [];

    public Reconcile.ReconcileOptions Reconcile { get; set; } = new();
}

/// <summary>Loads a config file and validates the sections that are not connectors; every problem names its key.</summary>
internal static partial class ConfigLoader
{
    // ${VAR} must be set; ${VAR:-default} falls back to default (possibly empty) when VAR is unset or empty, as in the shell.
    [GeneratedRegex(@"\$\{(?<name>[A-Za-z_][A-Za-z0-9_]*)(?<optional>:-(?<default>[^}]*))?\}")]
    private static partial Regex Variable();

    /// <summary>
    /// JSON file, then CDCSYNC__* environment variables (CDCSYNC__Hub__Slot overrides Hub:Slot),
    /// then ${VAR} in any value replaced from the environment (unset: an error naming the key), and
    /// ${VAR:-default} by VAR, or by default when VAR is unset or empty (<c>${VAR:-}</c>: empty, the key's default).
    /// </summary>
    public static IConfiguration Build(string? path)
    {
        var builder = new ConfigurationBuilder();
        if (path is not null)
        {
            if (!File.Exists(path))
            {
                throw new OperatorException($"Config file {path} does not exist; pass --config with the path of a JSON config (see examples/).");
            }

            CheckJson(path);
            builder.AddJsonFile(Path.GetFullPath(path), optional: false, reloadOnChange: false);
        }

        builder.AddEnvironmentVariables("CDCSYNC__");
        IConfigurationRoot raw;
        try
        {
            raw = builder.Build();
        }
        catch (InvalidDataException e)
        {
            throw new OperatorException($"Config file {path} is not valid JSON ({e.InnerException?.Message ?? e.Message}); fix it and start again.");
        }
        catch (FormatException e)
        {
            throw new OperatorException($"Config file {path} is not valid JSON ({e.Message}); fix it and start again.");
        }

        var expanded = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in raw.AsEnumerable())
        {
            expanded[key] = value is null ? null : Expand(key, value);
        }

        if (!expanded.ContainsKey("Hub:ConnectionString"))
        {
            expanded["Hub:ConnectionString"] = Environment.GetEnvironmentVariable("CDCSYNC_DB")
                ?? throw new OperatorException("Hub:ConnectionString is not set in the config and CDCSYNC_DB is not set; set one of them.");
        }

        return new ConfigurationBuilder().AddInMemoryCollection(expanded).Build();
    }

    /// <summary>Replaces ${VAR} and ${VAR:-default} in one config value; an optional form that comes out empty leaves the key unset (its default applies).</summary>
    internal static string? Expand(string key, string value)
    {
        var optional = false;
        var result = Variable().Replace(value, m =>
        {
            var name = m.Groups["name"].Value;
            var set = Environment.GetEnvironmentVariable(name);
            if (m.Groups["optional"].Success)
            {
                optional = true;
                return string.IsNullOrEmpty(set) ? m.Groups["default"].Value : set;
            }

            return set ?? throw new OperatorException($"Config key {key} uses ${{{name}}}, but that environment variable is not set; set it, write the value in the config, or write ${{{name}:-}} to make it optional.");
        });
        return optional && result.Length == 0 ? null : result;
    }

    /// <summary>
    /// Reads the file as the JSON configuration provider does (comments and trailing commas
    /// allowed), so a syntax error is reported where it is: the provider only says it could not
    /// parse the file.
    /// </summary>
    private static void CheckJson(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OperatorException($"config {path}: cannot read it ({e.Message}); check the path and its permissions.");
        }

        // A byte order mark is fine for the provider, which reads a stream; the span parser would stop at it.
        if (bytes.AsSpan().StartsWith("\uFEFF"u8))
        {
            bytes = bytes[3..];
        }

        try
        {
            using var document = JsonDocument.Parse(bytes, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            var line = (int)(e.LineNumber ?? 0);
            var column = Column(bytes, line, (int)(e.BytePositionInLine ?? 0));
            // System.Text.Json appends its own zero-based position to the message; ours replaces it.
            var what = JsonPosition().Replace(e.Message, string.Empty).TrimEnd('.', ' ');
            throw new OperatorException($"config {path}: invalid JSON at line {line + 1}, column {column}: {what}; fix the file.");
        }
    }

    /// <summary>One-based column in characters of a zero-based byte position on a zero-based line.</summary>
    private static int Column(byte[] bytes, int line, int bytePosition)
    {
        var start = 0;
        for (var i = 0; i < line && start < bytes.Length; i++)
        {
            var next = Array.IndexOf(bytes, (byte)'\n', start);
            start = next < 0 ? bytes.Length : next + 1;
        }

        var length = Math.Clamp(bytePosition, 0, bytes.Length - start);
        return System.Text.Encoding.UTF8.GetCharCount(bytes, start, length) + 1;
    }

    [GeneratedRegex(@"\s*(Path: \S*\s*\|\s*)?LineNumber: \d+ \| BytePositionInLine: \d+\.?\s*$")]
    private static partial Regex JsonPosition();

    /// <summary>
    /// The sections the config machinery owns, bound and checked, every problem added in order:
    /// unknown keys anywhere (a connector's keys against the options class <paramref name="connectorOptionsType"/>
    /// gives for its Type), Hub and Logging, the hub connection string, then the routes read. The
    /// connectors are the registry's to bind (ConnectorConfig.BindAll); <see cref="CheckRoutes"/> comes after them.
    /// </summary>
    internal static (CdcSyncOptions Options, List<string> Problems) BindSections(IConfiguration configuration, Func<string, Type?> connectorOptionsType)
    {
        var problems = ConfigSchema.UnknownKeys(configuration, connectorOptionsType);
        var options = new CdcSyncOptions
        {
            Hub = ConfigOptions.Bind(configuration.GetSection("Hub"), "Hub", new HubOptionsValidator(), problems),
            Logging = ConfigOptions.Bind<LoggingOptions>(configuration.GetSection("Logging"), "Logging", null, problems),
            Alerts = ConfigOptions.Bind(configuration.GetSection("Alerts"), "Alerts", new AlertsOptionsValidator(), problems),
            Reconcile = ConfigOptions.Bind(configuration.GetSection("Reconcile"), "Reconcile", new Reconcile.ReconcileOptionsValidator(), problems),
            Console = ConfigOptions.Bind(configuration.GetSection("Console"), "Console", new ConsoleOptionsValidator(), problems),
        };
        if (PrepareHubConnection(options.Hub) is { } hubProblem)
        {
            problems.Add(hubProblem);
        }

        options.Routes = ReadRoutes(configuration);
        return (options, problems);
    }

    /// <summary>Routes: at least one, each a table name sending to connectors the config defines.</summary>
    internal static void CheckRoutes(CdcSyncOptions options, List<string> problems)
    {
        if (options.Routes.Count == 0)
        {
            problems.Add("The config has no Routes: add \"Routes\": { \"schema.table\": [\"connector\"] }.");
        }

        foreach (var (table, targets) in options.Routes)
        {
            try
            {
                Replication.TableName.Parse(table);
            }
            catch (FormatException e)
            {
                problems.Add($"Routes:{table}: {e.Message}");
            }

            if (targets.Length == 0)
            {
                problems.Add($"Routes:{table} lists no connector; give at least one name from Connectors.");
            }

            foreach (var target in targets.Where(t => !options.Connectors.ContainsKey(t)))
            {
                problems.Add($"Routes:{table} sends to connector '{target}', which is not defined under Connectors (defined: {string.Join(", ", options.Connectors.Keys)}).");
            }
        }
    }

    /// <summary>
    /// A config problem the options machinery found (a host's ValidateOnStart, or IOptions.Value)
    /// as the one-line error a bad config gets everywhere else, or null when <paramref name="exception"/>
    /// is something else. The failures are config-key lines already (ConfigKeyValidator); a host
    /// with several invalid options throws them as one AggregateException.
    /// </summary>
    public static OperatorException? Explain(Exception exception)
    {
        var failures = exception switch
        {
            OptionsValidationException e => e.Failures.ToList(),
            AggregateException e when e.InnerExceptions.Count > 0 && e.InnerExceptions.All(i => i is OptionsValidationException)
                => e.InnerExceptions.SelectMany(i => ((OptionsValidationException)i).Failures).ToList(),
            _ => [],
        };
        return failures.Count > 0 ? Error(failures) : null;
    }

    /// <summary>Hub table (schema.table) to the connectors it is sent to: a list, or one name as a plain value.</summary>
    internal static Dictionary<string, string[]> ReadRoutes(IConfiguration configuration)
    {
        var routes = new Dictionary<string, string[]>();
        foreach (var route in configuration.GetSection("Routes").GetChildren())
        {
            var targets = route.GetChildren().Select(c => c.Value).Where(v => !string.IsNullOrWhiteSpace(v)).Select(v => v!).ToArray();
            if (targets.Length == 0 && route.Value is { Length: > 0 } single)
            {
                targets = [single];
            }

            routes[route.Key] = targets;
        }

        return routes;
    }

    /// <summary>
    /// Gives the hub connection string the worker's pool settings (HubConnection.WithShortIdleLifetime),
    /// or says why it does not parse. An empty one is left to [Required].
    /// </summary>
    internal static string? PrepareHubConnection(HubOptions hub)
    {
        if (string.IsNullOrWhiteSpace(hub.ConnectionString))
        {
            return null;
        }

        try
        {
            Hub.HubConnection.Parse(hub.ConnectionString, "Hub:ConnectionString");
            hub.ConnectionString = Hub.HubConnection.WithShortIdleLifetime(hub.ConnectionString);
            return null;
        }
        catch (OperatorException e)
        {
            return e.Message;
        }
    }

    internal static OperatorException Error(List<string> problems) => new(problems.Count == 1
        ? problems[0]
        : $"{problems[0]} (and {problems.Count - 1} more problems: 'cdcsync check --config FILE' lists them all)");
}
