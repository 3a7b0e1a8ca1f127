"""Home Assistant MQTT discovery: entities announced on `<prefix>/<component>/[<node>/]<object>/config`
(as Tasmota, ESPHome, Shelly, OpenMQTTGateway and others publish them) grouped into devices by
their `device.identifiers`, with abbreviated keys and `~` topics expanded.

Supported components: `sensor` (by device_class and unit_of_measurement), `binary_sensor`,
`switch` and `light` (default schema with brightness/color temperature topics, or JSON schema),
plus the newer device-based discovery (`<prefix>/device/<id>/config` with `cmps`). A device with
more than one switch or light gets one unified device per actuator, so every relay is controllable.
"""

import json
import re

import templates
from devices import classify
from fields import normalize, to_number
from zigbee2mqtt import ActionError

SOURCE = "homeassistant"
COMPONENTS = ("sensor", "binary_sensor", "switch", "light")

ABBREVIATIONS = {
    "avty": "availability", "avty_mode": "availability_mode", "avty_t": "availability_topic",
    "avty_tpl": "availability_template", "bri_cmd_t": "brightness_command_topic", "bri_scl": "brightness_scale",
    "bri_stat_t": "brightness_state_topic", "bri_val_tpl": "brightness_value_template",
    "clr_temp_cmd_t": "color_temp_command_topic", "clr_temp_stat_t": "color_temp_state_topic",
    "clr_temp_val_tpl": "color_temp_value_template", "clr_temp_k": "color_temp_kelvin",
    "cmd_t": "command_topic", "cmd_tpl": "command_template", "dev": "device", "dev_cla": "device_class",
    "max_mirs": "max_mireds", "min_mirs": "min_mireds", "obj_id": "object_id", "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available", "pl_off": "payload_off", "pl_on": "payload_on", "ret": "retain",
    "stat_cla": "state_class", "stat_off": "state_off", "stat_on": "state_on", "stat_t": "state_topic",
    "stat_val_tpl": "state_value_template", "uniq_id": "unique_id", "unit_of_meas": "unit_of_measurement",
    "val_tpl": "value_template", "p": "platform", "o": "origin",
}
DEVICE_ABBREVIATIONS = {"cns": "connections", "ids": "identifiers", "mf": "manufacturer", "mdl": "model",
                        "sw": "sw_version", "hw": "hw_version", "sa": "suggested_area"}
AVAILABILITY_ABBREVIATIONS = {"t": "topic", "pl_avail": "payload_available", "pl_not_avail": "payload_not_available",
                              "val_tpl": "value_template"}

SENSOR_CLASSES = {
    "temperature": "temperature", "humidity": "humidity", "pressure": "pressure",
    "atmospheric_pressure": "pressure", "illuminance": "illuminance", "carbon_dioxide": "co2",
    "volatile_organic_compounds": "voc", "pm25": "pm25", "pm10": "pm10", "carbon_monoxide": "carbon_monoxide",
    "battery": "battery", "voltage": "voltage",
    "current": "current", "power": "power", "energy": "energy", "power_factor": "power_factor",
    "frequency": "frequency", "signal_strength": "signal_strength",
}
# binary_sensor device_class -> (field, inverted): HA's door "on" means open, our contact means closed.
BINARY_CLASSES = {
    "door": ("contact", True), "window": ("contact", True), "opening": ("contact", True),
    "garage_door": ("contact", True), "motion": ("occupancy", False), "occupancy": ("occupancy", False),
    "presence": ("occupancy", False), "moisture": ("water_leak", False), "smoke": ("smoke", False),
    "vibration": ("vibration", False), "tamper": ("tamper", False), "battery": ("battery_low", False),
    "gas": ("gas_leak", False), "carbon_monoxide": ("co_alarm", False),
}
TEMPLATE_KEYS = ("value_template", "state_value_template", "brightness_value_template", "color_temp_value_template")
UNKNOWN_STATES = ("", "unknown", "unavailable", "None", "none", "null")


def sanitize(text):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(text))[:120]


def expand(config):
    """Full key names, and the `~` base topic substituted into every topic."""
    out = {}
    for key, value in config.items():
        key = ABBREVIATIONS.get(key, key)
        if key == "device" and isinstance(value, dict):
            value = {DEVICE_ABBREVIATIONS.get(k, k): v for k, v in value.items()}
        if key == "availability" and isinstance(value, list):
            value = [{AVAILABILITY_ABBREVIATIONS.get(k, k): v for k, v in item.items()}
                     for item in value if isinstance(item, dict)]
        out[key] = value
    base = out.get("~")

    def tilde(topic):
        if not isinstance(base, str) or not isinstance(topic, str):
            return topic
        if topic.startswith("~"):
            return base + topic[1:]
        if topic.endswith("~"):
            return topic[:-1] + base
        return topic

    for key in [k for k in out if k.endswith("_topic")]:
        out[key] = tilde(out[key])
    for item in out.get("availability") or []:
        if isinstance(item, dict):
            item["topic"] = tilde(item.get("topic"))
    return out


