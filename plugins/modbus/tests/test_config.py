import unittest

import helpers  # noqa: F401
import config as cfg
from profiles import PROFILES


def device(**extra):
    return dict({"id": "d", "host": "127.0.0.1", "registers": [
        {"name": "relay", "table": "coil", "address": 0, "capability": "switch", "writable": True}]}, **extra)


class Config(unittest.TestCase):
    def test_profiles_are_valid_and_meters(self):
        for name in PROFILES:
            d = cfg.parse({"devices": [{"id": name, "host": "h", "profile": name}]})[0]
            self.assertEqual(d["device_class"], "power_meter")
            caps = {r.get("capability") for r in d["registers"]}
            self.assertTrue({"power", "energy", "voltage", "frequency"} <= caps, name)

    def test_defaults_and_classes(self):
        d = cfg.parse({"devices": [device()], "poll_interval_ms": 1000})[0]
        self.assertEqual((d["port"], d["unit_id"], d["poll_interval"], d["device_class"]), (502, 1, 1.0, "switch"))

    def test_errors_name_the_device_and_register(self):
        cases = [
            (device(registers=[{"name": "x", "address": 1, "type": "u128"}]), "devices[0].registers[0].type"),
            (device(registers=[{"name": "x", "table": "input", "address": 1, "writable": True}]),
             "devices[0].registers[0].writable"),
            (device(registers=[{"name": "x", "address": 1, "unit": "V", "capability": "power"}]),
             "devices[0].registers[0].unit"),
            (device(registers=[{"name": "x", "address": 70000}]), "devices[0].registers[0].address"),
            (device(profile="acme"), "devices[0].profile"),
            ({"id": "d", "host": "h"}, "devices[0] has no registers"),
            ({"host": "h"}, "devices[0].id is required"),
        ]
        for raw, where in cases:
            with self.assertRaises(cfg.ConfigError) as e:
                cfg.parse({"devices": [raw]})
            self.assertIn(where, str(e.exception))

    def test_duplicate_capabilities_are_refused(self):
        regs = [{"name": "a", "address": 1, "capability": "power"}, {"name": "b", "address": 2, "capability": "power"}]
        with self.assertRaises(cfg.ConfigError):
            cfg.parse({"devices": [device(registers=regs)]})


if __name__ == "__main__":
    unittest.main()
