#!/usr/bin/env bash
# Build Citus (the distributed engine lifecycle scales out on, docs/CITUS.md)
# from its source tarball, once, and install it into a PostgreSQL
# installation: the private copy scripts/test.sh makes, or the one
# PG_CONFIG names.
#
#   bash scripts/citus.sh [PGROOT]
#
# PGROOT is a directory that mirrors the system's /usr/lib/postgresql/15
# and /usr/share/postgresql/15 (scripts/test.sh's $work/pg); without it
# the files go where PG_CONFIG (else pg_config) says.
#
# The source: $CITUS_SRC (a tarball, or a directory holding
# citus-*.tar.gz and its build patch *.patch), else ../shared/citus/ beside
# the project, else /work/shared/citus.  The built files are cached under
# $CITUS_CACHE (default /var/cache/lifecycle-citus), keyed by the sha256
# of the tarball, the patch and the PostgreSQL version, so a second run
# copies them instead of building (about 3 minutes on 2 cores).
#
# Exit status 0: Citus installed.  Otherwise the reason is the last line
# on stderr and nothing was installed (the Citus test skips with it).
set -euo pipefail
cd "$(dirname "$0")/.."
project=$(pwd)
pgroot=${1:-}

die() { echo "citus: $*" >&2; exit 1; }

# Find the tarball and its patch.
src=${CITUS_SRC:-}
if [ -z "$src" ]; then
	for d in "$project/../shared/citus" /work/shared/citus; do
		if compgen -G "$d/citus-*.tar.gz" >/dev/null; then src=$d; break; fi
	done
fi
[ -n "$src" ] || die "no Citus source (set CITUS_SRC, or put citus-*.tar.gz in ../shared/citus/)"
if [ -d "$src" ]; then
	tarball=$(ls "$src"/citus-*.tar.gz 2>/dev/null | sort | tail -n 1 || true)
	patches=$(ls "$src"/*.patch 2>/dev/null | sort || true)
else
	tarball=$src
	patches=$(ls "$(dirname "$src")"/*.patch 2>/dev/null | sort || true)
fi
[ -f "$tarball" ] || die "no citus-*.tar.gz in $src"

sys_pg_config=/usr/lib/postgresql/15/bin/pg_config
[ -x "$sys_pg_config" ] || sys_pg_config=$(command -v pg_config || true)
[ -x "$sys_pg_config" ] || die "no pg_config (PostgreSQL server development files)"
pgversion=$("$sys_pg_config" --version)

key=$( { sha256sum "$tarball" | cut -d' ' -f1
	for p in $patches; do sha256sum "$p" | cut -d' ' -f1; done
	echo "$pgversion"; } | sha256sum | cut -c1-16)
cache=${CITUS_CACHE:-/var/cache/lifecycle-citus}
stage="$cache/$key/stage"

if [ ! -f "$cache/$key/done" ]; then
	mkdir -p "$cache"
	exec 9>"$cache/.lock"
	flock 9		# concurrent test runs build once
	if [ ! -f "$cache/$key/done" ]; then
		# What Citus' configure and PostgreSQL's link flags need (Debian 12).
		pkgs=(build-essential postgresql-server-dev-15 liblz4-dev libzstd-dev libkrb5-dev
			  libssl-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev zlib1g-dev)
		missing=()
		for p in "${pkgs[@]}"; do
			dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
		done
		if [ ${#missing[@]} -gt 0 ]; then
			SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
			echo "citus: installing ${missing[*]}" >&2
			{ $SUDO apt-get update -qq &&
			  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
				"${missing[@]}" >/dev/null 2>&1; } || die "could not install ${missing[*]}"
		fi
		build=$(mktemp -d "$cache/build.XXXXXX")
		log="$cache/$key.log"
		echo "citus: building $(basename "$tarball") for $pgversion (log: $log)" >&2
		if ! ( set -e
			tar xzf "$tarball" -C "$build"
			cd "$build"/citus-*/
			for p in $patches; do patch -p1 -s < "$p"; done
			# No libcurl: Citus would report statistics over the network.
			./configure -q PG_CONFIG="$sys_pg_config" --without-libcurl
			make -s -j"$(nproc)"
			make -s install DESTDIR="$build/stage"
		) >"$log" 2>&1; then
			tail -n 20 "$log" >&2
			rm -rf "$build"
			die "the build of $(basename "$tarball") failed (log: $log)"
		fi
		rm -rf "$cache/$key"
		mkdir -p "$cache/$key"
		mv "$build/stage" "$stage"
		rm -rf "$build"
		touch "$cache/$key/done"
	fi
	exec 9>&-
fi

# Install: the staged tree holds absolute paths of the system's
# PostgreSQL (usr/lib/postgresql/15/lib, usr/share/postgresql/15/extension,
# usr/include/...); a private copy mirrors them under PGROOT.
if [ -n "$pgroot" ]; then
	cp -a "$stage/." "$pgroot/"
	echo "citus: installed into $pgroot" >&2
else
	pg_config=${PG_CONFIG:-pg_config}
	libdir=$("$pg_config" --pkglibdir)
	sharedir=$("$pg_config" --sharedir)
	cp -a "$stage"/usr/lib/postgresql/15/lib/. "$libdir/"
	cp -a "$stage"/usr/share/postgresql/15/extension/. "$sharedir/extension/"
	echo "citus: installed into $libdir and $sharedir" >&2
fi
