using CdcSync.Configuration;
using CdcSync.Connectors.Http;
using CdcSync.Resilience;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// What `check` (and `run`, before it creates a slot) checks of a Salesforce connector: its URLs
/// accept connections and, for the JWT bearer flow, the org grants a token for the signed
/// assertion, so a certificate, audience or pre-authorization problem shows before the worker starts,
/// with Salesforce's own error text and the fix.
/// </summary>
internal static class SalesforceCheck
{
    private static readonly TimeSpan TokenTimeout = TimeSpan.FromSeconds(15);

    public static async Task CheckAsync(ConnectorCheck check, CancellationToken cancellationToken)
    {
        var problems = check.Problems;
        var before = problems.Count;
        await HttpEndpointCheck.CheckAsync(check, cancellationToken);
        var path = ConnectorType.Path(check.Name);
        // Config problems are reported by the validation step already; only a config that binds cleanly is tried.
        var configProblems = new List<string>();
        var options = ConfigOptions.Bind(check.Section, path, new SalesforceOptionsValidator(), configProblems);
        if (problems.Count > before || configProblems.Count > 0)
        {
            return;
        }

        options.Name = check.Name;
        if (options.Flow == SalesforceAuthFlow.Jwt)
        {
            await CheckJwtAsync(check, options, path, cancellationToken);
        }

        if (problems.Count == before && options.PubSub.Enabled)
        {
            await PubSub.SalesforcePubSubCheck.CheckAsync(check, options, path, cancellationToken);
        }
    }

    private static async Task CheckJwtAsync(ConnectorCheck check, SalesforceOptions options, string path, CancellationToken cancellationToken)
    {
        var problems = check.Problems;
        var endpoint = new SalesforceTokenEndpoint(options, path, TimeProvider.System);
        using var http = new HttpClient { Timeout = TokenTimeout };
        try
        {
            using var request = endpoint.CreateRequest();
            using var response = await http.SendAsync(request, cancellationToken);
            _ = await endpoint.ReadAsync(response, cancellationToken);
        }
        catch (SalesforceApiException e)
        {
            problems.Add(new ConfigProblem($"Connector {check.Name}: {e.Message}", e.Kind));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            problems.Add(new ConfigProblem($"Connector {check.Name}: token request to {endpoint.Url} got no answer ({(e is HttpRequestException ? e.Message : $"none in {TokenTimeout.TotalSeconds:0} s")}); check {path}:LoginUrl or the network.", FailureKind.Transient));
        }
    }
}
