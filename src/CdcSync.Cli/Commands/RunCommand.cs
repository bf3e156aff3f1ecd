using System.CommandLine;
using CdcSync.Configuration;
using CdcSync.Connectors;
using CdcSync.Hub;
using CdcSync.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Serilog;

namespace CdcSync.Cli.Commands;

internal static class RunCommand
{
    public static Option<string> ConfigOption() => new("--config")
    {
        Description = "Pipeline config (JSON). Values may use ${ENV_VAR}; CDCSYNC__Section__Key environment variables override keys.",
        Required = true,
    };

    public static Command Create()
    {
        var config = ConfigOption();
        var command = new Command("run", "Run the pipeline (reader, router, connectors) until stopped; SIGTERM drains and exits 0.") { config };
        command.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var options = ConfigLoader.Bind(ConfigLoader.Build(parse.GetValue(config)));
            var builder = Host.CreateApplicationBuilder();
            builder.Services.AddSerilog((_, lc) => lc
                .MinimumLevel.Information()
                .MinimumLevel.Override("Microsoft", Serilog.Events.LogEventLevel.Warning)
                .WriteTo.Console(outputTemplate: "{Timestamp:HH:mm:ss.fff} {Level:u3} {SourceContext}: {Message:lj}{NewLine}{Exception}"));
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(60));
            builder.Services.AddSingleton(options);
            builder.Services.AddSingleton(sp => NpgsqlDataSource.Create(options.Hub.ConnectionString));
            builder.Services.AddSingleton<PipelineService>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<PipelineService>());
            using var host = builder.Build();
            var service = host.Services.GetRequiredService<PipelineService>();
            await host.StartAsync(ct);
            await host.WaitForShutdownAsync(ct);
            if (service.Fatal is { } fatal)
            {
                await Console.Error.WriteLineAsync($"error: {fatal.Message}");
                return 2;
            }

            return 0;
        }));
        return command;
    }
}

/// <summary>Hosts the pipeline; a configuration problem stops the process with its message.</summary>
internal sealed class PipelineService(CdcSyncOptions options, NpgsqlDataSource hub, ILoggerFactory loggers, IHostApplicationLifetime lifetime) : BackgroundService
{
    public Exception? Fatal { get; private set; }

    public PipelineRunner? Runner { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Runner = new PipelineRunner(
            options,
            name => ConnectorFactory.CreateOutbound(name, options.Connectors[name], hub, loggers),
            loggers,
            name => ConnectorFactory.CreateInbound(name, options.Connectors[name], hub, loggers));
        try
        {
            await Runner.RunAsync(stoppingToken);
        }
        catch (OperatorException e)
        {
            Fatal = e;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            lifetime.StopApplication();
        }
    }
}