def identifier_of(config, fallback):
    device = config.get("device") if isinstance(config.get("device"), dict) else {}
    ids = device.get("identifiers")
    if isinstance(ids, (str, int)):
        return str(ids)
    if isinstance(ids, list) and ids:
        return str(ids[0])
    connections = device.get("connections")
    if isinstance(connections, list) and connections and isinstance(connections[0], list) and connections[0][1:]:
        return str(connections[0][1])
    return str(config.get("unique_id") or fallback)


class Entity:
    """One discovered entity and the record fields it fills."""

    def __init__(self, key, component, config, unit_id):
        self.key, self.component, self.config, self.unit_id = key, component, config, unit_id
        self.fields = []
        self.inverted = False
        self.group = None
        device_class = config.get("device_class")
        if component == "sensor" and device_class in SENSOR_CLASSES:
            self.fields = [SENSOR_CLASSES[device_class]]
        elif component == "binary_sensor" and device_class in BINARY_CLASSES:
            field, self.inverted = BINARY_CLASSES[device_class]
            self.fields = [field]
        elif component == "switch":
            self.fields, self.group = ["state"], "switch"
        elif component == "light":
            self.group = "light"
            self.fields = ["state"]
            if self.json_schema and config.get("brightness") or config.get("brightness_state_topic") \
                    or config.get("brightness_command_topic"):
                self.fields.append("brightness")
            modes = config.get("supported_color_modes") or []
            if self.json_schema and ("color_temp" in modes or config.get("color_temp")) \
                    or config.get("color_temp_state_topic") or config.get("color_temp_command_topic"):
                self.fields.append("color_temp_kelvin")

    @property
    def json_schema(self):
        return self.config.get("schema") == "json"

    def priority(self):
        """Which of several entities of one device fills a field: totals over daily counters."""
        name = f"{self.config.get('name') or ''} {self.config.get('object_id') or ''} {self.key}".lower()
        score = 2 if self.config.get("state_class") in ("total", "total_increasing") else 0
        score += 1 if "total" in name else 0
        score -= 3 if ("today" in name or "yesterday" in name) else 0
        return score

    def availability(self):
        """(topic, available payload, unavailable payload, template) for each availability topic."""
        c = self.config
        items = c.get("availability") if isinstance(c.get("availability"), list) else []
        if not items and c.get("availability_topic"):
            items = [{"topic": c["availability_topic"], "payload_available": c.get("payload_available"),
                      "payload_not_available": c.get("payload_not_available"),
                      "value_template": c.get("availability_template")}]
        return [(i["topic"], str(i.get("payload_available") or "online"),
                 str(i.get("payload_not_available") or "offline"), i.get("value_template"))
                for i in items if isinstance(i.get("topic"), str)]

    def topics(self):
        """(topic, role) this entity listens to."""
        c = self.config
        out = [(c["state_topic"], "state")] if isinstance(c.get("state_topic"), str) else []
        for key, role in (("brightness_state_topic", "brightness"), ("color_temp_state_topic", "color_temp")):
            if isinstance(c.get(key), str):
                out.append((c[key], role))
        out.extend((topic, "availability") for topic, *_ in self.availability())
        return out


class Unit:
    def __init__(self, unit_id):
        self.unit_id = unit_id
        self.entities = {}  # key -> Entity
        self.claims = {}  # field -> entity key

    def actuator(self):
        return next((e for e in self.entities.values() if e.group), None)


