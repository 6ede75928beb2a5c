#!/bin/sh
# Install Debian's PostgreSQL server for the Postgres publish tests (tests/test_publish_postgres.py).
# Runs as part of `make test`. Installs only when `initdb` is missing (on PATH or under
# /usr/lib/postgresql/<version>/bin) and we are root (apt-get, non-interactive, quiet). The tests
# start their own throwaway server on 127.0.0.1; no system cluster is created or started here.
# Always exits 0: without PostgreSQL those tests skip with a reason, or fail when CI=true.
have_initdb() {
    command -v initdb >/dev/null 2>&1 && return 0
    for f in /usr/lib/postgresql/*/bin/initdb; do
        [ -x "$f" ] && return 0
    done
    return 1
}
if have_initdb; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "ensure_postgres: initdb is missing and we are not root; Postgres publish tests will skip" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_postgres: initdb is missing and apt-get is not available; Postgres publish tests will skip" >&2
    exit 0
fi
echo "ensure_postgres: installing Debian postgresql (once)" >&2
# the tests run their own cluster: do not let the package create (and start) a system one
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
fi
export DEBIAN_FRONTEND=noninteractive
APT_OPTS="-y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
# shellcheck disable=SC2086
if ! apt-get install $APT_OPTS postgresql >/dev/null 2>&1; then
    # the package lists may be missing or stale on a fresh machine
    apt-get update -qq >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    apt-get install $APT_OPTS postgresql >/dev/null 2>&1 \
        || echo "ensure_postgres: apt-get install postgresql failed; Postgres publish tests will skip" >&2
fi
exit 0
