"""A well-behaved plugin: emits `count` numbered readings, then stays quiet and healthy."""

import os
import sys

# The SDK is one file; these test packages use it from the repository.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "plugins", "sdk-python"))

from tessera_plugin import Plugin, run  # noqa: E402

RECORD = "tessera.test.Reading"

import threading
import time


class Canary(Plugin):
    def initialize(self, config, secrets, state_dir):
        self.count = int(config.get("count", 500))
        self.interval = int(config.get("interval_ms", 40)) / 1000.0

    def discover(self):
        return [self.observation("canary-1", RECORD, {"device_id": "canary-1", "seq": 0, "value": None})]

    def start(self):
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        for seq in range(1, self.count):
            if self.stopping.wait(self.interval):
                return
            self.emit("canary-1", RECORD, {"device_id": "canary-1", "seq": seq, "value": float(seq)})


if __name__ == "__main__":
    run(Canary())
