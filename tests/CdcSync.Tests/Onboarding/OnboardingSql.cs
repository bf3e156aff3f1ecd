using Npgsql;

namespace CdcSync.Tests.Onboarding;

/// <summary>
/// Until ob-match's SQL API is merged, a hub without <c>cdc.onboard_match</c> gets the stand-in
/// (standin.sql, next to this file). With the real migration and transforms present it does nothing.
/// Remove with standin.sql at merge.
/// </summary>
internal static class OnboardingSql
{
    public static async Task EnsureAsync(string connectionString)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using (var check = new NpgsqlCommand("SELECT to_regprocedure('cdc.onboard_match()') IS NOT NULL", conn))
        {
            if ((bool)(await check.ExecuteScalarAsync())!)
            {
                return;
            }
        }

        var path = Path.Combine(Infrastructure.Repo.Root, "tests", "CdcSync.Tests", "Onboarding", "standin.sql");
        await using var cmd = new NpgsqlCommand(await File.ReadAllTextAsync(path), conn);
        await cmd.ExecuteNonQueryAsync();
    }
}
