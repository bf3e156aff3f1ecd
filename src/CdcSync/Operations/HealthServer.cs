using CdcSync.Hub;
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
public sealed class HealthServer : IAsyncDisposable
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
        builder.Services.AddSingleton(loggers);
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
            throw new OperatorException($"Cannot listen on Hub:MetricsUrl {url} ({e.Message}); pick a free port or set it empty.", e);
        }

        return new HealthServer(app);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
