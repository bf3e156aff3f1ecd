using System.Text.Json.Nodes;
using CdcSync.Conflicts;
using CdcSync.Connectors;
using CdcSync.Replication;
using CdcSync.Tests.EndToEnd;
using NpgsqlTypes;

namespace CdcSync.Tests.Conflicts;

/// <summary>
/// The interleaving the hub alone cannot see: a Salesforce edit is on its way to NetSuite while
/// NetSuite holds its own newer edit of the same field that no poll has read yet. The NetSuite edit
/// is made in the sandbox's store inside the outbound connector's WriteAsync, right before the
/// pipeline's write, so the order is fixed without timing. Without the outbound precondition the
/// write overwrites the NetSuite edit in NetSuite and nothing is recorded.
/// </summary>
public sealed class OutboundPreconditionTests
{
    [Fact]
    public async Task AnEditWrittenTowardNetSuite_DoesNotOverwriteNetSuitesUnreadNewerEdit_TheConflictIsDecidedAndRecorded()
    {
        var gate = new EditBeforeWrite();
        await using var rig = await TwoWayRig.StartAsync(wrapOutbound: c => c.Name == "netsuite" ? gate.Wrap(c) : c);

        var accountId = rig.Salesforce.Insert("Account", new JsonObject { ["Name"] = "Precondition Co", ["Phone"] = "(415) 555-0100", ["BillingCity"] = "Oakland" });
        long customer = 0;
        await rig.WaitUntilAsync("the customer in NetSuite", async () =>
        {
            var hubId = await rig.ScalarAsync<Guid?>("SELECT hub_id FROM sf_accounts WHERE id = $1", accountId);
            customer = hubId is null ? 0 : rig.NetSuite.FindByExternalId("sf-" + hubId) ?? 0;
            return customer != 0;
        });
        await rig.QuietAsync();
        var before = await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.conflicts");

        // The next write of ns_customers toward NetSuite first waits past the Salesforce edit's second
        // (NetSuite stamps have 1 s precision; the NetSuite edit must be the later one), then edits the
        // phone in NetSuite as a user would.
        gate.Arm(async () =>
        {
            await Task.Delay(TimeSpan.FromMilliseconds(1100));
            rig.NetSuite.EditRecord("customer", customer, new JsonObject { ["phone"] = "4155550188" });
        });
        rig.Salesforce.Update(accountId, new JsonObject { ["Phone"] = "(415) 555-0177" });

        await rig.WaitUntilAsync("the NetSuite edit decided and in both systems", async () =>
            gate.Fired
            && Digits(rig.NetSuite.GetCustomer(customer)?["phone"]) == "4155550188"
            && Digits(rig.Salesforce.Get(accountId)?["Phone"]) == "4155550188"
            && await rig.ScalarAsync<long>("SELECT count(*) FROM cdc.conflicts") > before);
        await rig.QuietAsync();

        Assert.Equal("4155550188", Digits(rig.NetSuite.GetCustomer(customer)?["phone"]));
        Assert.Equal("4155550188", Digits(rig.Salesforce.Get(accountId)?["Phone"]));
        var conflicts = (await new ConflictService(rig.Hub).ListAsync(true, null, 10, CancellationToken.None)).Where(c => c.Field == "phone").ToList();
        var conflict = Assert.Single(conflicts);
        Assert.Equal(("last_write_wins", "resolved"), (conflict.Policy, conflict.Status));
        Assert.EndsWith("netsuite", conflict.Decision, StringComparison.Ordinal);
        Assert.Equal("4155550188", Digits(JsonNode.Parse(conflict.DecidedValue!)));
        Assert.NotNull(conflict.HubModifiedAt);
        Assert.NotNull(conflict.IncomingModifiedAt);
    }

    private static string Digits(JsonNode? phone) => new((phone?.ToString() ?? string.Empty).Where(char.IsAsciiDigit).ToArray());

    /// <summary>Runs an action once, inside the connector's WriteAsync, before the first batch carrying an ns_customers change.</summary>
    private sealed class EditBeforeWrite
    {
        private Func<Task>? _action;

        public bool Fired { get; private set; }

        public void Arm(Func<Task> action) => _action = action;

        public IOutboundConnector Wrap(IOutboundConnector inner) => new Wrapped(inner, this);

        private async Task BeforeAsync(IReadOnlyList<ChangeEvent> changes)
        {
            if (_action is { } action && changes.Any(c => c.Relation.Name == "ns_customers" && c.Kind == ChangeKind.Update))
            {
                _action = null;
                await action();
                Fired = true;
            }
        }

        private sealed class Wrapped(IOutboundConnector inner, EditBeforeWrite gate) : IOutboundConnector
        {
            public string Name => inner.Name;

            public Task<NpgsqlLogSequenceNumber> ReadCheckpointAsync(CancellationToken cancellationToken) => inner.ReadCheckpointAsync(cancellationToken);

            public async Task WriteAsync(IReadOnlyList<ChangeEvent> changes, CancellationToken cancellationToken)
            {
                await gate.BeforeAsync(changes);
                await inner.WriteAsync(changes, cancellationToken);
            }

            public Task CommitAsync(NpgsqlLogSequenceNumber checkpoint, CancellationToken cancellationToken) => inner.CommitAsync(checkpoint, cancellationToken);

            public Task AbortAsync(CancellationToken cancellationToken) => inner.AbortAsync(cancellationToken);

            public ValueTask DisposeAsync() => inner.DisposeAsync();
        }
    }
}
