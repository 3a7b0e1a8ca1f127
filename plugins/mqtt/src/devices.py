"""The devices the plugin knows, their latest values and availability, and when to report them.

Both sources (Zigbee2MQTT and Home Assistant discovery) write into one registry. The registry
turns every change into one `tessera.mqtt.DeviceState` observation carrying the device's metadata,
its availability and only the values that changed, stamped with the time they were received.
Before the host calls `start`, changes are only remembered; `discover` returns a snapshot.
"""

import json
import threading
import time

RECORD = "tessera.mqtt.DeviceState"
# Unmapped properties are kept in the record's `extras`, up to this many per device.
MAX_EXTRAS = 64
MAX_EXTRA_CHARS = 512


def now_ms():
    return int(time.time() * 1000)


class Device:
    """One unified device: metadata, values by record field, and what its bridge says of it."""

    def __init__(self, external_id, source):
        self.external_id = external_id
        self.source = source
        self.name = external_id
        self.device_class = "sensor"
        self.manufacturer = self.model = self.firmware = None
        self.values = {}
        self.extras = {}
        self.available = None  # what its availability topic last said; None when it has none
        self.reported_online = None
        self.updated_ms = now_ms()


class Registry:
    """Devices by external id; every method is thread-safe."""

    def __init__(self, emit):
        self._emit = emit  # emit(external_id, record, payload, observed_at_ms)
        self._lock = threading.RLock()
        self._devices = {}
        self._streaming = False
        self.connected = False
        # Extra availability gates per source (e.g. the Zigbee2MQTT bridge itself being offline).
        self.source_online = {}

    # ----- reading -----
    def get(self, external_id):
        with self._lock:
            return self._devices.get(external_id)

    def devices(self):
        with self._lock:
            return list(self._devices.values())

    def online(self, device):
        if not self.connected or not self.source_online.get(device.source, True):
            return False
        return device.available is not False

    def payload(self, device, fields=None, include_extras=False):
        payload = {
            "external_id": device.external_id,
            "source": device.source,
            "name": device.name,
            "device_class": device.device_class,
            "manufacturer": device.manufacturer,
            "model": device.model,
            "firmware": device.firmware,
            "online": self.online(device),
        }
        names = device.values.keys() if fields is None else fields
        for name in names:
            if name in device.values:
                payload[name] = device.values[name]
        if include_extras and device.extras:
            payload["extras"] = dict(device.extras)
        return payload

    def snapshot(self):
        """One observation per device with everything known: the answer to `discover`."""
        with self._lock:
            out = []
            for d in self._devices.values():
                d.reported_online = self.online(d)
                out.append({"external_id": d.external_id, "record": RECORD,
                            "payload": self.payload(d, include_extras=True), "observed_at_ms": d.updated_ms})
            return out

    # ----- writing -----
    def start_streaming(self, since_ms):
        """From now on changes are emitted; devices changed after `since_ms` are sent at once."""
        with self._lock:
            self._streaming = True
            for device in self._devices.values():
                if device.updated_ms >= since_ms:
                    self._send(device, None, True)

    def upsert(self, external_id, source, **metadata):
        """Creates or updates a device's metadata; reports it when something changed."""
        with self._lock:
            device = self._devices.get(external_id)
            created = device is None
            if created:
                device = self._devices[external_id] = Device(external_id, source)
            changed = created
            for key, value in metadata.items():
                if getattr(device, key) != value:
                    setattr(device, key, value)
                    changed = True
            if changed:
                device.updated_ms = now_ms()
                self._send(device, [], False)
            return device

    def update(self, external_id, values, extras=None):
        """Records new values (field -> value, None meaning unknown) and reports the changed ones."""
        with self._lock:
            device = self._devices.get(external_id)
            if device is None:
                return
            fields = []
            for name, value in values.items():
                if value is None:
                    continue
                device.values[name] = value
                fields.append(name)
            for key, value in (extras or {}).items():
                if key in device.extras or len(device.extras) < MAX_EXTRAS:
                    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
                    device.extras[key] = text[:MAX_EXTRA_CHARS]
            if fields or extras:
                device.updated_ms = now_ms()
                self._send(device, fields, bool(extras))

    def set_available(self, external_id, available):
        with self._lock:
            device = self._devices.get(external_id)
            if device is not None and device.available != available:
                device.available = available
                self._report_availability(device)

    def set_connected(self, connected):
        with self._lock:
            self.connected = connected
            for device in self._devices.values():
                self._report_availability(device)

    def set_source_online(self, source, online):
        with self._lock:
            self.source_online[source] = online
            for device in self._devices.values():
                if device.source == source:
                    self._report_availability(device)

    def _report_availability(self, device):
        if self.online(device) != device.reported_online:
            device.updated_ms = now_ms()
            self._send(device, [], False)

    def _send(self, device, fields, include_extras):
        if not self._streaming:
            return
        device.reported_online = self.online(device)
        payload = self.payload(device, fields, include_extras)
        self._emit(device.external_id, RECORD, payload, now_ms())


# Device classes by the actuator groups a device has, strongest first.
_ACTUATOR_CLASSES = (("light", "light"), ("cover", "cover"), ("lock", "lock"), ("climate", "thermostat"),
                     ("switch", "switch"), ("fan", "switch"))
# ... and otherwise by the fields it reports.
_SENSOR_CLASSES = (({"power", "energy"}, "power_meter"), ({"smoke"}, "smoke_detector"),
                   ({"water_leak"}, "leak_sensor"), ({"contact"}, "contact_sensor"),
                   ({"occupancy"}, "motion_sensor"),
                   ({"temperature", "humidity", "pressure", "co2", "voc", "pm25", "illuminance"}, "climate_sensor"))


def classify(groups, fields):
    """The unified device class of a device with these actuator groups and record fields."""
    for group, device_class in _ACTUATOR_CLASSES:
        if group in groups:
            return device_class
    for wanted, device_class in _SENSOR_CLASSES:
        if wanted & set(fields):
            return device_class
    return "sensor"
