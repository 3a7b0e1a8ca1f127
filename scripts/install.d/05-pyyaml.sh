# PyYAML for the infra manifest checks (tests/infra/check_manifests.py).
if ! python3 -c "import yaml" >/dev/null 2>&1; then
  log "installing PyYAML"
  python3 -m pip install --quiet pyyaml
fi
