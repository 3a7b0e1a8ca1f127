import json
import unittest

import helpers  # noqa: F401
import templates
from devices import Registry
from ha_discovery import HomeAssistantDiscovery, expand


class Subscriptions:
    def __init__(self):
        self.topics = set()

    def subscribe(self, topic, qos):
        self.topics.add(topic)

    def unsubscribe(self, topic):
        self.topics.discard(topic)


TASMOTA_SWITCH = {"name": "Relay", "~": "tasmota_1/", "cmd_t": "~cmnd/POWER", "stat_t": "~tele/STATE",
                  "val_tpl": "{{value_json.POWER}}", "pl_on": "ON", "pl_off": "OFF", "avty_t": "~tele/LWT",
                  "pl_avail": "Online", "pl_not_avail": "Offline", "uniq_id": "t1_RL_1",
                  "dev": {"ids": ["t1"], "name": "Plug", "mf": "Tasmota", "sw": "13.2.0"}}


class Discovery(unittest.TestCase):
    def setUp(self):
        self.registry = Registry(lambda *a: None)
        self.registry.connected = True
        self.subs = Subscriptions()
        self.ha = HomeAssistantDiscovery("homeassistant", self.registry, self.subs, lambda level, message: None,
                                         skip_identifier=lambda i: i.startswith("zigbee2mqtt_"))

    def config(self, topic, payload):
        self.assertTrue(self.ha.handle(topic, json.dumps(payload).encode()))

    def test_abbreviations_and_base_topic_expand(self):
        c = expand(TASMOTA_SWITCH)
        self.assertEqual(c["command_topic"], "tasmota_1/cmnd/POWER")
        self.assertEqual(c["availability_topic"], "tasmota_1/tele/LWT")
        self.assertEqual(c["device"]["manufacturer"], "Tasmota")

    def test_templates_subset(self):
        self.assertEqual(templates.render("{{ value_json['ENERGY'].Power | float }}", b'{"ENERGY":{"Power":"5"}}'), 5.0)
        self.assertEqual(templates.render("{{ value_json.a[1] | round(1) }}", b'{"a":[0, 2.345]}'), 2.3)
        self.assertIs(templates.render("{{ value_json.missing }}", b"{}"), templates.MISSING)
        self.assertEqual(templates.render("{{ value_json.x | default(0) }}", b"{}"), 0)
        with self.assertRaises(templates.TemplateError):
            templates.check("{% if value == 'on' %}ON{% endif %}")

    def test_a_switch_with_sensors_is_one_device(self):
        self.config("homeassistant/switch/t1_RL_1/config", TASMOTA_SWITCH)
        self.config("homeassistant/sensor/t1_power/config", {
            "name": "Power", "stat_t": "tasmota_1/tele/SENSOR", "val_tpl": "{{value_json.ENERGY.Power}}",
            "dev_cla": "power", "unit_of_meas": "kW", "uniq_id": "t1_power", "dev": {"ids": ["t1"]}})
        self.assertIn("tasmota_1/tele/STATE", self.subs.topics)
        self.ha.handle_state("tasmota_1/tele/STATE", b'{"POWER":"ON"}')
        self.ha.handle_state("tasmota_1/tele/SENSOR", b'{"ENERGY":{"Power":0.25}}')
        self.ha.handle_state("tasmota_1/tele/LWT", b"Offline")
        plug = self.registry.get("ha-t1")
        self.assertEqual((plug.name, plug.device_class, plug.firmware), ("Plug", "switch", "13.2.0"))
        self.assertEqual(plug.values, {"state": "ON", "power": 250.0})
        self.assertFalse(self.registry.online(plug))
        self.assertEqual(self.ha.command("ha-t1", "toggle", {}), ("tasmota_1/cmnd/POWER", "OFF", 0, False))

    def test_second_relay_is_its_own_device(self):
        self.config("homeassistant/switch/t1_RL_1/config", TASMOTA_SWITCH)
        second = dict(TASMOTA_SWITCH, name="Relay 2", uniq_id="t1_RL_2", cmd_t="~cmnd/POWER2")
        self.config("homeassistant/switch/t1_RL_2/config", second)
        self.assertEqual(self.ha.command("ha-t1-t1_RL_2", "turn_on", {})[0], "tasmota_1/cmnd/POWER2")

    def test_binary_sensor_door_is_inverted_into_contact(self):
        self.config("homeassistant/binary_sensor/d/door/config", {
            "name": "Door", "stat_t": "d/door", "dev_cla": "door", "pl_on": "open", "pl_off": "closed",
            "dev": {"ids": "d"}})
        self.ha.handle_state("d/door", b"open")
        self.assertEqual(self.registry.get("ha-d").values, {"contact": False})

    def test_json_light_commands(self):
        self.config("homeassistant/light/esp/l/config", {
            "name": "L", "schema": "json", "stat_t": "esp/l/state", "cmd_t": "esp/l/command", "brightness": True,
            "dev": {"ids": "esp"}})
        self.ha.handle_state("esp/l/state", b'{"state":"ON","brightness":255}')
        self.assertEqual(self.registry.get("ha-esp").values, {"state": "ON", "brightness": 254.0})
        topic, payload, _, _ = self.ha.command("ha-esp", "set_brightness", {"level": 20})
        self.assertEqual((topic, json.loads(payload)), ("esp/l/command", {"state": "ON", "brightness": 51}))

    def test_device_based_discovery(self):
        self.config("homeassistant/device/plug2/config", {
            "dev": {"ids": "plug2", "name": "Plug 2"}, "o": {"name": "fw"}, "avty_t": "plug2/status",
            "cmps": {"relay": {"p": "switch", "cmd_t": "plug2/relay/set", "stat_t": "plug2/relay"},
                     "watts": {"p": "sensor", "dev_cla": "power", "unit_of_meas": "W", "stat_t": "plug2/power"}}})
        self.ha.handle_state("plug2/relay", b"ON")
        self.ha.handle_state("plug2/power", b"12.5")
        self.ha.handle_state("plug2/status", b"offline")
        plug = self.registry.get("ha-plug2")
        self.assertEqual((plug.name, plug.device_class), ("Plug 2", "switch"))
        self.assertEqual(plug.values, {"state": "ON", "power": 12.5})
        self.assertFalse(self.registry.online(plug))
        self.assertEqual(self.ha.command("ha-plug2", "turn_off", {})[:2], ("plug2/relay/set", "OFF"))

    def test_zigbee2mqtt_published_entities_and_removals(self):
        self.config("homeassistant/sensor/0x1/temperature/config", {
            "stat_t": "zigbee2mqtt/x", "dev_cla": "temperature", "dev": {"ids": ["zigbee2mqtt_0x1"]}})
        self.assertEqual(self.registry.devices(), [])
        self.config("homeassistant/switch/t1_RL_1/config", TASMOTA_SWITCH)
        self.assertTrue(self.ha.handle("homeassistant/switch/t1_RL_1/config", b""))
        self.assertNotIn("tasmota_1/tele/STATE", self.subs.topics)


if __name__ == "__main__":
    unittest.main()
