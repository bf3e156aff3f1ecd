using System.Security.Claims;
using System.Threading.RateLimiting;
using CdcSync.Configuration;
using CdcSync.Operations;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CdcSync.WebConsole;

/// <summary>
/// The operator console on Console:Url: server-rendered Razor Pages (WebConsole/Pages) over the
/// engine services, cookie sign-in against the hub's console users, antiforgery on every form, a
/// rate-limited sign-in. Served by `cdcsync run` next to the pipeline and by `cdcsync console`
/// alone; everything it shows comes from the hub, so both show the same.
/// </summary>
internal sealed class ConsoleServer : IAsyncDisposable
{
    public const string SignInPolicy = "sign-in";

    private readonly WebApplication _app;

    private ConsoleServer(WebApplication app) => _app = app;

    /// <summary>
    /// Fires when the console's host stops: its console lifetime turns SIGTERM and Ctrl-C into a
    /// stop (and cancels the signal's default exit), so `cdcsync console` waits on this.
    /// </summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    /// <summary>The address actually bound (differs from the configured one when it asked for port 0).</summary>
    public string Address => _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

    public static async Task<ConsoleServer> StartAsync(CdcSyncOptions options, NpgsqlDataSource hub, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var url = options.Console.Url;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            // The pages are compiled into the engine; naming it makes it the application part MVC searches.
            ApplicationName = typeof(ConsoleServer).Assembly.GetName().Name,
            // Never the working directory: the host would watch it (see RunCommand).
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new ForwardingLoggerProvider(loggers));
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
        // Data Protection warns "no XML encryptor" (the keys live in the hub, as protected as the data
        // they guard) and, when the hub is unreachable at start, logs the key ring's failure with a
        // stack trace: the worker reports the hub's problem itself, in one line.
        builder.Logging.AddFilter("Microsoft.AspNetCore.DataProtection", LogLevel.None);
        builder.WebHost.UseUrls(url);

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(hub);
        services.AddSingleton(new ConsoleUsers(hub));
        services.AddSingleton(new ConsoleActions(hub, options, loggers));
        services.AddSingleton(new ConsoleReads(hub, options));
        services.Configure<RouteOptions>(o => o.LowercaseUrls = true);
        services.AddRazorPages(o =>
        {
            o.RootDirectory = "/WebConsole/Pages";
            o.Conventions.AuthorizeFolder("/");
            o.Conventions.AllowAnonymousToPage("/Login");
        });
        services.AddDataProtection().SetApplicationName("cdcsync-console");
        services.Configure<KeyManagementOptions>(o => o.XmlRepository = new HubKeyRepository(hub));
        services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie(o =>
        {
            o.Cookie.Name = "cdcsync_console";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            // Secure behind a TLS proxy (X-Forwarded-Proto), plain on loopback http.
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.LoginPath = "/login";
            o.LogoutPath = "/logout";
            o.AccessDeniedPath = "/denied";
            o.ExpireTimeSpan = options.Console.SessionLifetime;
            o.SlidingExpiration = true;
            o.Events.OnValidatePrincipal = RevalidateAsync;
        });
        services.AddAuthorization();
        services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "cdcsync_console_af";
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        });
        services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            // Attempts are POSTs; showing the form is free. Per client address (the proxy's X-Forwarded-For when behind one).
            o.AddPolicy(SignInPolicy, context => HttpMethods.IsPost(context.Request.Method)
                ? RateLimitPartition.GetFixedWindowLimiter(
                    context.Connection.RemoteIpAddress?.ToString() ?? "unknown",
                    _ => new FixedWindowRateLimiterOptions { PermitLimit = options.Console.SignInAttemptsPerMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 })
                : RateLimitPartition.GetNoLimiter("form"));
            o.OnRejected = async (context, token) =>
            {
                context.HttpContext.Response.ContentType = "text/plain; charset=utf-8";
                await context.HttpContext.Response.WriteAsync("Too many sign-in attempts from this address; wait a minute and try again.\n", token);
            };
        });
        services.Configure<ForwardedHeadersOptions>(o =>
        {
            // A reverse proxy on the same host (the default trusted proxy: loopback) terminates TLS.
            o.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost;
        });

        var app = builder.Build();
        app.UseForwardedHeaders();
        app.Use(async (context, next) =>
        {
            var headers = context.Response.Headers;
            headers.ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "no-referrer";
            // What antiforgery sets on pages with a form; set on all, so nothing with pipeline data is cached.
            headers.CacheControl = "no-cache, no-store";
            headers.Pragma = "no-cache";
            await next(context);
        });
        app.MapGet("/console.css", () => Results.Text(ConsoleAssets.Css, "text/css; charset=utf-8")).AllowAnonymous();
        app.UseRouting();
        app.UseRateLimiter();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapRazorPages();
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            var uri = new Uri(url);
            var cause = e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException
                ? $"port {uri.Port} on {uri.Host} is already in use (another worker or console listens there)"
                : e.Message.TrimEnd('.');
            throw new OperatorException(
                $"Cannot serve the console on Console:Url {url}: {cause}; free the port, or set another port in Console:Url (or CDCSYNC__Console__Url=http://127.0.0.1:9466), or set it empty to turn the console off.", e);
        }

        return new ConsoleServer(app);
    }

    /// <summary>A disabled user, or one whose role changed, is signed out at their next request.</summary>
    private static async Task RevalidateAsync(CookieValidatePrincipalContext context)
    {
        var users = context.HttpContext.RequestServices.GetRequiredService<ConsoleUsers>();
        var name = context.Principal?.Identity?.Name;
        var user = name is null ? null : await users.FindEnabledAsync(name, context.HttpContext.RequestAborted);
        if (user is null || !context.Principal!.IsInRole(ConsoleUsers.RoleName(user.Role)))
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
        }
    }

    /// <summary>The principal a signed-in user carries: the name and the role.</summary>
    public static ClaimsPrincipal Principal(ConsoleUser user) => new(new ClaimsIdentity(
        [new Claim(ClaimTypes.Name, user.Name), new Claim(ClaimTypes.Role, ConsoleUsers.RoleName(user.Role))],
        CookieAuthenticationDefaults.AuthenticationScheme));

    /// <summary>The role of a signed-in principal (viewer when it carries none).</summary>
    public static ConsoleRole RoleOf(ClaimsPrincipal principal) =>
        principal.IsInRole("operator") ? ConsoleRole.Operator : principal.IsInRole("reviewer") ? ConsoleRole.Reviewer : ConsoleRole.Viewer;

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
