namespace CdcSync.Checks;

/// <summary>
/// One run of a check: <see cref="FailingRows"/> offending rows and up to
/// <see cref="CheckRunner.SampleRows"/> of them as a JSON array of objects, or an
/// <see cref="Error"/> (then FailingRows is null).
/// </summary>
internal sealed record CheckRunResult(
    long RunId,
    string Name,
    string Severity,
    long? FailingRows,
    string SampleJson,
    string? Error,
    DateTimeOffset StartedAt,
    TimeSpan Elapsed)
{
    public bool FoundRows => FailingRows > 0;
}
