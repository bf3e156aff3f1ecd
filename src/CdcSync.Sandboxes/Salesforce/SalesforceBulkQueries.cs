using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CdcSync.Sandboxes.Salesforce;

/// <summary>
/// Bulk API 2.0 query jobs under <c>/services/data/vXX.X/jobs/query</c>: create (<c>query</c> or
/// <c>queryAll</c>), job info, results as CSV pages (<c>maxRecords</c>, <c>locator</c>, the
/// <c>Sforce-Locator</c> and <c>Sforce-NumberOfRecords</c> headers, <c>"null"</c> on the last page),
/// the list of jobs, abort (PATCH <c>{"state":"Aborted"}</c>) and delete. The query runs when the
/// job is created, so its results are a snapshot of that moment. A job answers InProgress to its
/// first status check and JobComplete (or Failed, see <see cref="SalesforceSandboxOptions.FailNextBulkJobs"/>)
/// after, so a client's polling loop runs at least once. The SOQL is the sandbox's subset without
/// what Bulk API 2.0 refuses: COUNT(), child subqueries and OFFSET.
/// </summary>
internal sealed class SalesforceBulkQueries(SalesforceSandboxOptions options, SalesforceStore store)
{
    private const string CreatedById = SalesforceStore.DefaultOwnerId;

    private readonly ConcurrentDictionary<string, BulkQueryJob> _jobs = new(StringComparer.Ordinal);
    private long _sequence = 0x2000;
    private long _created;

    /// <summary>Query jobs a day allows (<c>DailyBulkV2QueryJobs</c> in <c>/limits</c>), as in Salesforce.</summary>
    public const int DailyJobs = 10_000;

    /// <summary>Query jobs created since the sandbox started.</summary>
    public long Created => Interlocked.Read(ref _created);

    public void Map(RouteGroupBuilder api)
    {
        api.MapPost("/jobs/query", CreateAsync);
        api.MapGet("/jobs/query", (string version) => List(version));
        api.MapGet("/jobs/query/{id}", (string id) => Info(id));
        api.MapGet("/jobs/query/{id}/results", ResultsPage);
        api.MapPatch("/jobs/query/{id}", AbortAsync);
        api.MapDelete("/jobs/query/{id}", (string id) => Delete(id));
    }

    public void Clear() => _jobs.Clear();

