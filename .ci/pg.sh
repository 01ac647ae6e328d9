# Sourced by .ci/run: a throwaway PostgreSQL cluster for the store/postgres tests, whose URL is
# exported as RILL_AUTHD_TEST_POSTGRES (under CI=true those tests fail without it). Debian's
# postgresql is installed if absent; the cluster runs as the postgres user on a free loopback
# port with its socket in a temp dir, and is stopped when the calling shell exits.
# A RILL_AUTHD_TEST_POSTGRES already set is used as it is.

if [ -z "${RILL_AUTHD_TEST_POSTGRES:-}" ]; then
  _pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$_pg_bin" ] || [ ! -x "$_pg_bin/initdb" ]; then
    echo "installing postgresql for the PostgreSQL store tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    _pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  _pg_dir=$(mktemp -d /tmp/rill-authd-pg.XXXXXX)
  _pg_cwd=$PWD; cd / # the postgres user may not enter the checkout
  chown postgres "$_pg_dir"
  su postgres -s /bin/sh -c "'$_pg_bin/initdb' -D '$_pg_dir/data' -A trust -U postgres" >"$_pg_dir/initdb.log" 2>&1 ||
    { cat "$_pg_dir/initdb.log"; false; }
  # Durability is not under test here: fsync off makes the many CREATE/DROP DATABASEs fast.
  _pg_port=
  for _p in $(seq 55432 55631); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$_p") 2>/dev/null; then continue; fi # taken
    if su postgres -s /bin/sh -c "'$_pg_bin/pg_ctl' -D '$_pg_dir/data' -w -t 60 -l '$_pg_dir/server.log' \
        -o \"-p $_p -k '$_pg_dir' -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c full_page_writes=off -c synchronous_commit=off\" start" >/dev/null; then
      _pg_port=$_p
      break
    fi
  done
  if [ -z "$_pg_port" ]; then
    echo "could not start PostgreSQL:"
    cat "$_pg_dir/server.log"
    false
  fi
  trap "su postgres -s /bin/sh -c \"'$_pg_bin/pg_ctl' -D '$_pg_dir/data' -m immediate stop\" >/dev/null 2>&1; rm -rf '$_pg_dir'" EXIT
  export RILL_AUTHD_TEST_POSTGRES="postgres://postgres@127.0.0.1:$_pg_port/postgres?sslmode=disable"
  echo "PostgreSQL $("$_pg_bin/postgres" --version | awk '{print $3}') for tests on 127.0.0.1:$_pg_port"
  cd "$_pg_cwd"
  unset _pg_bin _pg_dir _pg_port _p _pg_cwd
fi
