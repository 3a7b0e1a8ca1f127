"""Leaks memory until its memory limit stops it."""

import os
import sys

# The SDK is one file; these test packages use it from the repository.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "plugins", "sdk-python"))

from tessera_plugin import Plugin, run  # noqa: E402

RECORD = "tessera.test.Reading"

import threading
import time


class Hog(Plugin):
    def start(self):
        threading.Thread(target=self._leak, daemon=True).start()

    def _leak(self):
        kept = []
        while True:
            kept.append(bytearray(8 * 1024 * 1024))
            time.sleep(0.01)


if __name__ == "__main__":
    run(Hog())
