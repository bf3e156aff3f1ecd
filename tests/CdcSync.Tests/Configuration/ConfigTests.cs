using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace CdcSync.Tests.Configuration;

public sealed class ConfigTests
{
    private static CdcSyncOptions Bind(Dictionary<string, string?> settings)
    {
        settings.TryAdd("Hub:ConnectionString", "Host=127.0.0.1;Database=hub;Username=u;Password=p");
        return ConnectorConfig.Bind(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
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
    public void Build_OptionalVariableNotSet_TakesItsDefaultOrLeavesTheKeyUnset()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cdcsync-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """
            { "Hub": { "ConnectionString": "Host=h", "Slot": "${CDCSYNC_TEST_SURELY_UNSET_VARIABLE:-slot_a}" },
              "Connectors": { "sf": { "PubSubEndpoint": "${CDCSYNC_TEST_SURELY_UNSET_VARIABLE:-}", "Name": "x${CDCSYNC_TEST_SURELY_UNSET_VARIABLE:-}y" } } }
            """);

        var config = ConfigLoader.Build(path);

        Assert.Equal("slot_a", config["Hub:Slot"]);
        Assert.Null(config["Connectors:sf:PubSubEndpoint"]);
        Assert.Equal("xy", config["Connectors:sf:Name"]);
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

    [Fact]
    public void BindAll_ExampleConfigWithLoggingFormatJson_NoProblemsAndTheFormatBound()
    {
        // What CDCSYNC__Logging__Format=json does to examples/pgbench-to-postgres.json (the env
        // variable itself is covered by the deployment tests, which run the executable).
        var configuration = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(Repo.Root, "examples", "pgbench-to-postgres.json"))
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Hub:ConnectionString"] = "Host=127.0.0.1;Database=hub;Username=u;Password=p",
                ["Connectors:target:ConnectionString"] = "Host=127.0.0.1;Database=target;Username=u;Password=p",
                ["Logging:Format"] = "json",
            })
            .Build();

        var (options, problems) = ConnectorConfig.BindAll(configuration);

        Assert.Empty(problems);
        Assert.Equal(LogFormat.Json, options.Logging.Format);
    }

    [Fact]
    public void Bind_LoggingFormatUnknown_NamesTheKeyAndTheAcceptedValues()
    {
        var e = Assert.Throws<OperatorException>(() => Bind(new()
        {
            ["Logging:Format"] = "xml",
            ["Connectors:target:Type"] = "postgres",
            ["Connectors:target:ConnectionString"] = "Host=127.0.0.1",
            ["Routes:public.accounts:0"] = "target",
        }));

        Assert.Equal("Config key Logging:Format is 'xml'; use one of: text, json.", e.Message);
    }

    [Fact]
    public void Bind_UnknownTopLevelSection_NamesItAndTheKnownSections()
    {
        var e = Assert.Throws<OperatorException>(() => Bind(new()
        {
            ["Pager:Email"] = "ops@example.com",
            ["Connectors:target:Type"] = "postgres",
            ["Connectors:target:ConnectionString"] = "Host=127.0.0.1",
            ["Routes:public.accounts:0"] = "target",
        }));

        Assert.Equal("Config key Pager is not a setting CdcSync knows; known keys here: Alerts, Connectors, Console, Hub, Logging, Reconcile, Routes.", e.Message);
    }

    [Fact]
    public void Bind_MisspelledLoggingSection_SuggestsLogging()
    {
        var e = Assert.Throws<OperatorException>(() => Bind(new()
        {
            ["Loging:Format"] = "json",
            ["Connectors:target:Type"] = "postgres",
            ["Connectors:target:ConnectionString"] = "Host=127.0.0.1",
            ["Routes:public.accounts:0"] = "target",
        }));

        Assert.Equal("Config key Loging is not a setting CdcSync knows; did you mean Logging?", e.Message);
    }

    [Fact]
    public void Sections_AreThePropertiesOfTheRootOptions()
    {
        // The unknown-key check reads this list: a new section is a known key once it is a property of CdcSyncOptions
        // (OptionsValidationTests checks that the host binds every options-class section).
        Assert.Equal(
            typeof(CdcSyncOptions).GetProperties().Select(p => p.Name).Order(StringComparer.Ordinal),
            ConfigSchema.Sections.Select(p => p.Name).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("{\n  \"Hub\": {\n    \"Slot\": \"x,\n    \"Publication\": \"y\"\n  }\n}\n", 3, 16)]
    [InlineData("{\n  \"Hub\": {\n    \"Slot\": \"x\"\n    \"Publication\": \"y\"\n  }\n}\n", 4, 5)]
    [InlineData("{ \"Hub\": { \"Slot\": \"x\" }\n", 2, 1)]
    [InlineData("{ \"Hub\": { \"Slot\": \"é\" } ] }", 1, 26)]
    public void Build_MalformedJson_NamesTheFileLineAndColumn(string text, int line, int column)
    {
        var path = Path.Combine(Path.GetTempPath(), $"cdcsync-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, text);

        var e = Assert.Throws<OperatorException>(() => ConfigLoader.Build(path));

        Assert.StartsWith($"config {path}: invalid JSON at line {line}, column {column}: ", e.Message, StringComparison.Ordinal);
        Assert.EndsWith("; fix the file.", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("LineNumber", e.Message, StringComparison.Ordinal);
        Assert.Single(e.Message.Split('\n'));
    }

    [Fact]
    public void Build_CommentsAndTrailingCommas_AreAccepted()
    {
        // The JSON configuration provider reads JSON with comments and trailing commas; so does the syntax check before it.
        var path = Path.Combine(Path.GetTempPath(), $"cdcsync-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "\uFEFF{ // the hub\n  \"Hub\": { \"ConnectionString\": \"Host=h\", \"Slot\": \"x\", },\n}\n");

        Assert.Equal("x", ConfigLoader.Build(path)["Hub:Slot"]);
    }
}
