using System.ComponentModel.DataAnnotations;
using CdcSync.Hub;

namespace CdcSync.Connectors;

/// <summary>
/// A reference field whose id in the system the hub may not know yet when the row is written (the
/// parent was created by the hub and its id comes back later): resolved from the parent's hub row
/// at send time. Each connector's subclass names the parent's id column by default.
/// </summary>
public abstract class LookupOptions
{
    /// <summary>Column of the parent's id in the system, e.g. <c>accountid</c> or <c>entity</c>.</summary>
    [Required]
    public string Column { get; set; } = string.Empty;

    /// <summary>Column of the parent's hub key, e.g. <c>account_hub_id</c>.</summary>
    [Required]
    public string HubKeyColumn { get; set; } = string.Empty;

    /// <summary>The parent's staging table, e.g. <c>sf_accounts</c>.</summary>
    [Required]
    public string ParentTable { get; set; } = string.Empty;

    /// <summary>The parent table's key column. Default <c>hub_id</c>.</summary>
    public string ParentKeyColumn { get; set; } = "hub_id";

    /// <summary>The parent table's column holding the system's id (default per connector).</summary>
    public string ParentIdColumn { get; set; } = string.Empty;

    /// <summary>
    /// The question this lookup asks the hub. A method, not a property: the config binder and the
    /// config schema read every public property.
    /// </summary>
    public ParentLookup Parent() => new(ParentTable, ParentKeyColumn, ParentIdColumn);
}
