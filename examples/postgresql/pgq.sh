#!/usr/bin/env bash
# PostgreSQL streaming replication under Quorate: the hooks the controller
# runs and what the sidecar runs, for one PostgreSQL instance.
#
#   pgq.sh to-active  CONF   promote this standby (the controller's toActive hook)
#   pgq.sh to-standby CONF   make this instance a standby of the active (toStandby hook)
#   pgq.sh role       CONF   print active or standby (the role hook)
#   pgq.sh start      CONF   start PostgreSQL, always as a standby (boot, supervisor)
#   pgq.sh follow     CONF   point a running standby at the active (the sidecar)
#   pgq.sh rejoin     CONF   stop, pg_rewind from the active, start as its standby
#
# CONF is this instance's file (see pgq.conf.example): KEY=value lines, no
# shell expansions, read by this script and by the sidecar alike.
#
# The rule everything here keeps: PostgreSQL is only ever started as a
# standby; only to-active, run by the controller that holds the lock after
# fencing the previous active, ends recovery. An old primary that comes back
# (reboot, supervisor) therefore cannot take writes beside the new one.
#
# Exit codes: 0 done, 1 refused or failed (the reason on stderr, last line),
# 2 bad usage or configuration.
set -uo pipefail

PROG=pgq.sh
KNOWN_KEYS="PGQ_INSTANCE PGQ_NODES PGQ_SYSTEM_ID PGQ_BINDIR PGQ_PGDATA PGQ_PGCONF PGQ_PGLOG PGQ_SOCKET_DIR PGQ_OS_USER PGQ_SUPERUSER PGQ_REPL_USER PGQ_REWIND_USER PGQ_MONITOR_USER PGQ_DBNAME PGQ_PASSFILE PGQ_STATE_DIR PGQ_FIND_ACTIVE_MS PGQ_CATCHUP_MS PGQ_START_TIMEOUT_S PGQ_CURL_OPTS PGQ_FOLLOW_INTERVAL_MS PGQ_REWIND_AFTER_MS"

die() { local code=$1; shift; log "$*"; exit "$code"; }
usage() {
  printf '%s\n' "usage: $PROG to-active|to-standby|role|start|follow|rejoin CONF" >&2
  exit 2
}

# Before the configuration is read, messages go to stderr only.
log() {
  local line
  line="$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) ${PGQ_INSTANCE:-?} ${CMD:-?}: $*"
  printf '%s\n' "$line" >&2
  # Not from role: it runs as the controller's user, and must not create pgq.log as that user.
  if [ "${CMD:-}" != role ] && [ -n "${PGQ_STATE_DIR:-}" ] && [ -w "$PGQ_STATE_DIR" ]; then printf '%s\n' "$line" >> "$PGQ_STATE_DIR/pgq.log"; fi
}

# ---- configuration ----------------------------------------------------------

