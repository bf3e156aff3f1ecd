using System.Xml.Linq;
using Dapper;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Npgsql;

namespace CdcSync.WebConsole;

/// <summary>
/// Keeps the console's Data Protection keys (which sign and encrypt its cookies) in the hub
/// (<c>cdc.console_keys</c>): every worker and standalone console on the hub accepts the same
/// sign-in, and a restart signs nobody out. The interface is synchronous; keys are read rarely.
/// </summary>
internal sealed class HubKeyRepository(NpgsqlDataSource hub) : IXmlRepository
{
    public IReadOnlyCollection<XElement> GetAllElements()
    {
        using var conn = hub.OpenConnection();
        return conn.Query<string>("SELECT xml FROM cdc.console_keys ORDER BY id").Select(x => XElement.Parse(x)).ToList();
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        using var conn = hub.OpenConnection();
        conn.Execute(
            "INSERT INTO cdc.console_keys (name, xml) VALUES (@name, @xml) ON CONFLICT (name) DO NOTHING",
            new { name = friendlyName, xml = element.ToString(SaveOptions.DisableFormatting) });
    }
}
