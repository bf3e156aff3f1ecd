using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Numerics;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Avro.Generic;
using Avro.IO;
using CdcSync.Sandboxes.Salesforce;
using Eventbus.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace CdcSync.Tests.Sandboxes.Salesforce.PubSub;

/// <summary>
/// A Salesforce sandbox and a plain gRPC client of the Pub/Sub API's .proto: signed in with a token
/// from the sandbox's OAuth endpoint, trusting the sandbox's certificate from its PEM file (and nothing
/// else), writing records over REST and decoding events with Apache Avro from the schemas GetSchema gives.
/// </summary>
internal sealed class PubSubTestSession : IAsyncDisposable
{
    private readonly Dictionary<string, Avro.RecordSchema> _schemas = [];
    private readonly GrpcChannel _channel;

    private PubSubTestSession(SalesforceSandbox sandbox, HttpClient http, GrpcChannel channel)
    {
        Sandbox = sandbox;
        Http = http;
        _channel = channel;
        Client = new Eventbus.V1.PubSub.PubSubClient(channel);
    }

    public SalesforceSandbox Sandbox { get; }

    public HttpClient Http { get; }

    public Eventbus.V1.PubSub.PubSubClient Client { get; }

    public Metadata Auth { get; private set; } = [];

    /// <summary>Bounds every wait of a test on the stream.</summary>
    public CancellationToken Timeout { get; } = new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token;

    public static async Task<PubSubTestSession> StartAsync(SalesforceSandboxOptions options)
    {
        var sandbox = await SalesforceSandbox.StartAsync(options, CancellationToken.None);
        var ca = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(sandbox.PubSubCertificatePath));
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                CertificateChainPolicy = new X509ChainPolicy
                {
                    TrustMode = X509ChainTrustMode.CustomRootTrust,
                    CustomTrustStore = { ca },
                    RevocationMode = X509RevocationMode.NoCheck,
                },
            },
        };
        var channel = GrpcChannel.ForAddress($"https://{sandbox.PubSubEndpoint}", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
        var session = new PubSubTestSession(sandbox, new HttpClient { BaseAddress = sandbox.BaseUrl }, channel);
        await session.SignInAsync();
        return session;
    }

    /// <summary>A new access token (client credentials), for REST and the Pub/Sub metadata.</summary>
    public async Task SignInAsync()
    {
        using var response = await Http.PostAsync("services/oauth2/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = Sandbox.Options.ClientId,
            ["client_secret"] = Sandbox.Options.ClientSecret,
        }));
        var token = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        var accessToken = token["access_token"]!.GetValue<string>();
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        Auth = new Metadata
        {
            { "accesstoken", accessToken },
            { "instanceurl", token["instance_url"]!.GetValue<string>() },
            { "tenantid", accessToken.Split('!')[0] },
        };
    }

    /// <summary>Creates a record over REST, naming the client in Sforce-Call-Options when given; returns its Id.</summary>
    public async Task<string> CreateAsync(string type, JsonObject fields, string? client = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"services/data/v61.0/sobjects/{type}") { Content = Json(fields) };
        if (client is not null)
        {
            request.Headers.Add("Sforce-Call-Options", $"client={client}");
        }

        using var response = await Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonNode.Parse(body)!["id"]!.GetValue<string>();
    }

    public async Task UpdateAsync(string type, string id, JsonObject fields, string? client = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Patch, $"services/data/v61.0/sobjects/{type}/{id}") { Content = Json(fields) };
        if (client is not null)
        {
            request.Headers.Add("Sforce-Call-Options", $"client={client}");
        }

        using var response = await Http.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>POST /_sandbox/pubsub.</summary>
    public async Task<JsonNode> SteerAsync(JsonObject knobs)
    {
        using var response = await Http.PostAsync("_sandbox/pubsub", Json(knobs));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonNode.Parse(body)!;
    }

    public AsyncDuplexStreamingCall<FetchRequest, FetchResponse> Subscribe() =>
        Client.Subscribe(Auth, cancellationToken: Timeout);

    /// <summary>
    /// Reads FetchResponses until <paramref name="count"/> events came, asserting none carries more
    /// events than the client had asked for and not yet received (<paramref name="outstanding"/>).
    /// </summary>
    public async Task<List<ConsumerEvent>> ReceiveAsync(IAsyncStreamReader<FetchResponse> responses, int count, int outstanding)
    {
        var events = new List<ConsumerEvent>();
        while (events.Count < count)
        {
            Assert.True(await responses.MoveNext(Timeout), $"The stream ended after {events.Count} of {count} events.");
            var response = responses.Current;
            Assert.True(response.Events.Count <= outstanding - events.Count, $"A FetchResponse brought {response.Events.Count} events when {outstanding - events.Count} were asked for.");
            events.AddRange(response.Events);
            Assert.Equal(outstanding - events.Count, response.PendingNumRequested);
        }

        return events;
    }

    /// <summary>The event decoded with its schema (from GetSchema).</summary>
    public async Task<DecodedEvent> DecodeAsync(ConsumerEvent consumerEvent)
    {
        var schemaId = consumerEvent.Event.SchemaId;
        if (!_schemas.TryGetValue(schemaId, out var schema))
        {
            var info = await Client.GetSchemaAsync(new SchemaRequest { SchemaId = schemaId }, Auth, cancellationToken: Timeout);
            _schemas[schemaId] = schema = (Avro.RecordSchema)Avro.Schema.Parse(info.SchemaJson);
        }

        var record = new GenericDatumReader<GenericRecord>(schema, schema).Read(null!, new BinaryDecoder(new MemoryStream(consumerEvent.Event.Payload.ToByteArray())));
        return new DecodedEvent(schema, record, ReplayId(consumerEvent.ReplayId));
    }

    public static long ReplayId(Google.Protobuf.ByteString replayId) => System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(replayId.Span);

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        Http.Dispose();
        await Sandbox.DisposeAsync();
    }

    private static StringContent Json(JsonNode node) => new(node.ToJsonString(), Encoding.UTF8, "application/json");
}

