using Microsoft.Extensions.Options;

namespace CdcSync.Connectors.Webhook;

/// <summary>A connector of Type webhook and its Resilience.</summary>
/// <remarks>
/// Microsoft.Extensions.Options' source generator writes it from the DataAnnotations of the options
/// and of what they hold ([ValidateObjectMembers], [ValidateEnumeratedItems]); the registry's type
/// runs it through ConfigKeyValidator so a failure names its config key.
/// </remarks>
[OptionsValidator]
internal sealed partial class WebhookOptionsValidator : IValidateOptions<WebhookOptions>;
