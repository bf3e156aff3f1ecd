using CdcSync.Cli;

return await CliApp.RunAsync(args);
