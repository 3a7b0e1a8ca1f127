import json
import unittest

import helpers  # noqa: F401
from devices import Registry
from zigbee2mqtt import ActionError, Zigbee2Mqtt, parse_availability

DEVICES = [
    {"ieee_address": "0x01", "type": "Coordinator", "friendly_name": "Coordinator"},
    {"ieee_address": "0x02", "type": "Router", "friendly_name": "two gang", "definition": {
        "vendor": "Aqara", "model": "QBKG03LM", "exposes": [
            {"type": "switch", "endpoint": "left", "features": [
                {"type": "binary", "name": "state", "property": "state_left", "endpoint": "left", "access": 7,
                 "value_on": "ON", "value_off": "OFF", "value_toggle": "TOGGLE"}]},
            {"type": "switch", "endpoint": "right", "features": [
                {"type": "binary", "name": "state", "property": "state_right", "endpoint": "right", "access": 7,
                 "value_on": "ON", "value_off": "OFF"}]},
            {"type": "numeric", "name": "linkquality", "property": "linkquality", "access": 1, "unit": "lqi"}]}},
    {"ieee_address": "0x03", "type": "EndDevice", "friendly_name": "door", "definition": {
        "vendor": "Aqara", "model": "MCCGQ11LM", "exposes": [
            {"type": "binary", "name": "contact", "property": "contact", "access": 1,
             "value_on": False, "value_off": True},
            {"type": "numeric", "name": "battery", "property": "battery", "access": 1, "unit": "%"},
            {"type": "numeric", "name": "voc", "property": "voc", "access": 1, "unit": "ppb"}]}},
    {"ieee_address": "0x04", "type": "Router", "friendly_name": "bulb", "definition": {
        "vendor": "Philips", "model": "9290012573A", "exposes": [
            {"type": "light", "features": [
                {"type": "binary", "name": "state", "property": "state", "access": 7, "value_on": "ON",
                 "value_off": "OFF"},
                {"type": "numeric", "name": "brightness", "property": "brightness", "access": 7,
                 "value_min": 0, "value_max": 255},
                {"type": "numeric", "name": "color_temp", "property": "color_temp", "access": 7,
                 "value_min": 153, "value_max": 500}]}]}},
]


class Z2m(unittest.TestCase):
    def setUp(self):
        self.sent = []
        self.registry = Registry(lambda ext, record, payload, at: self.sent.append(payload))
        self.registry.connected = True
        self.registry.start_streaming(0)
        self.z2m = Zigbee2Mqtt("zigbee2mqtt", self.registry, lambda level, message: None)

    def publish(self, topic, payload):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.assertTrue(self.z2m.handle(topic, data))

    def test_devices_come_from_exposes_with_one_device_per_endpoint(self):
        self.publish("zigbee2mqtt/bridge/devices", DEVICES)
        ids = sorted(d.external_id for d in self.registry.devices())
        self.assertEqual(ids, ["z2m-0x02", "z2m-0x02-left", "z2m-0x02-right", "z2m-0x03", "z2m-0x04"])
        self.assertEqual(self.registry.get("z2m-0x02-left").device_class, "switch")
        self.assertEqual(self.registry.get("z2m-0x03").device_class, "contact_sensor")
        self.assertEqual(self.registry.get("z2m-0x04").device_class, "light")
        self.assertEqual(self.registry.get("z2m-0x04").manufacturer, "Philips")

    def test_states_before_the_device_list_are_not_lost(self):
        self.publish("zigbee2mqtt/door", {"contact": False, "battery": 87, "voc": 120, "last_seen": "x"})
        self.publish("zigbee2mqtt/bridge/devices", DEVICES)
        door = self.registry.get("z2m-0x03")
        # Zigbee2MQTT's contact is "on" (open) when false; the catalog's contact means closed.
        self.assertEqual(door.values, {"contact": False, "battery": 87.0})
        self.publish("zigbee2mqtt/door", {"contact": True})
        self.assertEqual(door.values["contact"], True)
        self.assertEqual(json.loads(door.extras["voc"]), 120)

    def test_light_values_are_scaled_and_converted(self):
        self.publish("zigbee2mqtt/bridge/devices", DEVICES)
        self.publish("zigbee2mqtt/bulb", {"state": "ON", "brightness": 255, "color_temp": 250})
        values = self.registry.get("z2m-0x04").values
        self.assertEqual(values["state"], "ON")
        self.assertEqual(values["brightness"], 254.0)
        self.assertEqual(values["color_temp_kelvin"], 4000.0)

    def test_endpoint_states_reach_their_own_device(self):
        self.publish("zigbee2mqtt/bridge/devices", DEVICES)
        self.publish("zigbee2mqtt/two gang", {"state_left": "ON", "state_right": "OFF", "linkquality": 90})
        self.assertEqual(self.registry.get("z2m-0x02-left").values, {"state": "ON"})
        self.assertEqual(self.registry.get("z2m-0x02-right").values, {"state": "OFF"})
        self.assertEqual(self.registry.get("z2m-0x02").values, {"linkquality": 90.0})

    def test_availability_in_both_formats(self):
        self.assertTrue(parse_availability(b"online"))
        self.assertFalse(parse_availability(b'{"state":"offline"}'))
        self.assertIsNone(parse_availability(b"maybe"))
        self.publish("zigbee2mqtt/bridge/devices", DEVICES)
        self.publish("zigbee2mqtt/bulb/availability", b'{"state":"offline"}')
        self.assertEqual(self.sent[-1]["online"], False)
        self.publish("zigbee2mqtt/bridge/state", b"offline")
        self.assertFalse(self.registry.online(self.registry.get("z2m-0x03")))

    def test_commands_use_the_exposed_values_and_ranges(self):
        self.publish("zigbee2mqtt/bridge/devices", DEVICES)
        self.assertEqual(self.z2m.command("z2m-0x02-left", "toggle", {}),
                         ("zigbee2mqtt/two gang/set", '{"state_left":"TOGGLE"}'))
        self.assertEqual(self.z2m.command("z2m-0x04", "set_brightness", {"level": 50})[1], '{"brightness":128}')
        self.assertEqual(self.z2m.command("z2m-0x04", "set_color_temperature", {"kelvin": 1000})[1],
                         '{"color_temp":500}')
        with self.assertRaises(ActionError):
            self.z2m.command("z2m-0x03", "turn_on", {})


if __name__ == "__main__":
    unittest.main()