    private async Task<IResult> CreateAsync(string version, HttpRequest request)
    {
        JsonObject? body;
        try
        {
            body = await JsonNode.ParseAsync(request.Body, cancellationToken: request.HttpContext.RequestAborted) as JsonObject;
        }
        catch (System.Text.Json.JsonException e)
        {
            return SalesforceSandbox.Error(400, "JSON_PARSER_ERROR", $"Unexpected character: {e.Message}");
        }

        var operation = body?["operation"]?.ToString();
        var soql = body?["query"]?.ToString();
        if (operation is not ("query" or "queryAll"))
        {
            return SalesforceSandbox.Error(400, "INVALIDJOB", $"InvalidJob : Invalid operation: {operation ?? "(none)"}; a query job's operation is query or queryAll");
        }

        if (string.IsNullOrWhiteSpace(soql))
        {
            return SalesforceSandbox.Error(400, "INVALIDJOB", "InvalidJob : Invalid query: the query field is required");
        }

        var delimiter = (body?["columnDelimiter"]?.ToString() ?? "COMMA") switch
        {
            "COMMA" => ',',
            "BACKQUOTE" => '`',
            "CARET" => '^',
            "PIPE" => '|',
            "SEMICOLON" => ';',
            "TAB" => '\t',
            _ => (char?)null,
        };
        var lineEnding = body?["lineEnding"]?.ToString() ?? "LF";
        if (delimiter is null || lineEnding is not ("LF" or "CRLF"))
        {
            return SalesforceSandbox.Error(400, "INVALIDJOB", "InvalidJob : columnDelimiter must be one of BACKQUOTE, CARET, COMMA, PIPE, SEMICOLON, TAB and lineEnding LF or CRLF");
        }

        var now = options.TimeProvider.GetUtcNow();
        BulkQueryJob job;
        try
        {
            lock (store.Sync)
            {
                var query = SoqlQuery.Parse(soql, now);
                if (query.IsCountOnly || query.IsAggregate)
                {
                    throw new SandboxApiException(400, "API_ERROR", "Aggregate Functions such as COUNT() are not supported in Bulk API 2.0 queries");
                }

                if (query.Select.Any(i => i is SoqlSubquery))
                {
                    throw new SandboxApiException(400, "API_ERROR", "Parent-to-child relationship queries are not supported in Bulk API 2.0 queries");
                }

                if (query.Offset > 0)
                {
                    throw new SandboxApiException(400, "API_ERROR", "OFFSET is not supported in Bulk API 2.0 queries");
                }

                var paths = query.Select.Cast<SoqlPath>().ToList();
                var rows = query.Run(store.All(query.Schema), store, operation == "queryAll")
                    .Select(r => paths.Select(p => Render(p.Field, p.Value(r, store))).ToArray())
                    .ToList();
                var header = paths.Select(p => string.Concat(p.Relationships.Select(r => r.RelationshipName + ".")) + p.Field.Name).ToArray();
                var stamp = new DateTimeOffset(now.Ticks - (now.Ticks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
                job = new BulkQueryJob(
                    SalesforceIds.Create("750", Interlocked.Increment(ref _sequence)),
                    operation, query.Schema.Name, version, stamp, header, rows, delimiter.Value, lineEnding,
                    options.TryTakeBulkJobFailure());
            }
        }
        catch (SandboxApiException e)
        {
            return SalesforceSandbox.Error(e.Status, e.ErrorCode, e.Message);
        }

        _jobs[job.Id] = job;
        Interlocked.Increment(ref _created);
        return SalesforceSandbox.Json(job.ToJson(detail: false));
    }

    private IResult List(string version)
    {
        var records = _jobs.Values.OrderBy(j => j.Id, StringComparer.Ordinal).Select(j => (JsonNode)j.ToJson(detail: false));
        return SalesforceSandbox.Json(new JsonObject { ["done"] = true, ["records"] = new JsonArray([.. records]), ["nextRecordsUrl"] = null });
    }

    private IResult Info(string id)
    {
        if (Find(id) is not { } job)
        {
            return NotFound();
        }

        lock (job)
        {
            job.Advance(options.TimeProvider.GetUtcNow());
            return SalesforceSandbox.Json(job.ToJson(detail: true));
        }
    }

    private IResult ResultsPage(string version, string id, HttpRequest request, HttpResponse response)
    {
        if (Find(id) is not { } job)
        {
            return NotFound();
        }

        if (job.ApiVersion != version)
        {
            return SalesforceSandbox.Error(409, "INVALIDJOBSTATE", $"The job was created with API version {job.ApiVersion}; get its results with the same version");
        }

        string state;
        lock (job)
        {
            state = job.State;
        }

        if (state != "JobComplete")
        {
            return SalesforceSandbox.Error(400, "INVALIDJOBSTATE", $"Job is not complete: its state is {state}");
        }

        var maxRecords = job.Rows.Count;
        var maxText = request.Query["maxRecords"].ToString();
        if (maxText.Length > 0)
        {
            if (!int.TryParse(maxText, NumberStyles.None, CultureInfo.InvariantCulture, out maxRecords) || maxRecords < 1)
            {
                return SalesforceSandbox.Error(400, "INVALIDPARAMETER", $"maxRecords must be a positive integer, not '{maxText}'");
            }
        }
        else
        {
            maxRecords = options.BulkResultsPageSize;
        }

        var offset = 0;
        var locator = request.Query["locator"].ToString();
        if (locator.Length > 0)
        {
            if (DecodeLocator(locator) is not { } decoded || decoded > job.Rows.Count)
            {
                return SalesforceSandbox.Error(400, "INVALIDLOCATOR", $"Invalid locator: {locator}");
            }

            offset = decoded;
        }

        var end = (int)Math.Min(job.Rows.Count, (long)offset + maxRecords);
        var newline = job.LineEnding == "CRLF" ? "\r\n" : "\n";
        var csv = new StringBuilder();
        csv.AppendJoin(job.Delimiter, job.Header.Select(Quote)).Append(newline);
        for (var i = offset; i < end; i++)
        {
            csv.AppendJoin(job.Delimiter, job.Rows[i].Select(Quote)).Append(newline);
        }

        response.Headers["Sforce-Locator"] = end < job.Rows.Count ? EncodeLocator(end) : "null";
        response.Headers["Sforce-NumberOfRecords"] = (end - offset).ToString(CultureInfo.InvariantCulture);
        return Results.Text(csv.ToString(), "text/csv", Encoding.UTF8);
    }

    private async Task<IResult> AbortAsync(string id, HttpRequest request)
    {
        if (Find(id) is not { } job)
        {
            return NotFound();
        }

        JsonObject? body;
        try
        {
            body = await JsonNode.ParseAsync(request.Body, cancellationToken: request.HttpContext.RequestAborted) as JsonObject;
        }
        catch (System.Text.Json.JsonException e)
        {
            return SalesforceSandbox.Error(400, "JSON_PARSER_ERROR", $"Unexpected character: {e.Message}");
        }

        if (body?["state"]?.ToString() != "Aborted")
        {
            return SalesforceSandbox.Error(400, "INVALIDJOBSTATE", "A query job can only be changed to the state Aborted");
        }

        lock (job)
        {
            if (job.State is "JobComplete" or "Failed" or "Aborted")
            {
                return SalesforceSandbox.Error(400, "INVALIDJOBSTATE", $"Aborting already {(job.State == "JobComplete" ? "Completed" : job.State)} Job not allowed");
            }

            job.State = "Aborted";
            job.SystemModstamp = options.TimeProvider.GetUtcNow();
            return SalesforceSandbox.Json(job.ToJson(detail: false));
        }
    }

    private IResult Delete(string id)
    {
        if (Find(id) is not { } job)
        {
            return NotFound();
        }

        lock (job)
        {
            if (job.State == "InProgress")
            {
                return SalesforceSandbox.Error(400, "INVALIDJOBSTATE", "Deleting a job in progress is not allowed; abort it first");
            }
        }

        _jobs.TryRemove(job.Id, out _);
        return Microsoft.AspNetCore.Http.Results.NoContent();
    }

    private BulkQueryJob? Find(string id) => SalesforceIds.Normalize(id) is { } key ? _jobs.GetValueOrDefault(key) : null;

    private static IResult NotFound() => SalesforceSandbox.Error(404, "NOT_FOUND", "The requested resource does not exist");

    /// <summary>A value as Bulk API 2.0 writes it in CSV: empty for null, datetimes in UTC with Z, booleans as true/false.</summary>
    private static string Render(SField field, JsonNode? value)
    {
        if (value is null)
        {
            return string.Empty;
        }

        return field.Type switch
        {
            SFieldType.DateTime => value.ToString().Replace("+0000", "Z", StringComparison.Ordinal),
            SFieldType.Boolean => value.GetValueKind() == System.Text.Json.JsonValueKind.True ? "true" : "false",
            SFieldType.Double or SFieldType.Int => value.ToJsonString(),
            _ => value.ToString(),
        };
    }

    // Salesforce quotes every value and doubles the quotes inside; a null is "" like an empty string.
    private static string Quote(string value) => "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    // Locators are opaque to clients; Salesforce's look like base64 text, and so do these.
    private static string EncodeLocator(int offset) => Convert.ToBase64String(Encoding.ASCII.GetBytes(offset.ToString(CultureInfo.InvariantCulture))).TrimEnd('=');

    private static int? DecodeLocator(string locator)
    {
        try
        {
            var padded = locator.PadRight(locator.Length + ((4 - (locator.Length % 4)) % 4), '=');
            var text = Encoding.ASCII.GetString(Convert.FromBase64String(padded));
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var offset) ? offset : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private sealed class BulkQueryJob(
        string id, string operation, string sObject, string apiVersion, DateTimeOffset created,
        string[] header, List<string[]> rows, char delimiter, string lineEnding, bool fail)
    {
        private int _checks;

        public string Id { get; } = id;

        public DateTimeOffset Created { get; } = created;

        public string ApiVersion { get; } = apiVersion;

        public string[] Header { get; } = header;

        public List<string[]> Rows { get; } = rows;

        public char Delimiter { get; } = delimiter;

        public string LineEnding { get; } = lineEnding;

        public string State { get; set; } = "UploadComplete";

        public DateTimeOffset SystemModstamp { get; set; } = created;

        /// <summary>The first status check finds the job running; the next one finds it done (or failed).</summary>
        public void Advance(DateTimeOffset now)
        {
            if (State is not ("UploadComplete" or "InProgress"))
            {
                return;
            }

            State = _checks++ == 0 ? "InProgress" : fail ? "Failed" : "JobComplete";
            SystemModstamp = now;
        }

        public JsonObject ToJson(bool detail)
        {
            var json = new JsonObject
            {
                ["id"] = Id,
                ["operation"] = operation,
                ["object"] = sObject,
                ["createdById"] = CreatedById,
                ["createdDate"] = SalesforceStore.FormatDateTime(Created),
                ["systemModstamp"] = SalesforceStore.FormatDateTime(SystemModstamp),
                ["state"] = State,
                ["concurrencyMode"] = "Parallel",
                ["contentType"] = "CSV",
                ["apiVersion"] = double.Parse(ApiVersion, CultureInfo.InvariantCulture),
                ["jobType"] = "V2Query",
                ["lineEnding"] = LineEnding,
                ["columnDelimiter"] = Delimiter switch { '`' => "BACKQUOTE", '^' => "CARET", '|' => "PIPE", ';' => "SEMICOLON", '\t' => "TAB", _ => "COMMA" },
            };
            if (detail)
            {
                json["numberRecordsProcessed"] = State == "JobComplete" ? Rows.Count : 0;
                json["retries"] = 0;
                json["totalProcessingTime"] = State == "JobComplete" ? 20 + (Rows.Count / 100) : 0;
                json["isPkChunkingSupported"] = true;
                if (State == "Failed")
                {
                    json["errorMessage"] = "The query job failed (sandbox fault bulkJobFailures); create a new job to retry";
                }
            }

            return json;
        }
    }
}
