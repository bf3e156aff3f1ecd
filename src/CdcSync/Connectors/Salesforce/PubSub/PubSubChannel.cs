using System.Security.Cryptography.X509Certificates;
using Grpc.Net.Client;

namespace CdcSync.Connectors.Salesforce.PubSub;

/// <summary>
/// The gRPC channel to the Pub/Sub API: HTTP/2 over TLS, always validated. With a CA file the
/// endpoint's certificate must chain to a certificate in that file (a custom root trust for this
/// channel only, host name still checked); without one, to the system's roots.
/// </summary>
internal static class PubSubChannel
{
    public static GrpcChannel Create(SalesforcePubSubOptions options, string configPath)
    {
        var handler = new SocketsHttpHandler
        {
            // A long-lived stream through NATs and proxies: HTTP/2 pings keep it and find it dead.
            KeepAlivePingDelay = TimeSpan.FromSeconds(60),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(30),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            EnableMultipleHttp2Connections = true,
        };
        if (!string.IsNullOrWhiteSpace(options.CaFile))
        {
            var roots = new X509Certificate2Collection();
            try
            {
                roots.ImportFromPemFile(options.CaFile);
            }
            catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException or UnauthorizedAccessException)
            {
                throw new OperatorException($"Config key {configPath}:PubSub:CaFile: {options.CaFile} cannot be read as PEM certificates ({e.Message}); give the PEM file of the certificate the Pub/Sub endpoint presents, or of its CA.");
            }

            if (roots.Count == 0)
            {
                throw new OperatorException($"Config key {configPath}:PubSub:CaFile: {options.CaFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the certificate the Pub/Sub endpoint presents, or its CA's.");
            }

            var policy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                // A private CA publishes no revocation list; SslStream checks none by default either.
                RevocationMode = X509RevocationMode.NoCheck,
            };
            policy.CustomTrustStore.AddRange(roots);
            handler.SslOptions.CertificateChainPolicy = policy;
        }

        return GrpcChannel.ForAddress(options.EndpointUri(), new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            // Event batches of up to 100 wide records; Salesforce caps an event at 1 MB.
            MaxReceiveMessageSize = 128 * 1024 * 1024,
        });
    }
}
