#!/usr/bin/env bash
# Installs the Debian 12 packages dhi builds and tests with. Skips apt when all
# are present, so repeated runs cost nothing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libpcre2-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  libcurl4-openssl-dev libssl-dev libtomlplusplus-dev
)
# Tools the tests run as commands: the Debian package only when the command is
# missing (a Node.js from NodeSource, say, bundles its own npm and conflicts
# with Debian's npm package).
tools=(python3:python3 node:nodejs npm:npm curl:curl)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for t in "${tools[@]}"; do
  command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
