"""Burns CPU in a loop while still answering heartbeats: stopped by its CPU time limit."""

import os
import sys

# The SDK is one file; these test packages use it from the repository.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "plugins", "sdk-python"))

from tessera_plugin import Plugin, run  # noqa: E402

RECORD = "tessera.test.Reading"

import threading


class Spinner(Plugin):
    def start(self):
        threading.Thread(target=self._spin, daemon=True).start()

    def _spin(self):
        n = 0
        while True:
            n += 1


if __name__ == "__main__":
    run(Spinner())
