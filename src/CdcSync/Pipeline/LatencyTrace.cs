using System.Diagnostics.Tracing;
using System.Globalization;
using System.Text;

namespace CdcSync.Pipeline;

/// <summary>
/// A cheap per-transaction timeline of the outbound pipeline for finding latency stalls, off unless
/// <c>CDCSYNC_LATENCY_TRACE=FILE</c> is set: when the reader decoded each commit (beside the hub's
/// commit time), when it waited for the server, when the router handed changes to a writer, when
/// the writer took them, and when each target commit started, finished its writes and ended; beside
/// those the runtime's GC pauses, gaps of a dedicated thread that should wake every millisecond
/// (the process was not scheduled or was suspended), thread-pool queueing delays over 2 ms and JIT time.
/// Entries go to a preallocated array and are written to FILE as CSV by a background thread, once
/// a second; <c>bench/latency-trace.py</c> reads it. When off, every call is one static read.
/// </summary>
internal static class LatencyTrace
{
    /// <summary>Whether tracing is on (fixed at start).</summary>
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("CDCSYNC_LATENCY_TRACE") is { Length: > 0 };

    private const int Capacity = 1 << 20;
    private static readonly Entry[] Entries = Enabled ? new Entry[Capacity] : [];
    private static int _next = -1;
    private static GcListener? _gc;

    private struct Entry
    {
        public char Kind;
        public ulong Lsn;
        public long At;
        public long Other;
        public long Count;
        public long Mid;
    }

    static LatencyTrace()
    {
        if (!Enabled)
        {
            return;
        }

        var path = Environment.GetEnvironmentVariable("CDCSYNC_LATENCY_TRACE")!;
        _gc = new GcListener();
        new Thread(() => Probe()) { IsBackground = true, Name = "latency-trace probe", Priority = ThreadPriority.AboveNormal }.Start();
        new Thread(() => Flush(path)) { IsBackground = true, Name = "latency-trace writer" }.Start();
    }

    /// <summary>Microseconds since the Unix epoch, on the clock PostgreSQL's commit timestamps use.</summary>
    public static long Now() => (TimeProvider.System.GetUtcNow().UtcTicks - DateTime.UnixEpoch.Ticks) / 10;

