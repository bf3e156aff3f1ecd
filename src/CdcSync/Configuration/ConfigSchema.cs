using System.ComponentModel;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace CdcSync.Configuration;

/// <summary>
/// What a config file may contain, found by reading the properties of the options classes each
/// section binds to, so an option added to any of them is known here without a list to keep in
/// step. Walks the configuration's keys: finds unknown keys anywhere (with the closest known key)
/// and values that do not convert. Validating bound values is not done here: that is the
/// generated validators' work (<see cref="ConfigOptions"/>).
/// </summary>
internal static class ConfigSchema
{
    /// <summary>Keys every connector section has besides its options: the Type, and the Inbound switch.</summary>
    private static readonly string[] ConnectorKeys = ["Type", "Inbound"];

    /// <summary>
    /// The config's top-level sections: the properties of <see cref="CdcSyncOptions"/>. A new
    /// section is one property there, which makes it a known key; ConnectorConfig.BindAll and
    /// ConnectorConfig.AddCdcSyncOptions bind and validate it.
    /// </summary>
    public static IReadOnlyList<PropertyInfo> Sections { get; } = Settable(typeof(CdcSyncOptions)).ToList();

    /// <summary>What a walk over the config reports: keys no options class has, or values that do not convert.</summary>
    private enum Look
    {
        Keys,
        Values,
    }

    /// <param name="connectorOptionsType">The options class a connector Type binds to (the registry's), or null for a Type it does not know.</param>
    public static List<string> UnknownKeys(IConfiguration root, Func<string, Type?> connectorOptionsType)
    {
        var problems = new List<string>();
        foreach (var section in root.GetChildren())
        {
            var property = Property(typeof(CdcSyncOptions), section.Key);
            if (property is null)
            {
                problems.Add(Unknown(section, Sections.Select(p => p.Name)));
            }
            else if (property.PropertyType == typeof(Dictionary<string, IConfigurationSection>))
            {
                // Connectors: each binds to the options class its Type names.
                foreach (var connector in section.GetChildren())
                {
                    WalkConnector(connector, connectorOptionsType, problems);
                }
            }
            else
            {
                WalkValue(section, property.PropertyType, problems, Look.Keys);
            }
        }

        return problems;
    }

    /// <summary>
    /// Binds a section to an options object. Values are checked first and each bad one is a
    /// problem naming its key and the accepted forms; the binder would stop at the first one,
    /// naming a .NET type. The other values are bound, the bad ones keep their defaults, so the
    /// rest of the config can still be checked. Returns whether every value was bound.
    /// </summary>
    public static bool TryBind(IConfigurationSection section, object options, List<string> problems)
    {
        Duration.UseForConfiguration();
        var bad = new List<string>();
        var before = problems.Count;
        WalkValue(section, options.GetType(), problems, Look.Values, bad);
        IConfiguration source = section;
        if (bad.Count > 0)
        {
            var prefix = section.Path + ConfigurationPath.KeyDelimiter;
            var good = section.AsEnumerable()
                .Where(kv => kv.Key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && !bad.Contains(kv.Key, StringComparer.OrdinalIgnoreCase))
                .Select(kv => KeyValuePair.Create(kv.Key[prefix.Length..], kv.Value));
            source = new ConfigurationBuilder().AddInMemoryCollection(good).Build();
        }

        try
        {
            source.Bind(options);
        }
        catch (InvalidOperationException e)
        {
            problems.Add($"Config section {section.Path}: {e.Message}");
        }

        return problems.Count == before;
    }

