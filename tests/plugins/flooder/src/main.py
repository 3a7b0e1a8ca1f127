"""Emits far more observations than its quota allows."""

import os
import sys

# The SDK is one file; these test packages use it from the repository.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "plugins", "sdk-python"))

from tessera_plugin import Plugin, run  # noqa: E402

RECORD = "tessera.test.Reading"

import threading
import time


class Flooder(Plugin):
    def start(self):
        threading.Thread(target=self._flood, daemon=True).start()

    def _flood(self):
        seq = 0
        while not self.stopping.is_set():
            for _ in range(50):
                self.emit("flood-1", RECORD, {"device_id": "flood-1", "seq": seq, "value": None})
                seq += 1
            time.sleep(0.1)


if __name__ == "__main__":
    run(Flooder())
