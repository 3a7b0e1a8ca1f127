import unittest

import helpers  # noqa: F401
import shelly
from main import parse_devices
from poller import Poller


class Components(unittest.TestCase):
    def test_switches_first_then_lights_by_index(self):
        status = {"light:0": {}, "switch:1": {}, "switch:0": {}, "input:0": {}, "sys": {}, "cover:0": {}}
        found = [(k, i) for k, i, _ in shelly.components(status)]
        self.assertEqual(found, [("switch", 0), ("switch", 1), ("light", 0)])

    def test_first_component_keeps_the_configured_id(self):
        spec = {"id": "pro2pm", "url": "http://127.0.0.1:9", "timeout": 1.0, "poll_interval": 1.0}
        poller = Poller(spec, lambda *a: None, lambda *a: None)
        poller.info = {"model": "SPSW-202XE16EU", "ver": "1.1.0"}
        out = poller._observations({"switch:0": {"output": True, "aenergy": {"total": 5.0}},
                                    "switch:1": {"output": False, "temperature": {"tC": None}}})
        self.assertEqual([p["external_id"] for p in out], ["pro2pm", "pro2pm-switch1"])
        self.assertEqual(out[0]["aenergy"], {"total": 5.0})
        self.assertNotIn("temperature", out[1])


class Config(unittest.TestCase):
    def test_defaults_and_errors(self):
        d = parse_devices({"devices": [{"id": "a", "url": "http://h"}], "poll_interval_ms": 1500})[0]
        self.assertEqual((d["poll_interval"], d["timeout"]), (1.5, 3.0))
        for bad, where in (([{"url": "http://h"}], "devices[0].id"), ([{"id": "a"}], "devices[0].url"),
                           ([{"id": "a", "url": "http://h"}, {"id": "a", "url": "http://i"}], "used twice")):
            with self.assertRaises(ValueError) as e:
                parse_devices({"devices": bad})
            self.assertIn(where, str(e.exception))
        with self.assertRaises(ValueError):
            shelly.Device("ftp://h")


if __name__ == "__main__":
    unittest.main()
