FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/CdcSync.Cli/CdcSync.Cli.csproj -c Release -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
COPY examples /app/examples
ENTRYPOINT ["dotnet", "/app/cdcsync.dll"]