class HomeAssistantDiscovery:
    """Discovery under one prefix; owns the subscriptions to the entities' state topics."""

    def __init__(self, prefix, registry, client, log, skip_identifier=None):
        self.prefix = prefix.strip("/")
        self.registry, self.client, self.log = registry, client, log
        self.skip_identifier = skip_identifier or (lambda identifier: False)
        self.entities = {}  # key -> Entity
        self.units = {}  # unit id -> Unit
        self.handlers = {}  # topic -> set of (entity key, role)

    def filters(self):
        return [f"{self.prefix}/#"]

    def handle(self, topic, payload):
        """Handles a discovery config; returns whether the topic was one."""
        if not topic.startswith(self.prefix + "/"):
            return False
        parts = topic[len(self.prefix) + 1:].split("/")
        if parts[-1] != "config" or len(parts) not in (3, 4):
            return True
        component = parts[0]
        if component not in COMPONENTS and component != "device":
            return True
        for key in [k for k in self.entities if k == topic or k.startswith(topic + "#")]:
            if not payload:
                self._remove(key)
        if not payload:
            return True
        try:
            config = json.loads(payload.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            self.log("warn", f"discovery config {topic} is not JSON: {e}")
            return True
        if not isinstance(config, dict):
            return True
        if component == "device":
            shared = {k: v for k, v in config.items() if k not in ("cmps", "components")}
            components = config.get("cmps") or config.get("components") or {}
            for cmp_id, cmp in components.items() if isinstance(components, dict) else []:
                if isinstance(cmp, dict):
                    merged = dict(shared, **cmp)
                    platform = merged.get("platform", merged.get("p"))
                    if platform in COMPONENTS:
                        self._add(f"{topic}#{cmp_id}", platform, merged, parts[-2])
        else:
            self._add(topic, component, config, parts[-2])
        return True

    def _add(self, key, component, raw, object_id):
        config = expand(raw)
        old = self.entities.get(key)
        if old is not None and old.config == config:
            return  # a retained config seen again after a reconnect
        if old is not None:
            self._remove(key)
        identifier = identifier_of(config, key)
        if self.skip_identifier(identifier):
            return
        for name in TEMPLATE_KEYS:
            if config.get(name) is not None:
                try:
                    templates.check(config[name])
                except templates.TemplateError as e:
                    self.log("warn", f"skipping {key}: {e}")
                    return
        unit_id = f"ha-{sanitize(identifier)}"
        device = config.get("device") if isinstance(config.get("device"), dict) else {}
        name = str(device.get("name") or config.get("name") or identifier)
        entity = Entity(key, component, config, unit_id)
        if not entity.fields:
            return
        existing = self.units.get(unit_id)
        if entity.group and existing is not None and existing.actuator() is not None:
            # A second relay or light of one device: a unified device of its own.
            suffix = sanitize(config.get("object_id") or config.get("unique_id") or object_id)
            unit_id = entity.unit_id = f"{unit_id}-{suffix}"
            name = f"{name} {config.get('name') or suffix}"
        unit = self.units.setdefault(unit_id, Unit(unit_id))
        unit.entities[key] = entity
        self.entities[key] = entity
        for field in entity.fields:
            current = unit.claims.get(field)
            if current is None or entity.priority() > unit.entities[current].priority():
                unit.claims[field] = key
        for topic, role in entity.topics():
            self.handlers.setdefault(topic, set()).add((key, role))
            self.client.subscribe(topic, 1)
        groups = {e.group for e in unit.entities.values() if e.group}
        metadata = {"device_class": classify(groups, list(unit.claims))}
        # Entities often repeat only the device's identifiers: keep what an earlier one told.
        if device.get("name") or self.registry.get(unit_id) is None:
            metadata["name"] = name
        for key, source in (("manufacturer", "manufacturer"), ("model", "model"), ("firmware", "sw_version")):
            if device.get(source):
                metadata[key] = str(device[source])
        self.registry.upsert(unit_id, SOURCE, **metadata)

    def _remove(self, key):
        entity = self.entities.pop(key, None)
        if entity is None:
            return
        unit = self.units.get(entity.unit_id)
        if unit is not None:
            unit.entities.pop(key, None)
            for field in [f for f, k in unit.claims.items() if k == key]:
                del unit.claims[field]
            if not unit.entities:
                del self.units[entity.unit_id]
                self.registry.set_available(entity.unit_id, False)
        for topic in list(self.handlers):
            self.handlers[topic] = {(k, r) for k, r in self.handlers[topic] if k != key}
            if not self.handlers[topic]:
                del self.handlers[topic]
                self.client.unsubscribe(topic)

    # ----- state -----
    def handle_state(self, topic, payload):
        for key, role in sorted(self.handlers.get(topic, ())):
            entity = self.entities.get(key)
            if entity is None:
                continue
            if role == "availability":
                self._availability(entity, topic, payload)
                continue
            values = self._values(entity, role, payload)
            unit = self.units.get(entity.unit_id)
            if unit is None:
                continue
            owned = {f: v for f, v in values.items() if unit.claims.get(f) == key}
            if owned:
                self.registry.update(entity.unit_id, owned)

    def _availability(self, entity, topic, payload):
        for t, available, unavailable, template in entity.availability():
            if t != topic:
                continue
            text = self._text(template, payload)
            if text == available:
                self.registry.set_available(entity.unit_id, True)
            elif text == unavailable:
                self.registry.set_available(entity.unit_id, False)

    @staticmethod
    def _text(template, payload):
        if not template:
            return payload.decode("utf-8", errors="replace").strip()
        value = templates.render(template, payload)
        return None if value is templates.MISSING or value is None else str(value).strip()

    def _values(self, entity, role, payload):
        c = entity.config
        scale = to_number(c.get("brightness_scale")) or 255.0
        if role == "brightness":
            level = to_number(self._text(c.get("brightness_value_template"), payload))
            return {"brightness": None if level is None else round(min(254.0, max(0.0, level * 254.0 / scale)), 3)}
        if role == "color_temp":
            return {"color_temp_kelvin": self._kelvin(c, self._text(c.get("color_temp_value_template"), payload))}
        if entity.component == "light" and entity.json_schema:
            try:
                state = json.loads(payload.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                return {}
            if not isinstance(state, dict):
                return {}
            level = to_number(state.get("brightness"))
            return {
                "state": state.get("state") if state.get("state") in ("ON", "OFF") else None,
                "brightness": None if level is None else round(min(254.0, max(0.0, level * 254.0 / scale)), 3),
                "color_temp_kelvin": self._kelvin(c, state.get("color_temp")),
            }
        text = self._text(c.get("value_template") or c.get("state_value_template"), payload)
        if text is None or text in UNKNOWN_STATES:
            return {}
        field = entity.fields[0]
        if entity.component == "sensor":
            return {field: normalize(field, text, c.get("unit_of_measurement"))}
        on = str(c.get("state_on", c.get("payload_on", "ON")))
        off = str(c.get("state_off", c.get("payload_off", "OFF")))
        if entity.component == "binary_sensor":
            if text not in (on, off):
                return {}
            return {field: (text == on) != entity.inverted}
        return {"state": "ON" if text == on else "OFF" if text == off else None}

    @staticmethod
    def _kelvin(config, raw):
        number = to_number(raw)
        if number is None or number <= 0:
            return None
        kelvin = number if config.get("color_temp_kelvin") else 1_000_000.0 / number
        return normalize("color_temp_kelvin", kelvin)

    # ----- actions -----
    def command(self, external_id, action, params):
        """(topic, payload, qos, retain) that runs `action`. Raises ActionError."""
        unit = self.units.get(external_id)
        if unit is None:
            raise ActionError(1001, f"no Home Assistant discovery device {external_id}")
        entity = unit.actuator()
        if entity is None or not isinstance(entity.config.get("command_topic"), str):
            raise ActionError(1002, f"{external_id} has nothing to command")
        c = entity.config
        qos, retain = min(1, int(to_number(c.get("qos")) or 0)), bool(c.get("retain", False))
        on, off = str(c.get("payload_on", "ON")), str(c.get("payload_off", "OFF"))
        known = self.registry.get(external_id)
        if action == "toggle":
            action = "turn_off" if known is not None and known.values.get("state") == "ON" else "turn_on"
        scale = to_number(c.get("brightness_scale")) or 255.0
        if entity.json_schema:
            if action in ("turn_on", "turn_off"):
                body = {"state": "ON" if action == "turn_on" else "OFF"}
            elif action == "set_brightness" and "brightness" in entity.fields:
                level = float(params["level"])
                body = {"state": "OFF"}
                if level > 0:
                    body = {"state": "ON", "brightness": int(round(level * scale / 100.0))}
            elif action == "set_color_temperature" and "color_temp_kelvin" in entity.fields:
                kelvin = float(params["kelvin"])
                body = {"state": "ON", "color_temp": int(round(kelvin if c.get("color_temp_kelvin") else 1e6 / kelvin))}
            else:
                raise ActionError(1002, f"{external_id} cannot {action}")
            return c["command_topic"], json.dumps(body, separators=(",", ":")), qos, retain
        if action in ("turn_on", "turn_off"):
            return c["command_topic"], on if action == "turn_on" else off, qos, retain
        if action == "set_brightness" and isinstance(c.get("brightness_command_topic"), str):
            return c["brightness_command_topic"], str(int(round(float(params["level"]) * scale / 100.0))), qos, retain
        if action == "set_color_temperature" and isinstance(c.get("color_temp_command_topic"), str):
            kelvin = float(params["kelvin"])
            value = kelvin if c.get("color_temp_kelvin") else 1e6 / kelvin
            return c["color_temp_command_topic"], str(int(round(value))), qos, retain
        raise ActionError(1002, f"{external_id} cannot {action}")
