using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace CdcSync.Sandboxes.NetSuite;

/// <summary>
/// REST web services' error body: <c>{"type", "title", "status", "o:errorDetails": [{"detail", "o:errorCode", "o:errorPath"?}]}</c>.
/// </summary>
internal static class NetSuiteErrors
{
    // NetSuite writes quotes and non-ASCII text as they are, not as \u escapes.
    private static readonly System.Text.Json.JsonSerializerOptions WireJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static IResult Error(int status, string code, string detail, string? path = null)
    {
        var item = new JsonObject { ["detail"] = detail, ["o:errorCode"] = code };
        if (path is not null)
        {
            item["o:errorPath"] = path;
        }

        var body = new JsonObject
        {
            ["type"] = TypeFor(status),
            ["title"] = TitleFor(status),
            ["status"] = status,
            ["o:errorDetails"] = new JsonArray(item),
        };
        return Results.Content(body.ToJsonString(WireJson), "application/vnd.oracle.resource+json; type=error", statusCode: status);
    }

    public static IResult InvalidLogin() => Error(
        401,
        "INVALID_LOGIN",
        "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.");

    public static IResult NotFound() => Error(404, "NONEXISTENT_ID", "The record instance does not exist. Provide a valid record instance ID.");

    public static IResult UserError(string detail, string? path = null) => Error(400, "USER_ERROR", "Error while accessing resource: " + detail, path);

    private static string TypeFor(int status) => status switch
    {
        400 => "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.1",
        401 => "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.2",
        404 => "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.5",
        405 => "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.6",
        429 => "https://tools.ietf.org/html/rfc6585#section-4",
        500 => "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.5.1",
        503 => "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.5.4",
        _ => "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html",
    };

    private static string TitleFor(int status) => status switch
    {
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
}
