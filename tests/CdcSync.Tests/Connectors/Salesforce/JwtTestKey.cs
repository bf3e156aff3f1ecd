using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace CdcSync.Tests.Connectors.Salesforce;

/// <summary>
/// A connected app's key pair made at test time, as docs/SALESFORCE_JWT.md makes it with openssl: an RSA
/// private key (PEM, PKCS#8, in a temp file readable only by its owner) and the self-signed certificate
/// the org holds (public part only). No private key is committed.
/// </summary>
internal sealed class JwtTestKey : IDisposable
{
    private readonly string _directory;

    private JwtTestKey(string directory, X509Certificate2 certificate, string privateKeyPem)
    {
        _directory = directory;
        Certificate = certificate;
        PrivateKeyPem = privateKeyPem;
        PrivateKeyFile = Path.Combine(directory, "server.key");
        File.WriteAllText(PrivateKeyFile, privateKeyPem);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(PrivateKeyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    /// <summary>The certificate as uploaded to the connected app: no private key.</summary>
    public X509Certificate2 Certificate { get; }

    public string PrivateKeyPem { get; }

    public string PrivateKeyFile { get; }

    /// <summary>A line from the middle of the key's base64: what must never show in logs or messages.</summary>
    public string SecretFragment => PrivateKeyPem.Split('\n')[5];

    public static JwtTestKey Create()
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=cdcsync-test-connected-app", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var withKey = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var certificate = X509CertificateLoader.LoadCertificate(withKey.Export(X509ContentType.Cert));
        var directory = Directory.CreateTempSubdirectory("cdcsync-jwt-").FullName;
        return new JwtTestKey(directory, certificate, rsa.ExportPkcs8PrivateKeyPem());
    }

    public void Dispose()
    {
        Certificate.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
