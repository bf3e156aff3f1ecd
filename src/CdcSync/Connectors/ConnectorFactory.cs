using CdcSync.Configuration;
using CdcSync.Hub;
using Microsoft.Extensions.Configuration;

namespace CdcSync.Connectors;

/// <summary>Binds and validates a connector's options from its config section (the registry's types use it).</summary>
public static class ConnectorFactory
{
    public static T BindValidated<T>(IConfigurationSection section, string path)
        where T : new()
    {
        var options = new T();
        var problems = new List<string>();
        if (!ConfigSchema.TryBind(section, options, problems))
        {
            throw new OperatorException(problems[0]);
        }

        ConfigLoader.Validate(options, path);
        return options;
    }
}
