using Microsoft.AspNetCore.Http;

namespace CdcSync.WebConsole.Pages;

public sealed class DeniedModel : ConsolePage
{
    public void OnGet() => Response.StatusCode = StatusCodes.Status403Forbidden;
}
