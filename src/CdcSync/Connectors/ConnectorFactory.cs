using CdcSync.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace CdcSync.Connectors;

/// <summary>Binds and validates a connector's options from its config section (the registry's types use it).</summary>
internal static class ConnectorFactory
{
    /// <summary>
    /// A connector's options bound from its section and checked by the class's generated validator
    /// (<see cref="ConfigOptions"/>); the first problem is the error, named as `check` names it.
    /// </summary>
    internal static T BindValidated<T>(IConfigurationSection section, string path, IValidateOptions<T> validator)
        where T : class, new()
    {
        var problems = new List<string>();
        var options = ConfigOptions.Bind(section, path, validator, problems);
        return problems.Count == 0 ? options : throw new OperatorException(problems[0]);
    }
}
