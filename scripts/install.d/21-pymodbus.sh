# pymodbus (PyPI): tests/integration_modbus.rs runs its Modbus TCP server as the real peer of the
# modbus plugin, with `python3` from the test's PATH. Pinned: pymodbus renames its datastore API
# between minor versions.
PYMODBUS_VERSION="3.8.6"
if ! python3 -c "import pymodbus, sys; sys.exit(pymodbus.__version__ != '$PYMODBUS_VERSION')" >/dev/null 2>&1; then
  log "installing pymodbus $PYMODBUS_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check "pymodbus==$PYMODBUS_VERSION" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "pymodbus==$PYMODBUS_VERSION"
fi
