using System.Buffers.Binary;
using Eventbus.V1;
using Google.Protobuf;
using Grpc.Core;

namespace CdcSync.Sandboxes.Salesforce.PubSub;

/// <summary>
/// The <c>eventbus.v1.PubSub</c> service over the sandbox's change events: GetTopic, GetSchema and
/// Subscribe (pull-based: never more events than the client asked for, replay presets LATEST,
/// EARLIEST and CUSTOM, keepalive empty batches). Every call must carry the metadata
/// <c>accesstoken</c> (a token the sandbox issued), <c>instanceurl</c> and <c>tenantid</c> (the org id).
/// Errors are gRPC statuses with Salesforce's <c>error-code</c> trailer and an rpc id in the message.
/// Publishing is refused: change events are published by the org, not by clients.
/// </summary>
internal sealed class PubSubService(ChangeEventBus bus, PubSubAuthenticator authenticator, SalesforceSandboxOptions options) : Eventbus.V1.PubSub.PubSubBase
{
    /// <summary>The most events one FetchRequest may ask for.</summary>
    public const int MaxRequested = 100;

    public override Task<TopicInfo> GetTopic(TopicRequest request, ServerCallContext context)
    {
        var rpcId = Authenticate(context);
        var schemaId = SchemaIdOf(request.TopicName, rpcId);
        return Task.FromResult(new TopicInfo
        {
            TopicName = request.TopicName,
            TenantGuid = authenticator.TenantGuid,
            CanPublish = false,
            CanSubscribe = true,
            SchemaId = schemaId,
            RpcId = rpcId,
        });
    }

    public override Task<SchemaInfo> GetSchema(SchemaRequest request, ServerCallContext context)
    {
        var rpcId = Authenticate(context);
        var schema = bus.Schemas.Values.FirstOrDefault(s => s.SchemaId == request.SchemaId)
            ?? throw Error(StatusCode.NotFound, "sfdc.platform.eventbus.grpc.schema.not.found", $"Schema not found for schema id: {request.SchemaId}", rpcId);
        return Task.FromResult(new SchemaInfo { SchemaId = schema.SchemaId, SchemaJson = schema.Json, RpcId = rpcId });
    }

    public override Task<PublishResponse> Publish(PublishRequest request, ServerCallContext context)
    {
        var rpcId = Authenticate(context);
        throw Error(StatusCode.PermissionDenied, "sfdc.platform.eventbus.grpc.publish.not.allowed", $"Publishing to {request.TopicName} is not allowed: change events are published by Salesforce", rpcId);
    }

    public override Task PublishStream(IAsyncStreamReader<PublishRequest> requestStream, IServerStreamWriter<PublishResponse> responseStream, ServerCallContext context)
    {
        var rpcId = Authenticate(context);
        throw Error(StatusCode.PermissionDenied, "sfdc.platform.eventbus.grpc.publish.not.allowed", "Publishing is not allowed: change events are published by Salesforce", rpcId);
    }

    public override async Task Subscribe(IAsyncStreamReader<FetchRequest> requestStream, IServerStreamWriter<FetchResponse> responseStream, ServerCallContext context)
    {
        var rpcId = Authenticate(context);
        var dropped = bus.StreamsToken;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, dropped);
        if (!await requestStream.MoveNext(stop.Token))
        {
            return;
        }

        var first = requestStream.Current;
        var topic = first.TopicName;
        var schema = bus.SchemaOfTopic(topic);
        if (schema is null && topic != ChangeEventBus.AllChangeEventsTopic)
        {
            throw TopicNotFound(topic, rpcId);
        }

        long position;
        long? replayId = null;
        switch (first.ReplayPreset)
        {
            case ReplayPreset.Earliest:
                position = bus.Log.EarliestPosition;
                break;
            case ReplayPreset.Custom:
                if (first.ReplayId.Length == 0)
                {
                    throw Error(StatusCode.InvalidArgument, "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed",
                        "The replay_preset field in FetchRequest is set to ReplayPreset.CUSTOM, but no Replay ID value is set", rpcId);
                }

                if (first.ReplayId.Length != sizeof(long) || BinaryPrimitives.ReadInt64BigEndian(first.ReplayId.Span) is var after && !bus.Log.CanResumeAfter(after))
                {
                    throw Error(StatusCode.InvalidArgument, "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted",
                        "The Replay ID validation failed. Ensure that the Replay ID is valid and within the retention window", rpcId);
                }

                position = after;
                replayId = after;
                break;
            default:
                position = bus.Log.LastReplayId;
                break;
        }

        var subscription = bus.Subscribed(topic, first.ReplayPreset.ToString().ToUpperInvariant(), replayId);

        var pending = 0L;
        var wake = new SemaphoreSlim(0, 1);
        using var watch = bus.Log.Watch(wake);
        Interlocked.Add(ref pending, Requested(first, rpcId));

        // Later FetchRequests only add to what the client can take; they arrive while events are sent.
        var reader = Task.Run(async () =>
        {
            while (await requestStream.MoveNext(stop.Token))
            {
                var more = requestStream.Current;
                if (more.TopicName.Length > 0 && more.TopicName != topic)
                {
                    throw Error(StatusCode.InvalidArgument, "sfdc.platform.eventbus.grpc.subscription.fetch.topic.mismatch",
                        $"The topic {more.TopicName} of a FetchRequest differs from the subscribed topic {topic}", rpcId);
                }

                Interlocked.Add(ref pending, Requested(more, rpcId));
                ChangeEventLog.Wake(wake);
            }
        }, stop.Token);

