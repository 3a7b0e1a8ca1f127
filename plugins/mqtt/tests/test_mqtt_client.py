import unittest

import helpers  # noqa: F401
import mqtt_client as m


class WireFormat(unittest.TestCase):
    def test_remaining_length_round_trips(self):
        for n in (0, 127, 128, 16383, 16384, 2_097_151, 2_097_152):
            data = bytearray(bytes([0x30]) + m.encode_length(n) + bytes(n))
            kind, flags, body = m.take_packet(data)
            self.assertEqual((kind, len(body), len(data)), (m.PUBLISH, n, 0))

    def test_incomplete_packets_wait_for_more_bytes(self):
        whole = m.packet(m.PUBLISH, 0, m.encode_string("a/b") + b"hello")
        buf = bytearray(whole[:4])
        self.assertIsNone(m.take_packet(buf))
        buf += whole[4:] + whole[:1]
        self.assertEqual(m.take_packet(buf)[2], m.encode_string("a/b") + b"hello")
        self.assertEqual(bytes(buf), whole[:1])

    def test_publish_with_qos_1_carries_a_packet_id(self):
        body = m.encode_string("t") + (7).to_bytes(2, "big") + b"x"
        self.assertEqual(m.parse_publish(0b0011, body), ("t", b"x", 1, True, 7))

    def test_connect_packet_sets_credential_flags(self):
        data = bytearray(m.connect_packet("id", 30, "user", "pw"))
        kind, _, body = m.take_packet(data)
        self.assertEqual(kind, m.CONNECT)
        self.assertEqual(body[:6], m.encode_string("MQTT"))
        self.assertEqual(body[6], 4)
        self.assertEqual(body[7], 0x80 | 0x40 | 0x02)

    def test_oversized_packets_are_refused(self):
        data = bytearray(bytes([0x30]) + m.encode_length(m.MAX_PACKET_BYTES + 1))
        with self.assertRaises(m.MqttError):
            m.take_packet(data)


class Topics(unittest.TestCase):
    def test_wildcards(self):
        self.assertTrue(m.topic_matches("zigbee2mqtt/#", "zigbee2mqtt/bridge/devices"))
        self.assertTrue(m.topic_matches("a/+/c", "a/b/c"))
        self.assertFalse(m.topic_matches("a/+/c", "a/b/d"))
        self.assertFalse(m.topic_matches("a/+", "a/b/c"))
        self.assertTrue(m.topic_matches("a/#", "a"))
        self.assertFalse(m.topic_matches("#", "$SYS/broker/uptime"))

    def test_urls(self):
        self.assertEqual(m.parse_url("mqtt://broker.lan:1884"), ("broker.lan", 1884))
        self.assertEqual(m.parse_url("mqtt://10.0.0.2"), ("10.0.0.2", 1883))
        with self.assertRaises(ValueError):
            m.parse_url("mqtts://broker:8883")


if __name__ == "__main__":
    unittest.main()
