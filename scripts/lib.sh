# Helpers the scripts share (sourced, not run).

# A progress line on stderr.
log() { printf '==> %s\n' "$*" >&2; }

# Runs a command as root: directly when we are root, else through passwordless sudo.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    log "need root to run: $*"
    return 1
  fi
}
