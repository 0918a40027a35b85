#!/usr/bin/env bash
# A production-shaped platform-kit deployment on this one machine, on loopback ports: every
# server asks for credentials, as a team's shared servers do.
#
#   bash infra/prod-up.sh up       start (or repair) everything; idempotent
#   bash infra/prod-up.sh env      print the shell exports a job gets (eval "$(... env)")
#   bash infra/prod-up.sh status   say what answers
#   bash infra/prod-up.sh down     stop the servers (data, passwords and the runner user stay)
#   bash infra/prod-up.sh runner-venv   a virtualenv and act for jobs run as the runner user
#
# What `up` makes:
#   - dolt sql-server with a root password and the users of infra/dolt-users.py: kit_sync writes
#     only sheets/* branches, kit_merge writes main, kit_read reads; the data database and the
#     kit's bookkeeping database platform_kit (table claims) exist, created by root;
#   - PostgreSQL (Debian's postgresql, a private cluster on its own port) as MLflow's backend
#     store and as the store of its users;
#   - mlflow server --app-name basic-auth with served artifacts, an admin and a non-admin user
#     for the kit (default_permission READ: the kit manages what it creates);
#   - Debian's registry with htpasswd authentication (beside the open one of docker-up.sh);
#   - a runner user that is not root (kit-runner), in the docker group, with its own HOME,
#     logged in to that registry with `docker login` (its ~/.docker/config.json).
#
# Passwords are generated at the first `up` and kept in $PK_PROD_DIR/secrets.env (0600).
# Settings (environment): PK_PROD_DIR (state; default ~/.cache/platform-kit/prod),
# PK_PROD_DOLT_PORT (13306), PK_PROD_PG_PORT (15432), PK_PROD_MLFLOW_PORT (15000),
# PK_PROD_REGISTRY_PORT (5001), PK_PROD_RUNNER_USER (kit-runner), PK_PROD_DATABASE (training).
# Root is needed for the runner user, the packages and PostgreSQL's own account.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CACHE="${PLATFORM_KIT_CACHE:-$HOME/.cache/platform-kit}"
STATE="${PK_PROD_DIR:-$CACHE/prod}"
VENV="${VENV:-$CACHE/venv}"
PY="$VENV/bin/python"
HOST=127.0.0.1
DOLT_PORT="${PK_PROD_DOLT_PORT:-13306}"
PG_PORT="${PK_PROD_PG_PORT:-15432}"
MLFLOW_PORT="${PK_PROD_MLFLOW_PORT:-15000}"
REGISTRY_PORT="${PK_PROD_REGISTRY_PORT:-5001}"
RUNNER="${PK_PROD_RUNNER_USER:-kit-runner}"
DATABASE="${PK_PROD_DATABASE:-training}"
KIT_DATABASE=platform_kit
MLFLOW_USER=kit
MLFLOW_ADMIN=admin
REGISTRY_USER=kit
SECRETS="$STATE/secrets.env"
RUN="$STATE/run"
LOGS="$STATE/logs"
IS_ROOT=$([ "$(id -u)" = 0 ] && echo 1 || echo 0)
# PostgreSQL refuses to run as root and must reach its data directory, which a private HOME
# (/root is 0700) does not allow: as root the cluster lives where Debian keeps clusters.
if [ "$IS_ROOT" = 1 ]; then
  PG_DATA="${PK_PROD_PG_DATA:-/var/lib/postgresql/platform-kit-prod}"
else
  PG_DATA="${PK_PROD_PG_DATA:-$STATE/postgres}"
fi
PG_BIN="${PK_PROD_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}"

say() { echo "prod-up: $*" >&2; }
die() { say "error: $*"; exit 1; }

