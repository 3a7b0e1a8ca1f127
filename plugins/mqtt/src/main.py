"""The MQTT plugin: Zigbee2MQTT and Home Assistant MQTT discovery devices through one broker."""

import os
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "sdk-python"))

from tessera_plugin import (  # noqa: E402
    DEVICE_UNREACHABLE, INVALID_CONFIG, UNKNOWN_DEVICE, Plugin, PluginError, run)

import mqtt_client  # noqa: E402
from devices import Registry, now_ms  # noqa: E402
from ha_discovery import HomeAssistantDiscovery  # noqa: E402
from zigbee2mqtt import ActionError, Zigbee2Mqtt  # noqa: E402


def setting(config, name, kind, default):
    value = config.get(name, default)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise PluginError(INVALID_CONFIG, f"config.{name} must be a {kind.__name__}, got {value!r}") from None


class MqttPlugin(Plugin):
    def initialize(self, config, secrets, state_dir):
        url = setting(config, "broker_url", str, "mqtt://127.0.0.1:1883")
        try:
            host, port = mqtt_client.parse_url(url)
        except ValueError as e:
            raise PluginError(INVALID_CONFIG, f"config.broker_url: {e}") from None
        client_id = setting(config, "client_id", str, "") or f"tessera-{uuid.uuid4().hex[:10]}"
        z2m_base = setting(config, "zigbee2mqtt_base_topic", str, "zigbee2mqtt").strip("/")
        ha_prefix = setting(config, "homeassistant_discovery_prefix", str, "homeassistant").strip("/")
        self.discovery_wait = setting(config, "discovery_wait_ms", int, 3000) / 1000.0
        # Credentials are secrets; the plain config keys exist for throwaway test brokers only,
        # because the CLI cannot hand secrets over yet.
        username = secrets.get("username") or config.get("username") or None
        password = secrets.get("password") or config.get("password") or None
        self.last_message = time.monotonic()
        self.registry = Registry(self.emit)
        self.client = mqtt_client.Client(
            host, port, client_id, username, password,
            keepalive=setting(config, "keepalive_s", int, 30),
            on_message=self._on_message, on_connection=self.registry.set_connected, log=self.log,
            max_backoff=max(0.5, setting(config, "max_backoff_ms", int, 30000) / 1000.0))
        self.z2m = Zigbee2Mqtt(z2m_base, self.registry, self.log) if z2m_base else None
        self.ha = HomeAssistantDiscovery(
            ha_prefix, self.registry, self.client, self.log,
            skip_identifier=self.z2m.owns_identifier if self.z2m else None) if ha_prefix else None
        for source in (self.z2m, self.ha):
            for topic_filter in source.filters() if source else []:
                self.client.subscribe(topic_filter, 1)
        self.snapshot_ms = 0
        self.client.start()

    def _on_message(self, topic, payload, retained):
        self.last_message = time.monotonic()
        if self.ha is not None and self.ha.handle(topic, payload):
            return
        if self.z2m is not None:
            self.z2m.handle(topic, payload)
        if self.ha is not None:
            self.ha.handle_state(topic, payload)

    def discover(self):
        """Waits for the broker's retained messages to settle, then reports every device found."""
        deadline = time.monotonic() + self.discovery_wait
        if self.client.wait_connected(self.discovery_wait):
            while time.monotonic() < deadline and time.monotonic() - self.last_message < 0.5:
                time.sleep(0.1)
        self.snapshot_ms = now_ms()
        return self.registry.snapshot()

    def start(self):
        self.registry.start_streaming(self.snapshot_ms)

    def invoke(self, external_id, action, params, dry_run):
        device = self.registry.get(external_id)
        if device is None:
            raise PluginError(UNKNOWN_DEVICE, f"no device {external_id}")
        try:
            if device.source == "zigbee2mqtt" and self.z2m is not None:
                topic, payload = self.z2m.command(external_id, action, params)
                qos, retain = 1, False
            elif device.source == "homeassistant" and self.ha is not None:
                topic, payload, qos, retain = self.ha.command(external_id, action, params)
            else:
                raise ActionError(UNKNOWN_DEVICE, f"no source for {external_id}")
        except ActionError as e:
            raise PluginError(e.code, str(e)) from None
        except (KeyError, TypeError, ValueError) as e:
            raise PluginError(-32602, f"invalid parameters for {action}: {e}") from None
        if dry_run:
            return f"would publish {payload} to {topic}"
        try:
            self.client.publish(topic, payload, qos=max(qos, 1), retain=retain)
        except mqtt_client.MqttError as e:
            raise PluginError(DEVICE_UNREACHABLE, f"cannot publish to {topic}: {e}") from None
        return f"published {payload} to {topic}"

    def shutdown(self):
        client = getattr(self, "client", None)
        if client is not None:
            client.stop()


if __name__ == "__main__":
    run(MqttPlugin())
