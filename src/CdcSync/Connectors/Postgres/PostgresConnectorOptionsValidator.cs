using Microsoft.Extensions.Options;

namespace CdcSync.Connectors.Postgres;

/// <summary>A connector of Type postgres.</summary>
/// <remarks>
/// Microsoft.Extensions.Options' source generator writes it from the DataAnnotations of the options
/// and of what they hold ([ValidateObjectMembers], [ValidateEnumeratedItems]); the registry's type
/// runs it through ConfigKeyValidator so a failure names its config key.
/// </remarks>
[OptionsValidator]
internal sealed partial class PostgresConnectorOptionsValidator : IValidateOptions<PostgresConnectorOptions>;
