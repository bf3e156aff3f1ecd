using CdcSync.Hub;
using Npgsql;

namespace CdcSync.Tests.Resilience;

/// <summary>TLS problems say which: the certificate file is missing, or it does not sign the server's certificate.</summary>
public sealed class TlsTests
{
    [Fact]
    public async Task Open_RootCertificateMissingOrWrong_MessageSaysWhich()
    {
        await using var cluster = await TestCluster.StartAsync("tls_root", tls: true);
        string With(string root) => new NpgsqlConnectionStringBuilder(cluster.ConnectionString()) { SslMode = SslMode.VerifyFull, RootCertificate = root, Pooling = false }.ConnectionString;

        await using (var ok = await HubConnection.OpenAsync(With(cluster.ServerCertificate), "Hub:ConnectionString", CancellationToken.None))
        {
            Assert.Equal(System.Data.ConnectionState.Open, ok.State);
        }

        var missing = await Assert.ThrowsAsync<OperatorException>(() => HubConnection.OpenAsync(With("/nonexistent/cdcsync-root.crt"), "Hub:ConnectionString", CancellationToken.None));
        Assert.Contains("/nonexistent/cdcsync-root.crt (missing)", missing.Message, StringComparison.Ordinal);
        Assert.False(missing.Transient);

        var wrong = await Assert.ThrowsAsync<OperatorException>(() => HubConnection.OpenAsync(With(cluster.OtherCertificate), "Hub:ConnectionString", CancellationToken.None));
        Assert.Contains("not signed by the root certificate", wrong.Message, StringComparison.Ordinal);
        Assert.False(wrong.Transient);
    }
}
