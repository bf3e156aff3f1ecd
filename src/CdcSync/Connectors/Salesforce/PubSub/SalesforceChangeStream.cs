using System.Security.Authentication;
using CdcSync.Inbound;
using CdcSync.Resilience;
using Eventbus.V1;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace CdcSync.Connectors.Salesforce.PubSub;

/// <summary>
/// Salesforce Change Data Capture over the Pub/Sub API: subscribes to the configured topic
/// (<c>/data/ChangeEvents</c> by default: every object's change events in commit order), asks for
/// <see cref="SalesforcePubSubOptions.BatchSize"/> events at a time and more as they are applied, and
/// applies each batch to the hub through the inbound <see cref="StagingWriter"/> (the changed fields
/// only) with the replay id of its last event in the same hub transaction. A restart resumes after
/// that replay id (CUSTOM preset).
/// What the stream cannot describe is caught up by query: a gap event (GAP_*, GAP_OVERFLOW), a
/// stored replay id the server no longer retains, and the first subscription (LATEST) each ask the
/// poller for a full scan from its overlap cursor. Transient failures reconnect with capped backoff
/// (polling runs meanwhile); credentials or a topic the org refuses end the worker with the fix.
/// Events whose <c>changeOrigin</c> names this hub's client id are our own writes: applied as what
/// Salesforce made of them, never as a user's edit.
/// </summary>
internal sealed class SalesforceChangeStream(SalesforceClient client, SalesforceInboundConnector connector, StagingWriter writer, TimeProvider time, ILogger logger) : IChangeStream
{
    // The server sends nothing until the first event or keepalive, so a subscription that has not
    // failed this long after its request is taken as established.
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan InitialReconnectDelay = TimeSpan.FromSeconds(1);

    private SalesforcePubSubOptions Options => client.Options.PubSub;

    private string ConfigPath => $"Connectors:{client.Name}:PubSub";

    /// <summary>Where the replay id is kept in cdc.inbound_cursors, beside the poll cursor ('*').</summary>
    internal string CursorObject => "pubsub:" + Options.Topic;

    public TimeSpan SafetyPollInterval => Options.SafetyPollInterval;

    public async Task RunAsync(ChangeStreamLink link, CancellationToken cancellationToken)
    {
        using var channel = PubSubChannel.Create(Options, $"Connectors:{client.Name}");
        var pubSub = new Eventbus.V1.PubSub.PubSubClient(channel);
        SalesforceSession? session = null;
        var decoder = new ChangeEventDecoder(async (schemaId, ct) =>
            (await pubSub.GetSchemaAsync(new SchemaRequest { SchemaId = schemaId }, Headers(session!), deadline: time.GetUtcNow().UtcDateTime.AddSeconds(30), cancellationToken: ct)).SchemaJson);
        var delay = InitialReconnectDelay;
        var refreshed = false;
        while (true)
        {
            try
            {
                session = await client.GetSessionAsync(refreshed ? session : null, cancellationToken);
                await SubscribeAsync(pubSub, session, decoder, link, () => { delay = InitialReconnectDelay; refreshed = false; }, cancellationToken);
                logger.LogInformation("{Connector}: the Pub/Sub API closed the subscription to {Topic}; subscribing again", client.Name, Options.Topic);
                link.SetUp(false);
            }
            catch (Exception e) when (cancellationToken.IsCancellationRequested && e is OperationCanceledException or RpcException)
            {
                // gRPC reports a cancelled call as status Cancelled: at shutdown that is the end, not a failure.
                link.SetUp(false);
                return;
            }
            catch (RpcException e) when (ErrorCode(e)?.Contains(".replayid.", StringComparison.Ordinal) == true)
            {
                // Outside the retention window (or from another org): catch up by query, then start from the newest event.
                link.SetUp(false);
                logger.LogWarning("{Connector}: the Pub/Sub API no longer has the stored replay id of {Topic} ({ErrorCode}); catching up by query, then subscribing from the latest event", client.Name, Options.Topic, ErrorCode(e));
                await link.CatchUpAsync(cancellationToken);
                await writer.DeleteCursorAsync(client.Name, CursorObject, cancellationToken);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unauthenticated && !refreshed)
            {
                // Sessions expire or get revoked: one fresh token is worth one more try.
                link.SetUp(false);
                logger.LogInformation("{Connector}: the Pub/Sub API refused the session ({ErrorCode}); requesting a new access token", client.Name, ErrorCode(e));
                refreshed = true;
            }
            catch (RpcException e) when (Permanent(e) is { } fix)
            {
                link.SetUp(false);
                throw new OperatorException($"Connector {client.Name}: the Pub/Sub API at {Options.Endpoint} refused the subscription to {Options.Topic}: {e.Status.StatusCode} {ErrorCode(e)} ({Detail(e)}); {fix}");
            }
            catch (Exception e) when (e is not OperatorException and not RpcException && FailureClassifier.Classify(e) == FailureKind.Permanent)
            {
                link.SetUp(false);
                throw new OperatorException($"Inbound {client.Name}: {FailureClassifier.Describe(e)}", e);
            }
            catch (Exception e) when (e is not OperatorException)
            {
                link.SetUp(false);
                logger.LogWarning("{Connector}: Pub/Sub subscription to {Topic} failed ({Error}); polling meanwhile, reconnecting in {Delay}", client.Name, Options.Topic, e is RpcException r ? $"{r.StatusCode} {ErrorCode(r)}: {Detail(r)}" : e.Message, delay);
                try
                {
                    await Task.Delay(delay, time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, Options.MaxReconnectDelay.Ticks));
            }
        }
    }

