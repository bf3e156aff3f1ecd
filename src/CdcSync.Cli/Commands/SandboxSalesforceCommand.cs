using System.CommandLine;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CdcSync.Sandboxes.Salesforce;

namespace CdcSync.Cli.Commands;

/// <summary><c>cdcsync sandbox salesforce --port N</c>: a local Salesforce REST API for the demo and tests.</summary>
internal static class SandboxSalesforceCommand
{
    public static Command Create()
    {
        var port = CliOptions.Port(8081);
        var clientId = new Option<string>("--client-id")
        {
            Description = "Client id (consumer key) to accept.",
            DefaultValueFactory = _ => SalesforceSandboxOptions.DefaultClientId,
        };
        var clientSecret = new Option<string>("--client-secret")
        {
            Description = "Client secret (consumer secret) to accept.",
            DefaultValueFactory = _ => SalesforceSandboxOptions.DefaultClientSecret,
        };
        var rejectName = new Option<string?>("--reject-name")
        {
            Description = "Reject every record with this Name/LastName (FIELD_CUSTOM_VALIDATION_EXCEPTION), to demo dead letters.",
        };

        var jwtCertificate = new Option<FileInfo?>("--jwt-certificate")
        {
            Description = "PEM certificate of the connected app: accept JWT bearer assertions signed by its private key (grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer).",
        };
        var jwtUser = new Option<string[]>("--jwt-user")
        {
            Description = "Username a JWT bearer assertion may sign in as (pre-authorized); repeat for more.",
            DefaultValueFactory = _ => [SalesforceSandboxOptions.DefaultUsername],
        };

        var firstId = new Option<long>("--first-id")
        {
            Description = "Where the counter behind new record Ids starts (e.g. $(date +%s) so a later run never hands out an Id an earlier run did).",
            DefaultValueFactory = _ => 0x1000,
        };

        var pubSubPort = new Option<int>("--pubsub-port")
        {
            Description = "Port of the Pub/Sub API (gRPC, TLS with a self-signed certificate made at start); 0 picks a free one.",
            DefaultValueFactory = _ => 0,
        };
        var pubSubCertificate = new Option<FileInfo?>("--pubsub-certificate")
        {
            Description = "Where to write the Pub/Sub endpoint's certificate (PEM), the CA file clients trust; default a new file in the temp directory.",
        };

        var command = new Command("salesforce", "Run a local sandbox of the Salesforce REST API (OAuth, SOQL query/queryAll, describe, limits, sObject rows and Collections for Account, Contact, Opportunity) and of the Pub/Sub API (Change Data Capture events) until Ctrl-C.");
        command.Options.Add(pubSubPort);
        command.Options.Add(pubSubCertificate);
        command.Options.Add(port);
        command.Options.Add(clientId);
        command.Options.Add(clientSecret);
        command.Options.Add(rejectName);
        command.Options.Add(firstId);
        command.Options.Add(jwtCertificate);
        command.Options.Add(jwtUser);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
            {
                context.Cancel = true;
                stop.Cancel();
            });
            X509Certificate2? certificate = null;
            if (parseResult.GetValue(jwtCertificate) is { } certificateFile)
            {
                try
                {
                    var bytes = await File.ReadAllBytesAsync(certificateFile.FullName, cancellationToken);
                    certificate = System.Text.Encoding.ASCII.GetString(bytes).Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal)
                        ? X509Certificate2.CreateFromPem(System.Text.Encoding.ASCII.GetString(bytes))
                        : X509CertificateLoader.LoadCertificate(bytes);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
                {
                    await Console.Error.WriteLineAsync($"error: --jwt-certificate {certificateFile.FullName}: {(e is IOException or UnauthorizedAccessException ? e.Message.TrimEnd('.') : "not a PEM or DER certificate")}; pass the certificate uploaded to the connected app (openssl req -x509 ... -out server.crt).");
                    return ExitCodes.Error;
                }
            }

            var options = new SalesforceSandboxOptions
            {
                JwtCertificate = certificate,
                JwtUsernames = [.. parseResult.GetValue(jwtUser)!],
                Port = parseResult.GetValue(port),
                ClientId = parseResult.GetValue(clientId)!,
                ClientSecret = parseResult.GetValue(clientSecret)!,
                RejectedName = parseResult.GetValue(rejectName),
                FirstIdSequence = parseResult.GetValue(firstId),
                PubSubPort = parseResult.GetValue(pubSubPort),
                PubSubCertificatePath = parseResult.GetValue(pubSubCertificate)?.FullName,
            };
            SalesforceSandbox sandbox;
            try
            {
                sandbox = await SalesforceSandbox.StartAsync(options, stop.Token);
            }
            catch (IOException e)
            {
                await Console.Error.WriteLineAsync(SandboxListenError(options.Port, e));
                return ExitCodes.Error;
            }

            await using (sandbox)
            {
                var baseUrl = sandbox.BaseUrl.ToString().TrimEnd('/');
                // The sandbox's credentials are public test values, printed on purpose so the demo can use them.
                Console.WriteLine($"Salesforce sandbox listening on {baseUrl}");
                Console.WriteLine($"  token endpoint:  {baseUrl}/services/oauth2/token (grant_type=client_credentials, refresh_token{(certificate is null ? string.Empty : " or urn:ietf:params:oauth:grant-type:jwt-bearer")})");
                Console.WriteLine($"  API:             {baseUrl}/services/data/v{SalesforceSandboxOptions.LatestApiVersion}/");
                Console.WriteLine($"  client id:       {options.ClientId}");
                Console.WriteLine($"  client secret:   {options.ClientSecret}");
                Console.WriteLine($"  refresh token:   {options.RefreshToken}");
                if (certificate is not null)
                {
                    Console.WriteLine($"  JWT bearer:      certificate {certificate.Subject} ({certificate.Thumbprint}), users {string.Join(", ", options.JwtUsernames)}, audience {baseUrl} or {string.Join(", ", options.JwtAudiences)}");
                }

                Console.WriteLine($"  Pub/Sub endpoint: {sandbox.PubSubEndpoint}");
                Console.WriteLine($"  Pub/Sub certificate: {sandbox.PubSubCertificatePath}");
                Console.WriteLine($"  admin:           GET {baseUrl}/_sandbox/stats, POST {baseUrl}/_sandbox/faults, POST {baseUrl}/_sandbox/reset, POST {baseUrl}/_sandbox/pubsub");
                Console.WriteLine("Press Ctrl-C to stop.");
                try
                {
                    await Task.Delay(Timeout.Infinite, stop.Token);
                }
                catch (OperationCanceledException)
                {
                    // Ctrl-C or SIGTERM: stop cleanly.
                }
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>One line for a port the sandbox cannot bind (in use, or reserved for root).</summary>
    internal static string SandboxListenError(int port, IOException e) =>
        e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException
            ? $"error: cannot listen on 127.0.0.1:{port}: the port is already in use; stop what listens there, or pick another --port (0 for a free one)."
            : $"error: cannot listen on 127.0.0.1:{port} ({e.Message.TrimEnd('.')}); pick another --port, or 0 for a free one.";
}
