"""One polled Modbus device: block reads, decoding into record fields, availability and backoff."""

import random
import threading
import time

import registers as regs
import units
from config import CAPABILITIES
from modbus_client import Client, ModbusError, ModbusException

RECORD = "tessera.modbus.Reading"


class Meter:
    """A device of the configuration and what the plugin last read from it."""

    def __init__(self, spec, emit, log, offline_after=2, min_backoff=0.5, max_backoff=30.0):
        self.spec = spec
        self.external_id = spec["id"]
        self.client = Client(spec["host"], spec["port"], spec["unit_id"], spec["timeout"])
        self.blocks = regs.plan(spec["registers"], spec["max_gap"])
        self.by_capability = {r["capability"]: r for r in spec["registers"] if "capability" in r}
        self._emit, self.log = emit, log
        self.offline_after, self.min_backoff, self.max_backoff = max(1, offline_after), min_backoff, max_backoff
        self.streaming = False
        self.online = None
        self.failures = 0
        self.last = None  # (values, registers, observed_at_ms) of the last successful poll
        self._refused = set()

    # ----- reading -----
    def read(self):
        """(record field values, every register by name). Raises ModbusError when unreachable."""
        values, by_name = {}, {}
        with self.client.lock:
            for table, start, count, members in self.blocks:
                read = {"holding": self.client.read_holding_registers, "input": self.client.read_input_registers,
                        "coil": self.client.read_coils, "discrete": self.client.read_discrete_inputs}[table]
                try:
                    data = read(start, count)
                except ModbusException as e:
                    if e.gateway:
                        raise ModbusError(f"unit {self.client.unit_id} behind the gateway: {e}") from e
                    # Reachable, but this block is refused (a register the model lacks): skip it.
                    if (table, start) not in self._refused:
                        self._refused.add((table, start))
                        self.log("warn", f"{self.external_id}: {table} {start}+{count} refused: {e}")
                    continue
                for r in members:
                    offset = r["address"] - start
                    if table in ("coil", "discrete"):
                        value, raw = data[offset], None
                    else:
                        raw = regs.decode(data[offset:offset + regs.width(r)], r["type"], r["word_order"])
                        value = regs.scaled(r, raw)
                    if value is None:
                        continue
                    by_name[r["name"]] = float(value)
                    if "capability" in r:
                        values[r["capability"]] = self._field_value(r, value, raw)
        return {k: v for k, v in values.items() if v is not None}, by_name

    @staticmethod
    def _field_value(r, value, raw):
        kind, target = CAPABILITIES[r["capability"]]
        if kind == "bool":
            return bool(value) if raw is None else raw != r["off_value"]
        converted = units.convert(value, r.get("unit"), target)
        return None if converted is None else round(converted, 6)

    def poll(self):
        """Reads once; reports values or, after repeated failures, that the device is offline."""
        try:
            values, by_name = self.read()
        except ModbusError as e:
            self.failures += 1
            if self.failures == 1:
                self.log("warn", f"{self.external_id}: {e}")
            if self.failures >= self.offline_after and self.online is not False:
                self.online = False
                self._send({}, None)
            return False
        if self.online is False:
            self.log("info", f"{self.external_id}: reachable again")
        self.failures, self.online = 0, True
        self.last = (values, by_name, int(time.time() * 1000))
        self._send(values, by_name)
        return True

    # ----- reporting -----
    def payload(self, values, by_name):
        spec = self.spec
        payload = {"external_id": spec["id"], "name": spec["name"], "device_class": spec["device_class"],
                   "manufacturer": spec["manufacturer"], "model": spec["model"], "online": self.online}
        payload.update(values)
        if by_name:
            payload["registers"] = by_name
        return payload

    def observation(self):
        values, by_name, at = self.last or ({}, None, int(time.time() * 1000))
        return {"external_id": self.external_id, "record": RECORD, "payload": self.payload(values, by_name),
                "observed_at_ms": at}

    def _send(self, values, by_name):
        if self.streaming:
            self._emit(self.external_id, RECORD, self.payload(values, by_name))

    # ----- loop -----
    def run(self, stopping):
        """Polls until `stopping` is set: every poll interval, or with backoff while unreachable."""
        backoff = self.min_backoff
        while not stopping.is_set():
            if self.poll():
                backoff = self.min_backoff
                delay = self.spec["poll_interval"]
            else:
                delay = min(self.spec["poll_interval"], backoff) if self.failures < self.offline_after else backoff
                backoff = min(backoff * 2, self.max_backoff)
            stopping.wait(delay * random.uniform(0.9, 1.1))
        self.client.close()

    def start(self, stopping):
        self.streaming = True
        threading.Thread(target=self.run, args=(stopping,), name=f"poll-{self.external_id}", daemon=True).start()
