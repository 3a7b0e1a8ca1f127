# PostgreSQL server binaries (the tests start throwaway clusters from them).
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && ! command -v postgres >/dev/null 2>&1; then
  log "installing PostgreSQL server binaries"
  apt_install postgresql
fi