/// <summary>A change event read with Apache Avro; bitmap fields decoded here, independently of the sandbox.</summary>
internal sealed record DecodedEvent(Avro.RecordSchema Schema, GenericRecord Record, long ReplayId)
{
    public GenericRecord Header => (GenericRecord)Record["ChangeEventHeader"];

    public string ChangeType => ((GenericEnum)Header["changeType"]).Value;

    public string ChangeOrigin => (string)Header["changeOrigin"];

    public IReadOnlyList<string> RecordIds => [.. ((object[])Header["recordIds"]).Cast<string>()];

    public object? this[string field] => Record.TryGetValue(field, out var value) ? value : null;

    /// <summary>
    /// Field names a bitmap field names: the first element's bits are positions of the record's
    /// fields (bit 0 the least significant); "p-0x.." elements name fields of the compound field at p.
    /// </summary>
    public IReadOnlyList<string> Fields(string bitmapField)
    {
        var names = new List<string>();
        foreach (var element in ((object[])Header[bitmapField]).Cast<string>())
        {
            var dash = element.IndexOf('-', StringComparison.Ordinal);
            var fields = dash < 0 ? Schema.Fields : ((Avro.RecordSchema)((Avro.UnionSchema)Schema.Fields[int.Parse(element[..dash], CultureInfo.InvariantCulture)].Schema).Schemas[1]).Fields;
            var prefix = dash < 0 ? string.Empty : Schema.Fields[int.Parse(element[..dash], CultureInfo.InvariantCulture)].Name + ".";
            var bits = BigInteger.Parse("0" + element[(dash + 3)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            for (var position = 0; position < fields.Count; position++)
            {
                if (!(bits >> position).IsEven)
                {
                    names.Add(prefix + fields[position].Name);
                }
            }
        }

        return names;
    }
}
