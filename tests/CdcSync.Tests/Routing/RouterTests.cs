using CdcSync.Hub;
using CdcSync.Pipeline;
using CdcSync.Replication;
using CdcSync.Routing;
using CdcSync.Tests.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;
using NpgsqlTypes;
using static CdcSync.Tests.Pipeline.TestChanges;

namespace CdcSync.Tests.Routing;

/// <summary>
/// The router between the reader and the connector writers: which writer gets a change (route
/// table by schema and name), and that a change never goes back to the connector whose origin it
/// carries. Writers run against connectors that record what reached them.
/// </summary>
public sealed class RouterTests
{
    private const string Database = "hubdb";

    private static readonly RelationInfo Orders = Table("orders");
    private static readonly RelationInfo Customers = Table("customers", id: 16401);

    [Fact]
    public async Task Change_TableRoutedToTwoConnectors_ReachesBothAndNoOther()
    {
        await using var rig = new Rig(new() { ["public.orders"] = ["a", "b"], ["customers"] = ["c"] });

        await rig.TransactionAsync(0x100, null, Orders);
        await rig.TransactionAsync(0x200, null, Customers);

        Assert.Equal([Key(0x100, 0)], await rig.WrittenAsync("a"));
        Assert.Equal([Key(0x100, 0)], await rig.WrittenAsync("b"));
        Assert.Equal([Key(0x200, 0)], await rig.WrittenAsync("c"));
        Assert.Equal(3, rig.Router.ChangesRouted);
        Assert.Equal(0, rig.Router.ChangesSuppressedByOrigin);
    }

    [Fact]
    public async Task Change_TableNotInTheRouteTable_GoesNowhereAndNoCommitIsSent()
    {
        await using var rig = new Rig(new() { ["orders"] = ["a"] });

        await rig.TransactionAsync(0x100, null, Table("invoices", id: 16402));

        Assert.Equal(0, rig.Router.ChangesRouted);
        Assert.Equal(default, rig.Writer("a").Delivered);
        Assert.Empty(await rig.WrittenAsync("a"));
    }

    [Fact]
    public async Task Routes_MatchSchemaAndName_NotTheNameAlone()
    {
        await using var rig = new Rig(new() { ["sales.orders"] = ["a"], ["\"My.Schema\".\"Odd\"\"Name\""] = ["b"] });

        await rig.TransactionAsync(0x100, null, Orders);
        await rig.TransactionAsync(0x200, null, Table("orders", schema: "sales", id: 16410));
        await rig.TransactionAsync(0x300, null, Table("Odd\"Name", schema: "My.Schema", id: 16411));

        Assert.Equal([Key(0x200, 0)], await rig.WrittenAsync("a"));
        Assert.Equal([Key(0x300, 0)], await rig.WrittenAsync("b"));
    }

    [Fact]
    public async Task Change_WithTheConnectorsOwnOrigin_IsNotRoutedBackToIt_ButToTheOthers()
    {
        await using var rig = new Rig(new() { ["orders"] = ["a", "b"] });

        await rig.TransactionAsync(0x100, ReplicationOrigins.For(Database, "a"), Orders, Orders);

        Assert.Empty(await rig.WrittenAsync("a"));
        Assert.Equal([Key(0x100, 0), Key(0x100, 1)], await rig.WrittenAsync("b"));
        Assert.Equal(2, rig.Router.ChangesSuppressedByOrigin);
        Assert.Equal(2, rig.Router.ChangesRouted);
    }

    [Fact]
    public async Task Change_WithTheLegacyOriginName_IsNotRoutedBackToItsConnector()
    {
        await using var rig = new Rig(new() { ["orders"] = ["a", "b"] });

        Assert.Equal("cdcsync:a", ReplicationOrigins.Legacy("a"));
        await rig.TransactionAsync(0x100, "cdcsync:a", Orders);

        Assert.Empty(await rig.WrittenAsync("a"));
        Assert.Equal([Key(0x100, 0)], await rig.WrittenAsync("b"));
        Assert.Equal(1, rig.Router.ChangesSuppressedByOrigin);
    }

