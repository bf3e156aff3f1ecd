using System.Net.Sockets;
using CdcSync.Configuration;
using CdcSync.Resilience;
using Microsoft.Extensions.Configuration;

namespace CdcSync.Connectors.Http;

/// <summary>HTTP connectors: every absolute URL in their options must accept a TCP connection.</summary>
internal static class HttpEndpointCheck
{
    public static async Task CheckAsync(ConnectorCheck check, CancellationToken cancellationToken)
    {
        var (name, section, _, problems) = check;
        foreach (var (key, value) in section.AsEnumerable(makePathsRelative: true))
        {
            if (value is null || !Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                continue;
            }

            using var client = new TcpClient();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            try
            {
                await client.ConnectAsync(uri.Host, uri.Port, timeout.Token);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                problems.Add(new($"Connector {name}: cannot reach {uri.Scheme}://{uri.Host}:{uri.Port} (Connectors:{name}:{key}): {(e is SocketException s ? s.Message : "no answer in 5 s")}; check the URL or the network.", FailureKind.Transient));
            }
        }
    }
}
