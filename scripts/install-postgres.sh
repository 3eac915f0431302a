#!/usr/bin/env bash
# PostgreSQL 15 and pgvector for the tests (CI runs this on a clean machine; it is idempotent).
# Debian 12 has no pgvector package: it is built from the source package of Debian's next release,
# fetched through a private apt configuration (the system's sources are not touched).
set -euo pipefail
PG=15
PG_CONFIG=/usr/lib/postgresql/$PG/bin/pg_config
if [ -f /usr/share/postgresql/$PG/extension/vector.control ] && [ -x /usr/lib/postgresql/$PG/bin/initdb ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then  # a developer machine: the PostgreSQL tests skip, saying why
  echo "install-postgres: PostgreSQL $PG + pgvector are missing; installing them needs root" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if [ ! -x /usr/lib/postgresql/$PG/bin/initdb ] || [ ! -d /usr/include/postgresql/$PG/server ]; then
  apt-get update -qq
  apt-get install -y -qq postgresql-$PG postgresql-server-dev-$PG >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mirror=$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true) \
  | grep -vE '^\s*#' | grep -oE 'https?://[^ ]*/debian/?' | grep -v security | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$work/sources.list"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
apt_private=(-o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache"
             -o APT::Sandbox::User=root)
apt-get "${apt_private[@]}" update -qq
(cd "$work" && apt-get "${apt_private[@]}" source -qq --download-only pgvector >/dev/null \
   && dpkg-source -x --no-check pgvector_*.dsc src >/dev/null)
make -C "$work/src" -s with_llvm=no PG_CONFIG="$PG_CONFIG" >/dev/null
make -C "$work/src" -s install with_llvm=no PG_CONFIG="$PG_CONFIG" >/dev/null
echo "install-postgres: pgvector $(grep default_version /usr/share/postgresql/$PG/extension/vector.control | cut -d"'" -f2) installed for PostgreSQL $PG"
