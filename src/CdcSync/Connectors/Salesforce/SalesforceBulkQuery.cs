using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace CdcSync.Connectors.Salesforce;

/// <summary>How a query job ended.</summary>
internal sealed record SalesforceBulkJobOutcome(bool Complete, string State, string? ErrorMessage, long Records);

/// <summary>One results page of a query job: field names, rows, and the locator of the next page (null on the last).</summary>
internal sealed record SalesforceBulkPage(string[] Header, List<string?[]> Rows, string? NextLocator);

/// <summary>
/// Bulk API 2.0 query jobs of one org (<c>/services/data/vXX.X/jobs/query</c>): count an object,
/// create a <c>queryAll</c> job, wait for it, read its CSV results a page at a time
/// (<c>maxRecords</c>, <c>Sforce-Locator</c>), abort and delete. Every request is an API call
/// against the org's daily allowance, like REST ones.
/// </summary>
internal sealed class SalesforceBulkQuery(SalesforceClient client, TimeProvider timeProvider, ILogger logger)
{
    private string JobsPath => $"{client.ApiPath}/jobs/query";

    /// <summary>Records of an sObject, deleted ones included (what a queryAll job would return).</summary>
    public async Task<long> CountAsync(string sObject, CancellationToken cancellationToken)
    {
        var soql = $"SELECT COUNT() FROM {sObject}";
        var response = await client.SendAsync(HttpMethod.Get, $"{client.ApiPath}/queryAll?q={Uri.EscapeDataString(soql)}", null, null, cancellationToken);
        return response?["totalSize"]?.GetValue<long>()
            ?? throw new SalesforceApiException($"Salesforce answered {soql} without totalSize.", HttpStatusCode.OK, null, isTransient: false);
    }

    /// <summary>Creates a <c>queryAll</c> job (deleted records included); returns its id and creation time.</summary>
    public async Task<(string Id, DateTimeOffset Created)> CreateAsync(string soql, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["operation"] = "queryAll",
            ["query"] = soql,
            ["contentType"] = "CSV",
            ["columnDelimiter"] = "COMMA",
            ["lineEnding"] = "LF",
        };
        var job = await client.SendAsync(HttpMethod.Post, JobsPath, body, null, cancellationToken);
        var id = job?["id"]?.ToString();
        var created = SalesforceClient.ParseDateTime(job?["createdDate"]?.ToString());
        return id is null || created is null
            ? throw new SalesforceApiException("Salesforce's answer to a query job creation has no id or createdDate.", HttpStatusCode.OK, null, isTransient: false)
            : (id, created.Value);
    }

    /// <summary>
    /// Checks the job every <see cref="SalesforceOptions.BulkQueryPollInterval"/> until it is
    /// JobComplete, Failed or Aborted; aborts it past <see cref="SalesforceOptions.BulkQueryTimeout"/>.
    /// </summary>
    public async Task<SalesforceBulkJobOutcome> WaitAsync(string jobId, CancellationToken cancellationToken)
    {
        var deadline = timeProvider.GetUtcNow() + client.Options.BulkQueryTimeout;
        while (true)
        {
            var info = await client.SendAsync(HttpMethod.Get, $"{JobsPath}/{Uri.EscapeDataString(jobId)}", null, null, cancellationToken);
            var state = info?["state"]?.ToString() ?? "(none)";
            var records = info?["numberRecordsProcessed"]?.GetValue<long>() ?? 0;
            switch (state)
            {
                case "JobComplete":
                    return new SalesforceBulkJobOutcome(true, state, null, records);
                case "Failed" or "Aborted":
                    return new SalesforceBulkJobOutcome(false, state, info?["errorMessage"]?.ToString(), records);
            }

            if (timeProvider.GetUtcNow() >= deadline)
            {
                await AbortAsync(jobId, cancellationToken);
                return new SalesforceBulkJobOutcome(false, "Aborted", $"not complete after Salesforce:BulkQueryTimeout ({client.Options.BulkQueryTimeout})", records);
            }

            logger.LogDebug("{Connector}: query job {JobId} is {State}", client.Name, jobId, state);
            await Task.Delay(client.Options.BulkQueryPollInterval, timeProvider, cancellationToken);
        }
    }

    /// <summary>One results page, <see cref="SalesforceOptions.BulkQueryPageSize"/> records at most.</summary>
    public async Task<SalesforceBulkPage> ReadPageAsync(string jobId, string? locator, CancellationToken cancellationToken)
    {
        var path = $"{JobsPath}/{Uri.EscapeDataString(jobId)}/results?maxRecords={client.Options.BulkQueryPageSize.ToString(CultureInfo.InvariantCulture)}";
        if (locator is not null)
        {
            path += "&locator=" + Uri.EscapeDataString(locator);
        }

        var response = await client.SendForTextAsync(HttpMethod.Get, path, null, null, "text/csv", cancellationToken);
        var (header, rows) = SalesforceCsv.Parse(response.Text);
        var next = response.Header("Sforce-Locator");
        return new SalesforceBulkPage(header, rows, next is null or "" or "null" ? null : next);
    }

    /// <summary>Deletes a job and its results (Salesforce would after 7 days); a failure is only logged.</summary>
    public async Task DeleteAsync(string jobId, CancellationToken cancellationToken)
    {
        try
        {
            await client.SendAsync(HttpMethod.Delete, $"{JobsPath}/{Uri.EscapeDataString(jobId)}", null, null, cancellationToken);
        }
        catch (SalesforceApiException e)
        {
            logger.LogInformation("{Connector}: query job {JobId} not deleted ({Reason}); Salesforce deletes it after 7 days", client.Name, jobId, e.Message);
        }
    }

    private async Task AbortAsync(string jobId, CancellationToken cancellationToken)
    {
        try
        {
            await client.SendAsync(new HttpMethod("PATCH"), $"{JobsPath}/{Uri.EscapeDataString(jobId)}", new JsonObject { ["state"] = "Aborted" }, null, cancellationToken);
        }
        catch (SalesforceApiException e)
        {
            logger.LogInformation("{Connector}: query job {JobId} not aborted ({Reason})", client.Name, jobId, e.Message);
        }
    }
}
