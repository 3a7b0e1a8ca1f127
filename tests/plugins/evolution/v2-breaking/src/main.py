"""Emits one reading a second."""

import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "..", "plugins", "sdk-python"))

from tessera_plugin import Plugin, run  # noqa: E402

RECORD = "tessera.evolving.Reading"


class Evolving(Plugin):
    def discover(self):
        return [self.observation("e-1", RECORD, {"device_id": "e-1", "seq": 0, "battery": 99.0})]

    def start(self):
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        seq = 1
        while not self.stopping.wait(1.0):
            self.emit("e-1", RECORD, {"device_id": "e-1", "seq": seq, "battery": 99.0})
            seq += 1


if __name__ == "__main__":
    run(Evolving())
