using NpgsqlTypes;

namespace CdcSync.Pipeline;

/// <summary>
/// Keeps WAL behind the applied position so `cdcsync replay` has something to re-read: the slot is
/// confirmed at <see cref="Floor"/>, which trails the applied position by what the worker read
/// within <c>age</c>, capped at <c>bytes</c>. The age part needs to know when WAL was read, so the
/// window samples (time, position) once per acknowledgement tick; samples are few because only the
/// newest one older than the age is kept.
/// </summary>
internal sealed class ReplayWindow(long bytes, TimeSpan age, TimeProvider time)
{
    private readonly Queue<(DateTimeOffset At, NpgsqlLogSequenceNumber Position)> _samples = new();
    private NpgsqlLogSequenceNumber _ageFloor;

    public bool Enabled => bytes > 0;

    /// <summary>Records that everything up to <paramref name="position"/> was applied now.</summary>
    public void Observe(NpgsqlLogSequenceNumber position)
    {
        if (!Enabled || age <= TimeSpan.Zero)
        {
            return;
        }

        var now = time.GetUtcNow();
        if (_samples.Count == 0 || _samples.Last().Position < position)
        {
            _samples.Enqueue((now, position));
        }

        // Everything sampled before now - age may be released; the newest such sample is the floor.
        while (_samples.Count > 0 && _samples.Peek().At <= now - age)
        {
            _ageFloor = _samples.Dequeue().Position;
        }
    }

    /// <summary>The position the slot may be confirmed at when <paramref name="applied"/> is applied everywhere.</summary>
    public NpgsqlLogSequenceNumber Floor(NpgsqlLogSequenceNumber applied)
    {
        if (!Enabled || applied == default)
        {
            return applied;
        }

        var raw = (ulong)applied;
        var bySize = new NpgsqlLogSequenceNumber(raw > (ulong)bytes ? raw - (ulong)bytes : 0);
        if (age <= TimeSpan.Zero)
        {
            return bySize;
        }

        var floor = _ageFloor > bySize ? _ageFloor : bySize;
        return floor < applied ? floor : applied;
    }
}
