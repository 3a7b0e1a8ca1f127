# schemathesis (PyPI), which tests/api_openapi.rs runs against the API's OpenAPI document. It gets
# a virtual environment of its own so that neither the system Python nor another tool's packages
# are touched; the test finds it there (or through $TESSERA_SCHEMATHESIS, or on PATH).
SCHEMATHESIS_VENV=/opt/tessera-tools/schemathesis
if [ ! -x "$SCHEMATHESIS_VENV/bin/schemathesis" ]; then
  log "installing schemathesis into $SCHEMATHESIS_VENV"
  if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  python3 -m venv "$SCHEMATHESIS_VENV"
  "$SCHEMATHESIS_VENV/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4.1,<5'
fi
