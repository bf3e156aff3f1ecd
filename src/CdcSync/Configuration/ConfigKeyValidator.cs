using Microsoft.Extensions.Options;

namespace CdcSync.Configuration;

/// <summary>
/// A generated validator (<see cref="HubOptionsValidator"/> and the others) made to name config
/// keys: it is run with the section's path (<c>Hub</c>, <c>Connectors:crm</c>) as the options name,
/// and each failure becomes the line `check` prints and `run` stops with
/// (<see cref="ConfigKeyMessages"/>). Registered in the worker's host and used by
/// the config loader (ConnectorConfig.BindAll) alike, so both say the same thing about the same mistake.
/// </summary>
/// <param name="generated">The source-generated validator.</param>
/// <param name="pathOf">The config path of the options instance of a name (named options are connectors).</param>
internal sealed class ConfigKeyValidator<TOptions>(IValidateOptions<TOptions> generated, Func<string?, string> pathOf) : IValidateOptions<TOptions>
    where TOptions : class
{
    public ValidateOptionsResult Validate(string? name, TOptions options)
    {
        var path = pathOf(name);
        var result = generated.Validate(path, options);
        return result.Failed ? ValidateOptionsResult.Fail(ConfigKeyMessages.Describe(path, result.Failures ?? [])) : result;
    }
}
