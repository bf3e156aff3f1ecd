using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.DependencyInjection;

namespace CdcSync.WebConsole;

/// <summary>What every console page knows: who is signed in, what their role allows, and the outcome of the last action.</summary>
public abstract class ConsolePage : PageModel
{
    /// <summary>A one-line outcome of the action just taken (shown once, after the redirect).</summary>
    [TempData]
    public string? Message { get; set; }

    /// <summary>A one-line error of the action just taken (the engine's OperatorException text).</summary>
    [TempData]
    public string? Problem { get; set; }

    public string UserName => User.Identity?.Name ?? "";

    internal ConsoleRole Role => ConsoleServer.RoleOf(User);

    public string RoleName => ConsoleUsers.RoleName(Role);

    public bool CanReview => Role >= ConsoleRole.Reviewer;

    public bool CanOperate => Role >= ConsoleRole.Operator;

    /// <summary>The console's services (the engine's types are internal, so pages take them here rather than in a constructor).</summary>
    internal T Get<T>()
        where T : notnull => HttpContext.RequestServices.GetRequiredService<T>();

    /// <summary>Runs an action a role allows: refused (403, the denied page) below <paramref name="needed"/>; an operator error becomes the page's problem line.</summary>
    internal async Task<IActionResult> ActAsync(ConsoleRole needed, Func<Task<string>> action, string? redirectTo = null)
    {
        if (Role < needed)
        {
            return Forbid();
        }

        try
        {
            Message = await action();
        }
        catch (OperatorException e)
        {
            Problem = e.Message;
        }

        return redirectTo is null ? RedirectToPage() : Redirect(redirectTo);
    }
}
