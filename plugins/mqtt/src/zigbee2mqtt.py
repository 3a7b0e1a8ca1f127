"""Zigbee2MQTT: devices from the retained `<base>/bridge/devices`, states from `<base>/<name>`,
availability from `<base>/<name>/availability` and `<base>/bridge/state`, actions published to
`<base>/<name>/set` in the JSON the bridge expects.

Capabilities come from each device's `definition.exposes`, for any device: every exposed feature
whose name is a standard property (temperature, state, brightness, contact, ...) is bound to a
record field; features on an endpoint (`state_l1`) become a device of their own, so multi-gang
switches get one unified device per gang. Everything else a device reports is kept in `extras`.
"""

import json
from collections import OrderedDict

from devices import classify
from fields import normalize, to_number

SOURCE = "zigbee2mqtt"
ACCESS_SET = 2
# Messages for devices not (yet) in the device list are kept until it arrives.
MAX_PENDING = 2000

# Feature name -> record field for plain sensors, wherever they appear.
SENSOR_FIELDS = {
    "temperature": "temperature", "humidity": "humidity", "pressure": "pressure",
    "illuminance_lux": "illuminance", "co2": "co2", "voc": "voc", "pm25": "pm25", "battery": "battery",
    "linkquality": "linkquality", "voltage": "voltage", "current": "current", "power": "power",
    "energy": "energy", "power_factor": "power_factor", "ac_frequency": "frequency",
    "contact": "contact", "occupancy": "occupancy", "presence": "occupancy", "water_leak": "water_leak",
    "smoke": "smoke", "vibration": "vibration", "tamper": "tamper", "battery_low": "battery_low",
    "pm10": "pm10", "co": "carbon_monoxide", "gas": "gas_leak", "carbon_monoxide": "co_alarm",
}
BINARY_FIELDS = {"contact", "occupancy", "water_leak", "smoke", "vibration", "tamper", "battery_low", "gas_leak",
                 "co_alarm"}
# Roles inside a specific group (light, switch, cover, ...) -> record field (None: action only).
ROLE_FIELDS = {"state": "state", "brightness": "brightness", "color_temp": "color_temp_kelvin",
               "position": "position", "tilt": "tilt", "cover_state": None, "lock_cmd": None,
               "lock_state": "lock_state", "setpoint": "setpoint", "system_mode": "system_mode",
               "local_temperature": "temperature"}
MICRO_UG = ("µg/m³", "μg/m³", "ug/m3")