    private async Task SubscribeAsync(Eventbus.V1.PubSub.PubSubClient pubSub, SalesforceSession session, ChangeEventDecoder decoder, ChangeStreamLink link, Action healthy, CancellationToken cancellationToken)
    {
        var clientId = client.ClientId is null ? null : await client.ClientId.GetAsync(cancellationToken);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var call = pubSub.Subscribe(Headers(session), cancellationToken: stop.Token);
        var stored = await writer.ReadCursorAsync(client.Name, CursorObject, cancellationToken);
        var first = new FetchRequest { TopicName = Options.Topic, NumRequested = Options.BatchSize };
        if (stored is not null)
        {
            first.ReplayPreset = ReplayPreset.Custom;
            first.ReplayId = ByteString.FromBase64(stored);
        }
        else
        {
            first.ReplayPreset = ReplayPreset.Latest;
        }

        await call.RequestStream.WriteAsync(first, cancellationToken);
        var responses = call.ResponseStream;
        var next = responses.MoveNext(stop.Token);
        if (await Task.WhenAny(next, Task.Delay(Settle, time, cancellationToken)) != next)
        {
            // Nothing refused the request: subscribed (events arrive when there are some).
            MarkUp(link, stored, healthy);
        }

        var outstanding = Options.BatchSize;
        while (await next)
        {
            if (!link.IsUp)
            {
                MarkUp(link, stored, healthy);
            }

            var response = responses.Current;
            outstanding = response.PendingNumRequested;
            if (response.Events.Count > 0)
            {
                await ApplyAsync(response, decoder, clientId, link, cancellationToken);
            }
            else if (!response.LatestReplayId.IsEmpty)
            {
                // A keepalive: keep its position, so a quiet topic's replay id never ages out of retention.
                await writer.ApplyInboundAsync(client.Name, [], CursorObject, response.LatestReplayId.ToBase64(), cancellationToken);
            }

            if (outstanding <= Options.BatchSize / 2)
            {
                await call.RequestStream.WriteAsync(new FetchRequest { TopicName = Options.Topic, NumRequested = Options.BatchSize - outstanding }, cancellationToken);
                outstanding = Options.BatchSize;
            }

            next = responses.MoveNext(stop.Token);
        }
    }

    private void MarkUp(ChangeStreamLink link, string? stored, Action healthy)
    {
        link.SetUp(true);
        healthy();
        logger.LogInformation("{Connector}: subscribed to {Topic} over the Pub/Sub API ({From}); polling slows to every {Interval}", client.Name, Options.Topic, stored is null ? "from the latest event" : "after the stored replay id", Options.SafetyPollInterval);
        if (stored is null)
        {
            // Subscribed from the newest event: what changed before it is the poller's to read.
            _ = link.CatchUpAsync(CancellationToken.None);
        }
    }

    /// <summary>One batch, in commit order, in one hub transaction with the last event's replay id; a gap splits it around a catch-up.</summary>
    private async Task ApplyAsync(FetchResponse response, ChangeEventDecoder decoder, string? clientId, ChangeStreamLink link, CancellationToken cancellationToken)
    {
        var records = new List<InboundRecord>();
        string? replayId = null;
        var events = 0;
        var own = 0;
        foreach (var consumed in response.Events)
        {
            var change = await decoder.DecodeAsync(consumed.Event.SchemaId, consumed.Event.Payload.ToByteArray(), cancellationToken);
            if (change.IsGap)
            {
                if (replayId is not null)
                {
                    await ApplyAsync(records, replayId, events, own, link, cancellationToken);
                    records.Clear();
                    events = own = 0;
                }

                // Changes the event does not describe: read them by query before going on. The gap's
                // replay id is kept only after that, so a crash meanwhile catches up again.
                logger.LogInformation("{Connector}: {ChangeType} event for {Entity} ({Count} records): catching up by query", client.Name, change.ChangeType, change.EntityName, change.RecordIds.Count);
                await link.CatchUpAsync(cancellationToken);
                replayId = consumed.ReplayId.ToBase64();
                await ApplyAsync([], replayId, 0, 0, link, cancellationToken);
                replayId = null;
                continue;
            }

            var ours = SalesforceClientId.IsOrigin(change.ChangeOrigin, clientId);
            foreach (var record in await connector.FromChangeEventAsync(change, ours, cancellationToken))
            {
                Collapse(records, record);
            }

            replayId = consumed.ReplayId.ToBase64();
            events++;
            own += ours ? 1 : 0;
        }

        if (replayId is not null)
        {
            await ApplyAsync(records, replayId, events, own, link, cancellationToken);
        }
    }

