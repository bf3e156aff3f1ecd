using System.Net;
using CdcSync.Connectors.NetSuite;
using CdcSync.Connectors.Salesforce;
using CdcSync.Resilience;
using CdcSync.Tests.EndToEnd;

namespace CdcSync.Tests.Resilience;

/// <summary>HTTP connectors share the one transient/permanent classification.</summary>
public sealed class PermanentHttpErrorTests
{
    [Fact]
    public void Classify_HttpApiErrors_ThrottlingAndOutagesPass_LoginAndRejectedRequestsDoNot()
    {
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(new SalesforceApiException("busy", HttpStatusCode.ServiceUnavailable, "SERVER_UNAVAILABLE", isTransient: true)));
        Assert.Equal(FailureKind.Permanent, FailureClassifier.Classify(new SalesforceApiException("login refused", HttpStatusCode.BadRequest, "invalid_client", isTransient: false, isAuthentication: true)));
        Assert.Equal(FailureKind.Permanent, FailureClassifier.Classify(new SalesforceApiException("no such column", HttpStatusCode.BadRequest, "INVALID_FIELD", isTransient: false)));
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(new NetSuiteApiException("query", 429, "CONCURRENCY_LIMIT_EXCEEDED", null, null)));
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(new NetSuiteApiException("query", 503, null, null, null)));
        Assert.Equal(FailureKind.Permanent, FailureClassifier.Classify(new NetSuiteApiException("query", 401, "INVALID_LOGIN", null, null)));
        Assert.Equal(FailureKind.Permanent, FailureClassifier.Classify(new NetSuiteApiException("query", 403, "INSUFFICIENT_PERMISSION", null, null)));
    }

    [Fact]
    public async Task Run_SalesforceClientSecretWrong_StopsWithOneOperatorErrorInsteadOfRetryingForever()
    {
        var error = await Assert.ThrowsAsync<OperatorException>(async () =>
        {
            await using var rig = await TwoWayRig.StartAsync(settings: new Dictionary<string, string?> { ["Connectors:salesforce:ClientSecret"] = "not-the-secret" });
            // Should the pipeline get as far as running, the first inbound poll must stop it.
            await rig.WaitUntilAsync("the pipeline to stop", () => Task.FromResult(false));
        });

        Assert.DoesNotContain("not-the-secret", error.Message, StringComparison.Ordinal);
        Assert.Contains("salesforce", error.Message, StringComparison.OrdinalIgnoreCase);
    }
}
