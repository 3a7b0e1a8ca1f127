"""Writes lines that are not JSON-RPC and observations that break its contract."""

import os
import sys

# The SDK is one file; these test packages use it from the repository.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "plugins", "sdk-python"))

from tessera_plugin import Plugin, run  # noqa: E402

RECORD = "tessera.test.Reading"

import threading
import time


class Garbage(Plugin):
    def start(self):
        threading.Thread(target=self._lie, daemon=True).start()

    def _lie(self):
        seq = 0
        while not self.stopping.is_set():
            with self._out_lock:
                sys.stdout.write("this is not JSON\n")
                sys.stdout.flush()
            # `seq` must be a long: a string breaks the contract.
            self.emit("garbage-1", RECORD, {"device_id": "garbage-1", "seq": f"#{seq}", "value": None})
            seq += 1
            time.sleep(0.05)


if __name__ == "__main__":
    run(Garbage())
