namespace CdcSync.Configuration;

/// <summary>How `cdcsync run` writes its log. Section "Logging".</summary>
public sealed class LoggingOptions
{
    /// <summary>text: one line per event with date and zone; json: Serilog's compact JSON, one event per line. Default: text.</summary>
    public LogFormat Format { get; set; } = LogFormat.Text;
}

public enum LogFormat
{
    /// <summary><c>2026-11-24 07:12:36.237 +00:00 INF Source: message</c>.</summary>
    Text,

    /// <summary>Serilog's compact JSON, <c>@t</c> in ISO 8601 UTC: for log shippers.</summary>
    Json,
}
