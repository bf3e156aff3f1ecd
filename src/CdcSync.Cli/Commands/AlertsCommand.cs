using System.CommandLine;
using CdcSync.Alerts;
using CdcSync.Configuration;
using CdcSync.Connectors;

namespace CdcSync.Cli.Commands;

/// <summary><c>cdcsync alerts test</c>: proves the configured channel works before a real problem needs it.</summary>
internal static class AlertsCommand
{
    public static Command Create()
    {
        var config = CliOptions.Config();
        var test = new Command("test", "Send a test alert through the configured channel (Alerts:WebhookUrl, signed, in Alerts:Format). Exit 2 naming the problem when it cannot be delivered.") { config };
        test.SetAction((parse, ct) => CliOptions.GuardAsync(async () =>
        {
            var options = ConnectorConfig.Bind(ConfigLoader.Build(parse.GetValue(config)));
            using var notifier = new AlertNotifier(options.Alerts);
            var message = new AlertMessage(0, AlertStatus.Test, "test", "cli", "warning",
                $"Test alert from cdcsync on {Environment.MachineName}: alerts reach this channel.", TimeProvider.System.GetUtcNow(), null);
            // One attempt: the operator is waiting for the answer.
            await notifier.SendAsync(message, retry: false, ct);
            Console.WriteLine($"sent a test alert to {notifier.Destination} as {options.Alerts.Format.ToString().ToLowerInvariant()}{(options.Alerts.Secret.Length > 0 ? ", signed" : ", unsigned (no Alerts:Secret)")}.");
            return ExitCodes.Ok;
        }));
        return new Command("alerts", "Alerts sent by the worker to a signed webhook (section Alerts).") { test };
    }
}
