using CdcSync.Connectors.NetSuite;
using CdcSync.Connectors.Salesforce;
using CdcSync.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace CdcSync.Tests.EndToEnd;

/// <summary>
/// The shipped examples/salesforce-netsuite.json, so the tests run the mapping users get: which
/// staging table mirrors which sObject / record type, with its field-name exceptions.
/// </summary>
public static class ExampleConfig
{
    public static string Path { get; } = System.IO.Path.Combine(Repo.Root, "examples", "salesforce-netsuite.json");

    public static IConfigurationRoot Load() => new ConfigurationBuilder().AddJsonFile(Path).Build();

    public static List<SalesforceObjectOptions> SalesforceObjects()
    {
        var objects = new List<SalesforceObjectOptions>();
        Load().GetSection("Connectors:salesforce:Objects").Bind(objects);
        return objects;
    }

    public static List<NetSuiteRecordOptions> NetSuiteRecords()
    {
        var records = new List<NetSuiteRecordOptions>();
        Load().GetSection("Connectors:netsuite:Records").Bind(records);
        return records;
    }

    /// <summary>The example's settings below Connectors, flattened as configuration keys, e.g. <c>Connectors:netsuite:Records:0:Table</c>.</summary>
    public static IEnumerable<KeyValuePair<string, string?>> MappingSettings() =>
        Load().AsEnumerable()
            .Where(kv => kv.Value is not null
                && (kv.Key.StartsWith("Connectors:salesforce:Objects", StringComparison.Ordinal)
                    || kv.Key.StartsWith("Connectors:netsuite:Records", StringComparison.Ordinal)
                    || kv.Key.StartsWith("Routes:", StringComparison.Ordinal)));
}
