#!/usr/bin/env bash
# Checks the shipped deployment files with the tools that read them, as far as a machine without
# a Docker engine or a running systemd allows:
#
#   docker-compose.yml       docker compose config -q (or Debian's docker-compose): the schema,
#                            service references, depends_on conditions
#   deploy/cdcsync.service   systemd-analyze verify: no errors
#                            systemd-analyze security --offline=yes: exposure at most 4.0
#
#   scripts/check-deploy.sh [EXECUTABLE]
#
# systemd-analyze verify wants the unit's ExecStart binary to exist; /opt/cdcsync/cdcsync is there
# only on a deployed host, so a copy of the unit names EXECUTABLE instead (default: the build that
# ./cdcsync makes, artifacts/cli/cdcsync). A missing tool is a failure naming its package.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
unit="$repo/deploy/cdcsync.service"
max_exposure=4.0
fail() { echo "check-deploy: $*" >&2; exit 1; }

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  fail "no compose client to check docker-compose.yml; install one: apt-get install docker-compose"
fi
"${compose[@]}" -f "$repo/docker-compose.yml" config -q || fail "docker-compose.yml is not valid (above)"
echo "check-deploy: docker-compose.yml valid ($("${compose[@]}" version --short 2>/dev/null || echo "${compose[*]}"))"

command -v systemd-analyze >/dev/null 2>&1 || fail "systemd-analyze is missing; install it: apt-get install systemd"
exe="${1:-$repo/artifacts/cli/cdcsync}"
[[ -x "$exe" ]] || fail "$exe is not an executable; build it (./cdcsync --help) or pass the cdcsync executable"
exe="$(realpath "$exe")"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
sed "s#/opt/cdcsync/cdcsync#$exe#g" "$unit" > "$scratch/cdcsync.service"
if ! out="$(systemd-analyze verify "$scratch/cdcsync.service" 2>&1)" || [[ -n "$out" ]]; then
  fail "systemd-analyze verify deploy/cdcsync.service: ${out:-failed}"
fi
echo "check-deploy: systemd-analyze verify deploy/cdcsync.service: no errors"

report="$(systemd-analyze security --offline=yes --no-pager "$unit" 2>&1)" || true
score="$(sed -n 's/.*Overall exposure level for cdcsync.service: \([0-9.]*\).*/\1/p' <<<"$report")"
[[ -n "$score" ]] || fail "systemd-analyze security printed no exposure level: $report"
# --threshold takes tenths: the exit code is the check, the score is for the reader.
threshold="$(awk -v m="$max_exposure" 'BEGIN { printf "%d", m * 10 }')"
if ! systemd-analyze security --offline=yes --threshold="$threshold" "$unit" >/dev/null 2>&1; then
  fail "deploy/cdcsync.service exposure is $score, above $max_exposure; see: systemd-analyze security --offline=yes deploy/cdcsync.service"
fi
echo "check-deploy: deploy/cdcsync.service exposure $score (at most $max_exposure)"
