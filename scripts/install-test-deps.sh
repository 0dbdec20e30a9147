#!/usr/bin/env bash
# Installs everything the test suites need on a fresh Debian 12 (bookworm)
# machine that already has Node 20 and npm: Apache ZooKeeper 3.8 (to compare
# against and to prove the client suites), the real clients the suites drive
# (zkCli from the zookeeper package, python3-kazoo, Apache Curator, a JDK with
# javac to compile the Curator suite), OpenSSH (fencing tests), procps and
# iproute2, openssl (the admin API's TLS test makes its certificates), the real
# services of the recipes (resource-agents, redis-server, postgresql, haproxy),
# headless Chromium (the status page's test), then the npm dependencies.
#
# Idempotent and quiet: packages already installed are not touched (and
# `apt-get update` runs only when something is missing); `npm ci` is skipped
# when node_modules already matches package-lock.json. Any failing step
# stops the script with its name and the end of its output.
#
# Usage (as root, or as a user with sudo):
#   scripts/install-test-deps.sh            install what is missing
#   scripts/install-test-deps.sh --dry-run  show what would be done (apt-get -s)
#   FORCE_NPM=1 scripts/install-test-deps.sh   run npm ci even if up to date
#
# Services from the packages (sshd) are not started by this script: the
# tests run their own daemons on 127.0.0.1 under /tmp.
set -euo pipefail

DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --dry-run|-n) DRY_RUN=1 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "install-test-deps: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUDO=""
LOG="$(mktemp -t install-test-deps.XXXXXX.log)"
POLICY_RC=/usr/sbin/policy-rc.d
POLICY_RC_OURS=0
cleanup() {
  if [ "$POLICY_RC_OURS" = 1 ]; then $SUDO rm -f "$POLICY_RC"; fi
  rm -f "$LOG"
}
trap cleanup EXIT

say() { echo "install-test-deps: $*"; }

# step NAME CMD...: run CMD quietly; on failure report NAME and the log tail, exit 1.
step() {
  local name="$1"; shift
  if [ "$DRY_RUN" = 1 ] && [ "${STEP_ALWAYS:-0}" != 1 ]; then
    say "[dry-run] $name: $*"
    return 0
  fi
  if ! "$@" >"$LOG" 2>&1; then
    echo "install-test-deps: FAILED at step: $name" >&2
    echo "install-test-deps: command: $*" >&2
    echo "---- last 40 lines of output ----" >&2
    tail -n 40 "$LOG" >&2
    exit 1
  fi
}

fail() { echo "install-test-deps: FAILED: $*" >&2; exit 1; }

# ---- prerequisites the script does not install
[ -r /etc/debian_version ] || fail "not a Debian system (no /etc/debian_version)"
case "$(cut -d. -f1 /etc/debian_version)" in
  12|bookworm*) ;;
  *) say "warning: written for Debian 12, this is Debian $(cat /etc/debian_version)" ;;
esac
command -v node >/dev/null || fail "node is not installed (Node 20 is a prerequisite)"
command -v npm >/dev/null || fail "npm is not installed (a prerequisite)"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 20 ] || fail "Node $(node --version) is too old, need 20 or newer"

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; fi
fi

# ---- Debian packages
# openjdk-17-jdk-headless is what default-jdk-headless resolves to on Debian 12;
# naming it keeps the JDK the suites were proven with.
PACKAGES=(
  zookeeper
  python3
  python3-kazoo
  libcurator-client-java
  libcurator-framework-java
  libcurator-recipes-java
  openjdk-17-jdk-headless
  openssh-server
  openssh-client
  procps
  iproute2
  openssl
  systemd
  # Real services behind Quorate (issue 16): Pacemaker's OCF resource agents
  # (IPaddr2 for the floating IP, Dummy), Redis, PostgreSQL, HAProxy. The
  # recipes' tests run their own servers under /tmp; nothing is started here.
  resource-agents
  redis-server
  redis-tools
  postgresql
  haproxy
  # The controllers' live status page is tested in headless Chromium.
  chromium
)

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

MISSING=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || MISSING+=("$p")
done

if [ "${#MISSING[@]}" -eq 0 ]; then
  say "Debian packages: all ${#PACKAGES[@]} present"
