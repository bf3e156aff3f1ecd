namespace CdcSync.WebConsole;

/// <summary>What a console user may do; each role may do everything the ones before it may.</summary>
internal enum ConsoleRole
{
    /// <summary>Looks at everything, changes nothing.</summary>
    Viewer,

    /// <summary>Also decides conflicts and onboarding matches (business users).</summary>
    Reviewer,

    /// <summary>Also retries and discards dead letters.</summary>
    Operator,
}

/// <summary>A console user as the hub keeps it (never with the password hash outside <see cref="ConsoleUsers"/>).</summary>
internal sealed record ConsoleUser(string Name, ConsoleRole Role, bool Disabled, DateTime CreatedAt, DateTime? LastSignIn);