    private static long Micros(DateTime utc) => (utc.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    /// <summary>The reader decoded a commit: its LSN and hub commit time.</summary>
    public static void Received(ulong lsn, DateTime commitTimeUtc) => Add('r', lsn, Now(), Micros(commitTimeUtc), 0);

    /// <summary>The reader waited from <paramref name="since"/> until now: handing held changes over until <paramref name="handedOver"/>, then for the server.</summary>
    public static void Waited(long since, long handedOver) => Add('w', 0, Now(), since, 0, handedOver);

    /// <summary>A step of a connector's commit (<paramref name="kind"/>: f awaiting the last flush, m the checkpoint row with COMMIT) took from <paramref name="since"/> until now.</summary>
    public static void Step(char kind, long since) => Add(kind, 0, Now(), since, 0);

    /// <summary>The router handed a writer an item whose last transaction end is <paramref name="lsn"/> (0: none).</summary>
    public static void HandedOver(ulong lsn, int entries) => Add('h', lsn, Now(), 0, entries);

    /// <summary>A writer took an item from its channel.</summary>
    public static void Taken(ulong lsn, int entries) => Add('t', lsn, Now(), 0, entries);

    /// <summary>A target commit up to <paramref name="lsn"/>: started at <paramref name="started"/>, writes done at <paramref name="written"/>, ended now.</summary>
    public static void Committed(ulong lsn, long started, long written, int changes) => Add('c', lsn, Now(), started, changes, written);

    /// <summary>The slot was acknowledged up to <paramref name="lsn"/>, the status update taking from <paramref name="since"/> to now.</summary>
    public static void Acknowledged(ulong lsn, long since) => Add('a', lsn, Now(), since, 0);

    private static void Add(char kind, ulong lsn, long at, long other, long count, long mid = 0)
    {
        if (!Enabled)
        {
            return;
        }

        var i = Interlocked.Increment(ref _next);
        if (i >= Capacity)
        {
            return;
        }

        Entries[i] = new Entry { Kind = kind, Lsn = lsn, At = at, Other = other, Count = count, Mid = mid };
    }

    private static void Probe()
    {
        var last = Now();
        var queued = 0L;
        var ticks = 0;
        var jitSoFar = 0L;
        var methodsSoFar = 0L;
        while (true)
        {
            Thread.Sleep(1);
            var now = Now();
            if (now - last > 4_000)
            {
                Add('s', 0, now, last, 0);
            }

            last = now;
            if (ticks % 100 == 0)
            {
                // JIT work in the last ~100 ms (tiered compilation keeps recompiling hot methods for a while after start).
                var jit = (long)System.Runtime.JitInfo.GetCompilationTime().TotalMicroseconds;
                var methods = System.Runtime.JitInfo.GetCompiledMethodCount();
                if (jit > jitSoFar)
                {
                    Add('j', 0, now, now - (jit - jitSoFar), methods - methodsSoFar);
                }

                jitSoFar = jit;
                methodsSoFar = methods;
            }

            if (++ticks % 5 == 0 && Interlocked.Read(ref queued) == 0)
            {
                Interlocked.Exchange(ref queued, now);
                ThreadPool.UnsafeQueueUserWorkItem(
                    _ =>
                    {
                        var at = Interlocked.Exchange(ref queued, 0);
                        var ran = Now();
                        if (ran - at > 2_000)
                        {
                            Add('q', 0, ran, at, 0);
                        }
                    },
                    null);
            }
        }
    }

    private static void Flush(string path)
    {
        using var file = new StreamWriter(path, append: false, Encoding.ASCII);
        file.WriteLine("kind,lsn,at_us,other_us,count,mid_us");
        var written = 0;
        while (true)
        {
            Thread.Sleep(1000);
            var end = Math.Min(Volatile.Read(ref _next) + 1, Capacity);
            // An entry is claimed before it is filled: leave the newest few for the next round.
            end = Math.Max(written, end - 64);
            for (; written < end; written++)
            {
                var e = Entries[written];
                file.Write(e.Kind);
                file.Write(',');
                file.Write(e.Lsn.ToString(CultureInfo.InvariantCulture));
                file.Write(',');
                file.Write(e.At.ToString(CultureInfo.InvariantCulture));
                file.Write(',');
                file.Write(e.Other.ToString(CultureInfo.InvariantCulture));
                file.Write(',');
                file.Write(e.Count.ToString(CultureInfo.InvariantCulture));
                file.Write(',');
                file.WriteLine(e.Mid.ToString(CultureInfo.InvariantCulture));
            }

            file.Flush();
        }
    }

    /// <summary>GC pauses (suspension to restart) and each collection's generation, from the runtime's own events.</summary>
    private sealed class GcListener : EventListener
    {
        private long _suspended;
        private long _generation;

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
            {
                EnableEvents(eventSource, EventLevel.Informational, (EventKeywords)0x1);
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            var at = (e.TimeStamp.ToUniversalTime().Ticks - DateTime.UnixEpoch.Ticks) / 10;
            switch (e.EventName)
            {
                case "GCSuspendEEBegin_V1":
                    _suspended = at;
                    break;
                case "GCStart_V2":
                    _generation = e.Payload is { Count: > 1 } p ? Convert.ToInt64(p[1], CultureInfo.InvariantCulture) : -1;
                    break;
                case "GCRestartEEEnd_V1":
                    if (_suspended != 0)
                    {
                        Add('g', 0, at, _suspended, _generation);
                        _suspended = 0;
                    }

                    break;
            }
        }
    }
}
