# Headless Chromium and the browser-test driver (playwright-core, pinned by
# tests/browser/package-lock.json) for tests/dashboard_browser.rs. playwright-core never downloads
# a browser: the tests drive Debian's /usr/bin/chromium through `executablePath`.
if [ ! -x /usr/bin/chromium ]; then
  log "installing Chromium"
  apt_install chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "installing Node.js and npm"
  apt_install nodejs npm
fi
if [ ! -f tests/browser/node_modules/playwright-core/package.json ] \
  || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  log "installing the browser-test packages (npm ci in tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
