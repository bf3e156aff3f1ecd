# cdcsync: the worker and the operator CLI in one image.
#   docker build -t cdcsync .
#   docker run --rm -e CDCSYNC_DB=... cdcsync status
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, from the project files only, so a source change does not re-download packages.
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/CdcSync/CdcSync.csproj src/CdcSync/
COPY src/CdcSync.Sandboxes/CdcSync.Sandboxes.csproj src/CdcSync.Sandboxes/
COPY src/CdcSync.Cli/CdcSync.Cli.csproj src/CdcSync.Cli/
RUN dotnet restore src/CdcSync.Cli/CdcSync.Cli.csproj
COPY . .
RUN dotnet publish src/CdcSync.Cli/CdcSync.Cli.csproj -c Release --no-restore -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
COPY examples /app/examples
# Metrics and health on all interfaces inside the container (the default is loopback).
ENV CDCSYNC__Hub__MetricsUrl=http://0.0.0.0:9187 \
    DOTNET_NOLOGO=1
EXPOSE 9187
# The base image's unprivileged user (uid 1654).
USER $APP_UID
# /healthz answers while the process is alive (bash's /dev/tcp: the image has no curl).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9187 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["dotnet", "/app/cdcsync.dll"]
CMD ["--help"]
