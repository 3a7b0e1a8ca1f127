"""A client for the Shelly Gen2+ RPC API over HTTP (`GET /rpc/<Method>?<params>`), urllib only."""

import json
import urllib.error
import urllib.parse
import urllib.request

# Largest response read from a device; a status document is a few kilobytes.
MAX_RESPONSE_BYTES = 1024 * 1024


class Unreachable(Exception):
    """The device did not answer, or not with JSON."""


class RpcError(Exception):
    """The device answered with an RPC error (`{"code": ..., "message": ...}`)."""


class Device:
    """One Shelly device at a base URL such as `http://192.168.1.20`."""

    def __init__(self, url, timeout=3.0):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{url!r} is not an http(s) URL")
        self.base = url.rstrip("/")
        self.timeout = timeout
        # No proxies from anywhere: the plugin runs with a cleared environment anyway.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, **params):
        query = urllib.parse.urlencode({k: _param(v) for k, v in params.items()})
        url = f"{self.base}/rpc/{method}" + (f"?{query}" if query else "")
        try:
            with self._opener.open(url, timeout=self.timeout) as response:
                body = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as e:
            raise RpcError(_rpc_error(method, e)) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise Unreachable(f"{self.base}: {getattr(e, 'reason', e)}") from None
        if len(body) > MAX_RESPONSE_BYTES:
            raise Unreachable(f"{self.base}: {method} answered more than {MAX_RESPONSE_BYTES} bytes")
        try:
            return json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise Unreachable(f"{self.base}: {method} did not answer JSON: {e}") from None

    def device_info(self):
        return self.call("Shelly.GetDeviceInfo")

    def status(self):
        status = self.call("Shelly.GetStatus")
        if not isinstance(status, dict):
            raise Unreachable(f"{self.base}: Shelly.GetStatus did not answer an object")
        return status


def _param(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _rpc_error(method, error):
    try:
        detail = json.loads(error.read(65536).decode("utf-8"))
        message = detail.get("message") or detail.get("error", {}).get("message")
    except (ValueError, UnicodeDecodeError, AttributeError, OSError):
        message = None
    return f"{method}: HTTP {error.code}" + (f": {message}" if message else "")


def components(status):
    """The controllable components of a status document: [(kind, id, their status)], switches first."""
    found = []
    for key, value in status.items():
        kind, _, index = key.partition(":")
        if kind in ("switch", "light") and index.isdigit() and isinstance(value, dict):
            found.append((kind, int(index), value))
    return sorted(found, key=lambda c: (c[0] != "switch", c[1]))
