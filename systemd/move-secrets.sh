#!/usr/bin/env bash
# Moves the secrets out of the unit's environment file into systemd credential files (run by
# install.sh; safe to run again):
#
#   systemd/move-secrets.sh [CONF_DIR]          (default /etc/vinops-etl)
#
#   $CONF_DIR/env                       DATABASE_URL=, VINOPS_FETCH_URL=, VINOPS_FETCH_COOKIE= lines
#   $CONF_DIR/credentials/database-url  each value, alone, mode 600 in a 700 directory (root's when
#   $CONF_DIR/credentials/fetch-url     run as root), read by the unit's LoadCredential= and handed
#   $CONF_DIR/credentials/fetch-cookie  to the daemon as $CREDENTIALS_DIRECTORY/<name>
#
# A moved line is replaced by a comment that names the file and not the value. A value already in
# its credential file is not overwritten: the same value just leaves env, a different one stays and
# is warned about (the variable would win over the credential). With neither, database-url gets the
# placeholder that install.sh warns about. Values are taken as systemd reads them: white space
# around dropped, '...' verbatim, "..." with \" \\ \` \$ unescaped, unquoted as written; anything
# else (a backslash or quote it would read differently) is left in place with a warning.
set -euo pipefail

CONF_DIR=${1:-/etc/vinops-etl}
ENV_FILE=$CONF_DIR/env
CRED_DIR=$CONF_DIR/credentials
PLACEHOLDER='postgresql://vinops_etl:CHANGE_ME@127.0.0.1:5432/vinops'
SECRETS=(DATABASE_URL:database-url VINOPS_FETCH_URL:fetch-url VINOPS_FETCH_COOKIE:fetch-cookie)

log() { printf '==> %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }

umask 077
install -d -m 700 "$CRED_DIR"
if [ "$(id -u)" -eq 0 ]; then chown root:root "$CRED_DIR"; fi

# The value of the last assignment of $1 in env, as systemd reads it (white space around the key and
# the value dropped); status 1 when there is none, 2 when it cannot be taken over faithfully here.
env_value() {
  local line value out c n i
  [ -f "$ENV_FILE" ] || return 1
  line=$(grep -E "^[[:space:]]*$1[[:space:]]*=" "$ENV_FILE" | tail -n 1) || return 1
  value=${line#*=}
  value=${value#"${value%%[![:space:]]*}"}
  value=${value%"${value##*[![:space:]]}"}
  case $value in
    \'*)
      # '...' verbatim; anything after the closing quote (or a quote inside) is left for a person.
      value=${value:1}
      [[ $value == *\' ]] || return 2
      value=${value%\'}
      [[ $value != *\'* ]] || return 2
      ;;
    \"*)
      # "..." with \" \\ \` \$ unescaped, as systemd does; any other backslash or quote: by hand.
      value=${value:1}
      [[ $value == *\" ]] || return 2
      value=${value%\"}
      out=""
      for ((i = 0; i < ${#value}; i = i + 1)); do
        c=${value:i:1}
        if [[ $c == \\ ]]; then
          n=${value:i+1:1}
          case $n in \"|\\|\`|\$) out+=$n; i=$((i + 1)) ;; *) return 2 ;; esac
        elif [[ $c == \" ]]; then
          return 2
        else
          out+=$c
        fi
      done
      value=$out
      ;;
    *)
      # Unquoted: systemd would unescape a backslash and start quoting at a quote mid-value.
      [[ $value != *\\* && $value != *\"* && $value != *\'* ]] || return 2
      ;;
  esac
  printf '%s' "$value"
}

# Writes $2 to the credential file $1 (atomically: a reader never sees half a secret).
write_credential() {
  local tmp
  tmp=$(mktemp "$CRED_DIR/.new.XXXXXX")
  printf '%s' "$2" >"$tmp"
  chmod 600 "$tmp"
  mv -f "$tmp" "$1"
}

# Replaces every assignment of $1 in env by a comment naming $2, keeping env's mode and owner.
drop_from_env() {
  local tmp
  tmp=$(mktemp "$CONF_DIR/.env.XXXXXX")
  awk -v var="$1" -v note="# $1: moved to $2 by install.sh (LoadCredential=)" '
    $0 ~ "^[[:space:]]*" var "[[:space:]]*=" { if (!done) print note; done = 1; next }
    { print }' "$ENV_FILE" >"$tmp"
  chmod --reference="$ENV_FILE" "$tmp"
  if [ "$(id -u)" -eq 0 ]; then chown --reference="$ENV_FILE" "$tmp"; fi
  mv -f "$tmp" "$ENV_FILE"
}

for pair in "${SECRETS[@]}"; do
  var=${pair%%:*}
  cred=$CRED_DIR/${pair#*:}
  status=0
  value=$(env_value "$var") || status=$?
  if [ "$status" -eq 2 ]; then
    warn "$ENV_FILE: $var has a backslash, a quote or text after its closing quote that this script does not take over: move it to $cred by hand (the value alone, no newline needed)"
    continue
  fi
  if [ "$status" -eq 0 ] && [ -n "$value" ]; then
    if [ ! -e "$cred" ]; then
      write_credential "$cred" "$value"
      drop_from_env "$var" "$cred"
      log "moved $var from $ENV_FILE to $cred"
    elif [ "$(cat "$cred")" = "$value" ]; then   # $(...) drops a final newline of the file
      drop_from_env "$var" "$cred"
      log "$var was in $cred already: removed it from $ENV_FILE"
    else
      warn "$var is set in $ENV_FILE and differs from $cred; the variable wins: keep one (remove the line, or put its value in the file)"
    fi
  elif [ "$var" = DATABASE_URL ] && [ ! -e "$cred" ]; then
    write_credential "$cred" "$PLACEHOLDER"
    log "created $cred with a placeholder"
  fi
  if [ -e "$cred" ]; then chmod 600 "$cred"; fi
  if [ -e "$cred" ] && [ "$(id -u)" -eq 0 ]; then chown root:root "$cred"; fi
done
