using CdcSync.Configuration;
using CdcSync.Hub;
using Microsoft.Extensions.Configuration;

namespace CdcSync.Tests.Configuration;

public sealed class ConfigTests
{
    private static CdcSyncOptions Bind(Dictionary<string, string?> settings)
    {
        settings.TryAdd("Hub:ConnectionString", "Host=127.0.0.1;Database=hub;Username=u;Password=p");
        return ConfigLoader.Bind(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
    }

    [Fact]
    public void Bind_RouteToUndefinedConnector_NamesTheRouteAndTheKnownConnectors()
    {
        var e = Assert.Throws<OperatorException>(() => Bind(new()
        {
            ["Connectors:target:Type"] = "postgres",
            ["Connectors:target:ConnectionString"] = "Host=127.0.0.1",
            ["Routes:public.accounts:0"] = "targte",
        }));

        Assert.Contains("Routes:public.accounts", e.Message);
        Assert.Contains("'targte'", e.Message);
        Assert.Contains("target", e.Message);
    }

    [Fact]
    public void Bind_SlotNameWithCapitals_NamesTheKeyAndTheRule()
    {
        var e = Assert.Throws<OperatorException>(() => Bind(new()
        {
            ["Hub:Slot"] = "MySlot",
            ["Connectors:target:Type"] = "postgres",
            ["Routes:public.accounts:0"] = "target",
        }));

        Assert.Contains("Hub:Slot", e.Message);
        Assert.Contains("lower-case", e.Message);
    }

    [Fact]
    public void Bind_HeartbeatNotATimeSpan_NamesTheSection()
    {
        var e = Assert.Throws<OperatorException>(() => Bind(new()
        {
            ["Hub:HeartbeatInterval"] = "ten seconds",
            ["Connectors:target:Type"] = "postgres",
            ["Routes:public.accounts:0"] = "target",
        }));

        Assert.Contains("Hub", e.Message);
        Assert.Contains("HeartbeatInterval", e.Message);
    }

    [Fact]
    public void Build_VariableNotSet_NamesTheKeyAndTheVariable()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cdcsync-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """{ "Hub": { "ConnectionString": "${CDCSYNC_TEST_SURELY_UNSET_VARIABLE}" } }""");

        var e = Assert.Throws<OperatorException>(() => ConfigLoader.Build(path));

        Assert.Contains("Hub:ConnectionString", e.Message);
        Assert.Contains("CDCSYNC_TEST_SURELY_UNSET_VARIABLE", e.Message);
    }

    [Fact]
    public void Build_MalformedJson_SaysSoWithTheFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cdcsync-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """{ "Hub": { "Slot": "x", } """);

        var e = Assert.Throws<OperatorException>(() => ConfigLoader.Build(path));

        Assert.Contains(path, e.Message);
        Assert.Contains("JSON", e.Message);
    }

    [Fact]
    public void Bind_UnknownConnectorType_ListsTheKnownOnes()
    {
        // Caught when the config is bound, before any connector is created.
        var e = Assert.Throws<OperatorException>(() => Bind(new()
        {
            ["Connectors:target:Type"] = "oracle",
            ["Routes:public.accounts:0"] = "target",
        }));

        Assert.Contains("Connectors:target:Type", e.Message);
        Assert.Contains("postgres, salesforce, netsuite, webhook", e.Message);
    }
}
