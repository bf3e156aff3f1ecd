namespace CdcSync.Alerts;

internal enum AlertSeverity
{
    Warning,
    Error,
}

/// <summary>
/// A problem an <see cref="IAlertSource"/> sees now. <see cref="Key"/> is stable for as long as the
/// problem lasts (<c>check:customers_without_email</c>, <c>dead-letters:crm</c>) and starts with the
/// source's name; <see cref="Text"/> is one line for a person and may change while the problem lasts
/// (a count going up) without a new alert.
/// </summary>
internal sealed record AlertProblem(string Key, AlertSeverity Severity, string Text);
