using System.Text.Json.Nodes;
using CdcSync.Sandboxes.Salesforce;
using Eventbus.V1;
using Grpc.Core;

namespace CdcSync.Tests.Sandboxes.Salesforce.PubSub;

/// <summary>
/// The Salesforce sandbox's Pub/Sub API driven by a plain gRPC client of the .proto, over TLS that
/// trusts only the sandbox's certificate: change events of REST writes and user edits, flow control,
/// replay presets, retention, gap events, dropped streams, and the CDC selection the Tooling API reports.
/// </summary>
public sealed class SalesforcePubSubSandboxTests
{
    [Fact]
    public async Task Subscribe_WritesAndEdits_EventsComeInCommitOrderNeverMoreThanRequestedAndResumeAfterACustomReplayId()
    {
        await using var session = await PubSubTestSession.StartAsync(new SalesforceSandboxOptions());
        var sandbox = session.Sandbox;
        var ours = await session.CreateAsync("Account", new JsonObject { ["Name"] = "Ours", ["BillingCity"] = "Paris", ["Phone"] = "555-0100" }, client: "cdcsync-hub-1");
        await session.UpdateAsync("Account", ours, new JsonObject { ["BillingCity"] = "Lyon", ["Phone"] = null, ["Industry"] = "Retail" }, client: "cdcsync-hub-1");
        var theirs = await session.CreateAsync("Account", new JsonObject { ["Name"] = "Another app's" });
        sandbox.Update(ours, new JsonObject { ["Description"] = "a user's edit" });
        sandbox.Insert("Contact", new JsonObject { ["LastName"] = "Not an account" });
        sandbox.Delete(theirs);

        // EARLIEST, two at a time: the server keeps to what was asked for.
        using var call = session.Subscribe();
        await call.RequestStream.WriteAsync(new FetchRequest { TopicName = "/data/AccountChangeEvent", ReplayPreset = ReplayPreset.Earliest, NumRequested = 2 });
        var events = await session.ReceiveAsync(call.ResponseStream, 2, outstanding: 2);
        await call.RequestStream.WriteAsync(new FetchRequest { NumRequested = 3 });
        events.AddRange(await session.ReceiveAsync(call.ResponseStream, 3, outstanding: 3));
        var decoded = new List<DecodedEvent>();
        foreach (var e in events)
        {
            decoded.Add(await session.DecodeAsync(e));
        }

        Assert.Equal(["CREATE", "UPDATE", "CREATE", "UPDATE", "DELETE"], decoded.Select(d => d.ChangeType));
        Assert.True(decoded.Zip(decoded.Skip(1)).All(p => p.First.ReplayId < p.Second.ReplayId), "replay ids go up");
        Assert.All(decoded, d => Assert.Equal("Account", (string)d.Header["entityName"]));

        // changeOrigin names the API client from Sforce-Call-Options; a user's edit has none.
        Assert.Equal("com/salesforce/api/rest/61.0;client=cdcsync-hub-1", decoded[0].ChangeOrigin);
        Assert.Equal("com/salesforce/api/rest/61.0;client=cdcsync-hub-1", decoded[1].ChangeOrigin);
        Assert.Equal("com/salesforce/api/rest/61.0", decoded[2].ChangeOrigin);
        Assert.Equal(string.Empty, decoded[3].ChangeOrigin);

        // The create carries the values; the update only the changed ones, named in changedFields and nulledFields.
        Assert.Equal("Ours", decoded[0]["Name"]);
        Assert.Empty(decoded[0].Fields("changedFields"));
        Assert.Equal(["LastModifiedDate", "Industry", "Phone", "BillingAddress.City"], decoded[1].Fields("changedFields"));
        Assert.Equal(["Phone"], decoded[1].Fields("nulledFields"));
        Assert.Equal("Lyon", ((Avro.Generic.GenericRecord)decoded[1]["BillingAddress"]!)["City"]);
        Assert.Null(decoded[1]["Name"]);
        Assert.Equal([ours], decoded[1].RecordIds);
        Assert.Equal(sandbox.Records("Account", includeDeleted: true).Single(a => (string)a["Id"]! == ours)["LastModifiedDate"]!.GetValue<string>(),
            DateTimeOffset.FromUnixTimeMilliseconds((long)decoded[3].Header["commitTimestamp"]).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'+0000'", System.Globalization.CultureInfo.InvariantCulture));
        await call.RequestStream.CompleteAsync();

        // CUSTOM: a new subscription resumes right after the given event.
        using var resumed = session.Subscribe();
        await resumed.RequestStream.WriteAsync(new FetchRequest { TopicName = "/data/AccountChangeEvent", ReplayPreset = ReplayPreset.Custom, ReplayId = events[1].ReplayId, NumRequested = 3 });
        var after = await session.ReceiveAsync(resumed.ResponseStream, 3, outstanding: 3);
        Assert.Equal(events.Skip(2).Select(e => e.Event.Id), after.Select(e => e.Event.Id));

        // The state names each subscription's start and what it delivered.
        var state = await session.SteerAsync([]);
        var started = state["subscriptions"]!.AsArray().Select(s => $"{s!["replayPreset"]} {s["replayId"]} {s["eventsDelivered"]}");
        Assert.Equal(["EARLIEST  5", $"CUSTOM {System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(events[1].ReplayId.Span)} 3"], started);

        // /data/ChangeEvents carries every object's events.
        using var all = session.Subscribe();
        await all.RequestStream.WriteAsync(new FetchRequest { TopicName = "/data/ChangeEvents", ReplayPreset = ReplayPreset.Earliest, NumRequested = 10 });
        var everything = await session.ReceiveAsync(all.ResponseStream, 6, outstanding: 10);
        Assert.Contains(everything, e => e.Event.SchemaId == (session.Client.GetTopic(new TopicRequest { TopicName = "/data/ContactChangeEvent" }, session.Auth)).SchemaId);
    }

    [Fact]
    public async Task Subscribe_ExpiredReplayIdGapKnobAndDroppedStream_AnswerAsSalesforceDoes()
    {
        var clock = new SettableClock(DateTimeOffset.UtcNow);
        await using var session = await PubSubTestSession.StartAsync(new SalesforceSandboxOptions { TimeProvider = clock });
        var sandbox = session.Sandbox;
        var id = sandbox.Insert("Account", new JsonObject { ["Name"] = "Old" });
        using (var first = session.Subscribe())
        {
            await first.RequestStream.WriteAsync(new FetchRequest { TopicName = "/data/AccountChangeEvent", ReplayPreset = ReplayPreset.Earliest, NumRequested = 1 });
            var old = (await session.ReceiveAsync(first.ResponseStream, 1, outstanding: 1))[0];

            // 73 hours on, past the 72-hour retention: a new event, and the old replay id is refused.
            clock.Advance(TimeSpan.FromHours(73));
            await session.SignInAsync();
            sandbox.Update(id, new JsonObject { ["Name"] = "New" });
            using var expired = session.Subscribe();
            await expired.RequestStream.WriteAsync(new FetchRequest { TopicName = "/data/AccountChangeEvent", ReplayPreset = ReplayPreset.Custom, ReplayId = old.ReplayId, NumRequested = 1 });
            var refused = await Assert.ThrowsAsync<RpcException>(() => expired.ResponseStream.MoveNext(session.Timeout));
            Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
            Assert.Equal("sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted", refused.Trailers.GetValue("error-code"));
        }

        // The gap knobs: a header-only GAP_UPDATE for the record now, and one instead of the next change's event.
        await session.SteerAsync(new JsonObject { ["gap"] = new JsonObject { ["recordIds"] = new JsonArray(id) } });
        await session.SteerAsync(new JsonObject { ["gapNext"] = 1 });
        sandbox.Update(id, new JsonObject { ["Name"] = "Changed where no event could be built" });
        await session.SteerAsync(new JsonObject { ["overflow"] = new JsonObject { ["object"] = "Account" } });

        // EARLIEST starts at the oldest event still retained: the update made after the 73 hours.
        using var call = session.Subscribe();
        await call.RequestStream.WriteAsync(new FetchRequest { TopicName = "/data/AccountChangeEvent", ReplayPreset = ReplayPreset.Earliest, NumRequested = 5 });
        var received = new List<DecodedEvent>();
        foreach (var e in await session.ReceiveAsync(call.ResponseStream, 4, outstanding: 5))
        {
            received.Add(await session.DecodeAsync(e));
        }

        Assert.Equal(["UPDATE", "GAP_UPDATE", "GAP_UPDATE", "GAP_OVERFLOW"], received.Select(g => g.ChangeType));
        var gaps = received.Skip(1).ToList();
        Assert.Equal([id], gaps[0].RecordIds);
        Assert.Equal([id], gaps[1].RecordIds);
        Assert.Null(gaps[1]["Name"]);
        Assert.Empty(gaps[1].Fields("changedFields"));

        // Dropping the streams ends this one with UNAVAILABLE.
        await session.SteerAsync(new JsonObject { ["dropStreams"] = true });
        var dropped = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext(session.Timeout))
            {
            }
        });
        Assert.Equal(StatusCode.Unavailable, dropped.StatusCode);

        // A token the sandbox did not issue is refused.
        var stranger = new Metadata { { "accesstoken", "00D5g00000CdcSy!nope" }, { "instanceurl", sandbox.BaseUrl.ToString() }, { "tenantid", "00D5g00000CdcSy" } };
        var unauthenticated = Assert.Throws<RpcException>(() => session.Client.GetTopic(new TopicRequest { TopicName = "/data/AccountChangeEvent" }, stranger));
        Assert.Equal(StatusCode.Unauthenticated, unauthenticated.StatusCode);
        Assert.Equal("sfdc.platform.eventbus.grpc.service.auth.error", unauthenticated.Trailers.GetValue("error-code"));
    }

    [Fact]
    public async Task ChangeDataCaptureSelection_ToolingQueryReportsItOnlySelectedObjectsHaveTopicsAndRolledBackWritesMakeNoEvents()
    {
        await using var session = await PubSubTestSession.StartAsync(new SalesforceSandboxOptions
        {
            ChangeDataCaptureObjects = ["Account", "Opportunity"],
            PubSubKeepaliveInterval = TimeSpan.FromMilliseconds(200),
        });
        var soql = Uri.EscapeDataString("SELECT Id, SelectedEntity, EventChannel FROM PlatformEventChannelMember WHERE EventChannel = 'ChangeEvents'");
        var members = JsonNode.Parse(await session.Http.GetStringAsync($"services/data/v61.0/tooling/query?q={soql}"))!;
        Assert.Equal(["AccountChangeEvent", "OpportunityChangeEvent"], members["records"]!.AsArray().Select(r => r!["SelectedEntity"]!.GetValue<string>()).Order());

        var topic = await session.Client.GetTopicAsync(new TopicRequest { TopicName = "/data/AccountChangeEvent" }, session.Auth);
        Assert.True(topic.CanSubscribe);
        var schema = await session.Client.GetSchemaAsync(new SchemaRequest { SchemaId = topic.SchemaId }, session.Auth);
        Assert.Contains("\"ChangeEventHeader\"", schema.SchemaJson, StringComparison.Ordinal);
        var notSelected = await Assert.ThrowsAsync<RpcException>(async () => await session.Client.GetTopicAsync(new TopicRequest { TopicName = "/data/ContactChangeEvent" }, session.Auth));
        Assert.Equal(StatusCode.NotFound, notSelected.StatusCode);

        // The knob changes the selection; a contact's change makes no event while Contact is not selected.
        session.Sandbox.Insert("Contact", new JsonObject { ["LastName"] = "Unselected" });
        Assert.Equal(0, session.Sandbox.ChangeEventCount);

        // A subscriber owed events with none to send gets an empty batch with the latest position.
        using (var idle = session.Subscribe())
        {
            await idle.RequestStream.WriteAsync(new FetchRequest { TopicName = "/data/AccountChangeEvent", NumRequested = 1 });
            Assert.True(await idle.ResponseStream.MoveNext(session.Timeout));
            Assert.Empty(idle.ResponseStream.Current.Events);
            Assert.Equal(1, idle.ResponseStream.Current.PendingNumRequested);
            Assert.Equal(0, PubSubTestSession.ReplayId(idle.ResponseStream.Current.LatestReplayId));
        }

        // A Collections write rolled back (allOrNone) makes no event; a committed one an event per record.
        static JsonObject Collection(bool allOrNone, params string?[] names) => new()
        {
            ["allOrNone"] = allOrNone,
            ["records"] = new JsonArray([.. names.Select(n => (JsonNode)new JsonObject { ["attributes"] = new JsonObject { ["type"] = "Account" }, ["Name"] = n })]),
        };
        using (var rolledBack = await session.Http.PostAsync("services/data/v61.0/composite/sobjects", new StringContent(Collection(true, "Kept?", null).ToJsonString(), System.Text.Encoding.UTF8, "application/json")))
        {
            Assert.Contains("ALL_OR_NONE_OPERATION_ROLLED_BACK", await rolledBack.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(0, session.Sandbox.ChangeEventCount);
        using (var committed = await session.Http.PostAsync("services/data/v61.0/composite/sobjects", new StringContent(Collection(false, "One", "Two").ToJsonString(), System.Text.Encoding.UTF8, "application/json")))
        {
            Assert.True(committed.IsSuccessStatusCode);
        }

        Assert.Equal(2, session.Sandbox.ChangeEventCount);

        // In process, several updates in one transaction: all or none, an event per record.
        var accounts = session.Sandbox.Records("Account").Select(a => (string)a["Id"]!).ToList();
        Assert.Throws<InvalidOperationException>(() => session.Sandbox.UpdateTogether([KeyValuePair.Create(accounts[0], new JsonObject { ["Name"] = "Renamed" }), KeyValuePair.Create(accounts[1], new JsonObject { ["Name"] = null })]));
        Assert.Equal("One", session.Sandbox.Get(accounts[0])!["Name"]!.GetValue<string>());
        Assert.Equal([3L, 4L], session.Sandbox.UpdateTogether([.. accounts.Select(a => KeyValuePair.Create(a, new JsonObject { ["Description"] = "mass edit" }))]));
        await session.SteerAsync(new JsonObject { ["changeDataCapture"] = null });
        members = JsonNode.Parse(await session.Http.GetStringAsync($"services/data/v61.0/tooling/query?q={soql}"))!;
        Assert.Equal(3, members["size"]!.GetValue<int>());

        // A misspelt knob is a 400 naming it, and changes nothing.
        using var bad = await session.Http.PostAsync("_sandbox/pubsub", new StringContent("""{"gapNxt": 1, "dropStreams": true}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("gapNxt", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private sealed class SettableClock(DateTimeOffset now) : TimeProvider
    {
        private readonly Lock _gate = new();
        private DateTimeOffset _now = now;

        public override DateTimeOffset GetUtcNow()
        {
            lock (_gate)
            {
                return _now;
            }
        }

        public void Advance(TimeSpan by)
        {
            lock (_gate)
            {
                _now += by;
            }
        }
    }
}
