using CdcSync.Connectors.Salesforce;

namespace CdcSync.Tests.Connectors.Salesforce;

public sealed class SalesforceBulkOptionsTests
{
    [Fact]
    public void Defaults_AreValid_AndBulkStartsAbove10000Records()
    {
        var options = Valid();

        Assert.True(new SalesforceOptionsValidator().Validate("crm", options).Succeeded);
        Assert.Equal(10_000, options.BulkQueryThreshold);
        Assert.Equal(20_000, options.BulkQueryPageSize);
    }

    [Fact]
    public void OutOfRange_EachFailureNamesItsOption()
    {
        var options = Valid();
        options.BulkQueryThreshold = -1;
        options.BulkQueryPageSize = 99;
        options.BulkQueryPollInterval = TimeSpan.FromMilliseconds(1);
        options.BulkQueryTimeout = TimeSpan.FromDays(2);

        var failures = new SalesforceOptionsValidator().Validate("crm", options).Failures!.ToList();

        Assert.Equal(4, failures.Count);
        Assert.Contains(failures, f => f.Contains("BulkQueryThreshold", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("BulkQueryPageSize", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("BulkQueryPollInterval", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("BulkQueryTimeout", StringComparison.Ordinal));
    }

    private static SalesforceOptions Valid() => new()
    {
        LoginUrl = new Uri("https://login.example.com"),
        ClientId = "id",
        ClientSecret = "secret",
    };
}
