# Sourced by dockerd.sh and containerd.sh: installs the Debian package of a daemon those scripts run privately, without
# letting the package start a system daemon of its own.
#   install_daemon_package SCRIPT PACKAGE    (SCRIPT names the caller in messages; needs root and apt-get)

install_daemon_package() {
  local script="$1" package="$2"
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
    || { echo "$script: the Debian package $package is missing; install it (apt-get install -y $package, as root)." >&2; exit 1; }
  echo "$script: installing $package with apt-get" >&2
  # The package's scripts would start a system daemon; the tests run their own. policy-rc.d (exit 101) forbids
  # service starts during the installation, unless the machine already has its own policy.
  local policy=/usr/sbin/policy-rc.d ours=false
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && ours=true; fi
  local ok=true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" >/dev/null 2>&1; } \
    || ok=false
  [ "$ours" = true ] && rm -f "$policy"
  [ "$ok" = true ] || { echo "$script: 'apt-get install -y $package' failed; install the Debian package $package." >&2; exit 1; }
}
