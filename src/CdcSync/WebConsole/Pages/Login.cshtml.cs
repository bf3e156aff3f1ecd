using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.RateLimiting;

namespace CdcSync.WebConsole.Pages;

[EnableRateLimiting(ConsoleServer.SignInPolicy)]
public sealed class LoginModel : ConsolePage
{
    public string? ReturnUrl { get; private set; }

    public string? Name { get; private set; }

    public bool Failed { get; private set; }

    public void OnGet(string? returnUrl) => ReturnUrl = returnUrl;

    public async Task<IActionResult> OnPostAsync(string? name, string? password, string? returnUrl, CancellationToken cancellationToken)
    {
        var user = name is { Length: > 0 } && password is { Length: > 0 } ? await Get<ConsoleUsers>().VerifyAsync(name, password, cancellationToken) : null;
        if (user is null)
        {
            (Name, ReturnUrl, Failed) = (name, returnUrl, true);
            Response.StatusCode = StatusCodes.Status401Unauthorized;
            return Page();
        }

        await HttpContext.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, ConsoleServer.Principal(user));
        return LocalRedirect(Url.IsLocalUrl(returnUrl) ? returnUrl : "/");
    }
}
