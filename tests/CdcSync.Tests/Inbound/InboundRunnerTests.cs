using System.Net;
using System.Text.Json.Nodes;
using CdcSync.Connectors;
using CdcSync.Replication;
using CdcSync.Tests.EndToEnd;
using NpgsqlTypes;

namespace CdcSync.Tests.Inbound;

/// <summary>The inbound direction runs beside the outbound pipeline, not inside it.</summary>
public sealed class InboundRunnerTests
{
    /// <summary>
    /// NetSuite's writer fails (a 503 past its retries) and the outbound side restarts from the slot;
    /// the inbound pollers are not restarted with it (the same connectors, never re-created) and the
    /// change still reaches NetSuite after the restart.
    /// </summary>
    [Fact]
    public async Task AnOutboundRestart_LeavesTheInboundPollersRunning()
    {
        var failing = new FailFirstWrite("ns_customers");
        await using var rig = await TwoWayRig.StartAsync(wrapOutbound: c => c.Name == "netsuite" ? failing.Wrap(c) : c);
        var created = rig.InboundConnectorsCreated;
        Assert.Equal(2, created);

        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Restart Co", ["Phone"] = "(415) 555-0300" });
        await rig.WaitUntilAsync("the customer in NetSuite after the outbound restart", async () =>
        {
            var hubId = await rig.ScalarAsync<Guid?>("SELECT hub_id FROM sf_accounts WHERE id = $1", accountId);
            return failing.Failed && hubId is not null && rig.NetSuite.FindByExternalId("sf-" + hubId) is not null;
        });

        // Salesforce is still polled by the same connectors: a later edit arrives too.
        rig.Salesforce.Update(accountId, new JsonObject { ["Phone"] = "(415) 555-0301" });
        await rig.WaitUntilAsync("the later edit in the hub", async () =>
            await rig.ScalarAsync<string?>("SELECT phone FROM sf_accounts WHERE id = $1", accountId) is { } phone && phone.EndsWith("0301", StringComparison.Ordinal));

        Assert.True(rig.Runner.Restarts >= 1, "the outbound side should have restarted once");
        Assert.Equal(created, rig.InboundConnectorsCreated);
    }

    /// <summary>Fails the first write that carries a change of a table, as a NetSuite 503 past the retries would.</summary>
    private sealed class FailFirstWrite(string table)
    {
        private int _failed;

        private string Table => table;

        public bool Failed => Volatile.Read(ref _failed) == 1;

        public IOutboundConnector Wrap(IOutboundConnector inner) => new Wrapped(inner, this);

        private sealed class Wrapped(IOutboundConnector inner, FailFirstWrite gate) : IOutboundConnector
        {
            public string Name => inner.Name;

            public Task<NpgsqlLogSequenceNumber> ReadCheckpointAsync(CancellationToken cancellationToken) => inner.ReadCheckpointAsync(cancellationToken);

            public Task WriteAsync(IReadOnlyList<ChangeEvent> changes, CancellationToken cancellationToken) =>
                changes.Any(c => c.Relation.Name == gate.Table) && Interlocked.Exchange(ref gate._failed, 1) == 0
                    ? throw new HttpRequestException("NetSuite answered 503 Service Unavailable (simulated)", null, HttpStatusCode.ServiceUnavailable)
                    : inner.WriteAsync(changes, cancellationToken);

            public Task CommitAsync(NpgsqlLogSequenceNumber checkpoint, CancellationToken cancellationToken) => inner.CommitAsync(checkpoint, cancellationToken);

            public Task AbortAsync(CancellationToken cancellationToken) => inner.AbortAsync(cancellationToken);

            public ValueTask DisposeAsync() => inner.DisposeAsync();
        }
    }
}
