using System.Security.Cryptography;
using Npgsql;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// The name this hub's writes carry in Salesforce (<c>Sforce-Call-Options: client=...</c>), which
/// change events repeat as their <c>changeOrigin</c>: a random id kept in the hub's
/// <c>cdc.settings</c>, made once by whichever worker asks first. Two deployments on one org have
/// two hubs and so two ids, and never take each other's writes for their own. Letters and digits
/// only, within what Salesforce accepts for a client id.
/// </summary>
internal sealed class SalesforceClientId(NpgsqlDataSource hub)
{
    private const string Key = "salesforce_client_id";
    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _value;

    /// <summary>The id once read (null before the first call of <see cref="GetAsync"/>).</summary>
    public string? Value => Volatile.Read(ref _value);

    public async Task<string> GetAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _value) is { } known)
        {
            return known;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_value is not null)
            {
                return _value;
            }

            var fresh = "CdcSync" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10));
            await using var cmd = hub.CreateCommand(
                $"""
                INSERT INTO cdc.settings (key, value) VALUES ('{Key}', $1) ON CONFLICT (key) DO NOTHING;
                """);
            cmd.Parameters.Add(new NpgsqlParameter { Value = fresh });
            await cmd.ExecuteNonQueryAsync(cancellationToken);
            await using var read = hub.CreateCommand($"SELECT value FROM cdc.settings WHERE key = '{Key}'");
            _value = (string?)await read.ExecuteScalarAsync(cancellationToken) ?? fresh;
            return _value;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>True when a change event's <c>changeOrigin</c> (e.g. <c>com/salesforce/api/rest/61.0;client=X</c>) names <paramref name="clientId"/>.</summary>
    public static bool IsOrigin(string? changeOrigin, string? clientId)
    {
        if (string.IsNullOrEmpty(changeOrigin) || string.IsNullOrEmpty(clientId))
        {
            return false;
        }

        foreach (var part in changeOrigin.Split([';', ','], StringSplitOptions.TrimEntries))
        {
            if (part.StartsWith("client=", StringComparison.Ordinal))
            {
                // A client may add a version after a slash (client=Token/100).
                var value = part["client=".Length..];
                var slash = value.IndexOf('/', StringComparison.Ordinal);
                if ((slash < 0 ? value : value[..slash]) == clientId)
                {
                    return true;
                }
            }
        }

        return false;
    }
}
