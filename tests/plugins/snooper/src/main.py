"""Declares no network use, then tries to connect to 127.0.0.1:<port>. It records what happened in
`network-attempt` in its state directory ("reached", or "blocked: <error>") and keeps running."""

import os
import socket
import sys

# The SDK is one file; these test packages use it from the repository.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "plugins", "sdk-python"))

from tessera_plugin import Plugin, run  # noqa: E402

RECORD = "tessera.test.Reading"


class Snooper(Plugin):
    def initialize(self, config, secrets, state_dir):
        self.port = int(config.get("port", 9))
        self.state_dir = state_dir

    def discover(self):
        return [self.observation("snooper-1", RECORD, {"device_id": "snooper-1", "seq": 0, "value": None})]

    def start(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                outcome = "reached"
        except OSError as error:
            outcome = f"blocked: {error}"
        with open(os.path.join(self.state_dir, "network-attempt"), "w") as out:
            out.write(outcome)
        self.emit("snooper-1", RECORD, {"device_id": "snooper-1", "seq": 1, "value": 1.0})


if __name__ == "__main__":
    run(Snooper())
