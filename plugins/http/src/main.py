"""The HTTP plugin: Shelly Gen2+ devices through their RPC API (`/rpc/Shelly.GetStatus`, `/rpc/Switch.Set`)."""

import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "sdk-python"))

from tessera_plugin import (  # noqa: E402
    DEVICE_UNREACHABLE, INVALID_CONFIG, UNKNOWN_DEVICE, UNSUPPORTED_ACTION, Plugin, PluginError, run)

import shelly  # noqa: E402
from poller import Poller  # noqa: E402

DISCOVERY_BUDGET_S = 6.0


def parse_devices(config):
    """The configured devices with defaults filled in; raises ValueError naming the bad entry."""
    devices = config.get("devices", [])
    if not isinstance(devices, list):
        raise ValueError("devices must be a list")
    poll = int(config.get("poll_interval_ms", 5000))
    timeout = int(config.get("timeout_ms", 3000))
    out, seen = [], set()
    for i, raw in enumerate(devices):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
            raise ValueError(f"devices[{i}].id is required")
        if not isinstance(raw.get("url"), str):
            raise ValueError(f"devices[{i}].url is required (http://host[:port])")
        if raw["id"] in seen:
            raise ValueError(f"devices[{i}].id {raw['id']!r} is used twice")
        seen.add(raw["id"])
        out.append({"id": raw["id"], "url": raw["url"], "name": raw.get("name"),
                    "poll_interval": int(raw.get("poll_interval_ms", poll)) / 1000.0,
                    "timeout": int(raw.get("timeout_ms", timeout)) / 1000.0})
    return out


class HttpPlugin(Plugin):
    def initialize(self, config, secrets, state_dir):
        try:
            specs = parse_devices(config)
            offline_after = int(config.get("offline_after_failures", 2))
            max_backoff = max(0.5, int(config.get("max_backoff_ms", 30000)) / 1000.0)
            self.pollers = {s["id"]: Poller(s, self.emit, self.log, offline_after, max_backoff=max_backoff)
                            for s in specs}
        except (TypeError, ValueError) as e:
            raise PluginError(INVALID_CONFIG, f"invalid configuration: {e}") from None

    def discover(self):
        threads = [threading.Thread(target=p.poll, daemon=True) for p in self.pollers.values()]
        for t in threads:
            t.start()
        deadline = time.monotonic() + DISCOVERY_BUDGET_S
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return [o for p in self.pollers.values() for o in p.last]

    def start(self):
        for poller in self.pollers.values():
            poller.start(self.stopping)

    def _find(self, external_id):
        for poller in self.pollers.values():
            if external_id in poller.units:
                return poller, poller.units[external_id]
        raise PluginError(UNKNOWN_DEVICE, f"no device {external_id}")

    def invoke(self, external_id, action, params, dry_run):
        poller, (kind, index) = self._find(external_id)
        method = "Switch" if kind == "switch" else "Light"
        if action in ("turn_on", "turn_off"):
            call = (f"{method}.Set", {"id": index, "on": action == "turn_on"})
        elif action == "toggle":
            call = (f"{method}.Toggle", {"id": index})
        elif action == "set_brightness" and kind == "light":
            try:
                level = int(round(float(params["level"])))
            except (KeyError, TypeError, ValueError):
                raise PluginError(-32602, "set_brightness needs a numeric `level`") from None
            call = ("Light.Set", {"id": index, "on": level > 0, "brightness": max(0, min(100, level))})
        else:
            raise PluginError(UNSUPPORTED_ACTION, f"{external_id} ({kind}) cannot {action}")
        described = f"{call[0]} {call[1]}"
        if dry_run:
            return f"would call {described}"
        try:
            poller.device.call(call[0], **call[1])
        except shelly.Unreachable as e:
            raise PluginError(DEVICE_UNREACHABLE, str(e)) from None
        except shelly.RpcError as e:
            raise PluginError(UNSUPPORTED_ACTION, f"the device refused: {e}") from None
        poller.poll()  # report the effect now rather than at the next poll
        return f"called {described}"


if __name__ == "__main__":
    run(HttpPlugin())
