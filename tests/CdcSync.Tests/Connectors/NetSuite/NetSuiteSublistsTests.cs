using System.Text.Json.Nodes;
using CdcSync.Connectors.NetSuite;

namespace CdcSync.Tests.Connectors.NetSuite;

/// <summary>Sublist lines are merged by key with what NetSuite holds, never replaced wholesale.</summary>
public sealed class NetSuiteSublistsTests
{
    [Fact]
    public void Merge_HubChangedItsBillingLine_NetSuiteOnlyLinesSurviveAndLineIdsAreKept()
    {
        var before = Parse("""[{"label":"Billing","addressBookAddress":{"city":"Austin"}}]""");
        var after = Parse("""[{"label":"Billing","addressBookAddress":{"city":"Dallas"}}]""");
        var current = Parse("""[{"id":"7","label":"Billing","addressBookAddress":{"city":"Austin"}},{"id":"8","label":"Warehouse","addressBookAddress":{"city":"Oakland"}}]""");

        var merged = NetSuiteSublists.Merge(before, after, current, keyField: "label");

        Assert.True(JsonNode.DeepEquals(
            Parse("""[{"label":"Billing","addressBookAddress":{"city":"Dallas"},"id":"7"},{"id":"8","label":"Warehouse","addressBookAddress":{"city":"Oakland"}}]"""),
            merged), merged.ToJsonString());
    }

    [Fact]
    public void Merge_HubRemovedALineAndAddedOne_OnlyThoseChange()
    {
        var before = Parse("""[{"label":"Billing"},{"label":"Old"}]""");
        var after = Parse("""[{"label":"Billing"},{"label":"New"}]""");
        var current = Parse("""[{"label":"Billing","x":1},{"label":"Old"},{"label":"Theirs"}]""");

        var merged = NetSuiteSublists.Merge(before, after, current, keyField: null);

        Assert.Equal(["Billing", "Theirs", "New"], merged.Select(l => l!["label"]!.GetValue<string>()));
        Assert.Equal(1, merged[0]!["x"]!.GetValue<int>());    // unchanged in the hub: NetSuite's version of the line stands
    }

    [Fact]
    public void Clean_DropsNavigationLinks()
    {
        var cleaned = NetSuiteSublists.Clean(Parse("""[{"label":"Billing","links":[{"rel":"self"}],"addressBookAddress":{"city":"Austin","links":[]}}]"""));

        Assert.Equal("""[{"label":"Billing","addressBookAddress":{"city":"Austin"}}]""", cleaned.ToJsonString());
    }

    private static JsonArray Parse(string json) => (JsonArray)JsonNode.Parse(json)!;
}