    [Fact]
    public async Task Change_WithOriginOfAnotherConnectorOrHub_IsRoutedToThisConnector()
    {
        await using var rig = new Rig(new() { ["orders"] = ["a", "b"] });

        // b's write reaches a; a's name under another hub database is not this hub's a.
        await rig.TransactionAsync(0x100, ReplicationOrigins.For(Database, "b"), Orders);
        await rig.TransactionAsync(0x200, ReplicationOrigins.For("otherdb", "a"), Orders);
        // A name that only starts like a's origin is not a's.
        await rig.TransactionAsync(0x300, ReplicationOrigins.For(Database, "ab"), Orders);

        Assert.Equal([Key(0x100, 0), Key(0x200, 0), Key(0x300, 0)], await rig.WrittenAsync("a"));
        Assert.Equal([Key(0x200, 0), Key(0x300, 0)], await rig.WrittenAsync("b"));
        Assert.Equal(1, rig.Router.ChangesSuppressedByOrigin);
    }

    [Fact]
    public async Task Commit_GoesOnlyToConnectorsThatReceivedAChangeOfTheTransaction()
    {
        await using var rig = new Rig(new() { ["orders"] = ["a", "b"], ["customers"] = ["c"] });

        await rig.TransactionAsync(0x100, ReplicationOrigins.For(Database, "a"), Orders);

        Assert.Equal(default, rig.Writer("a").Delivered);
        Assert.Equal(new NpgsqlLogSequenceNumber(0x100), rig.Writer("b").Delivered);
        Assert.Equal(default, rig.Writer("c").Delivered);
        Assert.Equal([Key(0x100, 0)], await rig.WrittenAsync("b"));
        Assert.Empty(rig.Commits("a"));
        Assert.Equal(["commit 0/100"], rig.Commits("b"));
        Assert.Empty(rig.Commits("c"));
    }

    /// <summary>A router over one running writer per connector named in the routes.</summary>
    private sealed class Rig : IAsyncDisposable
    {
        private readonly Dictionary<string, (ConnectorWriter Writer, RecordingConnector Connector, Task Run)> _writers = new(StringComparer.Ordinal);
        private bool _finished;

        public Rig(Dictionary<string, string[]> routes)
        {
            foreach (var name in routes.Values.SelectMany(v => v).Distinct(StringComparer.Ordinal))
            {
                var connector = new RecordingConnector(name);
                var writer = new ConnectorWriter(connector, NullLogger.Instance, capacity: 256 * 16, chunkSize: 100, maxBatchChanges: 1);
                _writers[name] = (writer, connector, Task.Run(() => writer.RunAsync(CancellationToken.None)));
            }

            Router = new Router(routes.ToDictionary(r => TableName.Parse(r.Key), r => r.Value.Select(n => _writers[n].Writer).ToArray<IRouteTarget>()), Database);
        }

        public Router Router { get; }

        public ConnectorWriter Writer(string name) => _writers[name].Writer;

        /// <summary>One transaction as the reader decodes it: one insert per relation given, then the commit.</summary>
        public async Task TransactionAsync(ulong commitLsn, string? origin, params RelationInfo[] relations)
        {
            var transaction = Transaction(commitLsn, origin);
            for (var i = 0; i < relations.Length; i++)
            {
                await Router.OnChangeAsync(Insert(relations[i], transaction, i, i, "row"), CancellationToken.None);
            }

            await Router.OnCommitAsync(transaction, CancellationToken.None);
        }

        /// <summary>Stops the stream, lets every writer drain, and returns the changes <paramref name="name"/> wrote.</summary>
        public async Task<IReadOnlyList<string>> WrittenAsync(string name)
        {
            await FinishAsync();
            return _writers[name].Connector.Written.Select(c => c.IdempotencyKey).ToList();
        }

        public IReadOnlyList<string> Commits(string name) =>
            _writers[name].Connector.Calls.Where(c => c.StartsWith("commit", StringComparison.Ordinal)).ToList();

        private async Task FinishAsync()
        {
            if (_finished)
            {
                return;
            }

            _finished = true;
            foreach (var (writer, _, _) in _writers.Values)
            {
                writer.Complete();
            }

            await Task.WhenAll(_writers.Values.Select(w => w.Run)).WaitAsync(TimeSpan.FromSeconds(30));
        }

        public async ValueTask DisposeAsync() => await FinishAsync();
    }
}
