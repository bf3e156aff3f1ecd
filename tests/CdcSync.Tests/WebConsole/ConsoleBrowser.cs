using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;

namespace CdcSync.Tests.WebConsole;

/// <summary>
/// Debian's headless Chromium driven through Debian's chromedriver (Selenium WebDriver): a real
/// browser, never a downloaded one. One per test class; <see cref="SignIn"/> starts a fresh session.
/// </summary>
public sealed class ConsoleBrowser : IDisposable
{
    public const string Chromium = "/usr/bin/chromium";
    public const string ChromeDriver = "/usr/bin/chromedriver";

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    public ConsoleBrowser()
    {
        if (!File.Exists(Chromium) || !File.Exists(ChromeDriver))
        {
            throw new InvalidOperationException($"The console's browser tests need {Chromium} and {ChromeDriver}: apt-get install -y chromium chromium-driver (.ci/run installs them).");
        }

        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(ChromeDriver)!, Path.GetFileName(ChromeDriver));
        service.SuppressInitialDiagnosticInformation = true;
        service.HideCommandPromptWindow = true;
        var options = new ChromeOptions { BinaryLocation = Chromium };
        // Root in CI: Chromium's sandbox needs an unprivileged user, hence --no-sandbox.
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run", "--window-size=1280,900");
        Driver = new ChromeDriver(service, options, TimeSpan.FromSeconds(120));
        Driver.Manage().Timeouts().PageLoad = TimeSpan.FromSeconds(60);
    }

    public ChromeDriver Driver { get; }

    public string BaseUrl { get; set; } = "";

    public string Url => Driver.Url;

    public string Text => Driver.FindElement(By.TagName("body")).Text;

    public void Go(string path) => Driver.Navigate().GoToUrl(BaseUrl + path);

    /// <summary>Signs out whoever was signed in (all cookies), then signs in through the login form.</summary>
    public void SignIn(string name, string password)
    {
        Go("/login");
        Driver.Manage().Cookies.DeleteAllCookies();
        Go("/login");
        Driver.FindElement(By.Id("name")).SendKeys(name);
        Driver.FindElement(By.Id("password")).SendKeys(password);
        Driver.FindElement(By.Id("sign-in")).Click();
        Until(d => d.FindElements(By.Id("signed-in-as")).Count > 0 || d.FindElements(By.Id("problem")).Count > 0, "the sign-in to finish");
    }

    public void Click(string id) => Driver.FindElement(By.Id(id)).Click();

    public bool Has(string id) => Driver.FindElements(By.Id(id)).Count > 0;

    public void Until(Func<IWebDriver, bool> condition, string what)
    {
        try
        {
            new WebDriverWait(Driver, Wait).Until(condition);
        }
        catch (WebDriverTimeoutException)
        {
            Assert.Fail($"timed out waiting for {what}; page {Driver.Url}:\n{Text}");
        }
    }

    /// <summary>Resizes the window (the viewport, headless); null when the page fits, else the elements that stick out sideways.</summary>
    public string? OverflowAt(int width, int height)
    {
        Driver.Manage().Window.Size = new System.Drawing.Size(width, height);
        Driver.Navigate().Refresh();
        return (string?)Driver.ExecuteScript(
            """
            if (document.documentElement.scrollWidth <= window.innerWidth + 1) return null;
            const out = [...document.querySelectorAll('body *')].filter(e => !e.parentElement.closest('.scroll') && e.getBoundingClientRect().right > window.innerWidth + 1)
                .slice(-5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));
            return 'page ' + document.documentElement.scrollWidth + ' px wide: ' + out.join(', ');
            """);
    }

    public void Screenshot(string path) => Driver.GetScreenshot().SaveAsFile(path);

    public void Dispose()
    {
        Driver.Quit();
        Driver.Dispose();
    }
}
