using System.CommandLine;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Hub;
using CdcSync.WebConsole;
using Dapper;
using Npgsql;
using Serilog;
using Serilog.Extensions.Logging;

namespace CdcSync.Cli.Commands;

/// <summary>
/// <c>cdcsync console --config FILE</c>: the operator console alone against the hub, for a machine
/// that runs no worker (`run` serves it too, on the same Console:Url); and its users:
/// <c>add-user</c>, <c>users</c>, <c>disable</c>, <c>reset-password</c>. Thin: the engine is
/// <see cref="ConsoleServer"/> and <see cref="ConsoleUsers"/>.
/// </summary>
internal static class ConsoleCommand
{
    public static Command Create()
    {
        var config = CliOptions.Config();
        var command = new Command("console", "Serve the operator console in the browser on Console:Url against the hub (the worker serves it too), and manage its users.")
        {
            config, AddUser(), Users(), Disable(), ResetPassword(),
        };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var options = ConnectorConfig.Bind(ConfigLoader.Build(parse.GetValue(config)));
            if (string.IsNullOrWhiteSpace(options.Console.Url))
            {
                throw new OperatorException("Console:Url is empty, which turns the console off; set it (e.g. CDCSYNC__Console__Url=http://127.0.0.1:9465) to serve the console.");
            }

            await using (var check = await HubConnection.OpenAsync(options.Hub.ConnectionString, "Hub:ConnectionString", ct))
            {
                await RequireConsoleTablesAsync(check, ct);
            }

            var logger = RunCommand.ConfigureLogging(new LoggerConfiguration(), options.Logging.Format).CreateLogger();
            using var loggers = new SerilogLoggerFactory(logger, dispose: true);
            await using var hub = NpgsqlDataSource.Create(options.Hub.ConnectionString);
            await using var server = await ConsoleServer.StartAsync(options, hub, loggers, ct);
            var log = loggers.CreateLogger("CdcSync.Console");
            Microsoft.Extensions.Logging.LoggerExtensions.LogInformation(log, "Serving the console on {Url}; Ctrl-C stops it", server.Address);
            if ((await new ConsoleUsers(hub).ListAsync(ct)).Count == 0)
            {
                Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(log, "No console users yet: add one with 'cdcsync console add-user NAME --role operator --password-stdin'");
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, server.Stopping);
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // Ctrl-C or SIGTERM: stop serving and exit 0.
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command AddUser()
    {
        var db = CliOptions.Db();
        var name = new Argument<string>("name") { Description = "Sign-in name: letters, digits, '.', '_', '@' or '-'." };
        var role = Role();
        var stdin = PasswordStdin();
        var command = new Command("add-user", "Add a console user; the password is read from stdin (one line) and stored hashed.") { db, name, role, stdin };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var password = await ReadPasswordAsync(parse.GetValue(stdin));
            await using var hub = await OpenAsync(parse, db, ct);
            await new ConsoleUsers(hub).AddAsync(parse.GetValue(name)!, ConsoleUsers.ParseRole(parse.GetValue(role)!), password, ct);
            Console.WriteLine($"console user {parse.GetValue(name)} added as {parse.GetValue(role)!.ToLowerInvariant()}.");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Users()
    {
        var db = CliOptions.Db();
        var json = CliOptions.Json();
        var command = new Command("users", "List the console users, their roles and last sign-in.") { db, json };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var hub = await OpenAsync(parse, db, ct);
            var users = await new ConsoleUsers(hub).ListAsync(ct);
            if (parse.GetValue(json))
            {
                CliJson.Write(users.Select(u => new { u.Name, Role = ConsoleUsers.RoleName(u.Role), u.Disabled, u.CreatedAt, u.LastSignIn }));
                return ExitCodes.Ok;
            }

            if (users.Count == 0)
            {
                Console.WriteLine("no console users; add one with: cdcsync console add-user NAME --role operator --password-stdin");
                return ExitCodes.Ok;
            }

            Console.WriteLine("name\trole\tstatus\tlast sign-in (UTC)");
            foreach (var u in users)
            {
                Console.WriteLine($"{u.Name}\t{ConsoleUsers.RoleName(u.Role)}\t{(u.Disabled ? "disabled" : "enabled")}\t{u.LastSignIn?.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture) ?? "never"}");
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Disable()
    {
        var db = CliOptions.Db();
        var name = new Argument<string>("name") { Description = "The console user to disable (signed out at their next request)." };
        var command = new Command("disable", "Disable a console user: they cannot sign in, and a running session ends at its next request.") { db, name };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            await using var hub = await OpenAsync(parse, db, ct);
            await new ConsoleUsers(hub).DisableAsync(parse.GetValue(name)!, ct);
            Console.WriteLine($"console user {parse.GetValue(name)} disabled.");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command ResetPassword()
    {
        var db = CliOptions.Db();
        var name = new Argument<string>("name") { Description = "The console user." };
        var stdin = PasswordStdin();
        var command = new Command("reset-password", "Set a console user's password (read from stdin) and enable the user again.") { db, name, stdin };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var password = await ReadPasswordAsync(parse.GetValue(stdin));
            await using var hub = await OpenAsync(parse, db, ct);
            await new ConsoleUsers(hub).ResetPasswordAsync(parse.GetValue(name)!, password, ct);
            Console.WriteLine($"password of console user {parse.GetValue(name)} set; the user is enabled.");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Option<string> Role()
    {
        var role = new Option<string>("--role") { Description = "viewer (looks), reviewer (also decides conflicts and matches) or operator (also retries and discards dead letters).", Required = true };
        role.AcceptOnlyFromAmong("viewer", "reviewer", "operator");
        return role;
    }

    private static Option<bool> PasswordStdin() => new("--password-stdin")
    {
        Description = "Read the password from stdin (one line), so it stays out of the shell history and the process list. Required.",
    };

    /// <summary>The first line of stdin; passwords never come from arguments.</summary>
    private static async Task<string> ReadPasswordAsync(bool fromStdin)
    {
        if (!fromStdin)
        {
            throw new OperatorException("give --password-stdin and pipe the password in, e.g. printf '%s\\n' \"$PASSWORD\" | cdcsync console add-user NAME --role viewer --password-stdin.");
        }

        var line = await Console.In.ReadLineAsync();
        return string.IsNullOrEmpty(line)
            ? throw new OperatorException("--password-stdin read no password from stdin; pipe one line in, e.g. printf '%s\\n' \"$PASSWORD\" | cdcsync console ...")
            : line;
    }

    private static async Task<NpgsqlDataSource> OpenAsync(ParseResult parse, Option<string?> db, CancellationToken ct)
    {
        var connectionString = CliOptions.HubConnectionString(parse, db);
        await using (var conn = await HubConnection.OpenAsync(connectionString, CliOptions.SourceOf(parse, db), ct))
        {
            await RequireConsoleTablesAsync(conn, ct);
        }

        return NpgsqlDataSource.Create(connectionString);
    }

    private static async Task RequireConsoleTablesAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        if (!await conn.ExecuteScalarAsync<bool>(new CommandDefinition("SELECT to_regclass('cdc.console_users') IS NOT NULL", cancellationToken: ct)))
        {
            throw new OperatorException($"the hub {HubConnection.Describe(conn.ConnectionString)} has no console tables yet; run 'cdcsync migrate' first.");
        }
    }
}
