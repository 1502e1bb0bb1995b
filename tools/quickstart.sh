#!/bin/sh
# The README's two commands: `sh tools/quickstart.sh demo` and `sh tools/quickstart.sh test`.
# Each installs what it needs on a fresh Debian/Ubuntu machine (apt packages when missing, a venv in
# .venv with pullprint and its extras), then runs the demo or the whole check (format, lint, types,
# import contracts, tests; then the cloud tests again on PostgreSQL + S3). It fails loudly if anything
# cannot be installed.
set -eu
cd "$(dirname "$0")/.."

what="${1:-}"
case "$what" in
  demo|test) shift ;;
  *) echo "usage: sh tools/quickstart.sh demo|test [args...]" >&2; exit 2 ;;
esac

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "quickstart: need root (or sudo) to run: $*" >&2; exit 1; fi
}

apt_updated=0
apt_install() {  # apt_install PACKAGE [apt-get options...]
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "quickstart: this is not a Debian/Ubuntu machine: install '$1' by hand" >&2
    exit 1
  fi
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  package="$1"; shift
  echo "quickstart: installing $package"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" "$package" >/dev/null || {
    echo "quickstart: could not install $package" >&2; exit 1; }
}
need_apt() {  # need_apt COMMAND PACKAGE [apt-get options...]: install PACKAGE if COMMAND is missing
  command="$1"; shift
  if ! command -v "$command" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$command" ] \
      && [ ! -x "/usr/bin/$command" ]; then
    apt_install "$@"
  fi
}

need_file() {  # need_file PATH PACKAGE: install PACKAGE if PATH is missing (libraries, drivers)
  path="$1"; shift
  if [ ! -e "$path" ]; then apt_install "$@"; fi
}

PY="${PYTHON:-python3}"
need_apt "$PY" python3
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "quickstart: pullprint needs Python >= 3.11 ($PY is $("$PY" -V 2>&1))" >&2; exit 1
fi
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt_install python3-venv
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null

if [ "$what" = demo ]; then
  .venv/bin/python -m pip install -q -e '.[all]'
  exec .venv/bin/pullprint demo "$@"
fi

# test: the real peers the tests talk to.
need_apt ippeveprinter cups-ipp-utils
need_apt ipptool cups-ipp-utils
need_apt dbus-daemon dbus
need_apt gs ghostscript
need_apt cupsd cups --no-install-recommends  # a real CUPS client adds the cloud's IPP queue
need_apt bmaptool bmap-tools       # flash/bmap cross-checks
need_apt mcopy mtools              # boot partition edits without loop mounts
need_apt mkfs.vfat dosfstools
need_apt sfdisk fdisk
need_apt zbarimg zbar-tools        # the label tests decode every QR code
need_apt debugfs e2fsprogs         # station images: ext4 edited without mounting
need_apt xz xz-utils
need_apt systemd-analyze systemd   # the station's units are verified offline
need_apt shellcheck shellcheck
need_apt openssl openssl           # a CA directory hashed as Debian's (station TLS trust test)
# PC/SC: pyscard builds from source (swig + the pcsc-lite headers); the reader tests run a
# private pcscd with vsmartcard's virtual reader in namespaces of their own (unshare, ip).
need_apt swig swig
need_file "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" python3-dev
need_file /usr/include/PCSC/winscard.h libpcsclite-dev
need_apt pcscd pcscd --no-install-recommends
need_file /usr/lib/pcsc/drivers/serial/libifdvpcd.so vsmartcard-vpcd --no-install-recommends
need_apt ip iproute2
need_apt unshare util-linux
# The bridge firmware's pure modules also run on real MicroPython (its webassembly port, npm).
need_apt node nodejs
need_apt npm npm --no-install-recommends
npm ci --prefix tests/hardware/firmware/micropython --no-audit --no-fund --silent
# The cloud's PostgreSQL profile: a private server started by the tests (tools/pg.py); Debian keeps
# the server programs in /usr/lib/postgresql/<version>/bin, outside PATH.
if ! command -v postgres >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1
then
  apt_install postgresql --no-install-recommends
fi
.venv/bin/python -m pip install -q -e '.[all,test]'
sh tools/check.sh "$@"
# The cloud suite a second time on PostgreSQL + S3 (a private PostgreSQL and moto's S3 server,
# both on 127.0.0.1, started and stopped by the tests: tests/support/profile.py). Skipped when
# the caller picked tests, or with PULLPRINT_SKIP_POSTGRES=1.
if [ $# -eq 0 ] && [ "${PULLPRINT_SKIP_POSTGRES:-0}" != 1 ]; then
  echo; echo "== cloud tests on the postgres profile (PostgreSQL + S3)"
  PULLPRINT_TEST_PROFILE=postgres .venv/bin/python -m pytest -q tests/cloud \
    tests/e2e/test_release_loop.py tests/e2e/test_restart.py tests/e2e/test_replicas.py \
    --ignore=tests/cloud/test_container.py --ignore=tests/cloud/test_config.py
fi
