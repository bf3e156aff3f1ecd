using System.Security.Authentication;
using CdcSync.Configuration;
using CdcSync.Resilience;
using Eventbus.V1;
using Grpc.Core;

namespace CdcSync.Connectors.Salesforce.PubSub;

/// <summary>
/// What `check` checks of a Salesforce connector with a Pub/Sub endpoint: Change Data Capture is
/// enabled for every object read inbound (the Tooling API's <c>PlatformEventChannelMember</c> of the
/// <c>ChangeEvents</c> channel), and the Pub/Sub API accepts the connector's session for its topic
/// (<c>GetTopic</c>, over TLS trusted as the worker will trust it). Each problem names the fix.
/// </summary>
internal static class SalesforcePubSubCheck
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    public static async Task CheckAsync(ConnectorCheck check, SalesforceOptions options, string path, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = Timeout };
        var client = new SalesforceClient(options, http);
        SalesforceSession session;
        try
        {
            session = await client.GetSessionAsync(null, cancellationToken);
            await CheckEnabledAsync(check, client, path, cancellationToken);
        }
        catch (SalesforceApiException e)
        {
            check.Problems.Add(new ConfigProblem($"Connector {check.Name}: {e.Message}", e.Kind));
            return;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            check.Problems.Add(new ConfigProblem($"Connector {check.Name}: Salesforce at {options.LoginUrl} got no answer ({e.Message}); check {path}:LoginUrl or the network.", FailureKind.Transient));
            return;
        }

        try
        {
            using var channel = PubSubChannel.Create(options.PubSub, path);
            var pubSub = new Eventbus.V1.PubSub.PubSubClient(channel);
            var headers = new Metadata
            {
                { "accesstoken", session.AccessToken },
                { "instanceurl", session.InstanceUrl.ToString().TrimEnd('/') },
                { "tenantid", session.OrgId ?? string.Empty },
            };
            var topic = await pubSub.GetTopicAsync(new TopicRequest { TopicName = options.PubSub.Topic }, headers, TimeProvider.System.GetUtcNow().UtcDateTime.Add(Timeout), cancellationToken);
            if (!topic.CanSubscribe)
            {
                check.Problems.Add(new ConfigProblem($"Connector {check.Name}: the Pub/Sub API lets the integration user not subscribe to {options.PubSub.Topic}; give it the View All Data permission (or read access to the objects)."));
            }
        }
        catch (OperatorException e)
        {
            check.Problems.Add(new ConfigProblem(e.Message));
        }
        catch (RpcException e) when (Inner<AuthenticationException>(e.Status.DebugException) is { } tls)
        {
            check.Problems.Add(new ConfigProblem($"Connector {check.Name}: the TLS certificate of the Pub/Sub API at {options.PubSub.Endpoint} is not trusted ({tls.Message}); set {path}:PubSub:CaFile to the PEM of the certificate it presents (or its CA)."));
        }
        catch (RpcException e)
        {
            var code = e.Trailers.GetValue("error-code");
            var (fix, kind) = e.StatusCode switch
            {
                StatusCode.Unavailable or StatusCode.DeadlineExceeded =>
                    ($"check {path}:PubSub:Endpoint (host:port, e.g. api.pubsub.salesforce.com:7443) and that outbound connections to it are allowed", FailureKind.Transient),
                StatusCode.Unauthenticated =>
                    ($"the sign-in was refused; check that {path}:PubSub:Endpoint belongs to the org of {path}:LoginUrl and that the user has API Enabled", FailureKind.Permanent),
                StatusCode.NotFound =>
                    ($"check {path}:PubSub:Topic (/data/ChangeEvents or /data/<Object>ChangeEvent)", FailureKind.Permanent),
                _ => ($"check {path}:PubSub", FailureKind.Permanent),
            };
            var detail = e.Status.Detail;
            var rpc = detail.IndexOf(" rpcId:", StringComparison.Ordinal);
            check.Problems.Add(new ConfigProblem($"Connector {check.Name}: the Pub/Sub API at {options.PubSub.Endpoint} answered {e.StatusCode}{(code is null ? "" : " " + code)} ({(rpc < 0 ? detail : detail[..rpc])}); {fix}.", kind));
        }
    }

    private static async Task CheckEnabledAsync(ConnectorCheck check, SalesforceClient client, string path, CancellationToken cancellationToken)
    {
        const string Soql = "SELECT SelectedEntity FROM PlatformEventChannelMember WHERE EventChannel = 'ChangeEvents'";
        var result = await client.SendAsync(HttpMethod.Get, $"{client.ApiPath}/tooling/query?q={Uri.EscapeDataString(Soql)}", null, null, cancellationToken);
        var enabled = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var record in result?["records"]?.AsArray() ?? [])
        {
            if (record?["SelectedEntity"]?.GetValue<string>() is { } entity)
            {
                enabled.Add(entity);
            }
        }

        foreach (var map in client.Options.Objects.Where(o => o.Inbound))
        {
            if (!enabled.Contains(map.SObject + "ChangeEvent"))
            {
                check.Problems.Add(new ConfigProblem($"Connector {check.Name}: Change Data Capture is not enabled for {map.SObject}, so its changes would only be polled; in Salesforce Setup > Change Data Capture add {map.SObject} to the selected entities (or remove {path}:PubSub:Endpoint)."));
            }
        }
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
