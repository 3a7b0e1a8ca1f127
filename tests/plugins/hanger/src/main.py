"""Speaks the protocol on raw stdio (no SDK), then hangs: it stops reading requests after `start`,
so heartbeats go unanswered."""

import json
import sys
import time


def answer(request_id, result):
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    message = json.loads(line)
    method = message.get("method")
    if method == "initialize":
        answer(message["id"], {"protocol_version": 1})
    elif method == "discover":
        reading = {"device_id": "hang-1", "seq": 0, "value": None}
        answer(message["id"], {"observations": [
            {"external_id": "hang-1", "record": "tessera.test.Reading", "payload": reading}]})
    elif method == "start":
        answer(message["id"], {})
        while True:  # hung: alive, but deaf
            time.sleep(3600)
    else:
        answer(message["id"], {})