        try
        {
            var lastSent = options.TimeProvider.GetUtcNow();
            while (true)
            {
                if (reader.IsFaulted || reader.IsCanceled)
                {
                    await reader;
                }

                var wanted = (int)Math.Min(Interlocked.Read(ref pending), MaxRequested);
                if (wanted > 0)
                {
                    var (events, reached) = bus.Log.Read(position, wanted, e => schema is null ? bus.IsEnabled(e.EventName[..^"ChangeEvent".Length]) : e.EventName == schema.EventName);
                    position = reached;
                    if (events.Count > 0)
                    {
                        var left = Interlocked.Add(ref pending, -events.Count);
                        var response = new FetchResponse { LatestReplayId = ReplayId(position), RpcId = rpcId, PendingNumRequested = (int)Math.Max(0, left) };
                        response.Events.AddRange(events.Select(e => new ConsumerEvent
                        {
                            ReplayId = ReplayId(e.ReplayId),
                            Event = new ProducerEvent { Id = e.EventId, SchemaId = e.SchemaId, Payload = ByteString.CopyFrom(e.Payload) },
                        }));
                        // Counted before the write: a client may read the events before WriteAsync returns here.
                        subscription.Delivered(events[0].ReplayId, events.Count);
                        await responseStream.WriteAsync(response, stop.Token);
                        lastSent = options.TimeProvider.GetUtcNow();
                        continue;
                    }

                    if (options.TimeProvider.GetUtcNow() - lastSent >= options.PubSubKeepaliveInterval)
                    {
                        // Nothing to send while the client waits for events: an empty batch with the latest position.
                        await responseStream.WriteAsync(new FetchResponse { LatestReplayId = ReplayId(position), RpcId = rpcId, PendingNumRequested = wanted }, stop.Token);
                        lastSent = options.TimeProvider.GetUtcNow();
                    }
                }

                // A client that closed its side (no more requests) still gets what it asked for.
                var waited = wake.WaitAsync(options.PubSubKeepaliveInterval, stop.Token);
                await (reader.IsCompleted ? (Task)waited : Task.WhenAny(waited, reader));
                stop.Token.ThrowIfCancellationRequested();
            }
        }
        catch (OperationCanceledException) when (dropped.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw Error(StatusCode.Unavailable, "sfdc.platform.eventbus.grpc.service.unavailable", "The connection was closed by the server (a dropped stream)", rpcId);
        }
    }

    public override Task ManagedSubscribe(IAsyncStreamReader<ManagedFetchRequest> requestStream, IServerStreamWriter<ManagedFetchResponse> responseStream, ServerCallContext context)
    {
        var rpcId = Authenticate(context);
        throw Error(StatusCode.Unimplemented, "sfdc.platform.eventbus.grpc.managed.subscription.not.supported", "The sandbox has no managed subscriptions; use Subscribe", rpcId);
    }

    internal static ByteString ReplayId(long replayId)
    {
        var bytes = new byte[sizeof(long)];
        BinaryPrimitives.WriteInt64BigEndian(bytes, replayId);
        return ByteString.CopyFrom(bytes);
    }

    private static int Requested(FetchRequest request, string rpcId) => request.NumRequested switch
    {
        < 0 => throw Error(StatusCode.InvalidArgument, "sfdc.platform.eventbus.grpc.subscription.fetch.requested.events.invalid",
            "The requested number of events in a fetch request must not be negative", rpcId),
        > MaxRequested => MaxRequested,
        var n => n,
    };

    private string SchemaIdOf(string topicName, string rpcId)
    {
        if (bus.SchemaOfTopic(topicName) is { } schema)
        {
            return schema.SchemaId;
        }

        // The ChangeEvents channel carries several schemas; it has no single one.
        return topicName == ChangeEventBus.AllChangeEventsTopic ? string.Empty : throw TopicNotFound(topicName, rpcId);
    }

    private string Authenticate(ServerCallContext context)
    {
        var rpcId = Guid.NewGuid().ToString("D");
        if (options.InOutage)
        {
            // The outageSeconds knob takes the org's Pub/Sub API down with its REST API.
            throw Error(StatusCode.Unavailable, "sfdc.platform.eventbus.grpc.service.unavailable", "The Pub/Sub API service is unavailable", rpcId);
        }

        var headers = context.RequestHeaders;
        if (!authenticator.IsValid(headers.GetValue("accesstoken"), headers.GetValue("instanceurl"), headers.GetValue("tenantid")))
        {
            throw Error(StatusCode.Unauthenticated, "sfdc.platform.eventbus.grpc.service.auth.error",
                "An authentication exception occurred. Provide valid authentication via metadata headers (accesstoken, instanceurl, tenantid)", rpcId);
        }

        return rpcId;
    }

    private static RpcException TopicNotFound(string topicName, string rpcId) =>
        Error(StatusCode.NotFound, "sfdc.platform.eventbus.grpc.topic.not.found",
            $"Topic not found or not selected for change notifications: {topicName}", rpcId);

    private static RpcException Error(StatusCode code, string errorCode, string message, string rpcId) =>
        new(new Status(code, $"{message} rpcId: {rpcId}"), new Metadata { { "error-code", errorCode }, { "rpc-id", rpcId } });
}
