# Shared by the bench scripts (sourced, not run): installing the peers a benchmark compares with.

# require COMMAND=PACKAGE…: installs through apt-get, when run as root, the package of every
# command that is missing (a COMMAND with a `/` is checked as a path); otherwise says which
# packages to install and exits 2.
require() {
  local need=() pair cmd
  for pair in "$@"; do
    cmd=${pair%%=*}
    if [[ $cmd == */* ]]; then [[ -x $cmd ]] && continue; else command -v "$cmd" >/dev/null && continue; fi
    need+=("${pair#*=}")
  done
  ((${#need[@]})) || return 0
  if [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "$(basename "$0"): missing ${need[*]} (sudo apt-get install ${need[*]})" >&2
    exit 2
  fi
}
