"""Crashes (exit code 70) shortly after it starts streaming."""

import os
import sys

# The SDK is one file; these test packages use it from the repository.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "plugins", "sdk-python"))

from tessera_plugin import Plugin, run  # noqa: E402

RECORD = "tessera.test.Reading"

import threading
import time


class Crasher(Plugin):
    def start(self):
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        for seq in range(3):
            self.emit("crash-1", RECORD, {"device_id": "crash-1", "seq": seq, "value": None})
            time.sleep(0.1)
        os._exit(70)


if __name__ == "__main__":
    run(Crasher())
