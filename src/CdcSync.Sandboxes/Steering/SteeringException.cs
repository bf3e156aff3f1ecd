namespace CdcSync.Sandboxes.Steering;

/// <summary>A steering request a tester got wrong (unknown key, bad value, a record that is not there): answered with <paramref name="status"/> (400 unless told) and this message.</summary>
public sealed class SteeringException(string message, int status = 400) : Exception(message)
{
    public int Status { get; } = status;
}