class ActionError(Exception):
    """An action that cannot be run: `code` is a protocol error code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def parse_availability(payload):
    """`online`/`offline`, or `{"state": "online"}` (Zigbee2MQTT 1.x and 2.x) → True/False/None."""
    text = payload.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text).get("state", ""))
        except (ValueError, AttributeError):
            return None
    return {"online": True, "offline": False}.get(text.lower())


def flatten(exposes, group=None):
    """(feature, group) for every feature with a property; composites are kept whole."""
    for expose in exposes if isinstance(exposes, list) else []:
        if not isinstance(expose, dict):
            continue
        kind = expose.get("type")
        if kind in ("light", "switch", "fan", "cover", "lock", "climate") and isinstance(expose.get("features"), list):
            yield from flatten(expose["features"], kind)
        elif expose.get("property"):
            yield expose, group


def role_of(feature, group):
    """The role a feature plays: a key of ROLE_FIELDS, a sensor field, or None."""
    name = feature.get("name") or feature.get("property")
    if group in ("light", "switch", "fan") and name == "state":
        return "state"
    if group == "light" and name in ("brightness", "color_temp"):
        return name
    if group == "cover":
        return {"position": "position", "tilt": "tilt", "state": "cover_state"}.get(name)
    if group == "lock":
        return {"state": "lock_cmd", "lock_state": "lock_state"}.get(name)
    if group == "climate":
        if name in ("occupied_heating_setpoint", "current_heating_setpoint"):
            return "setpoint"
        if name in ("system_mode", "local_temperature"):
            return name
        return None
    if name == "illuminance":
        # Zigbee2MQTT 2.x reports lux here; 1.x a raw value beside `illuminance_lux`.
        return "illuminance" if feature.get("unit") in ("lx", "lux") else None
    if name == "voc" and feature.get("unit") not in MICRO_UG:
        return None  # ppb cannot be converted to µg/m³ without the gas's molar mass
    return SENSOR_FIELDS.get(name)


def field_of(role):
    """The record field a role fills; sensor roles are field names already."""
    return ROLE_FIELDS[role] if role in ROLE_FIELDS else role


class Unit:
    """One unified device made of a Zigbee device's features (all of them, or one endpoint's)."""

    def __init__(self, external_id, name):
        self.external_id, self.name = external_id, name
        self.roles = {}  # role -> feature
        self.groups = set()


class ZDevice:
    def __init__(self, entry):
        self.ieee = str(entry["ieee_address"])
        self.friendly_name = str(entry.get("friendly_name") or self.ieee)
        definition = entry.get("definition") or {}
        self.vendor = definition.get("vendor")
        self.model = definition.get("model")
        self.firmware = entry.get("software_build_id")
        self.units = OrderedDict()
        main = self.units[None] = Unit(f"z2m-{self.ieee}", self.friendly_name)
        for feature, group in flatten(definition.get("exposes")):
            endpoint = feature.get("endpoint")
            unit = main if not endpoint else self.units.setdefault(
                endpoint, Unit(f"z2m-{self.ieee}-{endpoint}", f"{self.friendly_name} {endpoint}"))
            role = role_of(feature, group)
            if group:
                unit.groups.add(group)
            if role and role not in unit.roles:
                unit.roles[role] = feature
        self.bound = {f.get("property") for u in self.units.values() for f in u.roles.values()}


def convert(role, feature, raw):
    """A raw property value as its record field's value (None when it does not fit)."""
    field = field_of(role)
    if role == "state":
        if raw == feature.get("value_on", "ON"):
            return "ON"
        if raw == feature.get("value_off", "OFF"):
            return "OFF"
        return None
    if role == "brightness":
        top = feature.get("value_max") or 254
        number = to_number(raw)
        return None if number is None else round(min(254.0, max(0.0, number * 254.0 / top)), 3)
    if role == "color_temp":
        mired = to_number(raw)
        return None if mired is None or mired <= 0 else normalize("color_temp_kelvin", 1_000_000.0 / mired)
    if field in BINARY_FIELDS:
        # value_on is the "active" state (HA's on). For contact that is open; ours means closed.
        if raw == feature.get("value_on", True):
            return field != "contact"
        if raw == feature.get("value_off", False):
            return field == "contact"
        return None
    if field is None:
        return None
    if field in ("lock_state", "system_mode"):
        return normalize(field, raw)
    return normalize(field, raw, feature.get("unit"))


