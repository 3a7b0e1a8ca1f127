"""One polled Shelly device: its components as unified devices, availability and backoff."""

import random
import threading
import time

import shelly

RECORD = "tessera.http.ShellyComponent"


def number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class Poller:
    """A configured device and what its last poll found."""

    def __init__(self, spec, emit, log, offline_after=2, min_backoff=0.5, max_backoff=30.0):
        self.spec = spec
        self.device = shelly.Device(spec["url"], spec["timeout"])
        self._emit, self.log = emit, log
        self.offline_after, self.min_backoff, self.max_backoff = max(1, offline_after), min_backoff, max_backoff
        self.info = None
        self.units = {}  # external id -> (kind, index)
        self.online = None
        self.failures = 0
        self.last = []  # observations of the last poll
        self.streaming = False
        self.lock = threading.Lock()

    def external_id(self, kind, index, first):
        return self.spec["id"] if first else f"{self.spec['id']}-{kind}{index}"

    def poll(self):
        """Reads the device once; reports every component, or that the device is offline."""
        with self.lock:
            try:
                if self.info is None:
                    self.info = self.device.device_info()
                status = self.device.status()
            except (shelly.Unreachable, shelly.RpcError) as e:
                self.failures += 1
                if self.failures == 1:
                    self.log("warn", f"{self.spec['id']}: {e}")
                if self.failures >= self.offline_after and self.online is not False:
                    self.online = False
                    self._report(self._offline())
                return False
            if self.online is False:
                self.log("info", f"{self.spec['id']}: reachable again")
            self.failures, self.online = 0, True
            self._report(self._observations(status))
            return True

    def _metadata(self, external_id, name, device_class):
        info = self.info if isinstance(self.info, dict) else {}
        return {"external_id": external_id, "name": name, "device_class": device_class, "manufacturer": "Shelly",
                "model": info.get("model") or info.get("app"), "firmware": info.get("ver"), "online": self.online}

    def _observations(self, status):
        info = self.info if isinstance(self.info, dict) else {}
        base = self.spec.get("name") or info.get("name") or info.get("id") or self.spec["id"]
        wifi, sys_status = status.get("wifi") or {}, status.get("sys") or {}
        out, units = [], {}
        for i, (kind, index, c) in enumerate(shelly.components(status)):
            external_id = self.external_id(kind, index, i == 0)
            units[external_id] = (kind, index)
            name = base if i == 0 else f"{base} {kind} {index}"
            p = self._metadata(external_id, name, kind)
            p["component"] = f"{kind}:{index}"
            if isinstance(c.get("output"), bool):
                p["output"] = c["output"]
            for key in ("brightness", "apower", "voltage", "current"):
                if number(c.get(key)) is not None:
                    p[key] = number(c[key])
            energy = c.get("aenergy")
            if isinstance(energy, dict) and number(energy.get("total")) is not None:
                p["aenergy"] = {"total": number(energy["total"])}
            temperature = c.get("temperature")
            if isinstance(temperature, dict) and number(temperature.get("tC")) is not None:
                p["temperature"] = {"tC": number(temperature["tC"]), "tF": number(temperature.get("tF"))}
            if number(wifi.get("rssi")) is not None:
                p["rssi"] = number(wifi["rssi"])
            if isinstance(wifi.get("sta_ip"), str):
                p["ip"] = wifi["sta_ip"]
            if number(sys_status.get("uptime")) is not None:
                p["uptime"] = number(sys_status["uptime"])
            out.append(p)
        self.units = units
        return out

    def _offline(self):
        ids = list(self.units) or [self.spec["id"]]
        return [self._metadata(i, self.spec.get("name") or i, (self.units.get(i) or ("generic",))[0]) for i in ids]

    def _report(self, payloads):
        at = int(time.time() * 1000)
        self.last = [{"external_id": p["external_id"], "record": RECORD, "payload": p, "observed_at_ms": at}
                     for p in payloads]
        if self.streaming:
            for p in payloads:
                self._emit(p["external_id"], RECORD, p, at)

    def run(self, stopping):
        backoff = self.min_backoff
        while not stopping.is_set():
            if self.poll():
                backoff, delay = self.min_backoff, self.spec["poll_interval"]
            else:
                delay = backoff
                backoff = min(backoff * 2, self.max_backoff)
            stopping.wait(delay * random.uniform(0.9, 1.1))

    def start(self, stopping):
        self.streaming = True
        threading.Thread(target=self.run, args=(stopping,), name=f"poll-{self.spec['id']}", daemon=True).start()