wait_for() {  # wait_for SECONDS WHAT CHECK...
  local deadline=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { say "$what did not come up in time"; return 1; }
    sleep 0.5
  done
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

alive() {  # alive NAME: the process recorded in $RUN/NAME.pid runs
  local pid
  pid=$(cat "$RUN/$1.pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

spawn() {  # spawn NAME LOG COMMAND...: start in the background, detached, and record the pid
  local name=$1 log=$2
  shift 2
  nohup setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

# -- secrets

secret() { grep -E "^$1=" "$SECRETS" | tail -n1 | cut -d= -f2-; }

ensure_secrets() {
  mkdir -p "$STATE" "$RUN" "$LOGS"
  chmod 0700 "$STATE"
  (umask 077 && touch "$SECRETS")
  chmod 0600 "$SECRETS"
  local key
  for key in DOLT_ROOT_PASSWORD DOLT_SYNC_PASSWORD DOLT_MERGE_PASSWORD DOLT_READ_PASSWORD \
    PG_MLFLOW_PASSWORD MLFLOW_ADMIN_PASSWORD MLFLOW_KIT_PASSWORD MLFLOW_SECRET_KEY \
    REGISTRY_PASSWORD REGISTRY_HTTP_SECRET; do
    if [ -z "$(secret "$key")" ]; then
      # Letters and digits only: the values go into URLs, ini files and htpasswd unescaped.
      echo "$key=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)" >>"$SECRETS"
    fi
  done
}

# -- packages

ensure_packages() {
  local missing=()
  [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || missing+=(postgresql)
  command -v htpasswd >/dev/null || missing+=(apache2-utils)
  command -v docker-registry >/dev/null || command -v registry >/dev/null || missing+=(docker-registry)
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$IS_ROOT" = 1 ] || die "install ${missing[*]} (Debian packages), or run this as root"
    say "installing ${missing[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >&2
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  fi
  [ -x "$PY" ] || die "no virtualenv at $VENV (run 'make venv')"
  "$PY" -c 'import flask_wtf, psycopg2, mysql.connector' 2>/dev/null || {
    # The same two as the test extras of pyproject.toml.
    say "installing Flask-WTF and psycopg2-binary (MLflow's basic-auth app on PostgreSQL) into $VENV"
    "$VENV/bin/pip" install -q "Flask-WTF<2" "psycopg2-binary>=2.9" >&2
  }
}

# -- Dolt

dolt_bin() {
  local bin="$CACHE/bin/dolt"
  [ -x "$bin" ] || bin=$(bash "$REPO/infra/install-dolt.sh" | tail -n1)
  echo "$bin"
}

dolt_sql() {  # dolt_sql SQL...: run statements as root (password from the environment)
  DOLT_PASSWORD="$(secret DOLT_ROOT_PASSWORD)" "$PY" - "$HOST" "$DOLT_PORT" "$@" <<'PY'
import os, sys
import mysql.connector
host, port, *statements = sys.argv[1:]
with mysql.connector.connect(host=host, port=int(port), user="root",
                             password=os.environ["DOLT_PASSWORD"], autocommit=True) as conn:
    cur = conn.cursor()
    for sql in statements:
        cur.execute(sql)
        if cur.with_rows:
            cur.fetchall()
PY
}

dolt_ready() { dolt_sql "SELECT 1" 2>/dev/null; }

start_dolt() {
  local dolt home="$STATE/dolt/home" data="$STATE/dolt/data"
  if alive dolt && dolt_ready; then
    say "dolt: answers on $HOST:$DOLT_PORT"
  else
    dolt=$(dolt_bin)
    mkdir -p "$home" "$data"
    if [ ! -f "$home/.dolt/config_global.json" ]; then
      for kv in "user.name platform-kit" "user.email platform-kit@localhost" "metrics.disabled true"; do
        # shellcheck disable=SC2086
        DOLT_ROOT_PATH="$home" "$dolt" config --global --add $kv >/dev/null
      done
    fi
    cat >"$STATE/dolt/config.yaml" <<YAML
log_level: warning
behavior: {autocommit: true}
listener: {host: $HOST, port: $DOLT_PORT, max_connections: 500}
data_dir: $data
system_variables: {local_infile: 1}
YAML
    say "dolt: starting sql-server on $HOST:$DOLT_PORT (log: $LOGS/dolt.log)"
    # DOLT_ROOT_PASSWORD takes effect when the privileges database is first created.
    DOLT_ROOT_PATH="$home" DOLT_ROOT_PASSWORD="$(secret DOLT_ROOT_PASSWORD)" \
      spawn dolt "$LOGS/dolt.log" "$dolt" sql-server --config "$STATE/dolt/config.yaml"
    wait_for 60 "dolt sql-server" dolt_ready || { tail -n 20 "$LOGS/dolt.log" >&2; exit 1; }
  fi
  # Root creates the databases (the kit users may not CREATE DATABASE); users and branch rules
  # come from dolt-users.py, which also makes platform_kit.claims. LOAD DATA LOCAL INFILE lets
  # sync stream large inserts; the config sets it, SET GLOBAL covers servers started without.
  dolt_sql "CREATE DATABASE IF NOT EXISTS \`$DATABASE\`" "SET GLOBAL local_infile = 1"
  DOLT_PASSWORD="$(secret DOLT_ROOT_PASSWORD)" \
    DOLT_SYNC_PASSWORD="$(secret DOLT_SYNC_PASSWORD)" \
    DOLT_MERGE_PASSWORD="$(secret DOLT_MERGE_PASSWORD)" \
    DOLT_READ_PASSWORD="$(secret DOLT_READ_PASSWORD)" \
    "$PY" "$REPO/infra/dolt-users.py" --host "$HOST" --port "$DOLT_PORT" \
    --database "$DATABASE" --kit-database "$KIT_DATABASE" >&2
}

# -- PostgreSQL

as_postgres() {  # run a PostgreSQL program as its own account (root) or as ourselves
  if [ "$IS_ROOT" = 1 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_ready() { as_postgres "$PG_BIN/pg_isready" -q -h "$PG_DATA" -p "$PG_PORT"; }

psql_admin() {  # SQL on stdin, as the cluster's superuser over its private socket
  as_postgres "$PG_BIN/psql" -q -v ON_ERROR_STOP=1 -h "$PG_DATA" -p "$PG_PORT" -U postgres -d postgres
}

start_postgres() {
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    say "postgres: creating a cluster in $PG_DATA"
    mkdir -p "$PG_DATA"
    [ "$IS_ROOT" = 1 ] && chown postgres:postgres "$PG_DATA"
    chmod 0700 "$PG_DATA"
    # The socket lives in the 0700 data directory, so trust there reaches only its owner;
    # TCP wants a password.
    as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOGS/initdb.log" 2>&1 ||
      { cat "$LOGS/initdb.log" >&2; die "initdb failed"; }
  fi
  if pg_ready; then
    say "postgres: answers on $HOST:$PG_PORT"
  else
    say "postgres: starting on $HOST:$PG_PORT (log: $PG_DATA/server.log)"
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 \
      -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=$HOST" start >/dev/null ||
      { tail -n 20 "$PG_DATA/server.log" >&2; die "postgres did not start"; }
  fi
  # The password travels on stdin, never in a command line.
  psql_admin <<SQL
SELECT 'CREATE ROLE mlflow LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mlflow')\gexec
ALTER ROLE mlflow PASSWORD '$(secret PG_MLFLOW_PASSWORD)';
SELECT 'CREATE DATABASE mlflow OWNER mlflow' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlflow')\gexec
SELECT 'CREATE DATABASE mlflow_auth OWNER mlflow' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlflow_auth')\gexec
SQL
}

# -- MLflow

mlflow_status() {  # the HTTP status of an unauthenticated API call
  "$PY" - "http://$HOST:$MLFLOW_PORT" <<'PY'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1] + "/api/2.0/mlflow/experiments/search?max_results=1", timeout=3)
    print(200)
except urllib.error.HTTPError as exc:
    print(exc.code)
except OSError:
    print(0)
PY
}

mlflow_ready() { [ "$(mlflow_status)" = 401 ]; }

start_mlflow() {
  local dir="$STATE/mlflow" ini="$STATE/mlflow/basic_auth.ini"
  mkdir -p "$dir/artifacts"
  (
    umask 077
    # database_uri carries no password: libpq reads PGPASSWORD from the server's environment.
    cat >"$ini" <<INI
[mlflow]
default_permission = READ
database_uri = postgresql+psycopg2://mlflow@$HOST:$PG_PORT/mlflow_auth
admin_username = $MLFLOW_ADMIN
admin_password = $(secret MLFLOW_ADMIN_PASSWORD)
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
  )
  if alive mlflow && mlflow_ready; then
    say "mlflow: answers on http://$HOST:$MLFLOW_PORT (401 without credentials)"
  else
    say "mlflow: starting basic-auth server on $HOST:$MLFLOW_PORT (log: $LOGS/mlflow.log)"
    PGPASSWORD="$(secret PG_MLFLOW_PASSWORD)" \
      MLFLOW_AUTH_CONFIG_PATH="$ini" \
      MLFLOW_FLASK_SERVER_SECRET_KEY="$(secret MLFLOW_SECRET_KEY)" \
      MLFLOW_BACKEND_STORE_URI="postgresql+psycopg2://mlflow@$HOST:$PG_PORT/mlflow" \
      spawn mlflow "$LOGS/mlflow.log" "$PY" -m mlflow server --app-name basic-auth \
      --serve-artifacts --artifacts-destination "$dir/artifacts" \
      --host "$HOST" --port "$MLFLOW_PORT" --workers 2
    wait_for 180 "mlflow server" mlflow_ready || { tail -n 30 "$LOGS/mlflow.log" >&2; exit 1; }
  fi
  # The kit's own user: not an admin; experiments and models it creates are its to manage.
  MLFLOW_ADMIN_PASSWORD="$(secret MLFLOW_ADMIN_PASSWORD)" \
    MLFLOW_KIT_PASSWORD="$(secret MLFLOW_KIT_PASSWORD)" \
    "$PY" - "http://$HOST:$MLFLOW_PORT" "$MLFLOW_ADMIN" "$MLFLOW_USER" <<'PY' >&2
import os, sys
import requests
url, admin, user = sys.argv[1:]
auth = (admin, os.environ["MLFLOW_ADMIN_PASSWORD"])
password = os.environ["MLFLOW_KIT_PASSWORD"]
got = requests.get(f"{url}/api/2.0/mlflow/users/get", params={"username": user}, auth=auth, timeout=30)
if got.status_code == 200:
    r = requests.patch(f"{url}/api/2.0/mlflow/users/update-password",
                       json={"username": user, "password": password}, auth=auth, timeout=30)
else:
    r = requests.post(f"{url}/api/2.0/mlflow/users/create",
                      json={"username": user, "password": password}, auth=auth, timeout=30)
if not r.ok:
    sys.exit(f"prod-up: mlflow refused to set up user {user}: HTTP {r.status_code}")
print(f"prod-up: mlflow user {user} ready (not an admin)")
PY
}

# -- the registry with htpasswd

registry_status() {
  "$PY" - "http://$HOST:$REGISTRY_PORT/v2/" <<'PY'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=3)
    print(200)
except urllib.error.HTTPError as exc:
    print(exc.code)
except OSError:
    print(0)
PY
}

registry_ready() { [ "$(registry_status)" = 401 ]; }

start_registry() {
  local dir="$STATE/registry" bin
  bin=$(command -v docker-registry || command -v registry)
  mkdir -p "$dir/data"
  (
    umask 077
    secret REGISTRY_PASSWORD | htpasswd -Bin "$REGISTRY_USER" >"$dir/htpasswd.new" 2>/dev/null
    mv "$dir/htpasswd.new" "$dir/htpasswd"
    cat >"$dir/config.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $dir/data}
  delete: {enabled: true}
http: {addr: "$HOST:$REGISTRY_PORT", secret: "$(secret REGISTRY_HTTP_SECRET)"}
auth:
  htpasswd: {realm: platform-kit, path: $dir/htpasswd}
YAML
  )
  if alive registry && registry_ready; then
    say "registry: answers on $HOST:$REGISTRY_PORT (401 without credentials)"
  else
    say "registry: starting with htpasswd on $HOST:$REGISTRY_PORT (log: $LOGS/registry.log)"
    spawn registry "$LOGS/registry.log" "$bin" serve "$dir/config.yml"
    wait_for 30 "registry" registry_ready || { tail -n 20 "$LOGS/registry.log" >&2; exit 1; }
  fi
}

# -- the runner user

runner_home() { getent passwd "$RUNNER" | cut -d: -f6; }

ensure_runner() {
  if [ "$IS_ROOT" != 1 ]; then
    say "runner: not root, so no '$RUNNER' user; jobs run as $(id -un)"
    return 0
  fi
  DOCKER_REQUIRED=1 bash "$REPO/infra/docker-up.sh"
  getent group docker >/dev/null || groupadd --system docker
  if ! id "$RUNNER" >/dev/null 2>&1; then
    say "runner: creating user $RUNNER (home /home/$RUNNER, group docker)"
    useradd --create-home --home-dir "/home/$RUNNER" --shell /bin/bash --groups docker "$RUNNER"
  elif ! id -nG "$RUNNER" | grep -qw docker; then
    usermod -aG docker "$RUNNER"
  fi
  # dockerd hands its socket to the docker group only if the group existed when it started.
  local sock=/var/run/docker.sock
  if [ -S "$sock" ] && [ "$(stat -c %G "$sock")" != docker ]; then
    chgrp docker "$sock" && chmod 0660 "$sock"
  fi
  local home
  home=$(runner_home)
  local out
  # docker login warns on stderr that config.json holds the password unencrypted: that is the
  # point here (no credential store on a headless runner); shown only when the login fails.
  out=$(secret REGISTRY_PASSWORD | runuser -u "$RUNNER" -- env HOME="$home" \
    DOCKER_CONFIG="$home/.docker" docker login "$HOST:$REGISTRY_PORT" \
    --username "$REGISTRY_USER" --password-stdin 2>&1) || { echo "$out" >&2; die "docker login failed"; }
  say "runner: $RUNNER (uid $(id -u "$RUNNER"), groups $(id -nG "$RUNNER")) is logged in to $HOST:$REGISTRY_PORT"
}

# -- a Python for jobs run as the runner user

# The kit's virtualenv and its interpreter live under root's private HOME, out of the runner
# user's reach, and pip would download PyTorch again for a virtualenv of its own. So the runner
# gets a virtualenv of the system's python3 (same minor version) layered over a snapshot of the
# kit's site-packages made of hard links (no bytes copied). The kit itself is not in the
# snapshot: each job installs its checkout into this virtualenv (PLATFORM_KIT_VENV).
runner_venv() {
  [ "$IS_ROOT" = 1 ] || die "runner-venv needs root (it writes the runner user's HOME)"
  id "$RUNNER" >/dev/null 2>&1 || die "no user $RUNNER: run 'bash infra/prod-up.sh up' first"
  local home venv site snap act minor pth
  home=$(runner_home)
  venv="$home/venv"
  site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  minor=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ -x "/usr/bin/python$minor" ] || die "the runner needs /usr/bin/python$minor (apt-get install python$minor-venv)"
  snap="${PK_PROD_RUNNER_SITE:-/opt/platform-kit/runner-site-packages}"
  if [ ! -e "$snap/.complete" ] || [ -n "$(find "$site" -maxdepth 1 -newer "$snap/.complete" -print -quit)" ]; then
    say "runner-venv: snapshot of $site in $snap (hard links)"
    rm -rf "$snap.new"
    mkdir -p "$(dirname "$snap")"
    cp -al "$site" "$snap.new"
    rm -rf "$snap.new"/__editable__*platform_kit* "$snap.new"/platform_kit-*.dist-info
    touch "$snap.new/.complete"
    rm -rf "$snap"
    mv "$snap.new" "$snap"
  fi
  if [ ! -x "$venv/bin/python" ]; then
    runuser -u "$RUNNER" -- "/usr/bin/python$minor" -m venv "$venv"
  fi
  pth="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_platform_kit_base.pth"
  echo "$snap" >"$pth"
  chown "$RUNNER:" "$pth"
  act=$(bash "$REPO/infra/install-act.sh" | tail -n1)
  install -D -m 0755 -o "$RUNNER" "$act" "$home/bin/act"
  say "runner-venv: $venv (PLATFORM_KIT_VENV for jobs run as $RUNNER); act at $home/bin/act"
}

# -- commands

print_env() {
  [ -s "$SECRETS" ] || die "no deployment in $STATE: run 'bash infra/prod-up.sh up' first"
  local home="" user
  user=$([ "$IS_ROOT" = 1 ] && echo "$RUNNER" || id -un)
  home=$(getent passwd "$user" | cut -d: -f6)
  cat <<ENV
export PK_PROD_DIR='$STATE'
export PK_DOLT_SERVER='mysql://kit_read@$HOST:$DOLT_PORT'
export PK_DOLT_HOST='$HOST'
export PK_DOLT_PORT='$DOLT_PORT'
export PK_DOLT_DATABASE='$DATABASE'
export PK_DOLT_ROOT_PASSWORD='$(secret DOLT_ROOT_PASSWORD)'
export PK_DOLT_SYNC_USER='kit_sync'
export PK_DOLT_SYNC_PASSWORD='$(secret DOLT_SYNC_PASSWORD)'
export PK_DOLT_MERGE_USER='kit_merge'
export PK_DOLT_MERGE_PASSWORD='$(secret DOLT_MERGE_PASSWORD)'
export PK_DOLT_READ_USER='kit_read'
export PK_DOLT_READ_PASSWORD='$(secret DOLT_READ_PASSWORD)'
export MLFLOW_TRACKING_URI='http://$HOST:$MLFLOW_PORT'
export MLFLOW_TRACKING_USERNAME='$MLFLOW_USER'
export MLFLOW_TRACKING_PASSWORD='$(secret MLFLOW_KIT_PASSWORD)'
export PK_MLFLOW_ADMIN_USERNAME='$MLFLOW_ADMIN'
export PK_MLFLOW_ADMIN_PASSWORD='$(secret MLFLOW_ADMIN_PASSWORD)'
export PK_POSTGRES_URI='postgresql://mlflow@$HOST:$PG_PORT/mlflow'
export PK_POSTGRES_PASSWORD='$(secret PG_MLFLOW_PASSWORD)'
export PK_REGISTRY='$HOST:$REGISTRY_PORT'
export PK_REGISTRY_USERNAME='$REGISTRY_USER'
export PK_REGISTRY_PASSWORD='$(secret REGISTRY_PASSWORD)'
export PK_RUNNER_USER='$user'
export PK_RUNNER_HOME='$home'
export PK_RUNNER_VENV='$home/venv'
ENV
}

status() {
  local ok=0
  dolt_ready && say "dolt      $HOST:$DOLT_PORT up" || { say "dolt      $HOST:$DOLT_PORT DOWN"; ok=1; }
  pg_ready && say "postgres  $HOST:$PG_PORT up" || { say "postgres  $HOST:$PG_PORT DOWN"; ok=1; }
  mlflow_ready && say "mlflow    $HOST:$MLFLOW_PORT up" || { say "mlflow    $HOST:$MLFLOW_PORT DOWN"; ok=1; }
  registry_ready && say "registry  $HOST:$REGISTRY_PORT up" || { say "registry  $HOST:$REGISTRY_PORT DOWN"; ok=1; }
  return $ok
}

stop_pid() {  # stop_pid NAME: end the process group we started, then forget it
  local pid
  pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 0
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    say "$1: stopping (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$1.pid"
}

down() {
  stop_pid mlflow
  stop_pid registry
  stop_pid dolt
  if [ -f "$PG_DATA/postmaster.pid" ]; then
    say "postgres: stopping"
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null || true
  fi
}

case "${1:-}" in
  up)
    ensure_secrets
    ensure_packages
    start_dolt
    start_postgres
    start_mlflow
    start_registry
    ensure_runner
    say "up; the jobs' environment: bash infra/prod-up.sh env"
    ;;
  env) print_env ;;
  status) status ;;
  down) down ;;
  runner-venv) runner_venv ;;
  *) echo "usage: bash infra/prod-up.sh up|env|status|down|runner-venv" >&2; exit 2 ;;
esac