    /// <summary>
    /// Adds a record to the batch, or folds an update into the batch's earlier record of the same
    /// row (same origin): the batch is one transaction, so only the row's last state matters, and a
    /// burst of edits to a few records costs a statement per record, not per event.
    /// </summary>
    internal static void Collapse(List<InboundRecord> records, InboundRecord record)
    {
        if (record.UpdateOnly && !record.Deleted && record.Values.TryGetValue(record.KeyColumn, out var key))
        {
            for (var i = records.Count - 1; i >= 0; i--)
            {
                var earlier = records[i];
                if (earlier.Table == record.Table && earlier.Values.TryGetValue(record.KeyColumn, out var earlierKey) && Equals(earlierKey, key))
                {
                    if (earlier.OwnWrite != record.OwnWrite || earlier.Deleted)
                    {
                        break;
                    }

                    var merged = new Dictionary<string, object?>(earlier.Values, StringComparer.Ordinal);
                    foreach (var (column, value) in record.Values)
                    {
                        merged[column] = value;
                    }

                    records[i] = earlier with { Values = merged };
                    return;
                }
            }
        }

        records.Add(record);
    }

    private async Task ApplyAsync(List<InboundRecord> records, string replayId, int events, int own, ChangeStreamLink link, CancellationToken cancellationToken)
    {
        var missing = new List<InboundRecord>();
        var changed = await writer.ApplyInboundAsync(client.Name, records, CursorObject, replayId, cancellationToken, missing);
        if (missing.Count > 0)
        {
            // Changes of records the hub does not hold yet (made before the stream started): read whole by query.
            logger.LogInformation("{Connector}: change events name {Count} records the hub does not hold yet; catching up by query", client.Name, missing.Count);
            _ = link.CatchUpAsync(CancellationToken.None);
        }

        InboundMetrics.InboundRecords.WithLabels(client.Name).Inc(records.Count);
        if (events > 0)
        {
            logger.LogInformation("Inbound {Connector}: {Count} change events streamed ({Own} of our own writes), {Changed} rows changed", client.Name, events, own, changed);
        }
    }

    private static Metadata Headers(SalesforceSession session) => new()
    {
        { "accesstoken", session.AccessToken },
        { "instanceurl", session.InstanceUrl.ToString().TrimEnd('/') },
        { "tenantid", session.OrgId ?? string.Empty },
    };

    private static string? ErrorCode(RpcException e) => e.Trailers.GetValue("error-code");

    /// <summary>The status message without the rpc id Salesforce appends.</summary>
    private static string Detail(RpcException e)
    {
        var text = e.Status.Detail;
        var rpc = text.IndexOf(" rpcId:", StringComparison.Ordinal);
        return rpc < 0 ? text : text[..rpc];
    }

    /// <summary>The fix for a failure retrying cannot mend; null for a transient one.</summary>
    private string? Permanent(RpcException e)
    {
        if (Inner<AuthenticationException>(e.Status.DebugException) is not null)
        {
            return $"its TLS certificate is not trusted: set {ConfigPath}:CaFile to the PEM of the certificate it presents (or its CA)";
        }

        return e.StatusCode switch
        {
            StatusCode.Unauthenticated => $"check the connected app's credentials and that the integration user has the API Enabled permission (Connectors:{client.Name})",
            StatusCode.PermissionDenied => $"give the integration user the View All Data permission (or the objects' read access) needed for change events of {Options.Topic}",
            StatusCode.NotFound => $"check {ConfigPath}:Topic and enable Change Data Capture for the objects (Setup > Change Data Capture)",
            StatusCode.InvalidArgument or StatusCode.Unimplemented => $"check {ConfigPath}",
            _ => null,
        };
    }

    private static T? Inner<T>(Exception? e) where T : Exception
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is T found)
            {
                return found;
            }
        }

        return null;
    }
}
