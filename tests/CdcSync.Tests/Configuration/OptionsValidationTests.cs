using System.ComponentModel.DataAnnotations;
using System.Reflection;
using CdcSync.Configuration;
using CdcSync.Connectors.Salesforce;
using CdcSync.Connectors;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CdcSync.Tests.Configuration;

/// <summary>
/// The generated validators, in the worker's host (AddOptions().Bind().ValidateOnStart()) and in
/// ConnectorConfig.BindAll: one line per problem naming the full config key, nested options included.
/// </summary>
public sealed class OptionsValidationTests
{
    private const string HubConnection = "Host=127.0.0.1;Database=hub;Username=u;Password=p";

    [Fact]
    public async Task HostStart_HubOptionOutOfRange_OptionsValidationExceptionExplainedAsTheConfigKeyLine()
    {
        using var host = Host(Valid(new() { ["Hub:HeartbeatInterval"] = "2h" }));

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Equal("Config key Hub:HeartbeatInterval: The field HeartbeatInterval must be a duration between 100ms and 1h.", ConfigLoader.Explain(e)?.Message);
    }

    [Fact]
    public async Task HostStart_HubAndNamedConnectorInvalid_OneLineCountingTheRest()
    {
        using var host = Host(Valid(new()
        {
            ["Hub:Slot"] = "Upper",
            ["Connectors:crm:Type"] = "salesforce",
            ["Connectors:crm:LoginUrl"] = "https://login.example.com",
            ["Connectors:crm:ClientId"] = "id",
            ["Connectors:crm:ClientSecret"] = "secret",
            ["Connectors:crm:Objects:0:Table"] = "sf_accounts",
            ["Connectors:crm:Inbound:IdleApiShare"] = "2",
        }));

        var e = await Assert.ThrowsAsync<AggregateException>(() => host.StartAsync());

        var problem = Assert.IsType<OperatorException>(ConfigLoader.Explain(e));
        Assert.StartsWith("Config key Hub:Slot: Hub:Slot must be 1-63 lower-case letters", problem.Message, StringComparison.Ordinal);
        Assert.EndsWith("(and 2 more problems: 'cdcsync check --config FILE' lists them all)", problem.Message, StringComparison.Ordinal);
        Assert.Single(problem.Message.Split('\n'));
    }

    [Fact]
    public void NamedConnectorOptions_NestedListItemInvalid_FailureNamesTheFullKey()
    {
        using var provider = Services(Valid(new()
        {
            ["Connectors:crm:Type"] = "salesforce",
            ["Connectors:crm:LoginUrl"] = "https://login.example.com",
            ["Connectors:crm:ClientId"] = "id",
            ["Connectors:crm:ClientSecret"] = "secret",
            ["Connectors:crm:Objects:0:SObject"] = "Contact",
            ["Connectors:crm:Objects:0:Table"] = "sf_contacts",
            ["Connectors:crm:Objects:0:Lookups:0:HubKeyColumn"] = "account_hub_id",
            ["Connectors:crm:Objects:0:Lookups:0:ParentTable"] = "sf_accounts",
        }));

        var e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptionsMonitor<SalesforceOptions>>().Get("crm"));

