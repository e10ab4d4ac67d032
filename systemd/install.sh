#!/usr/bin/env bash
# Installs or upgrades vinops-etl as a systemd service. Run as root from a checkout:
#
#   sudo ./systemd/install.sh
#
# Idempotent: running it again rebuilds /opt/vinops-etl from the checkout (an upgrade), re-installs
# the unit and the CLI wrapper, and never overwrites /etc/vinops-etl/config.json, /etc/vinops-etl/env
# or a credential. It does not enable, start or restart the service; it prints what to do next.
#
#   /opt/vinops-etl                    the package: dist/, migrations/, node_modules/ (root-owned)
#   /etc/vinops-etl/config.json        configuration (root:vinops-etl 640), from config/vinops-etl.example.json
#   /etc/vinops-etl/env                environment overrides (root:root 600), from systemd/vinops-etl.env.example
#   /etc/vinops-etl/credentials/       secrets, one file each (root:root 700/600), read by LoadCredential=:
#                                      database-url, and fetch-url / fetch-cookie when fetching; secrets
#                                      found in env (older installs) are moved here (systemd/move-secrets.sh)
#   /etc/systemd/system/vinops-etl.service
#   /usr/local/bin/vinops-etl          CLI wrapper: runs a command as the service does (user, env, config)
#   /var/lib/vinops-etl                state directory (vinops-etl:vinops-etl 750)
#
# Needs (checked first, before anything is changed; `--check` runs only these checks): root,
# Node.js >= 20.19 and npm, setfacl (Debian package acl), systemctl, useradd/groupadd, network access
# to the npm registry (npm ci). See docs/operations.md, *Install*.
set -euo pipefail
# `su` without `-` keeps a PATH without the sbin directories, where useradd and groupadd live.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

CHECK_ONLY=""
case "${1:-}" in
  "") ;;
  --check) CHECK_ONLY=1 ;;
  -h|--help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
  *) printf 'install.sh: unknown argument %s (usage: install.sh [--check])\n' "$1" >&2; exit 2 ;;
esac

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/opt/vinops-etl
CONF_DIR=/etc/vinops-etl
STATE_DIR=/var/lib/vinops-etl
RAW_DIR=/var/data/vinops/raw/copart
UNIT=vinops-etl.service
UNIT_DIR=/etc/systemd/system
DROPIN_DIR=$UNIT_DIR/$UNIT.d
NODE_DROPIN=$DROPIN_DIR/10-node-path.conf
CRED_DIR=$CONF_DIR/credentials
CRED_DROPIN=$DROPIN_DIR/20-fetch-credentials.conf
WRAPPER=/usr/local/bin/vinops-etl
SVC_USER=vinops-etl
SVC_GROUP=vinops-etl
UNIT_NODE=/usr/bin/node   # the node path written in systemd/vinops-etl.service
NODE_MIN_MAJOR=20
NODE_MIN_MINOR=19

