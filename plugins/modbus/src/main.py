"""The Modbus TCP plugin: polls register maps (or energy meter profiles) and writes actuators."""

import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "sdk-python"))

from tessera_plugin import (  # noqa: E402
    DEVICE_UNREACHABLE, INVALID_CONFIG, UNKNOWN_DEVICE, UNSUPPORTED_ACTION, Plugin, PluginError, run)

import config as cfg  # noqa: E402
import registers as regs  # noqa: E402
import units  # noqa: E402
from meter import Meter  # noqa: E402
from modbus_client import ModbusError, ModbusException  # noqa: E402

# action -> (capability, parameter, value for parameterless actions)
ACTIONS = {
    "turn_on": ("switch", None, True), "turn_off": ("switch", None, False), "toggle": ("switch", None, None),
    "open_valve": ("valve", None, True), "close_valve": ("valve", None, False),
    "set_setpoint": ("thermostat_setpoint", "temperature", None), "set_fan_speed": ("fan_speed", "speed", None),
    "set_brightness": ("brightness", "level", None), "set_valve_position": ("valve_position", "position", None),
    "set_cover_position": ("cover_position", "position", None),
}
# Discovery reads every device once, in parallel, within this budget (below the call timeout).
DISCOVERY_BUDGET_S = 6.0


class ModbusPlugin(Plugin):
    def initialize(self, config, secrets, state_dir):
        try:
            devices = cfg.parse(config)
            offline_after = int(config.get("offline_after_failures", 2))
            max_backoff = max(0.5, int(config.get("max_backoff_ms", 30000)) / 1000.0)
        except (cfg.ConfigError, TypeError, ValueError) as e:
            raise PluginError(INVALID_CONFIG, f"invalid configuration: {e}") from None
        self.meters = {d["id"]: Meter(d, self.emit, self.log, offline_after, max_backoff=max_backoff)
                       for d in devices}

    def discover(self):
        threads = [threading.Thread(target=m.poll, daemon=True) for m in self.meters.values()]
        for t in threads:
            t.start()
        deadline = time.monotonic() + DISCOVERY_BUDGET_S
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return [m.observation() for m in self.meters.values()]

    def start(self):
        for meter in self.meters.values():
            meter.start(self.stopping)

    def invoke(self, external_id, action, params, dry_run):
        meter = self.meters.get(external_id)
        if meter is None:
            raise PluginError(UNKNOWN_DEVICE, f"no device {external_id}")
        capability, param, value = ACTIONS.get(action, (None, None, None))
        register = meter.by_capability.get(capability)
        if register is None or not register["writable"]:
            raise PluginError(UNSUPPORTED_ACTION, f"{external_id} has no writable register for {action}")
        kind, target = cfg.CAPABILITIES[capability]
        if param is not None:
            try:
                value = units.convert(float(params[param]), target, register.get("unit"))
            except (KeyError, TypeError, ValueError):
                raise PluginError(-32602, f"{action} needs a numeric `{param}`") from None
        where = f"{register['table']} {register['address']}"
        if dry_run:
            return f"would write {where} ({register['name']}) = {'toggled' if value is None else value}"
        try:
            written = self._write(meter, register, kind, value)
        except ModbusError as e:
            raise PluginError(DEVICE_UNREACHABLE, str(e)) from None
        except ModbusException as e:
            if e.gateway:
                raise PluginError(DEVICE_UNREACHABLE, f"{external_id} is unreachable: {e}") from None
            raise PluginError(UNSUPPORTED_ACTION, f"{external_id} refused the write: {e}") from None
        except ValueError as e:
            raise PluginError(-32602, str(e)) from None
        meter.poll()  # report the effect now rather than at the next poll
        return f"wrote {where} ({register['name']}) = {written}"

    @staticmethod
    def _write(meter, r, kind, value):
        client = meter.client
        with client.lock:
            if kind == "bool":
                if value is None:  # toggle: read the current state first
                    if r["table"] == "coil":
                        value = not client.read_coils(r["address"], 1)[0]
                    else:
                        current = regs.decode(client.read_holding_registers(r["address"], regs.width(r)), r["type"],
                                              r["word_order"])
                        value = current == r["off_value"]
                if r["table"] == "coil":
                    client.write_single_coil(r["address"], bool(value))
                    return "ON" if value else "OFF"
                raw = r["on_value"] if value else r["off_value"]
            else:
                raw = regs.raw_for(r, value)
            words = regs.encode(raw, r["type"], r["word_order"])
            if len(words) == 1:
                client.write_single_register(r["address"], words[0])
            else:
                client.write_multiple_registers(r["address"], words)
            return raw

    def shutdown(self):
        for meter in getattr(self, "meters", {}).values():
            meter.client.close()


if __name__ == "__main__":
    run(ModbusPlugin())
