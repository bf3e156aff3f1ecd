using System.Security.Cryptography;
using System.Text;

namespace CdcSync.Schema;

/// <summary>One SQL file from migrations/, transforms/ or checks/.</summary>
internal sealed record SqlFile(string RelativePath, string FullPath, string Contents, bool IsTransform)
{
    /// <summary>Transforms are journaled under their name plus a hash of their content, so a changed file runs again.</summary>
    public string JournalName => IsTransform ? $"{RelativePath}@{Hash}" : RelativePath;

    public string Hash => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Contents)))[..12];
}

/// <summary>
/// The hub's SQL: <c>migrations/*.sql</c> (run once each, in name order), <c>transforms/*.sql</c>
/// (run after the migrations, again whenever their content changes) and <c>checks/*.sql</c>
/// (data-quality checks, deployed as views after both; see CheckDefinition).
/// </summary>
internal sealed class ScriptSet
{
    private ScriptSet(string root, IReadOnlyList<SqlFile> migrations, IReadOnlyList<SqlFile> transforms, IReadOnlyList<SqlFile> checks)
    {
        Root = root;
        Migrations = migrations;
        Transforms = transforms;
        Checks = checks;
    }

    public string Root { get; }
    public IReadOnlyList<SqlFile> Migrations { get; }
    public IReadOnlyList<SqlFile> Transforms { get; }

    /// <summary>The checks' files, unparsed: a bad header is reported by whoever deploys or tests them.</summary>
    public IReadOnlyList<SqlFile> Checks { get; }

    /// <summary>
    /// Whether there is a checks/ folder at all. Without one (a scripts folder from before checks)
    /// migrate leaves the deployed checks alone; an empty one means "no checks" and drops them.
    /// </summary>
    public bool HasChecksFolder => Directory.Exists(Path.Combine(Root, "checks"));

    public string TestsDirectory => Path.Combine(Root, "transforms", "tests");

    public string ChecksTestsDirectory => Path.Combine(Root, "checks", "tests");

    public static ScriptSet Load(string root)
    {
        var migrationsDir = Path.Combine(root, "migrations");
        if (!Directory.Exists(migrationsDir))
        {
            throw new DirectoryNotFoundException($"No migrations/ folder under {root}; run cdcsync from the repository or pass --scripts <folder holding migrations/ and transforms/>.");
        }

        return new ScriptSet(root, Read(root, "migrations", isTransform: false), Read(root, "transforms", isTransform: true), Read(root, "checks", isTransform: false));
    }

    /// <summary>
    /// Finds the folder holding migrations/ and transforms/: the given one, CDCSYNC_SCRIPTS, the
    /// current directory or a parent (a checkout), or the copy shipped next to the executable.
    /// </summary>
    public static string Locate(string? explicitRoot)
    {
        if (!string.IsNullOrWhiteSpace(explicitRoot))
        {
            return Path.GetFullPath(explicitRoot);
        }

        var fromEnv = Environment.GetEnvironmentVariable("CDCSYNC_SCRIPTS");
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            return Path.GetFullPath(fromEnv);
        }

        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            if (Directory.Exists(Path.Combine(dir.FullName, "migrations")) && Directory.Exists(Path.Combine(dir.FullName, "transforms")))
            {
                return dir.FullName;
            }
        }

        return AppContext.BaseDirectory;
    }

    private static List<SqlFile> Read(string root, string folder, bool isTransform)
    {
        var dir = Path.Combine(root, folder);
        if (!Directory.Exists(dir))
        {
            return [];
        }

        return Directory.GetFiles(dir, "*.sql", SearchOption.TopDirectoryOnly)
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
            .Select(f => new SqlFile($"{folder}/{Path.GetFileName(f)}", f, File.ReadAllText(f), isTransform))
            .ToList();
    }
}