class Zigbee2Mqtt:
    """The Zigbee2MQTT bridge under one base topic."""

    def __init__(self, base, registry, log):
        self.base = base.strip("/")
        self.registry = registry
        self.log = log
        self.by_name = {}
        self.units = {}  # external id -> (ZDevice, Unit)
        self.pending = OrderedDict()

    def filters(self):
        return [f"{self.base}/#"]

    def owns_identifier(self, identifier):
        """Whether a Home Assistant discovery device is one of this bridge's (published by it)."""
        return str(identifier).startswith("zigbee2mqtt_")

    def handle(self, topic, payload):
        """Handles a message if it is under the base topic; returns whether it was."""
        if not topic.startswith(self.base + "/"):
            return False
        rest = topic[len(self.base) + 1:]
        if rest == "bridge/devices":
            self._devices(payload)
        elif rest == "bridge/state":
            online = parse_availability(payload)
            if online is not None:
                self.registry.set_source_online(SOURCE, online)
        elif not rest.startswith("bridge/"):
            self._device_message(topic, rest, payload)
        return True

    def _device_message(self, topic, rest, payload):
        if rest in self.by_name:
            self._state(self.by_name[rest], payload)
        elif rest.endswith("/availability") and rest[:-13] in self.by_name:
            online = parse_availability(payload)
            if online is not None:
                for unit in self.by_name[rest[:-13]].units.values():
                    self.registry.set_available(unit.external_id, online)
        elif not rest.endswith(("/set", "/get")) and "/set/" not in rest:
            # Retained states may arrive before the device list: keep the latest per topic.
            self.pending.pop(topic, None)
            self.pending[topic] = payload
            while len(self.pending) > MAX_PENDING:
                self.pending.popitem(last=False)

    def _devices(self, payload):
        try:
            entries = json.loads(payload.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            self.log("warn", f"{self.base}/bridge/devices is not JSON: {e}")
            return
        if not isinstance(entries, list):
            return
        seen = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("type") == "Coordinator" or entry.get("disabled"):
                continue
            if not entry.get("ieee_address") or not isinstance(entry.get("definition"), dict):
                continue  # not interviewed or not supported: nothing to expose yet
            try:
                device = ZDevice(entry)
            except (KeyError, TypeError, ValueError) as e:
                self.log("warn", f"skipping Zigbee device {entry.get('ieee_address')}: {e}")
                continue
            seen[device.friendly_name] = device
        gone = [u for name, d in self.by_name.items() if name not in seen for u in d.units.values()]
        self.by_name = seen
        self.units = {u.external_id: (d, u) for d in seen.values() for u in d.units.values()}
        for device in seen.values():
            for unit in device.units.values():
                fields = [field_of(r) for r in unit.roles if field_of(r)]
                self.registry.upsert(unit.external_id, SOURCE, name=unit.name,
                                     device_class=classify(unit.groups, fields), manufacturer=device.vendor,
                                     model=device.model, firmware=device.firmware)
        for unit in gone:
            if unit.external_id not in self.units:
                self.registry.set_available(unit.external_id, False)
        for topic in [t for t in self.pending if t[len(self.base) + 1:].split("/availability")[0] in seen]:
            self._device_message(topic, topic[len(self.base) + 1:], self.pending.pop(topic))

    def _state(self, device, payload):
        try:
            state = json.loads(payload.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(state, dict):
            return
        for key, unit in device.units.items():
            values = {}
            for role, feature in unit.roles.items():
                prop = feature.get("property")
                if prop in state and field_of(role):
                    values[field_of(role)] = convert(role, feature, state[prop])
            extras = {k: v for k, v in state.items() if k not in device.bound} if key is None else None
            self.registry.update(unit.external_id, values, extras)

    # ----- actions -----
    def command(self, external_id, action, params):
        """(topic, JSON payload) that runs `action` on the device. Raises ActionError."""
        found = self.units.get(external_id)
        if found is None:
            raise ActionError(1001, f"no Zigbee2MQTT device {external_id}")
        device, unit = found

        def feature(role):
            f = unit.roles.get(role)
            if f is None or not (int(f.get("access", ACCESS_SET)) & ACCESS_SET):
                raise ActionError(1002, f"{device.friendly_name} cannot {action}")
            return f

        if action in ("turn_on", "turn_off", "toggle"):
            f = feature("state")
            value = {"turn_on": f.get("value_on", "ON"), "turn_off": f.get("value_off", "OFF"),
                     "toggle": f.get("value_toggle", "TOGGLE")}[action]
            body = {f["property"]: value}
        elif action == "set_brightness":
            f = feature("brightness")
            low, high = f.get("value_min", 0), f.get("value_max", 254)
            body = {f["property"]: int(min(high, max(low, round(float(params["level"]) * high / 100.0))))}
        elif action == "set_color_temperature":
            f = feature("color_temp")
            mired = round(1_000_000.0 / float(params["kelvin"]))
            body = {f["property"]: int(min(f.get("value_max", 1000), max(f.get("value_min", 0), mired)))}
        elif action in ("open_cover", "close_cover", "stop_cover"):
            f = feature("cover_state")
            body = {f["property"]: {"open_cover": "OPEN", "close_cover": "CLOSE", "stop_cover": "STOP"}[action]}
        elif action in ("set_cover_position", "set_cover_tilt"):
            role, param = ("position", "position") if action == "set_cover_position" else ("tilt", "tilt")
            body = {feature(role)["property"]: int(round(float(params[param])))}
        elif action in ("lock", "unlock"):
            f = feature("lock_cmd")
            body = {f["property"]: f.get("value_on", "LOCK") if action == "lock" else f.get("value_off", "UNLOCK")}
        elif action == "set_setpoint":
            f = feature("setpoint")
            value = float(params["temperature"])
            if not f.get("value_min", value) <= value <= f.get("value_max", value):
                raise ActionError(-32602, f"{value} is outside the device's range")
            body = {f["property"]: value}
        elif action == "set_thermostat_mode":
            f = feature("system_mode")
            if params["mode"] not in f.get("values", [params["mode"]]):
                raise ActionError(-32602, f"{device.friendly_name} has no mode {params['mode']}")
            body = {f["property"]: params["mode"]}
        else:
            raise ActionError(1002, f"action {action} is not supported")
        return f"{self.base}/{device.friendly_name}/set", json.dumps(body, separators=(",", ":"))
