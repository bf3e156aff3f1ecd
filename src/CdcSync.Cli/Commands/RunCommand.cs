using System.CommandLine;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Connectors.Http;
using CdcSync.Hub;
using CdcSync.Operations;
using CdcSync.Scheduling;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Serilog;
using Serilog.Formatting.Compact;

namespace CdcSync.Cli.Commands;

internal static class RunCommand
{
    public static Command Create()
    {
        var config = CliOptions.Config();
        var command = new Command("run", "Run the pipeline (reader, router, connectors) until stopped; a second worker on the same slot stands by. SIGTERM drains and exits 0.") { config };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var configuration = ConfigLoader.Build(parse.GetValue(config));
            // Every problem of the config at once, before anything starts: unknown keys, values that
            // do not convert and routes are beyond options validation, and the first line counts the
            // rest as `check` would. The host then binds its own options and validates them on start
            // with the same generated validators (ConnectorConfig.AddCdcSyncOptions).
            _ = ConnectorConfig.Bind(configuration);
            // The worker's config is CdcSync's own file, read once. The host's defaults would also
            // watch the working directory recursively for appsettings changes, and every WAL write
            // of a data directory below it woke that watcher (8% of the worker's CPU in a profile).
            var hostSettings = new HostApplicationBuilderSettings { ContentRootPath = AppContext.BaseDirectory, Configuration = new Microsoft.Extensions.Configuration.ConfigurationManager() };
            hostSettings.Configuration["hostBuilder:reloadConfigOnChange"] = "false";
            var builder = Host.CreateApplicationBuilder(hostSettings);
            builder.Services.AddCdcSyncOptions(configuration);
            builder.Services.AddSerilog((sp, lc) => ConfigureLogging(lc, sp.GetRequiredService<IOptions<LoggingOptions>>().Value.Format));
            builder.Services.AddSystemd();
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(60));
            // The hub's one pool: the worker's status and staging writes, and every connector's gateway.
            builder.Services.AddSingleton(sp => NpgsqlDataSource.Create(HubConnection.WithShortIdleLifetime(sp.GetRequiredService<IOptions<HubOptions>>().Value.ConnectionString)));
            builder.Services.AddConnectorHttpClients();
            builder.Services.AddSingleton(sp => new ConnectorRegistry(ConnectorRegistry.Default.Types, sp.GetRequiredService<IHttpClientFactory>()));
            builder.Services.AddSingleton<PipelineService>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<PipelineService>());
            using var host = builder.Build();
            var service = host.Services.GetRequiredService<PipelineService>();
            await host.StartAsync(ct);
            await host.WaitForShutdownAsync(ct);
            if (service.Fatal is { } fatal)
            {
                await Console.Error.WriteLineAsync($"error: {fatal.Message}");
                return ExitCodes.Error;
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>Text with date and zone by default; Serilog's compact JSON (one event per line) with Logging:Format=json.</summary>
    internal static LoggerConfiguration ConfigureLogging(LoggerConfiguration lc, LogFormat format)
    {
        lc = lc.MinimumLevel.Information()
            .MinimumLevel.Override("Microsoft", Serilog.Events.LogEventLevel.Warning);
        return format == LogFormat.Json
            ? lc.WriteTo.Console(new CompactJsonFormatter())
            : lc.WriteTo.Console(outputTemplate: "{Timestamp:yyyy-MM-dd HH:mm:ss.fff zzz} {Level:u3} {SourceContext}: {Message:lj}{NewLine}{Exception}");
    }
}

/// <summary>Hosts the worker and its health endpoint; a configuration problem stops the process with its message.</summary>
internal sealed class PipelineService(CdcSyncOptions options, NpgsqlDataSource hub, ConnectorRegistry connectors, ILoggerFactory loggers, IHostApplicationLifetime lifetime) : BackgroundService
{
    public Exception? Fatal { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var notifier = options.Alerts.Enabled ? new Alerts.AlertNotifier(options.Alerts, logger: loggers.CreateLogger<Alerts.AlertNotifier>()) : null;
        var alerts = notifier is null
            ? null
            : new Alerts.AlertEvaluator(hub, Alerts.AlertEvaluator.DefaultSources(options.Alerts), notifier, options.Alerts, loggers.CreateLogger<Alerts.AlertEvaluator>());
        if (notifier is null)
        {
            loggers.CreateLogger<PipelineService>().LogInformation("Alerts off: no Alerts:WebhookUrl in the config");
        }

        // One job per deployed check (cdc.checks), listed again every minute by the scheduler.
        var checkJobs = new Checks.CheckJobSource(
            new Checks.CheckRunner(hub, $"worker {Environment.MachineName}:{Environment.ProcessId}"),
            loggers.CreateLogger<Checks.CheckJobSource>());
        var worker = new Worker(
            options,
            name => connectors.CreateOutbound(name, options.Connectors[name], hub, loggers),
            name => connectors.CreateInbound(name, options.Connectors[name], hub, loggers),
            loggers,
            hubSource: hub,
            jobs: ScheduledJobs.Create(options, hub, loggers),
            alerts: alerts,
            jobSource: checkJobs);
        HealthServer? health = null;
        WebConsole.ConsoleServer? console = null;
        try
        {
            if (!string.IsNullOrWhiteSpace(options.Hub.MetricsUrl))
            {
                health = await HealthServer.StartAsync(options.Hub.MetricsUrl, worker, loggers, stoppingToken);
                loggers.CreateLogger<PipelineService>().LogInformation("Serving /healthz, /readyz and /metrics on {Url}", health.Address);
            }

            console = await StartConsoleAsync(stoppingToken);

            await worker.RunAsync(stoppingToken);
            LogShutdown();
        }
        catch (OperatorException e)
        {
            Fatal = e;
            loggers.CreateLogger<PipelineService>().LogError("Worker stopping: {Reason}", e.Message);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            LogShutdown();
        }
        catch (Exception e)
        {
            loggers.CreateLogger<PipelineService>().LogCritical(e, "Worker stopping on an unexpected error: {Reason}", e.Message);
            throw;
        }
        finally
        {
            if (health is not null)
            {
                await health.DisposeAsync();
            }

            if (console is not null)
            {
                await console.DisposeAsync();
            }

            lifetime.StopApplication();
        }

        // The console is the operator's window, not the pipeline: a port in use is a warning, never a stop.
        async Task<WebConsole.ConsoleServer?> StartConsoleAsync(CancellationToken cancellationToken)
        {
            if (string.IsNullOrWhiteSpace(options.Console.Url))
            {
                return null;
            }

            try
            {
                var server = await WebConsole.ConsoleServer.StartAsync(options, hub, loggers, cancellationToken);
                loggers.CreateLogger<PipelineService>().LogInformation("Serving the console on {Url}", server.Address);
                return server;
            }
            catch (OperatorException e)
            {
                loggers.CreateLogger<PipelineService>().LogWarning("Console not served: {Reason}", e.Message);
                return null;
            }
        }

        void LogShutdown() => loggers.CreateLogger<PipelineService>().LogInformation(
            "Worker stopping: shutdown requested (SIGTERM, Ctrl-C or the service manager); what was not committed is read again from the slot at the next start");
    }
}
