"""The demo simulator plugin: virtual devices whose readings drift every interval."""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk-python"))

from tessera_plugin import Plugin, PluginError, UNKNOWN_DEVICE, UNSUPPORTED_ACTION, run  # noqa: E402

RECORD = "tessera.simulator.Observation"
FIRMWARE = "1.4.2"


class Device:
    """One virtual device and its drifting state."""

    def __init__(self, device_id, kind, name):
        self.device_id, self.kind, self.name = device_id, kind, name
        self.temperature, self.humidity, self.battery = 21.0, 45.0, 97.0
        self.on, self.brightness = True, 60.0
        self.energy_wh = 1200.0
        self.lock = threading.Lock()

    def step(self, seconds):
        with self.lock:
            self.temperature = min(35.0, max(10.0, self.temperature + random.uniform(-0.2, 0.2)))
            self.humidity = min(90.0, max(20.0, self.humidity + random.uniform(-0.5, 0.5)))
            self.battery = max(5.0, self.battery - 0.001)
            self.energy_wh += self.power() * seconds / 3600.0

    def power(self):
        base = 230.0 + random.uniform(-15.0, 15.0)
        return base + (self.brightness * 0.08 if self.on else 0.0)

    def payload(self):
        with self.lock:
            p = {"device_id": self.device_id, "kind": self.kind, "name": self.name, "firmware": FIRMWARE}
            if self.kind == "climate":
                p.update(temperature=round(self.temperature, 2), humidity=round(self.humidity, 1),
                         battery=round(self.battery, 2))
            elif self.kind == "light":
                p.update(on=self.on, brightness=round(self.brightness, 1))
            else:
                p.update(power=round(self.power(), 1), energy_wh=round(self.energy_wh, 3),
                         voltage_mv=round(230000 + random.uniform(-2000, 2000), 0))
            return p


class Simulator(Plugin):
    def initialize(self, config, secrets, state_dir):
        self.interval = max(0.01, int(config.get("interval_ms", 1000)) / 1000.0)
        count = max(1, int(config.get("devices", 1)))
        self.devices = {}
        for i in range(1, count + 1):
            for kind, name in (("climate", "Living room climate"), ("light", "Desk lamp"), ("meter", "Main power meter")):
                device_id = f"{kind}-{i}"
                self.devices[device_id] = Device(device_id, kind, name if count == 1 else f"{name} {i}")

    def discover(self):
        return [self.observation(d.device_id, RECORD, d.payload()) for d in self.devices.values()]

    def start(self):
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        last = time.monotonic()
        while not self.stopping.wait(self.interval):
            now = time.monotonic()
            for device in self.devices.values():
                device.step(now - last)
                self.emit(device.device_id, RECORD, device.payload())
            last = now

    def invoke(self, external_id, action, params, dry_run):
        device = self.devices.get(external_id)
        if device is None:
            raise PluginError(UNKNOWN_DEVICE, f"no device {external_id}")
        if device.kind != "light":
            raise PluginError(UNSUPPORTED_ACTION, f"{external_id} has no actions")
        with device.lock:
            on, brightness = device.on, device.brightness
            if action == "turn_on":
                on = True
            elif action == "turn_off":
                on = False
            elif action == "toggle":
                on = not on
            elif action == "set_brightness":
                brightness = float(params["level"])
                on = brightness > 0
            else:
                raise PluginError(UNSUPPORTED_ACTION, f"unsupported action {action}")
            if dry_run:
                return f"would set on={on} brightness={brightness}"
            device.on, device.brightness = on, brightness
        # Report the new state at once rather than at the next tick.
        self.emit(device.device_id, RECORD, device.payload())
        return f"on={on} brightness={brightness}"


if __name__ == "__main__":
    run(Simulator())