        Assert.Equal(["Config key Connectors:crm:Objects:0:Lookups:0:Column: The Column field is required."], e.Failures);
    }

    [Fact]
    public void HostOptions_ValidConfig_TheSameAsConfigLoaderBinds()
    {
        var configuration = Valid(new()
        {
            ["Hub:HeartbeatInterval"] = "30s",
            ["Hub:ReplayRetentionAge"] = "2h30m",
            ["Logging:Format"] = "json",
        });
        using var provider = Services(configuration);

        var hosted = provider.GetRequiredService<CdcSyncOptions>();
        var loaded = ConnectorConfig.Bind(configuration);

        Assert.Equal(TimeSpan.FromSeconds(30), hosted.Hub.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromMinutes(150), hosted.Hub.ReplayRetentionAge);
        Assert.Equal(LogFormat.Json, hosted.Logging.Format);
        Assert.Equal(loaded.Hub.ConnectionString, hosted.Hub.ConnectionString);
        Assert.Contains("Connection Idle Lifetime=10", hosted.Hub.ConnectionString, StringComparison.Ordinal);
        Assert.Equal(loaded.Routes.Keys, hosted.Routes.Keys);
        Assert.Equal(loaded.Connectors.Keys, hosted.Connectors.Keys);
        Assert.Equal(HubOptionsValues(loaded.Hub), HubOptionsValues(hosted.Hub));
    }

    [Fact]
    public void BindAll_NetSuiteRecordTypeInvalid_NamesTheListItemKeyAndTheRule()
    {
        var problems = Problems(new()
        {
            ["Connectors:ns:Type"] = "netsuite",
            ["Connectors:ns:AccountId"] = "a",
            ["Connectors:ns:ConsumerKey"] = "a",
            ["Connectors:ns:ConsumerSecret"] = "a",
            ["Connectors:ns:TokenId"] = "a",
            ["Connectors:ns:TokenSecret"] = "a",
            ["Connectors:ns:Records:0:RecordType"] = "customer",
            ["Connectors:ns:Records:0:Table"] = "ns_customers",
            ["Connectors:ns:Records:1:RecordType"] = "SalesOrder",
            ["Connectors:ns:Records:1:Table"] = "ns_orders",
            ["Routes:public.ns_customers:0"] = "ns",
        });

        Assert.Equal(["Config key Connectors:ns:Records:1:RecordType: RecordType must be a NetSuite record type id in lower case, e.g. customer."], problems);
    }

    [Fact]
    public void BindAll_ConnectorNameWithADot_KeyKeepsTheName()
    {
        var problems = Problems(new()
        {
            ["Connectors:hooks.prod:Type"] = "webhook",
            ["Connectors:hooks.prod:Url"] = "https://hooks.example.com/x",
            ["Connectors:hooks.prod:Secret"] = "0123456789abcdef",
            ["Connectors:hooks.prod:Resilience:CircuitBreakerBreakDuration"] = "100ms",
            ["Routes:public.accounts:0"] = "hooks.prod",
        });

        Assert.Equal(["Config key Connectors:hooks.prod:Resilience:CircuitBreakerBreakDuration: The field CircuitBreakerBreakDuration must be a duration between 500ms and 1d."], problems);
    }

    [Fact]
    public void BindAll_ReplayRetentionBytesNegative_SaysWhatZeroMeans()
    {
        var problems = Problems(new()
        {
            ["Hub:ReplayRetentionBytes"] = "-1",
            ["Connectors:target:Type"] = "postgres",
            ["Connectors:target:ConnectionString"] = "Host=127.0.0.1",
            ["Routes:public.accounts:0"] = "target",
        });

        Assert.Equal(["Config key Hub:ReplayRetentionBytes: Hub:ReplayRetentionBytes must be 0 or more (0 turns the replay window off)."], problems);
    }

    [Theory]
    [InlineData("100ms", true)]
    [InlineData("1h", true)]
    [InlineData("99ms", false)]
    [InlineData("1h1ms", false)]
    public void DurationRange_Bounds_Inclusive(string value, bool valid)
    {
        var range = new DurationRangeAttribute("100ms", "1h");

        Assert.True(Duration.TryParse(value, out var duration));
        Assert.Equal(valid, range.IsValid(duration));
        Assert.Equal("The field X must be a duration between 100ms and 1h.", range.FormatErrorMessage("X"));
    }

    [Fact]
    public void OptionsClasses_NoRangeWithAnErrorMessage_TheGeneratorWouldDropIt()
    {
        // The options validation source generator's copy of RangeAttribute ignores ErrorMessage
        // (dotnet/runtime#123137): such a message would never be shown.
        var ranges = OptionsTypes()
            .SelectMany(t => t.GetProperties())
            .SelectMany(p => p.GetCustomAttributes<RangeAttribute>().Select(a => (Property: $"{p.DeclaringType!.Name}.{p.Name}", Attribute: a)))
            .ToList();

        Assert.NotEmpty(ranges);
        Assert.All(ranges, r => Assert.True(r.Attribute.ErrorMessage is null && r.Attribute.OperandType != typeof(TimeSpan), r.Property));
    }

    [Fact]
    public void NestedOptionsClasses_EveryErrorMessageShowsTheDisplayName()
    {
        // A failure names only its member; where a nested member sits comes from the display name
        // ({0}) the generator builds from the path (ConfigKeyMessages).
        var nested = OptionsTypes()
            .SelectMany(t => t.GetProperties())
            .Where(p => p.IsDefined(typeof(ValidateObjectMembersAttribute)) || p.IsDefined(typeof(ValidateEnumeratedItemsAttribute)))
            .Select(p => p.PropertyType.IsGenericType ? p.PropertyType.GetGenericArguments()[0] : p.PropertyType)
            .Distinct()
            .ToList();

        Assert.True(nested.Count >= 5, $"found {nested.Count} nested options classes");
        Assert.All(
            nested.SelectMany(t => t.GetProperties()).SelectMany(p => p.GetCustomAttributes<ValidationAttribute>().Select(a => (Property: $"{p.DeclaringType!.Name}.{p.Name}", a.ErrorMessage))),
            m => Assert.True(m.ErrorMessage is null || m.ErrorMessage.Contains("{0}", StringComparison.Ordinal), m.Property));
    }

    [Fact]
    public void AddCdcSyncOptions_EverySectionThatIsAnOptionsClass_IsRegistered()
    {
        using var provider = Services(Valid([]));

        foreach (var section in ConfigSchema.Sections.Where(p => p.PropertyType.Namespace == typeof(HubOptions).Namespace))
        {
            Assert.NotNull(provider.GetService(typeof(IOptions<>).MakeGenericType(section.PropertyType)));
        }
    }

    private static IConfiguration Valid(Dictionary<string, string?> settings)
    {
        settings.TryAdd("Hub:ConnectionString", HubConnection);
        settings.TryAdd("Connectors:target:Type", "postgres");
        settings.TryAdd("Connectors:target:ConnectionString", "Host=127.0.0.1");
        settings.TryAdd("Routes:public.accounts:0", "target");
        return new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
    }

    private static List<string> Problems(Dictionary<string, string?> settings)
    {
        settings.TryAdd("Hub:ConnectionString", HubConnection);
        return ConnectorConfig.BindAll(new ConfigurationBuilder().AddInMemoryCollection(settings).Build()).Problems;
    }

    private static IHost Host(IConfiguration configuration)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddCdcSyncOptions(configuration);
        return builder.Build();
    }

    private static ServiceProvider Services(IConfiguration configuration) => new ServiceCollection().AddCdcSyncOptions(configuration).BuildServiceProvider();

    private static IEnumerable<Type> OptionsTypes() => typeof(HubOptions).Assembly.GetTypes().Where(t => t.Name.EndsWith("Options", StringComparison.Ordinal) && t.IsClass);

    private static List<string> HubOptionsValues(HubOptions hub) =>
        typeof(HubOptions).GetProperties().Select(p => $"{p.Name}={p.GetValue(hub)}").ToList();
}
