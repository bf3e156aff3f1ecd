using System.ComponentModel.DataAnnotations;

namespace CdcSync.Connectors.Postgres;

/// <summary>Where one hub table lands in the target database.</summary>
public sealed class PostgresTableMapping
{
    /// <summary>Target table as schema.name (default: the hub table's schema and name).</summary>
    public string? Target { get; set; }

    /// <summary>Hub column to target column. Empty: every hub column, same name. Hub columns left out are not written.</summary>
    public Dictionary<string, string> Columns { get; set; } = [];
}

public sealed class PostgresConnectorOptions
{
    // DataAnnotations passes ErrorMessage through string.Format: braces are doubled.
    [Required(ErrorMessage = "ConnectionString is required for a postgres connector (e.g. \"${{CDCSYNC_TARGET_DB}}\").")]
    public string ConnectionString { get; set; } = "";

    /// <summary>Schema in the target that holds CdcSync's checkpoint table. Default: cdcsync.</summary>
    [Required]
    [StringLength(63, MinimumLength = 1)]
    public string CheckpointSchema { get; set; } = "cdcsync";

    /// <summary>Hub table (schema.name) to its mapping; hub tables routed here but not listed map to the same name.</summary>
    public Dictionary<string, PostgresTableMapping> Tables { get; set; } = [];
}
