using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace CdcSync.Operations;

/// <summary>
/// The worker's HTTP face on Hub:MetricsUrl: /healthz (the process answers), /readyz (streaming,
/// no connector tripped; 503 otherwise, also while standing by) and /metrics (Prometheus text).
/// </summary>
internal sealed class HealthServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private HealthServer(WebApplication app) => _app = app;

    /// <summary>The address actually bound (differs from the configured one when it asked for port 0).</summary>
    public string Address => _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

    public static async Task<HealthServer> StartAsync(string url, Worker worker, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp)
        {
            throw new OperatorException($"Config key Hub:MetricsUrl is '{url}'; use an http URL such as http://127.0.0.1:9187 (or http://0.0.0.0:9187 in a container), or leave it empty to turn metrics off.");
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        // Kestrel's own warnings go to the worker's log. The inner host's "Hosting failed to start"
        // does not: it logs the bind error with a 25-line stack trace, and the error is already
        // reported below as one line saying what to change.
        builder.Logging.AddProvider(new ForwardingLoggerProvider(loggers));
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
        builder.WebHost.UseUrls(url);
        var app = builder.Build();
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", () =>
        {
            var open = worker.OpenCircuits();
            var detail = $"state={worker.State} pipeline={worker.Runner?.Health.ToString() ?? "none"}" + (open.Count > 0 ? $" open circuits: {string.Join(", ", open)}" : string.Empty)
                + (worker.Stage is { } stage ? $" ({stage})" : string.Empty);
            return worker.IsReady ? Results.Text("ready " + detail + "\n") : Results.Text("not ready " + detail + "\n", statusCode: StatusCodes.Status503ServiceUnavailable);
        });
        app.MapGet("/metrics", async (HttpContext context) =>
        {
            worker.UpdateCircuitGauges();
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await Metrics.DefaultRegistry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted);
        });
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            var cause = e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException
                ? $"port {uri.Port} on {uri.Host} is already in use (another worker or program listens there)"
                : e.Message.TrimEnd('.');
            throw new OperatorException(
                $"Cannot serve metrics on Hub:MetricsUrl {url}: {cause}; free the port, or set another port in Hub:MetricsUrl (or CDCSYNC__Hub__MetricsUrl=http://127.0.0.1:9188), or set it empty to turn metrics off.", e);
        }

        return new HealthServer(app);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Hands the health server's loggers to the worker's logger factory, so its filters apply on top.</summary>
internal sealed class ForwardingLoggerProvider(ILoggerFactory loggers) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => loggers.CreateLogger(categoryName);

    public void Dispose()
    {
        // The worker owns the factory.
    }
}
