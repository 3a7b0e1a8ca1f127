"""Daemonizes a grandchild out of its process group (setsid), then crashes (exit code 71)."""

import os
import sys
import threading
import time

# The SDK is one file; these test packages use it from the repository.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "plugins", "sdk-python"))

from tessera_plugin import Plugin, run  # noqa: E402


def daemonize():
    """The classic double fork: the grandchild is in a new session, reparented away from us."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            time.sleep(3600)
        os._exit(0)


class Escaper(Plugin):
    def start(self):
        daemonize()
        threading.Timer(0.3, lambda: os._exit(71)).start()


if __name__ == "__main__":
    run(Escaper())
