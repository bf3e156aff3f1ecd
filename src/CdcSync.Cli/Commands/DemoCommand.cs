using System.CommandLine;
using System.Diagnostics;
using CdcSync.Hub;
using CdcSync.Schema;
using Npgsql;

namespace CdcSync.Cli.Commands;

/// <summary>
/// The newcomer's first run: a hub (a throwaway local PostgreSQL unless CDCSYNC_DB is set), the
/// schema and shipped transforms, one Salesforce account with its contact, and the NetSuite
/// customer the SQL mapping made from them.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var db = CliOptions.Db();
        var scripts = CliOptions.Scripts();
        var command = new Command("demo", "Start a local hub (unless --db/CDCSYNC_DB is given), deploy it, insert a Salesforce account and show the NetSuite customer the transforms made.")
        {
            db, scripts,
        };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var root = ScriptSet.Locate(parse.GetValue(scripts));
            var connectionString = parse.GetValue(db) ?? Environment.GetEnvironmentVariable("CDCSYNC_DB");
            if (string.IsNullOrWhiteSpace(connectionString))
            {
                connectionString = await StartLocalHubAsync(root, ct);
            }

            connectionString = HubConnection.Parse(connectionString, "CDCSYNC_DB").ConnectionString;
            await MigrateCommand.PrepareHubAsync(connectionString, "CDCSYNC_DB", ct);
            Console.WriteLine($"1. hub: {HubConnection.Describe(connectionString)}");
            var result = await new HubMigrator(connectionString, ScriptSet.Load(root)).MigrateAsync(ct);
            if (!result.Succeeded)
            {
                throw new OperatorException(result.Error ?? "migration failed");
            }

            Console.WriteLine($"2. migrate: {result.Applied.Count} script(s) applied");
            await using var conn = await HubConnection.OpenAsync(connectionString, "CDCSYNC_DB", ct);
            var sfId = "001DEMO" + Random.Shared.Next(10_000_000, 99_999_999).ToString(System.Globalization.CultureInfo.InvariantCulture) + "AAA";
            await using (var insert = new NpgsqlCommand(
                """
                WITH a AS (
                  INSERT INTO sf_accounts (id, name, phone, website, billingstreet, billingcity, billingstate, billingpostalcode, billingcountry, industry, createddate)
                  VALUES ($1, 'Acme Rocket Supplies (a company name long enough that NetSuite''s 83-character limit has to cut it)', '(415) 555-0100', 'acme.example',
                          '1 Market St', 'San Francisco', 'CA', '94105', 'United States', 'Manufacturing', now())
                  RETURNING id)
                INSERT INTO sf_contacts (id, accountid, firstname, lastname, email, phone, createddate)
                SELECT '003' || substr(a.id, 4), a.id, 'Wile E.', 'Coyote', 'wile@acme.example', '+1 415 555 0199', now() FROM a
                """, conn))
            {
                insert.Parameters.Add(new NpgsqlParameter { Value = sfId });
                await insert.ExecuteNonQueryAsync(ct);
            }

            Console.WriteLine($"3. inserted Salesforce account {sfId} with contact Wile E. Coyote into sf_accounts / sf_contacts");
            await using var show = new NpgsqlCommand(
                """
                SELECT n.externalid, n.companyname, length(n.companyname), n.email, n.phone, n.url, n.isinactive, jsonb_pretty(n.addressbook)
                FROM sf_accounts a
                JOIN cdc.identity_links l ON l.object = 'sf_accounts' AND l.hub_id = a.hub_id
                JOIN cdc.identity_links r ON r.link_id = l.link_id AND r.object = 'ns_customers'
                JOIN ns_customers n ON n.hub_id = r.hub_id
                WHERE a.id = $1
                """, conn);
            show.Parameters.Add(new NpgsqlParameter { Value = sfId });
            await using var reader = await show.ExecuteReaderAsync(ct);
            if (!await reader.ReadAsync(ct))
            {
                throw new OperatorException("The transforms made no ns_customers row for the demo account; run './cdcsync transforms test' to see which mapping is broken.");
            }

            Console.WriteLine("4. the transform made this NetSuite customer (ns_customers):");
            Console.WriteLine($"   externalId   {reader.GetString(0)}");
            Console.WriteLine($"   companyName  {reader.GetString(1)} ({reader.GetInt32(2)} chars)");
            Console.WriteLine($"   email        {reader.GetString(3)}");
            Console.WriteLine($"   phone        {reader.GetString(4)}");
            Console.WriteLine($"   url          {reader.GetString(5)}");
            Console.WriteLine($"   isInactive   {reader.GetBoolean(6)}");
            Console.WriteLine($"   addressBook  {reader.GetString(7).Replace("\n", "\n                ", StringComparison.Ordinal)}");
            Console.WriteLine();
            Console.WriteLine("Next: edit transforms/*.sql, run './cdcsync transforms test', then './cdcsync migrate'. Stop the local hub with: scripts/devdb.sh stop");
            return 0;
        }));
        return command;
    }

    private static async Task<string> StartLocalHubAsync(string root, CancellationToken cancellationToken)
    {
        var script = Path.Combine(root, "scripts", "devdb.sh");
        if (!File.Exists(script))
        {
            throw new OperatorException("CDCSYNC_DB is not set and scripts/devdb.sh is not here to start a local hub; run the demo from the repository or set CDCSYNC_DB.");
        }

        Console.WriteLine("0. starting a throwaway local PostgreSQL (scripts/devdb.sh start)...");
        var start = new ProcessStartInfo("bash", [script, "start"]) { RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("export CDCSYNC_DB=", StringComparison.Ordinal));
        if (process.ExitCode != 0 || line is null)
        {
            throw new OperatorException("scripts/devdb.sh could not start a local PostgreSQL (see its message above); install PostgreSQL server binaries or set CDCSYNC_DB.");
        }

        return line["export CDCSYNC_DB=".Length..].Trim('\'');
    }
}
