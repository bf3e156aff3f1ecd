using CdcSync.Resilience;

namespace CdcSync.Configuration;

/// <summary>One thing wrong with a config or with what it points to.</summary>
internal sealed record ConfigProblem(string Message, FailureKind Kind = FailureKind.Permanent);
