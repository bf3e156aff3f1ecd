using System.CommandLine;
using CdcSync.Cli.Commands;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Connectors.NetSuite;
using Microsoft.Extensions.Configuration;

namespace CdcSync.Tests.Configuration;

public sealed class DurationTests
{
    [Theory]
    [InlineData("250ms", 250)]
    [InlineData("30s", 30_000)]
    [InlineData("5m", 300_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("2d", 172_800_000)]
    [InlineData("2h30m", 9_000_000)]
    [InlineData("1m30s", 90_000)]
    [InlineData("1s500ms", 1_500)]
    [InlineData("1.5h", 5_400_000)]
    [InlineData("0", 0)]
    [InlineData(" 5m ", 300_000)]
    [InlineData("00:05:00", 300_000)]
    [InlineData("00:00:00.100", 100)]
    [InlineData("1.00:00:00", 86_400_000)]
    public void TryParse_AcceptedForm_GivesTheDuration(string text, long milliseconds)
    {
        Assert.True(Duration.TryParse(text, out var value), text);
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10x")]
    [InlineData("5")]          // no unit: five days to TimeSpan.Parse, five seconds to a person
    [InlineData("m")]
    [InlineData("30m2h")]      // units largest first
    [InlineData("1h1h")]
    [InlineData("5M")]
    [InlineData("5 m")]
    [InlineData("-5s")]
    [InlineData("1e3s")]
    [InlineData("ten seconds")]
    [InlineData("99999999999d")]
    public void TryParse_NotADuration_Fails(string text)
    {
        Assert.False(Duration.TryParse(text, out _), text);
    }

    [Fact]
    public void Bind_DurationForms_EveryTimeSpanSettingOfHubAndConnectors()
    {
        var settings = NetSuite();
        settings["Hub:HeartbeatInterval"] = "10s";
        settings["Hub:CommitLinger"] = "2ms";
        settings["Hub:ReplayRetentionAge"] = "1d";
        settings["Connectors:ns:Inbound:OverlapWindow"] = "5s";
        settings["Connectors:ns:Inbound:MaxIdleInterval"] = "2m";
        settings["Connectors:ns:Resilience:RetryBaseDelay"] = "250ms";
        settings["Connectors:ns:Resilience:CircuitBreakerBreakDuration"] = "00:00:15";
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();

        var options = ConnectorConfig.Bind(configuration);
        var netsuite = ConnectorFactory.BindValidated(options.Connectors["ns"], "Connectors:ns", new NetSuiteOptionsValidator());

        Assert.Equal(TimeSpan.FromSeconds(10), options.Hub.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(2), options.Hub.CommitLinger);
        Assert.Equal(TimeSpan.FromDays(1), options.Hub.ReplayRetentionAge);
        Assert.Equal(TimeSpan.FromSeconds(5), netsuite.Inbound.OverlapWindow);
        Assert.Equal(TimeSpan.FromMinutes(2), netsuite.Inbound.MaxIdleInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(250), netsuite.Resilience.RetryBaseDelay);
        Assert.Equal(TimeSpan.FromSeconds(15), netsuite.Resilience.CircuitBreakerBreakDuration);
    }

    [Fact]
    public void Bind_HubDurationNotADuration_NamesTheKeyTheValueAndTheForms()
    {
        var settings = NetSuite();
        settings["Hub:HeartbeatInterval"] = "10x";

        var e = Assert.Throws<OperatorException>(() => ConnectorConfig.Bind(new ConfigurationBuilder().AddInMemoryCollection(settings).Build()));

        Assert.StartsWith("Config key Hub:HeartbeatInterval is '10x'; use a duration like 30s, 5m, 1h or 00:05:00", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("System.TimeSpan", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BindAll_BadValuesInNestedConnectorOptions_EachNamedOnceAndTheRestBound()
    {
        var settings = NetSuite();
        settings["Connectors:ns:Resilience:RetryBaseDelay"] = "soon";
        settings["Connectors:ns:Inbound:OverlapWindow"] = "5 s";
        settings["Connectors:ns:Resilience:MaxRetryAttempts"] = "three";
        settings["Hub:Binary"] = "yes";
        settings["Hub:Slot"] = "still_bound";

        var (options, problems) = ConnectorConfig.BindAll(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());

        Assert.Equal(4, problems.Count);
        Assert.Contains(problems, p => p.StartsWith("Config key Connectors:ns:Resilience:RetryBaseDelay is 'soon'; use a duration like 30s", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Config key Connectors:ns:Inbound:OverlapWindow is '5 s'; use a duration", StringComparison.Ordinal));
        Assert.Contains("Config key Connectors:ns:Resilience:MaxRetryAttempts is 'three'; use a whole number.", problems);
        Assert.Contains("Config key Hub:Binary is 'yes'; use true or false.", problems);
        Assert.Equal("still_bound", options.Hub.Slot);
    }

    [Fact]
    public void Option_DurationForms_ParseAndTheDefaultApplies()
    {
        var option = DurationOption.Create("--max-lag", "test", TimeSpan.FromMinutes(1));
        var command = new RootCommand { option };

        Assert.Equal(TimeSpan.FromMinutes(5), command.Parse(["--max-lag", "5m"]).GetValue(option));
        Assert.Equal(TimeSpan.FromMinutes(5), command.Parse(["--max-lag", "00:05:00"]).GetValue(option));
        Assert.Equal(TimeSpan.FromMinutes(150), command.Parse(["--max-lag", "2h30m"]).GetValue(option));
        Assert.Equal(TimeSpan.FromMinutes(1), command.Parse([]).GetValue(option));
        Assert.Empty(command.Parse(["--max-lag", "250ms"]).Errors);
    }

    [Fact]
    public void Option_NotADuration_OneErrorNamingTheOptionTheValueAndTheForms()
    {
        var option = DurationOption.Create("--max-lag", "test", TimeSpan.FromMinutes(1));

        var error = Assert.Single(new RootCommand { option }.Parse(["--max-lag", "10x"]).Errors);

        Assert.StartsWith("--max-lag is '10x'; use a duration like 30s, 5m, 1h or 00:05:00", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("status", "--max-lag")]
    [InlineData("replay", "--wait")]
    [InlineData("demo", "--step-timeout")]
    public void Verbs_EveryTimeSpanOption_TakesDurations(string verb, string name)
    {
        Command command = verb switch
        {
            "status" => StatusCommand.Create(),
            "replay" => ReplayCommand.Create(),
            _ => DemoCommand.Create(),
        };
        var option = Assert.IsType<Option<TimeSpan>>(command.Options.Single(o => o.Name == name));

        var parsed = command.Parse([name, "90s"]);
        Assert.Equal(TimeSpan.FromSeconds(90), parsed.GetValue(option));
        Assert.Contains(command.Parse([name, "90x"]).Errors, e => e.Message.StartsWith($"{name} is '90x'; use a duration", StringComparison.Ordinal));
    }

    [Fact]
    public void Verbs_NoTimeSpanOptionWithoutTheDurationParser()
    {
        // Every verb's Create(), found by reflection, so a new verb's TimeSpan option is covered too.
        var verbs = typeof(DurationOption).Assembly.GetTypes()
            .Select(t => t.GetMethod("Create", System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static, Type.EmptyTypes))
            .Where(m => m is not null && typeof(Command).IsAssignableFrom(m.ReturnType))
            .Select(m => (Command)m!.Invoke(null, null)!)
            .ToList();
        Assert.True(verbs.Count >= 10, $"found only {verbs.Count} verbs");

        var durations = verbs.SelectMany(Descendants).SelectMany(c => c.Options.OfType<Option<TimeSpan>>()).ToList();

        Assert.True(durations.Count >= 3, $"found {durations.Count} TimeSpan options");
        Assert.All(durations, o => Assert.NotNull(o.CustomParser));
    }

    private static IEnumerable<Command> Descendants(Command command) => command.Subcommands.SelectMany(Descendants).Prepend(command);

    private static Dictionary<string, string?> NetSuite() => new()
    {
        ["Hub:ConnectionString"] = "Host=127.0.0.1;Database=hub;Username=u;Password=p",
        ["Connectors:ns:Type"] = "netsuite",
        ["Connectors:ns:AccountId"] = "a",
        ["Connectors:ns:ConsumerKey"] = "a",
        ["Connectors:ns:ConsumerSecret"] = "a",
        ["Connectors:ns:TokenId"] = "a",
        ["Connectors:ns:TokenSecret"] = "a",
        ["Connectors:ns:Records:0:RecordType"] = "customer",
        ["Connectors:ns:Records:0:Table"] = "ns_customers",
        ["Routes:public.ns_customers:0"] = "ns",
    };
}
