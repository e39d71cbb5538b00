#!/usr/bin/env bash
# Install Tabby on a Debian 12 host, or remove it again.
#
#   systemd/install.sh [--prefix /opt/tabby] [--wheels DIR] [--no-start]
#   systemd/install.sh --uninstall [--prefix /opt/tabby] [--purge]
#
# Install: a virtual environment in PREFIX with Tabby and its dependencies (from PyPI, or from
# a directory of wheels with --wheels for hosts without a registry), the console scripts linked
# into /usr/local/bin, the unit files into /etc/systemd/system, a system user `tabby`, and
# /etc/tabby/*.toml from the commented examples (never overwriting a file that exists).
# Uninstall: stops and disables the units and removes what install put in place; /etc/tabby
# and /var/lib/tabby stay unless --purge. Both are safe to run again.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/tabby
WHEELS=""
UNINSTALL=0
PURGE=0
UNIT_DIR=/etc/systemd/system
BIN_DIR=/usr/local/bin
DAEMONS=(store bgpd confd felixd)
SCRIPTS=(tabby-store tabby-bgpd tabby-confd tabby-felixd tabby-cni tabbyctl)

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=$2; shift 2 ;;
    --wheels) WHEELS=$2; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    --no-start) shift ;;  # accepted for symmetry: install never starts services by itself
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

say() { printf 'tabby-install: %s\n' "$*"; }
have_systemd() { [ -d /run/systemd/system ]; }

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root" >&2
  exit 1
fi

units() { for d in "${DAEMONS[@]}"; do echo "tabby-$d.service"; done; echo tabby.target; }

if [ "$UNINSTALL" -eq 1 ]; then
  if have_systemd; then
    # shellcheck disable=SC2046
    systemctl disable --now $(units) >/dev/null 2>&1 || true
  fi
  for u in $(units); do rm -f "$UNIT_DIR/$u"; done
  for s in "${SCRIPTS[@]}"; do
    if [ -L "$BIN_DIR/$s" ] && [ "$(readlink "$BIN_DIR/$s")" = "$PREFIX/bin/$s" ]; then
      rm -f "$BIN_DIR/$s"
    fi
  done
  rm -rf "$PREFIX"
  if have_systemd; then systemctl daemon-reload; fi
  if [ "$PURGE" -eq 1 ]; then
    rm -rf /etc/tabby /var/lib/tabby
    if id tabby >/dev/null 2>&1; then userdel tabby; fi
    say "removed Tabby, its configuration and its state"
  else
    say "removed Tabby; kept /etc/tabby and /var/lib/tabby (use --purge to remove them)"
  fi
  exit 0
fi

# 1. Python with venv support (Debian splits it out).
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  say "installing python3-venv"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
fi

# 2. The virtual environment and Tabby inside it.
if [ ! -x "$PREFIX/bin/python" ]; then
  say "creating $PREFIX"
  python3 -m venv "$PREFIX"
fi
if [ -n "$WHEELS" ]; then
  # Offline: Tabby and its dependencies as wheels (`pip wheel /path/to/tabby -w DIR`).
  "$PREFIX/bin/pip" install -q --no-index --find-links "$WHEELS" --upgrade tabby
else
  "$PREFIX/bin/pip" install -q --upgrade "$SRC"
fi
mkdir -p "$PREFIX/share/doc/tabby" "$PREFIX/share/tabby/examples"
cp "$SRC"/docs/*.md "$PREFIX/share/doc/tabby/"
cp "$SRC"/systemd/examples/*.toml "$PREFIX/share/tabby/examples/"

# 3. Console scripts on the PATH.
for s in "${SCRIPTS[@]}"; do
  if [ -x "$PREFIX/bin/$s" ]; then ln -sfn "$PREFIX/bin/$s" "$BIN_DIR/$s"; fi
done

# 4. The unprivileged user the store, bgpd and confd run as.
if ! id tabby >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/tabby --no-create-home \
          --shell /usr/sbin/nologin tabby
fi

# 5. Configuration from the examples, never over an existing file.
install -d -m 0750 -o root -g tabby /etc/tabby
for example in "$SRC"/systemd/examples/*.toml; do
  target=/etc/tabby/$(basename "$example")
  if [ ! -e "$target" ]; then
    install -m 0640 -o root -g tabby "$example" "$target"
    say "wrote $target"
  fi
done

# 6. Units, for the daemons this version ships (a unit without its program would only fail).
for u in $(units); do
  d=${u#tabby-}; d=${d%.service}
  if [ "$u" = tabby.target ] || [ -x "$PREFIX/bin/tabby-$d" ]; then
    install -m 0644 "$SRC/systemd/$u" "$UNIT_DIR/$u"
  fi
done
if have_systemd; then systemctl daemon-reload; fi
say "installed into $PREFIX; start a node with: systemctl enable --now tabby.target"