    private static void WalkConnector(IConfigurationSection connector, Func<string, Type?> connectorOptionsType, List<string> problems)
    {
        var type = connector["Type"];
        if (type is null || connectorOptionsType(type) is not { } optionsType)
        {
            // Reported by the binding step with the list of types; nothing to compare keys with.
            return;
        }

        foreach (var child in connector.GetChildren())
        {
            if (child.Key.Equals("Type", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            // Connectors with an inbound side bind Inbound to their own options class (walked below).
            if (child.Key.Equals("Inbound", StringComparison.OrdinalIgnoreCase) && Property(optionsType, child.Key) is null)
            {
                foreach (var inbound in child.GetChildren().Where(c => !c.Key.Equals("Enabled", StringComparison.OrdinalIgnoreCase)))
                {
                    problems.Add(Unknown(inbound, ["Enabled"]));
                }

                continue;
            }

            var property = Property(optionsType, child.Key);
            if (property is null)
            {
                problems.Add(Unknown(child, Settable(optionsType).Select(p => p.Name).Concat(ConnectorKeys)));
                continue;
            }

            WalkValue(child, property.PropertyType, problems, Look.Keys);
        }
    }

    private static void Walk(IConfigurationSection section, Type type, List<string> problems, Look look, List<string>? bad = null)
    {
        foreach (var child in section.GetChildren())
        {
            var property = Property(type, child.Key);
            if (property is null)
            {
                if (look == Look.Keys)
                {
                    problems.Add(Unknown(child, Settable(type).Select(p => p.Name)));
                }

                continue;
            }

            WalkValue(child, property.PropertyType, problems, look, bad);
        }
    }

    private static void WalkValue(IConfigurationSection section, Type type, List<string> problems, Look look, List<string>? bad = null)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (IsScalar(type) || typeof(IConfiguration).IsAssignableFrom(type))
        {
            if (look == Look.Values && BadValue(section, type) is { } problem)
            {
                problems.Add(problem);
                bad?.Add(section.Path);
            }

            return;
        }

        if (DictionaryValueType(type) is { } valueType)
        {
            foreach (var child in section.GetChildren())
            {
                WalkValue(child, valueType, problems, look, bad);
            }

            return;
        }

        if (ElementType(type) is { } elementType)
        {
            foreach (var child in section.GetChildren())
            {
                WalkValue(child, elementType, problems, look, bad);
            }

            return;
        }

        Walk(section, type, problems, look, bad);
    }

    /// <summary>A value the binder could not convert to its property's type, as a problem naming the key and what it accepts.</summary>
    private static string? BadValue(IConfigurationSection section, Type type)
    {
        // An empty value leaves the default in place, as the binder does.
        if (string.IsNullOrEmpty(section.Value) || type == typeof(string) || typeof(IConfiguration).IsAssignableFrom(type))
        {
            return null;
        }

        if (type == typeof(TimeSpan))
        {
            return Duration.TryParse(section.Value, out _) ? null : "Config key " + Duration.Problem(section.Path, section.Value);
        }

        if (type.IsEnum)
        {
            return Enum.TryParse(type, section.Value, ignoreCase: true, out var choice) && Enum.IsDefined(type, choice!)
                ? null
                : $"Config key {section.Path} is '{section.Value}'; use one of: {string.Join(", ", Enum.GetNames(type).Select(n => n.ToLowerInvariant()))}.";
        }

        try
        {
            _ = TypeDescriptor.GetConverter(type).ConvertFromInvariantString(section.Value);
            return null;
        }
        catch (Exception e) when (e is FormatException or NotSupportedException or ArgumentException or OverflowException || e.InnerException is FormatException or OverflowException)
        {
            // A URL may carry a token (webhooks): it is not repeated.
            return type == typeof(Uri)
                ? $"Config key {section.Path} is not a URL; use an absolute URL like https://host/path."
                : $"Config key {section.Path} is '{section.Value}'; use {Accepted(type)}.";
        }
    }

    private static string Accepted(Type type) => Type.GetTypeCode(type) switch
    {
        TypeCode.Boolean => "true or false",
        TypeCode.Byte or TypeCode.SByte or TypeCode.Int16 or TypeCode.UInt16 or TypeCode.Int32 or TypeCode.UInt32 or TypeCode.Int64 or TypeCode.UInt64
            => "a whole number",
        TypeCode.Single or TypeCode.Double or TypeCode.Decimal => "a number like 0.5",
        _ => $"a {type.Name} value",
    };

    private static bool IsScalar(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan) ||
        type == typeof(DateTime) || type == typeof(DateTimeOffset) || type == typeof(Guid) || type == typeof(Uri);

    private static Type? DictionaryValueType(Type type)
    {
        var dictionary = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IDictionary<,>)
            ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>));
        return dictionary?.GetGenericArguments()[1];
    }

    private static Type? ElementType(Type type)
    {
        if (type.IsArray)
        {
            return type.GetElementType();
        }

        var enumerable = type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>));
        return enumerable?.GetGenericArguments()[0];
    }

    private static IEnumerable<PropertyInfo> Settable(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite || !IsScalar(p.PropertyType));

    private static PropertyInfo? Property(Type type, string key) =>
        Settable(type).FirstOrDefault(p => p.Name.Equals(key, StringComparison.OrdinalIgnoreCase));

    private static string Unknown(IConfigurationSection section, IEnumerable<string> known)
    {
        var names = known.Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var hint = DidYouMean.Closest(section.Key, names) is { } closest
            ? $"did you mean {Parent(section.Path)}{closest}?"
            : $"known keys here: {string.Join(", ", names.Order(StringComparer.Ordinal))}.";
        return $"Config key {section.Path} is not a setting CdcSync knows; {hint}";
    }

    private static string Parent(string path)
    {
        var at = path.LastIndexOf(':');
        return at < 0 ? string.Empty : path[..(at + 1)];
    }
}
