using System.CommandLine;
using CdcSync.Sandboxes.NetSuite;

namespace CdcSync.Cli.Commands;

/// <summary><c>cdcsync sandbox netsuite --port N</c>: the NetSuite REST sandbox until Ctrl-C or SIGTERM.</summary>
internal static class SandboxNetSuiteCommand
{
    public static Command Create()
    {
        var port = CliOptions.Port(8091);
        var concurrency = CliOptions.AtLeast(new Option<int>("--concurrency-limit") { Description = "Requests the account may have in flight.", DefaultValueFactory = _ => 5 }, 1);
        var idOffset = new Option<long>("--id-offset") { Description = "Added to every record type's first internal id (e.g. $(date +%s) so a later run never hands out an id an earlier run did).", DefaultValueFactory = _ => 0 };
        var command = new Command("netsuite", "Run a local sandbox of NetSuite's SuiteTalk REST web services (customer and opportunity records, SuiteQL with deletedrecord, metadata catalog, token-based auth; steering under /_sandbox/).")
        {
            port,
            concurrency,
            idOffset,
        };
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var options = new NetSuiteSandboxOptions
            {
                Port = parseResult.GetValue(port),
                ConcurrencyLimit = parseResult.GetValue(concurrency),
                InternalIdOffset = parseResult.GetValue(idOffset),
            };
            NetSuiteSandbox started;
            try
            {
                started = await NetSuiteSandbox.StartAsync(options, cancellationToken);
            }
            catch (IOException e)
            {
                await Console.Error.WriteLineAsync(SandboxSalesforceCommand.SandboxListenError(options.Port, e));
                return ExitCodes.Error;
            }

            await using var sandbox = started;
            // These credentials exist only in the sandbox; printing them is the point.
            Console.WriteLine($"NetSuite sandbox listening on {sandbox.BaseUrl}");
            Console.WriteLine($"  account id (realm): {options.AccountId}");
            Console.WriteLine($"  consumer key:       {options.ConsumerKey}");
            Console.WriteLine($"  consumer secret:    {options.ConsumerSecret}");
            Console.WriteLine($"  token id:           {options.TokenId}");
            Console.WriteLine($"  token secret:       {options.TokenSecret}");
            Console.WriteLine($"  concurrency limit:  {options.ConcurrencyLimit}");
            Console.WriteLine($"  admin:              GET {sandbox.BaseUrl}_sandbox/stats, POST {sandbox.BaseUrl}_sandbox/faults, POST {sandbox.BaseUrl}_sandbox/reset");
            Console.WriteLine("Press Ctrl-C to stop.");
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