else
  say "Debian packages to install: ${MISSING[*]}"
  if [ "$(id -u)" != 0 ] && [ -z "$SUDO" ] && [ "$DRY_RUN" = 0 ]; then
    fail "need root (or sudo) to install: ${MISSING[*]}"
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Slim Debian images delete /usr/share/man; the JDK's postinst then fails
  # to register its man pages with update-alternatives.
  step "create /usr/share/man/man1 (JDK postinst needs it)" $SUDO mkdir -p /usr/share/man/man1
  # Do not let package scripts start services (sshd) during the install.
  if [ "$DRY_RUN" = 0 ] && [ ! -e "$POLICY_RC" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY_RC" >/dev/null
    $SUDO chmod 755 "$POLICY_RC"
    POLICY_RC_OURS=1
  fi
  if [ "$DRY_RUN" = 1 ]; then
    say "[dry-run] apt-get update"
    STEP_ALWAYS=1 step "apt-get -s install (simulation)" \
      apt-get -s -q install -y --no-install-recommends "${MISSING[@]}"
    say "[dry-run] apt-get would install $(grep -c '^Inst ' "$LOG" || true) packages in all"
  else
    step "apt-get update" $SUDO apt-get update -q
    step "apt-get install ${MISSING[*]}" \
      $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${MISSING[@]}"
    say "installed: ${MISSING[*]}"
  fi
fi

# ---- npm dependencies
npm_up_to_date() {
  # npm keeps node_modules/.package-lock.json in step with what it installed;
  # if it is newer than package.json and package-lock.json, and `npm ls`
  # finds nothing missing or invalid, there is nothing to do.
  local hidden="$REPO/node_modules/.package-lock.json"
  [ -f "$hidden" ] || return 1
  [ "$hidden" -nt "$REPO/package.json" ] || return 1
  if [ -f "$REPO/package-lock.json" ]; then [ "$hidden" -nt "$REPO/package-lock.json" ] || return 1; fi
  (cd "$REPO" && npm ls --all >/dev/null 2>&1)
}

if [ "${FORCE_NPM:-0}" != 1 ] && npm_up_to_date; then
  say "npm dependencies: up to date"
elif [ -f "$REPO/package-lock.json" ]; then
  step "npm ci" bash -c "cd '$REPO' && npm ci --no-audit --no-fund --loglevel=error"
  [ "$DRY_RUN" = 1 ] || say "npm dependencies: installed (npm ci)"
else
  step "npm install" bash -c "cd '$REPO' && npm install --no-audit --no-fund --loglevel=error"
  [ "$DRY_RUN" = 1 ] || say "npm dependencies: installed (npm install)"
fi

# ---- check that what the tests use is really there
if [ "$DRY_RUN" = 0 ]; then
  for jar in zookeeper zookeeper-jute slf4j-api slf4j-log4j12 slf4j-simple log4j-1.2 netty-all netty-buffer netty-codec netty-common \
             netty-handler netty-resolver netty-transport netty-transport-native-epoll netty-transport-native-unix-common metrics-core \
             snappy-java commons-cli commons-io guava curator-client curator-framework curator-recipes; do
    [ -e "/usr/share/java/$jar.jar" ] || fail "missing /usr/share/java/$jar.jar"
  done
  STEP_ALWAYS=1 step "check: javac" javac -version
  STEP_ALWAYS=1 step "check: java" java -version
  STEP_ALWAYS=1 step "check: kazoo importable by /usr/bin/python3" /usr/bin/python3 -c 'import kazoo.client, kazoo.recipe.lock'
  STEP_ALWAYS=1 step "check: sshd and ssh" test -x /usr/sbin/sshd -a -x /usr/bin/ssh
  STEP_ALWAYS=1 step "check: ss and pgrep" bash -c 'command -v ss && command -v pgrep'
  STEP_ALWAYS=1 step "check: OCF agents IPaddr2 and Dummy" test -x /usr/lib/ocf/resource.d/heartbeat/IPaddr2 -a -x /usr/lib/ocf/resource.d/heartbeat/Dummy
  STEP_ALWAYS=1 step "check: redis-server, haproxy, pg_ctl" bash -c 'command -v redis-server && command -v haproxy && ls /usr/lib/postgresql/*/bin/pg_ctl'
  STEP_ALWAYS=1 step "check: node-zookeeper-client" test -f "$REPO/node_modules/node-zookeeper-client/package.json"
  say "ok"
fi