load_conf() {
  local file=$1 line n=0 key val
  [ -f "$file" ] || { printf '%s\n' "$PROG: no configuration file $file" >&2; exit 2; }
  [ -r "$file" ] || { printf '%s\n' "$PROG: cannot read $file as $(id -un)" >&2; exit 2; }
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
    if [[ ! $line =~ ^[[:space:]]*(PGQ_[A-Z_]+)=(.*)$ ]]; then
      printf '%s\n' "$PROG: $file line $n: expected PGQ_NAME=value, got: ${line:0:80}" >&2; exit 2
    fi
    key=${BASH_REMATCH[1]} val=${BASH_REMATCH[2]}
    case " $KNOWN_KEYS " in *" $key "*) ;; *) printf '%s\n' "$PROG: $file line $n: unknown key $key (known: $KNOWN_KEYS)" >&2; exit 2 ;; esac
    # The same file must mean the same thing to bash and to the sidecar: no expansions.
    if [[ $val =~ ^\"([^\"\\\$\`]*)\"[[:space:]]*$ ]]; then val=${BASH_REMATCH[1]}
    elif [[ $val =~ ^\'([^\']*)\'[[:space:]]*$ ]]; then val=${BASH_REMATCH[1]}
    elif [[ $val =~ ^([^[:space:]\"\'\\\$\`]*)[[:space:]]*$ ]]; then val=${BASH_REMATCH[1]}
    else printf '%s\n' "$PROG: $file line $n: the value of $key must be one word, or quoted without \$, \` or \\" >&2; exit 2
    fi
    printf -v "$key" '%s' "$val"
  done < "$file"

  need() { [ -n "${!1:-}" ] || { printf '%s\n' "$PROG: $file: $1 is missing${2:+ ($2)}" >&2; exit 2; }; }
  need PGQ_INSTANCE "this instance's id in the cluster file"
  need PGQ_NODES 'every instance: "id,pghost,pgport,adminURL id,..."'
  need PGQ_SYSTEM_ID "the cluster's database system identifier (pg_controldata)"
  need PGQ_PGDATA "the data directory"
  : "${PGQ_BINDIR:=/usr/lib/postgresql/15/bin}" "${PGQ_PGCONF:=$PGQ_PGDATA/postgresql.conf}"
  : "${PGQ_SOCKET_DIR:=/var/run/postgresql}" "${PGQ_OS_USER:=postgres}" "${PGQ_SUPERUSER:=postgres}"
  : "${PGQ_REPL_USER:=replicator}" "${PGQ_REWIND_USER:=postgres}" "${PGQ_MONITOR_USER:=postgres}" "${PGQ_DBNAME:=postgres}"
  : "${PGQ_PASSFILE:=}" "${PGQ_STATE_DIR:=/var/lib/postgresql/quorate}" "${PGQ_PGLOG:=$PGQ_STATE_DIR/postgresql.log}"
  : "${PGQ_FIND_ACTIVE_MS:=10000}" "${PGQ_CATCHUP_MS:=5000}" "${PGQ_START_TIMEOUT_S:=60}" "${PGQ_CURL_OPTS:=}"
  : "${PGQ_FOLLOW_INTERVAL_MS:=500}" "${PGQ_REWIND_AFTER_MS:=5000}"
  [[ $PGQ_SYSTEM_ID =~ ^[0-9]{1,20}$ ]] || { printf '%s\n' "$PROG: $file: PGQ_SYSTEM_ID must be the decimal system identifier, got $PGQ_SYSTEM_ID" >&2; exit 2; }
  for key in PGQ_FIND_ACTIVE_MS PGQ_CATCHUP_MS PGQ_START_TIMEOUT_S PGQ_FOLLOW_INTERVAL_MS PGQ_REWIND_AFTER_MS; do
    [[ ${!key} =~ ^[0-9]{1,7}$ ]] || { printf '%s\n' "$PROG: $file: $key must be a whole number, got ${!key}" >&2; exit 2; }
  done
  # These end up inside libpq connection strings and postgresql.auto.conf values.
  for key in PGQ_INSTANCE PGQ_REPL_USER PGQ_REWIND_USER PGQ_MONITOR_USER PGQ_SUPERUSER PGQ_DBNAME; do
    [[ ${!key} =~ ^[A-Za-z0-9_.-]+$ ]] || { printf '%s\n' "$PROG: $file: $key may hold letters, digits, _ . - only, got ${!key}" >&2; exit 2; }
  done
  for key in PGQ_PGDATA PGQ_PGCONF PGQ_PGLOG PGQ_SOCKET_DIR PGQ_STATE_DIR PGQ_BINDIR PGQ_PASSFILE; do
    [[ ${!key} =~ ^[A-Za-z0-9_./@+-]*$ ]] || { printf '%s\n' "$PROG: $file: $key must be a path without spaces or quotes, got ${!key}" >&2; exit 2; }
  done
  [ -x "$PGQ_BINDIR/pg_ctl" ] || { printf '%s\n' "$PROG: $file: PGQ_BINDIR $PGQ_BINDIR has no pg_ctl" >&2; exit 2; }

  NODE_IDS=() ; declare -gA NODE_HOST NODE_PORT NODE_ADMIN
  local entry id host port url url_re='^https?://[][A-Za-z0-9_.:-]+/?$'
  for entry in $PGQ_NODES; do
    IFS=, read -r id host port url <<< "$entry"
    if [[ ! $id =~ ^[A-Za-z0-9_.-]+$ || ! $host =~ ^[A-Za-z0-9_.:-]+$ || ! $port =~ ^[0-9]{1,5}$ || ! $url =~ $url_re ]]; then
      printf '%s\n' "$PROG: $file: PGQ_NODES entry \"$entry\" is not id,pghost,pgport,http(s)://adminhost:adminport" >&2; exit 2
    fi
    NODE_IDS+=("$id"); NODE_HOST[$id]=$host; NODE_PORT[$id]=$port; NODE_ADMIN[$id]=${url%/}
  done
  [ -n "${NODE_HOST[$PGQ_INSTANCE]:-}" ] || { printf '%s\n' "$PROG: $file: PGQ_INSTANCE $PGQ_INSTANCE is not among PGQ_NODES (${NODE_IDS[*]})" >&2; exit 2; }
  MY_PORT=${NODE_PORT[$PGQ_INSTANCE]}
  read -r -a CURL_OPTS <<< "$PGQ_CURL_OPTS"
}

# Everything that touches the data directory runs as its owner.
become_os_user() {
  [ "$(id -un)" = "$PGQ_OS_USER" ] && return 0
  local self
  self=$(readlink -f "$0")
  if [ "$(id -u)" = 0 ]; then exec runuser -u "$PGQ_OS_USER" -- "$self" "$@"; fi
  if command -v sudo > /dev/null 2>&1; then exec sudo -n -u "$PGQ_OS_USER" -- "$self" "$@"; fi
  printf '%s\n' "$PROG: runs as $PGQ_OS_USER (the data directory's owner): run the controller as $PGQ_OS_USER or root, or allow: $(id -un) ALL=($PGQ_OS_USER) NOPASSWD: $self" >&2
  exit 2
}

# ---- PostgreSQL -------------------------------------------------------------

pg() { "$PGQ_BINDIR/$@"; }

# Local queries over the socket as the superuser (peer authentication in
# Debian's default pg_hba.conf); bounded, so a hung server fails the hook.
# Its error goes to $ERRF (errtext reads it), so that output stays parseable.
psql_local() {
  PGCONNECT_TIMEOUT=3 timeout 15 "$PGQ_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -F '|' \
    -h "$PGQ_SOCKET_DIR" -p "$MY_PORT" -U "$PGQ_SUPERUSER" -d "$PGQ_DBNAME" "$@" 2> "$ERRF"
}
errtext() { grep -v '^$' "$ERRF" 2> /dev/null | tail -n 1; }

# Another instance, over TCP as the monitoring user.
psql_node() {
  local id=$1; shift
  PGPASSFILE=${PGQ_PASSFILE:-${PGPASSFILE:-}} PGCONNECT_TIMEOUT=2 timeout 5 "$PGQ_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -F '|' \
    "host=${NODE_HOST[$id]} port=${NODE_PORT[$id]} user=$PGQ_MONITOR_USER dbname=$PGQ_DBNAME" "$@" 2>/dev/null
}

# One line: in_recovery|position|timeline|system_id. The position is how far
# its WAL goes (a standby: received or replayed, whichever is further); the
# timeline is the newest one it knows of (its newest history file), which is
# what tells an instance left on an old branch from one that followed.
STATE_SQL="SELECT pg_is_in_recovery(),
  CASE WHEN pg_is_in_recovery() THEN coalesce(greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), '0/0') ELSE pg_current_wal_lsn() END,
  (SELECT coalesce(max(substr(name, 1, 8)), '00000001') FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{8}[.]history\$'),
  (SELECT system_identifier FROM pg_control_system())"

# STATE_SQL on another server. On failure prints "down" when no connection
# could be made (refused, or no answer to connect), else why. A server still
# starting up (a demoted primary restarting as a standby) is waited for: it
# may be the only one that knows the newest timeline.
peer_state() {
  local id=$1 n out
  for n in $(seq 1 12); do
    out=$(PGPASSFILE=${PGQ_PASSFILE:-${PGPASSFILE:-}} PGCONNECT_TIMEOUT=2 timeout 5 "$PGQ_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -F '|' \
      "host=${NODE_HOST[$id]} port=${NODE_PORT[$id]} user=$PGQ_MONITOR_USER dbname=$PGQ_DBNAME" -c "$STATE_SQL" 2> "$ERRF") && { printf '%s' "$out"; return 0; }
    grep -q -E 'the database system is (starting up|not yet accepting connections)' "$ERRF" || break
    sleep 0.5
  done
  if grep -q -E 'Connection refused|timeout expired|No route to host|could not translate host name|the database system is shutting down' "$ERRF"; then printf down
  elif [ -s "$ERRF" ]; then printf '%s' "$(errtext)"
  else printf 'no answer within 5 s'
  fi
  return 1
}

lsn_num() { local h=${1%/*} l=${1#*/}; printf '%d' $(( (16#$h << 32) | 16#$l )); }

postmaster_pid() { head -n 1 "$PGQ_PGDATA/postmaster.pid" 2> /dev/null; }
proc_state() { sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$1/stat" 2> /dev/null; }

# pg_ctl status tests the pid with kill -0, which a killed postmaster passes
# until its parent (init, after pg_ctl exited) reaps it; and it may be reaped
# between that test and ours: a pid with no process (no state) is not running.
running() {
  local pid state
  pg pg_ctl status -D "$PGQ_PGDATA" > /dev/null 2>&1 || return 1
  pid=$(postmaster_pid)
  [ -n "$pid" ] || return 1
  state=$(proc_state "$pid")
  [ -n "$state" ] && [ "$state" != Z ]
}

# PostgreSQL's own lock-file check takes that zombie for a live postmaster too.
wait_postmaster_reaped() {
  local pid i
  pid=$(postmaster_pid)
  [ -n "$pid" ] || return 0
  for i in $(seq 1 100); do
    [ "$(proc_state "$pid")" = Z ] || return 0
    sleep 0.1
  done
  log "the dead postmaster $pid is still not reaped after 10 s"
}

stop_pg() {
  running || return 0
  log "stopping PostgreSQL (fast)"
  if ! pg pg_ctl stop -D "$PGQ_PGDATA" -m fast -t 30 -s >> "$PGQ_STATE_DIR/pgq.log" 2>&1; then
    # A postmaster that died meanwhile (killed, then reaped) has no one to signal: stopped.
    running || { log "PostgreSQL was already gone"; return 0; }
    log "a fast stop did not finish in 30 s: immediate"
    if ! pg pg_ctl stop -D "$PGQ_PGDATA" -m immediate -t 30 -s >> "$PGQ_STATE_DIR/pgq.log" 2>&1; then
      if running; then die 1 "PostgreSQL in $PGQ_PGDATA does not stop"; fi
    fi
  fi
  return 0
}

start_pg() {
  # Never without standby.signal: see the rule at the top.
  [ -f "$PGQ_PGDATA/standby.signal" ] || die 1 "internal: refusing to start without standby.signal"
  wait_postmaster_reaped
  log "starting PostgreSQL as a standby"
  # 9>&-: the postmaster must not inherit the lock's descriptor (it would hold the lock for its life).
  pg pg_ctl start -D "$PGQ_PGDATA" -o "-c config_file=$PGQ_PGCONF" -l "$PGQ_PGLOG" -w -t "$PGQ_START_TIMEOUT_S" -s >> "$PGQ_STATE_DIR/pgq.log" 2>&1 9>&- \
    || die 1 "PostgreSQL did not start as a standby within $PGQ_START_TIMEOUT_S s (see $PGQ_PGLOG)"
}

conninfo_for() {
  local id=$1
  printf '%s' "host=${NODE_HOST[$id]} port=${NODE_PORT[$id]} user=$PGQ_REPL_USER application_name=$PGQ_INSTANCE connect_timeout=2${PGQ_PASSFILE:+ passfile=$PGQ_PASSFILE}"
}

# With the server stopped: postgresql.auto.conf is the file ALTER SYSTEM,
# pg_basebackup -R and pg_rewind -R write primary_conninfo to.
set_upstream_offline() {
  local id=$1 f=$PGQ_PGDATA/postgresql.auto.conf
  { [ -f "$f" ] && grep -v -E '^[[:space:]]*primary_conninfo[[:space:]]*=' "$f"; printf "primary_conninfo = '%s'\n" "$(conninfo_for "$id")"; } > "$f.pgq" \
    && mv "$f.pgq" "$f" || die 1 "cannot write $f"
  touch "$PGQ_PGDATA/standby.signal" || die 1 "cannot write $PGQ_PGDATA/standby.signal"
}

# With the server running: a reload makes the WAL receiver reconnect (PostgreSQL 13+).
set_upstream_online() {
  local id=$1 out
  out=$(psql_local -c "ALTER SYSTEM SET primary_conninfo = '$(conninfo_for "$id")'" -c "SELECT pg_reload_conf()") \
    || die 1 "could not point primary_conninfo at $id: $(errtext)"
  log "following $id (${NODE_HOST[$id]}:${NODE_PORT[$id]})"
}

# ---- the controllers --------------------------------------------------------

# The instances whose controller answers GET /active with 200 right now.
actives_now() {
  local id code
  for id in "${NODE_IDS[@]}"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "${CURL_OPTS[@]}" "${NODE_ADMIN[$id]}/active" 2> /dev/null) || true
    [ "$code" = 200 ] && printf '%s\n' "$id"
  done
}

# The one other instance that is active, asked until `ms` have passed; empty if none.
find_active() {
  local ms=$1 end found
  end=$(( $(date +%s%3N) + ms ))
  while :; do
    found=$(actives_now)
    if [ -n "$found" ] && [ "$(printf '%s\n' "$found" | wc -l)" = 1 ] && [ "$found" != "$PGQ_INSTANCE" ]; then
      printf '%s' "$found"; return 0
    fi
    [ "$(date +%s%3N)" -ge "$end" ] && return 0
    sleep 0.2
  done
}

# ---- the commands -----------------------------------------------------------

lock() {
  exec 9>> "$PGQ_STATE_DIR/pgq.lock" || die 1 "cannot open $PGQ_STATE_DIR/pgq.lock"
  # A rewind may hold it for a while; longer than that means something is stuck.
  flock -w 120 9 || die 1 "another pgq.sh holds $PGQ_STATE_DIR/pgq.lock for over 120 s"
}

cmd_role() {
  local r
  r=$(psql_node "$PGQ_INSTANCE" -c "SELECT pg_is_in_recovery()") || die 1 "PostgreSQL does not answer on ${NODE_HOST[$PGQ_INSTANCE]}:$MY_PORT"
  case $r in f) echo active ;; t) echo standby ;; *) die 1 "unexpected answer to pg_is_in_recovery(): $r" ;; esac
}

cmd_to_active() {
  lock
  local st rec pos tli sysid id pst prec ppos ptli psys best='' bestpos mypos
  st=$(psql_local -c "$STATE_SQL") || die 1 "refusing to promote: PostgreSQL does not answer on $PGQ_SOCKET_DIR:$MY_PORT: $(errtext)"
  IFS='|' read -r rec pos tli sysid <<< "$st"
  [ "$sysid" = "$PGQ_SYSTEM_ID" ] || die 1 "refusing to promote: this data directory's system identifier is $sysid, not the cluster's $PGQ_SYSTEM_ID: it is not a copy of this cluster"
  if [ "$rec" = f ]; then
    # A retried promotion whose first attempt went through; still, never two primaries.
    for id in "${NODE_IDS[@]}"; do
      [ "$id" = "$PGQ_INSTANCE" ] && continue
      [ "$(psql_node "$id" -c 'SELECT pg_is_in_recovery()')" = f ] && die 1 "refusing: $id is also a primary; stop it (it was not fenced)"
    done
    log "already a primary (timeline $((16#$tli)))"
    return 0
  fi
  [ -f "$PGQ_PGDATA/standby.signal" ] || die 1 "refusing to promote: in recovery but not a standby (no standby.signal in $PGQ_PGDATA)"
  mypos=$(lsn_num "$pos")
  bestpos=$mypos
  for id in "${NODE_IDS[@]}"; do
    [ "$id" = "$PGQ_INSTANCE" ] && continue
    if ! pst=$(peer_state "$id"); then
      # Down, or the previous active this controller just fenced: it cannot be asked. A server
      # that took the connection but did not answer may know a timeline this one does not.
      [ "$pst" = down ] || [ "$id" = "${QUORATE_PREVIOUS:-}" ] && continue
      die 1 "refusing to promote: $id (${NODE_HOST[$id]}:${NODE_PORT[$id]}) is up but did not say its timeline and WAL position ($pst)"
    fi
    IFS='|' read -r prec ppos ptli psys <<< "$pst"
    [ "$psys" = "$PGQ_SYSTEM_ID" ] || die 1 "refusing to promote: $id (${NODE_HOST[$id]}:${NODE_PORT[$id]}) has system identifier $psys, not $PGQ_SYSTEM_ID: check PGQ_NODES"
    [ "$prec" = f ] && die 1 "refusing to promote: $id is a primary (${NODE_HOST[$id]}:${NODE_PORT[$id]}); it must be stopped or fenced first"
    (( 16#$ptli > 16#$tli )) && die 1 "refusing to promote: $id knows timeline $((16#$ptli)), this instance only $((16#$tli)): this one is on an old branch and must rejoin (pg_rewind) first"
    if (( 16#$ptli == 16#$tli )) && (( $(lsn_num "$ppos") > bestpos )); then best=$id bestpos=$(lsn_num "$ppos"); fi
  done
  if [ -n "$best" ]; then
    # Another standby has WAL this one lacks (with synchronous_standby_names ANY 1, possibly
    # acknowledged commits): take it from that standby before ending recovery.
    log "standby $best has WAL up to $(printf '%X/%X' $((bestpos >> 32)) $((bestpos & 0xFFFFFFFF))), this one up to $pos: catching up from it"
    set_upstream_online "$best"
    local end=$(( $(date +%s%3N) + PGQ_CATCHUP_MS ))
    while :; do
      st=$(psql_local -c "$STATE_SQL") || die 1 "PostgreSQL stopped answering while catching up: $(errtext)"
      IFS='|' read -r rec pos tli sysid <<< "$st"
      (( $(lsn_num "$pos") >= bestpos )) && break
      [ "$(date +%s%3N)" -ge "$end" ] && die 1 "refusing to promote: could not catch up with $best within $PGQ_CATCHUP_MS ms (at $pos): promoting would lose its WAL; it may be promoted instead"
      sleep 0.05
    done
    log "caught up with $best at $pos"
  fi
  log "promoting (at $pos, timeline $((16#$tli)))"
  pg pg_ctl promote -D "$PGQ_PGDATA" -w -t "$PGQ_START_TIMEOUT_S" -s >> "$PGQ_STATE_DIR/pgq.log" 2>&1 || die 1 "pg_ctl promote failed (see $PGQ_PGLOG)"
  local i
  for i in $(seq 1 100); do
    [ "$(psql_local -c 'SELECT pg_is_in_recovery()')" = f ] && { log "promoted: out of recovery"; return 0; }
    sleep 0.1
  done
  die 1 "pg_ctl promote returned but PostgreSQL is still in recovery after 10 s"
}

# pg_rewind reads each server's timeline from the last checkpoint in its
# control file. A primary promoted a moment ago has not finished its first
# checkpoint: its control file still names the timeline it left, and pg_rewind
# then takes the wrong common ancestor (or says no rewind is needed) and leaves
# a minimum recovery point on a timeline the new primary's history does not
# contain, so the rewound server cannot start. Checkpoint it first (Patroni
# does the same); needs pg_checkpoint for PGQ_REWIND_USER.
source_checkpointed() {
  local id=$1 i out cp cur
  for i in $(seq 1 20); do
    out=$(PGPASSFILE=${PGQ_PASSFILE:-${PGPASSFILE:-}} PGCONNECT_TIMEOUT=2 timeout 30 "$PGQ_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -F '|' \
      "host=${NODE_HOST[$id]} port=${NODE_PORT[$id]} user=$PGQ_REWIND_USER dbname=$PGQ_DBNAME" \
      -c "SELECT timeline_id, ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int FROM pg_control_checkpoint()" 2> "$ERRF") \
      || { log "cannot read the checkpoint timeline of $id: $(errtext)"; return 1; }
    IFS='|' read -r cp cur <<< "$out"
    [ "$cp" = "$cur" ] && return 0
    [ "$i" = 1 ] && log "$id's last checkpoint is on timeline $cp, its WAL on $cur: asking it for a CHECKPOINT before pg_rewind"
    PGPASSFILE=${PGQ_PASSFILE:-${PGPASSFILE:-}} PGCONNECT_TIMEOUT=2 timeout 60 "$PGQ_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
      "host=${NODE_HOST[$id]} port=${NODE_PORT[$id]} user=$PGQ_REWIND_USER dbname=$PGQ_DBNAME" -c CHECKPOINT 2> "$ERRF" > /dev/null \
      || log "CHECKPOINT on $id as $PGQ_REWIND_USER failed: $(errtext) (grant it pg_checkpoint); waiting for its own"
    sleep 0.5
  done
  log "$id's checkpoint is still not on its timeline after 20 tries"
  return 1
}

# pg_rewind needs the target shut down cleanly; after a crash it recovers it in
# single-user mode, which refuses standby.signal, so the signal goes first. A
# crashed postmaster's children can hold its shared memory for a moment, and a
# loaded source can time out a connection: retry, for about half a minute
# (failing leaves PostgreSQL stopped for an operator).
rewind_from() {
  local id=$1 n out
  rm -f "$PGQ_PGDATA/standby.signal" "$PGQ_PGDATA/recovery.signal"
  wait_postmaster_reaped
  for n in 1 2 3 4 5 6; do
    log "pg_rewind from $id (attempt $n)"
    if out=$(PGPASSFILE=${PGQ_PASSFILE:-${PGPASSFILE:-}} timeout 300 "$PGQ_BINDIR/pg_rewind" -D "$PGQ_PGDATA" --config-file="$PGQ_PGCONF" \
        --source-server="host=${NODE_HOST[$id]} port=${NODE_PORT[$id]} user=$PGQ_REWIND_USER dbname=$PGQ_DBNAME connect_timeout=5" 2>&1); then
      printf '%s\n' "$out" >> "$PGQ_STATE_DIR/pgq.log"
      log "pg_rewind from $id done: $(printf '%s' "$out" | tail -n 1)"
      return 0
    fi
    printf '%s\n' "$out" >> "$PGQ_STATE_DIR/pgq.log"
    log "pg_rewind from $id failed: $(printf '%s' "$out" | grep -v '^$' | tail -n 1)"
    [ "$n" = 6 ] || sleep "$n"
  done
  return 1
}

# A data directory that last ran as a primary on the active's own timeline
# ended recovery without a promotion (a standby started without
# standby.signal): it diverged at a point neither streaming nor pg_rewind can
# see (both compare timelines). Only a new base backup is safe.
same_timeline_guard() {
  local id=$1 cd state mytli st atli
  cd=$(LC_ALL=C pg pg_controldata -D "$PGQ_PGDATA" 2>&1) || die 1 "pg_controldata $PGQ_PGDATA failed: $cd"
  state=$(printf '%s\n' "$cd" | sed -n 's/^Database cluster state: *//p')
  mytli=$(printf '%s\n' "$cd" | sed -n "s/^Latest checkpoint's TimeLineID: *//p")
  case $state in "shut down"|"in production"|"shutting down") ;; *) return 0 ;; esac
  st=$(psql_node "$id" -c "$STATE_SQL") || return 0
  IFS='|' read -r _ _ atli _ <<< "$st"
  if [[ $mytli =~ ^[0-9]+$ ]] && (( mytli == 16#$atli )); then
    die 1 "$PGQ_PGDATA last ran as a primary on timeline $mytli, the active $id's own: it left recovery without a promotion (started without standby.signal?) and diverged where pg_rewind cannot see; rebuild it: pg_basebackup from $id, then pgq.sh start. PostgreSQL left stopped"
  fi
}

# Two servers that each made a timeline with the same id (one promoted and
# gone, or demoted, before the other learned of its timeline) disagree on
# where the timeline before it ended. Streaming and pg_rewind compare only
# timeline ids, so neither notices, and WAL of two histories would be mixed.
# Our newest history file and the active's must agree wherever both name a
# timeline's end; else only a new base backup is safe. Prints the conflict.
lineage_conflict() {
  local id=$1 mine name content
  mine=$(ls "$PGQ_PGDATA/pg_wal" 2> /dev/null | grep -E '^[0-9A-F]{8}[.]history$' | sort | tail -n 1)
  [ -n "$mine" ] || return 0
  # Not reachable: whatever comes next (pg_rewind, streaming) fails on its own.
  name=$(psql_node "$id" -c "SELECT max(name) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{8}[.]history\$'") || return 0
  [ -n "$name" ] || return 0
  content=$(PGPASSFILE=${PGQ_PASSFILE:-${PGPASSFILE:-}} PGCONNECT_TIMEOUT=2 timeout 5 "$PGQ_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 \
    "host=${NODE_HOST[$id]} port=${NODE_PORT[$id]} user=$PGQ_REWIND_USER dbname=$PGQ_DBNAME" \
    -c "SELECT convert_from(pg_read_binary_file('pg_wal/$name'), 'UTF8')" 2> "$ERRF") \
    || { log "cannot compare timeline histories: pg_wal/$name on $id as $PGQ_REWIND_USER: $(errtext) (grant it pg_read_binary_file)"; return 0; }
  printf '%s\n' "$content" | awk -F'\t' -v here="$mine" -v there="$name" -v id="$id" '
    NR == FNR { if ($1 ~ /^[0-9]+$/) end[$1] = $2; next }
    $1 ~ /^[0-9]+$/ && ($1 in end) && end[$1] != $2 {
      printf "timeline %s ended at %s in this server'"'"'s %s but at %s in %s'"'"'s %s: a timeline id made twice", $1, $2, here, end[$1], id, there; exit
    }' - "$PGQ_PGDATA/pg_wal/$mine"
}

# Stop, find the active, rewind from it, start as its standby. No active found
# within `ms`: start as a standby anyway (read-only, safe), and let the sidecar
# make it follow once there is one.
rejoin() {
  local ms=$1 active
  stop_pg
  active=$(find_active "$ms")
  if [ -n "$active" ]; then
    same_timeline_guard "$active"
    local conflict
    conflict=$(lineage_conflict "$active")
    [ -z "$conflict" ] || die 1 "refusing to rejoin $active: $conflict; rebuild this server: pg_basebackup from $active, then pgq.sh start. PostgreSQL left stopped"
    if source_checkpointed "$active"; then
      rewind_from "$active" || die 1 "pg_rewind from $active failed six times: $PGQ_PGDATA needs a new base backup (pg_basebackup) before it can rejoin; PostgreSQL left stopped"
      set_upstream_offline "$active"
    else
      # Read-only meanwhile; the sidecar rewinds it once it cannot stream from the active.
      log "not rewinding from $active yet: starting as a standby without a new upstream"
      touch "$PGQ_PGDATA/standby.signal" || die 1 "cannot write $PGQ_PGDATA/standby.signal"
    fi
  else
    log "no active instance answered within $ms ms: starting as a standby without a new upstream"
    touch "$PGQ_PGDATA/standby.signal" || die 1 "cannot write $PGQ_PGDATA/standby.signal"
  fi
  start_pg
}

cmd_to_standby() {
  lock
  local r
  if running; then
    r=$(psql_local -c 'SELECT pg_is_in_recovery()') || r=''
    if [ "$r" = t ]; then follow_now; return 0; fi
    if [ "$r" = f ] && [ -n "$(find_active 0)" ]; then
      # A primary while another instance is active (restarted by hand, or its
      # controller restarted): it has diverged from the active; rewind it.
      rejoin 2000
      return 0
    fi
    if [ "$r" = f ]; then
      # Handing over: a clean stop leaves the standbys that were streaming with all
      # its WAL, so it can follow the next active without a rewind; waiting here for
      # that active would hold up the graceful fencing its promotion waits on.
      stop_pg
      touch "$PGQ_PGDATA/standby.signal" || die 1 "cannot write $PGQ_PGDATA/standby.signal"
      start_pg
      follow_now
      return 0
    fi
  fi
  # Not running, or not answering: it may hold WAL the next active never got.
  rejoin "$PGQ_FIND_ACTIVE_MS"
}

follow_now() {
  local active cur
  active=$(find_active 0)
  [ -n "$active" ] || { log "no active instance to follow yet"; return 0; }
  cur=$(psql_local -c 'SHOW primary_conninfo') || die 1 "PostgreSQL does not answer: $(errtext)"
  if [[ " $cur " == *" host=${NODE_HOST[$active]} port=${NODE_PORT[$active]} "* ]]; then return 0; fi
  local conflict
  conflict=$(lineage_conflict "$active")
  if [ -n "$conflict" ]; then
    # Serving reads of a history the cluster does not have is wrong too.
    stop_pg
    die 1 "refusing to follow $active: $conflict; rebuild this server: pg_basebackup from $active, then pgq.sh start. PostgreSQL stopped"
  fi
  set_upstream_online "$active"
}

cmd_follow() {
  lock
  local r
  running || { log "PostgreSQL is not running: nothing to follow with"; return 0; }
  r=$(psql_local -c 'SELECT pg_is_in_recovery()') || die 1 "PostgreSQL does not answer: $(errtext)"
  [ "$r" = t ] || die 1 "this instance is a primary: only to-standby (its controller) demotes it"
  follow_now
}

cmd_start() {
  lock
  if running; then log "PostgreSQL is already running"; return 0; fi
  # At boot the others may be down too: look once, do not wait.
  rejoin 0
}

cmd_rejoin() {
  lock
  local active r
  # Asked while another pgq.sh held the lock: that one may have done it already.
  active=$(find_active 0)
  if [ -n "$active" ] && running; then
    r=$(psql_local -c "SELECT pg_is_in_recovery() AND (SELECT status = 'streaming' AND sender_host = '${NODE_HOST[$active]}' AND sender_port = ${NODE_PORT[$active]} FROM pg_stat_wal_receiver)") || r=''
    if [ "$r" = t ]; then log "already streaming from the active $active: nothing to do"; return 0; fi
  fi
  rejoin "$PGQ_FIND_ACTIVE_MS"
}

[ $# -eq 2 ] || usage
CMD=$1
case $CMD in to-active|to-standby|role|start|follow|rejoin) ;; *) usage ;; esac
load_conf "$2"
if [ "$CMD" != role ]; then
  become_os_user "$@"
  [ -d "$PGQ_STATE_DIR" ] && [ -w "$PGQ_STATE_DIR" ] || { printf '%s\n' "$PROG: PGQ_STATE_DIR $PGQ_STATE_DIR must be a directory $(id -un) can write" >&2; exit 2; }
  command -v curl > /dev/null 2>&1 || die 2 "curl is needed to ask the controllers who is active (apt-get install curl)"
fi
# Only once we run as the user who will remove it (exec skips the EXIT trap).
ERRF=$(mktemp) || die 1 "mktemp failed"
trap 'rm -f "$ERRF"' EXIT
case $CMD in
  to-active) cmd_to_active ;;
  to-standby) cmd_to_standby ;;
  role) cmd_role ;;
  start) cmd_start ;;
  follow) cmd_follow ;;
  rejoin) cmd_rejoin ;;
esac
