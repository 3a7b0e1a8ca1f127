"""The load generator plugin: synthetic temperature readings at a configured rate.

Readings go round-robin over `devices` virtual devices (`lg-0`, `lg-1`, ...), `batch` at a time.
Each reading carries the wall-clock time it was written as `observed_at_ms`, so a benchmark on the
same machine can measure the delay from emission to delivery. With `rate` > 0 the pace is
open-loop (a late batch is written at once, without waiting); with `rate` = 0 the generator writes
as fast as the host reads, which makes the pipeline's backpressure the only limit.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "plugins", "sdk-python"))

from tessera_plugin import INVALID_CONFIG, Plugin, PluginError, run  # noqa: E402

RECORD = "tessera.loadgen.Reading"
# A generator that falls behind its schedule catches up at most this much; the rest is skipped.
MAX_CATCH_UP_S = 1.0


def _number(config, key, default, kind):
    try:
        return kind(config.get(key, default))
    except (TypeError, ValueError):
        raise PluginError(INVALID_CONFIG, f"{key} must be a number") from None


class LoadGen(Plugin):
    def initialize(self, config, secrets, state_dir):
        self.rate = _number(config, "rate", 1000.0, float)
        devices = _number(config, "devices", 1000, int)
        self.batch = _number(config, "batch", 100, int)
        if self.rate < 0 or devices < 1 or self.batch < 1:
            raise PluginError(INVALID_CONFIG, "rate must be >= 0, devices and batch >= 1")
        self.ids = [f"lg-{i}" for i in range(devices)]

    def discover(self):
        # Devices announce themselves with their first reading; a discovery answer listing tens
        # of thousands of devices would exceed the protocol's message limit.
        return []

    def start(self):
        threading.Thread(target=self._loop, daemon=True).start()

    def _lines(self, seq, now_ms):
        """`batch` observe notifications, formatted by hand: json.dumps would halve the rate."""
        ids, n = self.ids, len(self.ids)
        lines = []
        for k in range(seq, seq + self.batch):
            device = ids[k % n]
            lines.append(
                '{"jsonrpc":"2.0","method":"observe","params":{"external_id":"%s","record":"%s",'
                '"payload":{"device_id":"%s","seq":%d,"value":%.1f},"observed_at_ms":%d}}\n'
                % (device, RECORD, device, k, 15.0 + (k % 200) / 10.0, now_ms)
            )
        return "".join(lines)

    def _loop(self):
        interval = self.batch / self.rate if self.rate > 0 else 0.0
        next_at = time.monotonic()
        seq = 0
        while not self.stopping.is_set():
            if interval:
                delay = next_at - time.monotonic()
                if delay > 0 and self.stopping.wait(delay):
                    return
                next_at = max(next_at + interval, time.monotonic() - MAX_CATCH_UP_S)
            text = self._lines(seq, int(time.time() * 1000))
            seq += self.batch
            # One write per batch under the SDK's output lock, so that replies to the host's
            # requests (heartbeats) never interleave with a half-written batch.
            with self._out_lock:
                sys.stdout.write(text)
                sys.stdout.flush()


if __name__ == "__main__":
    run(LoadGen())
