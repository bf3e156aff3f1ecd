using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace CdcSync.Sandboxes.Salesforce.PubSub;

/// <summary>
/// The Tooling API's <c>PlatformEventChannelMember</c> records of the standard <c>ChangeEvents</c>
/// channel: one per object selected for Change Data Capture, which is how a client learns what has
/// change notifications on (<c>GET …/tooling/query?q=SELECT … FROM PlatformEventChannelMember</c>).
/// Serves <c>SELECT fields FROM PlatformEventChannelMember [WHERE field = 'value' [AND …]]</c>.
/// </summary>
internal static partial class PlatformEventChannelMembers
{
    private static readonly string[] Fields = ["Id", "DeveloperName", "FullName", "MasterLabel", "EventChannel", "SelectedEntity", "EnrichedFields", "NamespacePrefix"];

    /// <summary>The query's answer, or an error (errorCode, message) naming what is not served.</summary>
    public static (JsonObject? Result, string? ErrorCode, string? Message) Query(string version, string soql, IReadOnlyList<string> enabledObjects)
    {
        var match = QueryPattern().Match(soql.Trim());
        if (!match.Success)
        {
            return (null, "MALFORMED_QUERY", "The sandbox's Tooling API serves SELECT fields FROM PlatformEventChannelMember [WHERE field = 'value' [AND ...]]");
        }

        var selected = match.Groups["fields"].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        foreach (var field in selected)
        {
            if (!Fields.Contains(field, StringComparer.OrdinalIgnoreCase))
            {
                return (null, "INVALID_FIELD", $"No such column '{field}' on entity 'PlatformEventChannelMember'. The fields are {string.Join(", ", Fields)}.");
            }
        }

        var conditions = new List<(string Field, string Value)>();
        if (match.Groups["where"].Success)
        {
            foreach (var condition in AndPattern().Split(match.Groups["where"].Value))
            {
                var equals = ConditionPattern().Match(condition.Trim());
                if (!equals.Success || !Fields.Contains(equals.Groups[1].Value, StringComparer.OrdinalIgnoreCase))
                {
                    return (null, "MALFORMED_QUERY", $"The sandbox's Tooling API filters PlatformEventChannelMember with field = 'value' conditions joined by AND, not: {condition.Trim()}");
                }

                conditions.Add((equals.Groups[1].Value, equals.Groups[2].Value));
            }
        }

        var records = new JsonArray();
        var index = 0;
        foreach (var sObject in enabledObjects)
        {
            var id = SalesforceIds.Create("0v8", 0x100 + index++);
            var all = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase)
            {
                ["Id"] = id,
                ["DeveloperName"] = $"{sObject}ChangeEvent",
                ["FullName"] = $"ChangeEvents_{sObject}ChangeEvent",
                ["MasterLabel"] = $"{sObject}ChangeEvent",
                ["EventChannel"] = "ChangeEvents",
                ["SelectedEntity"] = $"{sObject}ChangeEvent",
                ["EnrichedFields"] = null,
                ["NamespacePrefix"] = null,
            };
            if (conditions.Any(c => !string.Equals(all[c.Field], c.Value, StringComparison.OrdinalIgnoreCase)))
            {
                continue;
            }

            var record = new JsonObject
            {
                ["attributes"] = new JsonObject { ["type"] = "PlatformEventChannelMember", ["url"] = $"/services/data/v{version}/tooling/sobjects/PlatformEventChannelMember/{id}" },
            };
            foreach (var field in selected)
            {
                var name = Fields.First(f => f.Equals(field, StringComparison.OrdinalIgnoreCase));
                record[name] = all[name];
            }

            records.Add(record);
        }

        return (new JsonObject
        {
            ["size"] = records.Count,
            ["totalSize"] = records.Count,
            ["done"] = true,
            ["queryLocator"] = null,
            ["entityTypeName"] = "PlatformEventChannelMember",
            ["records"] = records,
        }, null, null);
    }

    [GeneratedRegex(@"^SELECT\s+(?<fields>.+?)\s+FROM\s+PlatformEventChannelMember(?:\s+WHERE\s+(?<where>.+?))?$", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex QueryPattern();

    [GeneratedRegex(@"\s+AND\s+", RegexOptions.IgnoreCase)]
    private static partial Regex AndPattern();

    [GeneratedRegex(@"^(\w+)\s*=\s*'([^']*)'$")]
    private static partial Regex ConditionPattern();
}
