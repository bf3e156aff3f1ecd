using CdcSync.Schema;

namespace CdcSync.Tests.Infrastructure;

public static class Repo
{
    /// <summary>The checkout the tests run from (the folder holding CdcSync.sln).</summary>
    public static string Root { get; } = FindRoot();

    internal static ScriptSet Scripts() => ScriptSet.Load(Root);

    /// <summary>A private copy of migrations/, transforms/ and checks/ a test may edit.</summary>
    public static string CopyScripts()
    {
        var dir = Path.Combine(Path.GetTempPath(), "cdcsync-scripts-" + Guid.NewGuid().ToString("N"));
        foreach (var folder in new[] { "migrations", "transforms", "transforms/tests", "checks", "checks/tests" })
        {
            Directory.CreateDirectory(Path.Combine(dir, folder));
            foreach (var file in Directory.GetFiles(Path.Combine(Root, folder), "*.sql"))
            {
                File.Copy(file, Path.Combine(dir, folder, Path.GetFileName(file)));
            }
        }

        return dir;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CdcSync.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Cannot find the checkout (CdcSync.sln) above " + AppContext.BaseDirectory);
    }
}