log() { printf '==> %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
# A drop-in of the unit (mode 644) with the text $2; remove_dropin takes one away, and the folder when empty.
write_dropin() { install -d -m 755 "$DROPIN_DIR"; printf '%s' "$2" >"$1"; chmod 644 "$1"; }
remove_dropin() { rm -f "$1"; rmdir --ignore-fail-on-non-empty "$DROPIN_DIR"; }

# --- Prerequisites: all checked before anything is changed; every missing one is reported -------
PROBLEMS=()
problem() { PROBLEMS+=("$*"); }
NODE_HOWTO="install Node.js ${NODE_MIN_MAJOR}.${NODE_MIN_MINOR} or later system-wide (in $UNIT_NODE): NodeSource's nodejs 20 or 22 packages, or the nodejs package of Debian 13 (20.19); Debian 12's own nodejs is 18, too old"

# The version of a node binary as "major minor patch", or nothing when it does not run.
node_version() { "$1" -p 'process.versions.node' 2>/dev/null | tr '.' ' '; }
# Whether a node binary is new enough.
node_ok() {
  local major minor _patch
  read -r major minor _patch <<<"$(node_version "$1")" || true
  [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || return 1
  (( major > NODE_MIN_MAJOR || (major == NODE_MIN_MAJOR && minor >= NODE_MIN_MINOR) ))
}
node_desc() { printf '%s is Node.js %s' "$1" "$("$1" --version 2>/dev/null)"; }

[ "$(id -u)" -eq 0 ] || problem "not running as root: run it as root (sudo $0)"
for f in package.json package-lock.json tsconfig.json src migrations config/vinops-etl.example.json \
         systemd/vinops-etl.service systemd/vinops-etl.env.example systemd/move-secrets.sh; do
  [ -e "$SRC/$f" ] || problem "$SRC/$f is missing: run this script from a vinops-etl checkout"
done

# Node.js: the node on PATH runs npm and the build; the service runs $UNIT_NODE (the path in the
# unit) when it is new enough, else the node on PATH through a unit drop-in.
PATH_NODE=$(command -v node || true)
if [ -z "$PATH_NODE" ]; then
  if [ -x "$UNIT_NODE" ]; then
    problem "node is not on PATH (npm and the build run it): add $(dirname "$UNIT_NODE") to PATH"
  else
    problem "node not found: $NODE_HOWTO"
  fi
elif [ -z "$(node_version "$PATH_NODE")" ]; then
  problem "$PATH_NODE does not run (\`$PATH_NODE --version\` fails): $NODE_HOWTO"
elif ! node_ok "$PATH_NODE"; then
  problem "$(node_desc "$PATH_NODE"), too old: vinops-etl needs >= ${NODE_MIN_MAJOR}.${NODE_MIN_MINOR}; $NODE_HOWTO"
fi
NODE=""
if [ -x "$UNIT_NODE" ] && node_ok "$UNIT_NODE"; then
  NODE=$UNIT_NODE
elif [ -n "$PATH_NODE" ] && node_ok "$PATH_NODE"; then
  NODE=$(readlink -f "$PATH_NODE")
  case "$NODE" in
    /root/*|/home/*|/run/user/*)
      problem "node is at $NODE, which the service cannot see (ProtectHome=yes): $NODE_HOWTO" ;;
  esac
fi
if ! command -v npm >/dev/null; then
  problem "npm not found: NodeSource's nodejs package includes it; with a distribution's nodejs: apt-get install npm"
fi
command -v setfacl >/dev/null || problem "setfacl not found (the raw tree's read access for $SVC_USER is granted with ACLs): apt-get install acl"
command -v systemctl >/dev/null || problem "systemctl not found: vinops-etl installs as a systemd service and needs a host with systemd (apt-get install systemd)"
for tool in useradd groupadd; do
  command -v "$tool" >/dev/null || problem "$tool not found: apt-get install passwd"
done

if [ "${#PROBLEMS[@]}" -gt 0 ]; then
  printf 'install.sh: cannot install, nothing was changed:\n' >&2
  printf '  - %s\n' "${PROBLEMS[@]}" >&2
  exit 1
fi
log "Node.js $("$NODE" --version) at $NODE, npm $(npm --version), $(command -v setfacl), $(command -v systemctl)"
if [ -n "$CHECK_ONLY" ]; then
  log "prerequisites met (--check: nothing changed)"
  exit 0
fi

# --- System user ------------------------------------------------------------------------------
NOLOGIN=/usr/sbin/nologin
[ -x "$NOLOGIN" ] || NOLOGIN=/sbin/nologin
if ! getent group "$SVC_GROUP" >/dev/null; then
  log "creating system group $SVC_GROUP"
  groupadd --system "$SVC_GROUP"
fi
if ! getent passwd "$SVC_USER" >/dev/null; then
  log "creating system user $SVC_USER"
  useradd --system --gid "$SVC_GROUP" --home-dir "$STATE_DIR" --no-create-home \
    --shell "$NOLOGIN" --comment "vinops-etl daemon" "$SVC_USER"
else
  log "system user $SVC_USER exists"
fi

# --- Build into a staging directory, then swap it in ---------------------------------------------
# The running daemon keeps its already loaded code until it is restarted; the swap itself is two
# renames on one file system.
install -d -m 755 "$(dirname "$PREFIX")"
STAGE=$(mktemp -d "$PREFIX.new.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
log "building in $STAGE"
for f in package.json package-lock.json tsconfig.json README.md src migrations config docs; do
  if [ -e "$SRC/$f" ]; then cp -R "$SRC/$f" "$STAGE/"; fi
done
(
  cd "$STAGE"
  npm ci --no-audit --no-fund
  npm run build
  npm prune --omit=dev --no-audit --no-fund
)
[ -f "$STAGE/dist/cli/main.js" ] || die "the build produced no dist/cli/main.js"
chmod 755 "$STAGE/dist/cli/main.js"
chown -R root:root "$STAGE"
chmod -R u=rwX,go=rX "$STAGE"          # readable by the service user, writable only by root
"$NODE" "$STAGE/dist/cli/main.js" help >/dev/null || die "the built CLI does not run: $NODE $STAGE/dist/cli/main.js help"

if [ -e "$PREFIX" ]; then
  OLD="$PREFIX.old.$$"
  mv "$PREFIX" "$OLD"
  mv "$STAGE" "$PREFIX"
  rm -rf "$OLD"
  log "upgraded $PREFIX"
else
  mv "$STAGE" "$PREFIX"
  log "installed $PREFIX"
fi
trap - EXIT

# --- Configuration ----------------------------------------------------------------------------
install -d -m 750 -o root -g "$SVC_GROUP" "$CONF_DIR"
if [ -e "$CONF_DIR/config.json" ]; then
  log "kept $CONF_DIR/config.json"
else
  install -m 640 -o root -g "$SVC_GROUP" "$SRC/config/vinops-etl.example.json" "$CONF_DIR/config.json"
  log "created $CONF_DIR/config.json from config/vinops-etl.example.json"
fi
if [ -e "$CONF_DIR/env" ]; then
  chown root:root "$CONF_DIR/env"
  chmod 600 "$CONF_DIR/env"
  log "kept $CONF_DIR/env (mode 600, root:root)"
else
  install -m 600 -o root -g root "$SRC/systemd/vinops-etl.env.example" "$CONF_DIR/env"
  log "created $CONF_DIR/env from systemd/vinops-etl.env.example"
fi
# The configuration file is strict (an unknown key is fatal at start): check it against the newly
# installed code now, as the service user, without the environment file.
if command -v runuser >/dev/null; then
  if ! (cd / && runuser -u "$SVC_USER" -- "$NODE" --input-type=module -e "
      const { loadConfig } = await import('$PREFIX/dist/config.js');
      loadConfig({ file: '$CONF_DIR/config.json', env: {} });"); then
    warn "$CONF_DIR/config.json does not pass the new version's checks (message above): fix it before restarting"
  fi
fi

# --- State directory (systemd's StateDirectory= creates it too; the CLI wrapper runs in it) -----
install -d -m 750 -o "$SVC_USER" -g "$SVC_GROUP" "$STATE_DIR"

# --- Unit -------------------------------------------------------------------------------------
install -m 644 "$SRC/systemd/vinops-etl.service" "$UNIT_DIR/$UNIT"
log "installed $UNIT_DIR/$UNIT"
if [ "$NODE" != "$UNIT_NODE" ]; then
  write_dropin "$NODE_DROPIN" "# Written by vinops-etl systemd/install.sh: Node.js >= 20.19 is at $NODE ($UNIT_NODE is missing or older).
[Service]
ExecStart=
ExecStart=$NODE --max-semi-space-size=4 $PREFIX/dist/cli/main.js run --config $CONF_DIR/config.json
"
  log "$UNIT_NODE is missing or older than ${NODE_MIN_MAJOR}.${NODE_MIN_MINOR}: wrote $NODE_DROPIN (ExecStart with $NODE)"
elif [ -e "$NODE_DROPIN" ]; then
  remove_dropin "$NODE_DROPIN"
  log "removed $NODE_DROPIN ($UNIT_NODE is new enough now)"
fi

# The secrets live in credential files the unit loads (LoadCredential=), not in env. Moved only once
# systemd knows the new unit: a restart in between then fails for a missing credential (243) instead
# of starting the old unit without a DATABASE_URL, which would fall back to an embedded PostgreSQL.
if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
bash "$SRC/systemd/move-secrets.sh" "$CONF_DIR"
if grep -q 'CHANGE_ME' "$CRED_DIR/database-url"; then
  warn "$CRED_DIR/database-url still has the placeholder URL: write the real one (the URL alone) before starting"
fi

# The fetch credentials are optional: LoadCredential= of a missing file fails the start, so they are
# loaded only when present (re-run install.sh after adding or removing one).
FETCH_CREDS=""
for cred in fetch-url fetch-cookie; do
  if [ -e "$CRED_DIR/$cred" ]; then FETCH_CREDS+="LoadCredential=$cred:$CRED_DIR/$cred"$'\n'; fi
done
if [ -n "$FETCH_CREDS" ]; then
  write_dropin "$CRED_DROPIN" "# Written by vinops-etl systemd/install.sh: the fetch credentials present in $CRED_DIR.
[Service]
$FETCH_CREDS"
  log "wrote $CRED_DROPIN (the fetch credentials present)"
elif [ -e "$CRED_DROPIN" ]; then
  remove_dropin "$CRED_DROPIN"
  log "removed $CRED_DROPIN (no fetch credentials)"
fi

# --- CLI wrapper ------------------------------------------------------------------------------
# Runs a command in a transient systemd service with the daemon's user, environment file, credentials
# and configuration, so DATABASE_URL never has to be copied into a shell.
cat >"$WRAPPER" <<EOF
#!/usr/bin/env bash
# Written by vinops-etl systemd/install.sh. Runs the vinops-etl CLI the way the service runs the
# daemon: as user $SVC_USER, with $CONF_DIR/env, the credentials in $CRED_DIR and
# $CONF_DIR/config.json. Run it as root:
#   sudo vinops-etl status
#   sudo vinops-etl ingest $RAW_DIR/2025/01/31/1215.csv
set -euo pipefail
if [ "\$(id -u)" -ne 0 ]; then
  echo "vinops-etl: run it as root (sudo vinops-etl ...); it reads $CONF_DIR/env" >&2
  exit 1
fi
[ -d /run/systemd/system ] || { echo "vinops-etl: systemd is not running" >&2; exit 1; }
args=("\${1:-help}")
shift || true
# The command runs in $STATE_DIR: make relative paths of existing files absolute.
for a in "\$@"; do
  if [[ \$a != -* && \$a != /* && -e \$a ]]; then a="\$PWD/\$a"; fi
  args+=("\$a")
done
creds=()
for f in $CRED_DIR/*; do
  if [ -f "\$f" ]; then creds+=("--property=LoadCredential=\$(basename "\$f"):\$f"); fi
done
exec systemd-run --quiet --collect --wait --pipe \\
  --uid=$SVC_USER --gid=$SVC_GROUP \\
  "\${creds[@]}" \\
  --working-directory=$STATE_DIR \\
  --property=EnvironmentFile=$CONF_DIR/env \\
  --property=UMask=0027 \\
  $NODE --max-semi-space-size=4 $PREFIX/dist/cli/main.js --config $CONF_DIR/config.json "\${args[@]}"
EOF
chmod 755 "$WRAPPER"
log "installed $WRAPPER"

# --- Raw tree ---------------------------------------------------------------------------------
if [ ! -d "$RAW_DIR" ]; then
  warn "$RAW_DIR does not exist: the service fails to start (226/NAMESPACE) until it does"
elif command -v runuser >/dev/null && ! runuser -u "$SVC_USER" -- test -r "$RAW_DIR" -a -x "$RAW_DIR"; then
  warn "$SVC_USER cannot read $RAW_DIR: grant read access with a group (SupplementaryGroups= in a drop-in) or with ACLs (docs/operations.md, Install, step 4):
  setfacl -R -m u:$SVC_USER:rX $RAW_DIR
  find $RAW_DIR -type d -exec setfacl -d -m u:$SVC_USER:rX {} +"
fi

# --- systemd ----------------------------------------------------------------------------------
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  log "systemctl daemon-reload done"
  if systemctl is-active --quiet "$UNIT"; then
    log "the service is running the previous version: systemctl restart $UNIT"
  else
    log "next: write the database URL into $CRED_DIR/database-url, check $CONF_DIR/config.json, then: systemctl enable --now $UNIT"
  fi
else
  warn "systemd is not running here: skipped systemctl daemon-reload"
fi
