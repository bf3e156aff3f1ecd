namespace CdcSync.Sandboxes.Steering;

/// <summary>A steering request a tester got wrong (unknown key, bad value): answered with 400 and this message.</summary>
public sealed class SteeringException(string message) : Exception(message);
