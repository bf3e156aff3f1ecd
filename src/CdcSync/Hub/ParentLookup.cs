namespace CdcSync.Hub;

/// <summary>
/// Where the hub finds a lookup's parents: the parent's staging table, its key column and the
/// column holding the id the system gave it. Two lookups naming the same columns ask the same question.
/// </summary>
public sealed record ParentLookup(string ParentTable, string ParentKeyColumn, string ParentIdColumn);
