using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Tests.Infrastructure;
using CdcSync.WebConsole;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CdcSync.Tests.WebConsole;

/// <summary>The console's doors over plain HTTP (no browser needed): sign-in, antiforgery, rate limit, disabled users, and the user verbs of the CLI.</summary>
public sealed partial class ConsoleAccessTests
{
    private const string Password = "access-test-password";

    [Fact]
    public async Task SignIn_NeedsTheAntiforgeryToken_IsRateLimited_AndADisabledUserIsSignedOutAtTheNextRequest()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        await using var source = NpgsqlDataSource.Create(hub);
        var users = new ConsoleUsers(source);
        await users.AddAsync("olga", ConsoleRole.Operator, Password, CancellationToken.None);
        await using var cmd = source.CreateCommand("INSERT INTO cdc.dead_letters (connector, object, record_key, payload, error) VALUES ('netsuite', 'ns_customers', 'k', '{}', 'rejected') RETURNING id");
        var letter = (long)(await cmd.ExecuteScalarAsync())!;
        var options = ConnectorConfig.Bind(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Hub:ConnectionString"] = hub,
            ["Console:Url"] = "http://127.0.0.1:0",
            ["Console:SignInAttemptsPerMinute"] = "4",
            ["Connectors:pg:Type"] = "postgres",
            ["Connectors:pg:ConnectionString"] = hub,
            ["Routes:public.sf_accounts:0"] = "pg",
        }).Build());
        await using var server = await ConsoleServer.StartAsync(options, source, NullLoggerFactory.Instance, CancellationToken.None);
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = new Uri(server.Address) };

        var home = await http.GetAsync("/");
        Assert.Equal(HttpStatusCode.Found, home.StatusCode);
        Assert.StartsWith("/login", home.Headers.Location!.PathAndQuery, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Found, (await http.GetAsync("/record?id=k")).StatusCode);

        // 1: no antiforgery token
        Assert.Equal(HttpStatusCode.BadRequest, (await SignInAsync(http, "olga", Password, token: null)).StatusCode);
        // 2: signed in
        var signedIn = await SignInAsync(http, "olga", Password, await TokenAsync(http, "/login"));
        Assert.Equal(HttpStatusCode.Found, signedIn.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/deadletters")).StatusCode);

        // An action without the token is refused and changes nothing.
        var discard = await http.PostAsync("/deadletters?handler=Discard", new FormUrlEncodedContent([new("ids", letter.ToString(System.Globalization.CultureInfo.InvariantCulture))]));
        Assert.Equal(HttpStatusCode.BadRequest, discard.StatusCode);
        await using (var status = source.CreateCommand($"SELECT status FROM cdc.dead_letters WHERE id = {letter}"))
        {
            Assert.Equal("open", await status.ExecuteScalarAsync());
        }

        // Disabled: the running session ends at its next request.
        await users.DisableAsync("olga", CancellationToken.None);
        var after = await http.GetAsync("/deadletters");
        Assert.Equal(HttpStatusCode.Found, after.StatusCode);
        Assert.StartsWith("/login", after.Headers.Location!.PathAndQuery, StringComparison.Ordinal);

        // 3, 4: wrong passwords (a disabled user's right one is wrong too); 5: over the limit.
        Assert.Equal(HttpStatusCode.Unauthorized, (await SignInAsync(http, "olga", Password, await TokenAsync(http, "/login"))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SignInAsync(http, "olga", "wrong password!", await TokenAsync(http, "/login"))).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await SignInAsync(http, "olga", Password, await TokenAsync(http, "/login"))).StatusCode);
    }

    [Fact]
    public async Task UserVerbs_AddListDisableAndResetPassword_WithThePasswordOnStdin_AndSayWhatIsWrong()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var env = new Dictionary<string, string?> { ["CDCSYNC_DB"] = hub };

        var added = await RunAsync(env, Password + "\n", "console", "add-user", "rita", "--role", "reviewer", "--password-stdin");
        Assert.True(added.ExitCode == 0, added.ToString());
        Assert.DoesNotContain(Password, added.Stdout + added.Stderr, StringComparison.Ordinal);
        var listed = await RunAsync(env, "", "console", "users", "--json");
        Assert.True(listed.ExitCode == 0, listed.ToString());
        var user = Assert.Single(listed.Json().EnumerateArray());
        Assert.Equal(("rita", "reviewer", false), (user.GetProperty("name").GetString(), user.GetProperty("role").GetString(), user.GetProperty("disabled").GetBoolean()));
        Assert.DoesNotContain("hash", listed.Stdout, StringComparison.OrdinalIgnoreCase);

        Assert.Equal(0, (await RunAsync(env, "", "console", "disable", "rita")).ExitCode);
        await using var source = NpgsqlDataSource.Create(hub);
        Assert.Null(await new ConsoleUsers(source).VerifyAsync("rita", Password, CancellationToken.None));
        Assert.Equal(0, (await RunAsync(env, "a brand new password\n", "console", "reset-password", "rita", "--password-stdin")).ExitCode);
        Assert.NotNull(await new ConsoleUsers(source).VerifyAsync("rita", "a brand new password", CancellationToken.None));
        Assert.Null(await new ConsoleUsers(source).VerifyAsync("rita", Password, CancellationToken.None));

        // What is wrong, in one line (GuardAsync prints an OperatorException as any verb's).
        var bad = await Assert.ThrowsAsync<OperatorException>(() => new ConsoleUsers(source).AddAsync("sam", ConsoleRole.Viewer, "short", CancellationToken.None));
        Assert.Contains("use at least 12", bad.Message, StringComparison.Ordinal);
        bad = await Assert.ThrowsAsync<OperatorException>(() => new ConsoleUsers(source).AddAsync("rita", ConsoleRole.Viewer, Password, CancellationToken.None));
        Assert.Contains("already exists", bad.Message, StringComparison.Ordinal);
        bad = await Assert.ThrowsAsync<OperatorException>(() => new ConsoleUsers(source).DisableAsync("nobody", CancellationToken.None));
        Assert.Contains("no console user 'nobody'", bad.Message, StringComparison.Ordinal);
        await ExpectErrorAsync(env, "use at least 12", "short\n", "console", "add-user", "sam", "--role", "viewer", "--password-stdin");

        var config = Path.Combine(Path.GetTempPath(), $"cdcsync-console-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(config, $$"""
            { "Hub": { "ConnectionString": "{{hub}}" }, "Console": { "Url": "https://0.0.0.0:9465" },
              "Connectors": { "pg": { "Type": "postgres", "ConnectionString": "{{hub}}" } }, "Routes": { "public.sf_accounts": ["pg"] } }
            """);
        await ExpectErrorAsync(env, "Console:Url is 'https://0.0.0.0:9465'; use an http URL", "", "console", "--config", config);
    }

    [Fact]
    public async Task RunAndConsoleVerbs_ServeTheConsoleOnConsoleUrl_AndStopOnSigterm()
    {
        var hub = await TestPostgres.CreateMigratedHubAsync();
        var target = await TestPostgres.CreateDatabaseAsync(nameof(RunAndConsoleVerbs_ServeTheConsoleOnConsoleUrl_AndStopOnSigterm), "_target");
        await CdcSync.Tests.Pipeline.TestPipeline.ExecuteAsync(hub, "CREATE TABLE public.items (id int PRIMARY KEY, v text)");
        await CdcSync.Tests.Pipeline.TestPipeline.ExecuteAsync(target, "CREATE TABLE public.items (id int PRIMARY KEY, v text)");
        foreach (var verb in new[] { "run", "console" })
        {
            var port = CdcSync.Tests.Deploy.DeployedProcess.FreePort();
            var name = "console_" + verb;
            var config = Path.Combine(Path.GetTempPath(), $"cdcsync-console-{Guid.NewGuid():N}.json");
            await File.WriteAllTextAsync(config, $$"""
                { "Hub": { "ConnectionString": "{{hub}}", "Slot": "{{name}}", "Publication": "{{name}}", "MetricsUrl": "" },
                  "Console": { "Url": "http://127.0.0.1:{{port}}" },
                  "Connectors": { "pg": { "Type": "postgres", "ConnectionString": "{{target}}" } }, "Routes": { "public.items": ["pg"] } }
                """);
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Repo.Root };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "cdcsync.dll"), verb, "--config", config })
            {
                start.ArgumentList.Add(a);
            }

            foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("CDCSYNC", StringComparison.OrdinalIgnoreCase)).ToList())
            {
                start.Environment.Remove(key);
            }

            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            try
            {
                using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
                var deadline = DateTime.UtcNow.AddSeconds(90);
                HttpStatusCode? status = null;
                while (status != HttpStatusCode.OK && DateTime.UtcNow < deadline && !process.HasExited)
                {
                    try
                    {
                        status = (await http.GetAsync($"http://127.0.0.1:{port}/login")).StatusCode;
                    }
                    catch (HttpRequestException)
                    {
                        await Task.Delay(200);
                    }
                }

                Assert.True(status == HttpStatusCode.OK, $"cdcsync {verb} did not serve the console on port {port}; exited: {process.HasExited}");

                // SIGTERM (systemd, docker stop) stops it with exit code 0.
                using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                {
                    await term.WaitForExitAsync();
                }

                using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                await process.WaitForExitAsync(exit.Token);
                Assert.True(process.ExitCode == 0, $"cdcsync {verb} exited {process.ExitCode} on SIGTERM\n{await stdout}\n{await stderr}");
            }
            finally
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                }
            }
        }
    }

    private static async Task ExpectErrorAsync(Dictionary<string, string?> env, string expected, string stdin, params string[] args)
    {
        var result = await RunAsync(env, stdin, args);
        Assert.True(result.ExitCode == 2 && result.Stderr.Contains(expected, StringComparison.Ordinal), $"cdcsync {string.Join(' ', args)}: expected exit 2 and '{expected}'; {result}");
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }

    private static async Task<HttpResponseMessage> SignInAsync(HttpClient http, string name, string password, string? token)
    {
        var form = new List<KeyValuePair<string, string>> { new("name", name), new("password", password) };
        if (token is not null)
        {
            form.Add(new("__RequestVerificationToken", token));
        }

        return await http.PostAsync("/login", new FormUrlEncodedContent(form));
    }

    private static async Task<string> TokenAsync(HttpClient http, string path) =>
        Token().Match(await http.GetStringAsync(path)).Groups[1].Value;

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex Token();

    /// <summary>The real executable with stdin (CliProcess has none), the test's CDCSYNC_* removed.</summary>
    private static async Task<CliResult> RunAsync(IReadOnlyDictionary<string, string?> env, string stdin, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Repo.Root };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "cdcsync.dll"));
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("CDCSYNC", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(key);
        }

        foreach (var (k, v) in env)
        {
            start.Environment[k] = v;
        }

        using var process = Process.Start(start)!;
        await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }
}
