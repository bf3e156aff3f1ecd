using System.Reflection;

namespace CdcSync.WebConsole;

/// <summary>The console's one stylesheet, embedded in the engine (no static files on disk, no CDN).</summary>
internal static class ConsoleAssets
{
    public static string Css { get; } = Read("console.css");

    private static string Read(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("CdcSync.WebConsole." + name)
            ?? throw new InvalidOperationException($"embedded resource {name} is missing from the build");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
