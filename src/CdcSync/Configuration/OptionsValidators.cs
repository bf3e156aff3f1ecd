using CdcSync.Connectors.NetSuite;
using CdcSync.Connectors.Postgres;
using CdcSync.Connectors.Salesforce;
using CdcSync.Connectors.Webhook;
using Microsoft.Extensions.Options;

namespace CdcSync.Configuration;

// Microsoft.Extensions.Options' source generator writes these from the DataAnnotations of each
// options class and of what it holds ([ValidateObjectMembers], [ValidateEnumeratedItems]): the
// rules stay attributes on the options, nothing walks the classes by reflection at run time, and a
// nested options class left unmarked is a build warning (SYSLIB1212/1213; warnings are errors).
// One per config section or connector kind that has rules; ConfigOptions runs each through
// ConfigKeyValidator so a failure names its config key. LoggingOptions has none: its only value,
// Format, is an enum, checked when it is bound.

/// <summary>Section Hub.</summary>
[OptionsValidator]
internal sealed partial class HubOptionsValidator : IValidateOptions<HubOptions>;

/// <summary>A connector of Type postgres.</summary>
[OptionsValidator]
internal sealed partial class PostgresConnectorOptionsValidator : IValidateOptions<PostgresConnectorOptions>;

/// <summary>A connector of Type salesforce, its objects, their lookups, its Inbound and Resilience.</summary>
[OptionsValidator]
internal sealed partial class SalesforceOptionsValidator : IValidateOptions<SalesforceOptions>;

/// <summary>A connector of Type netsuite, its records, their lookups, its Inbound and Resilience.</summary>
[OptionsValidator]
internal sealed partial class NetSuiteOptionsValidator : IValidateOptions<NetSuiteOptions>;

/// <summary>A connector of Type webhook and its Resilience.</summary>
[OptionsValidator]
internal sealed partial class WebhookOptionsValidator : IValidateOptions<WebhookOptions>;
