import unittest

import helpers  # noqa: F401
import registers as r


class DataTypes(unittest.TestCase):
    def test_round_trips_in_both_word_orders(self):
        for kind, value in (("u16", 65535), ("i16", -2), ("u32", 123456), ("i32", -123456), ("f32", 230.5),
                            ("u64", 2**40), ("i64", -(2**40)), ("f64", 1234.5678)):
            for order in ("big", "little"):
                words = r.encode(value, kind, order)
                self.assertEqual(len(words), r.TYPES[kind][0])
                self.assertEqual(r.decode(words, kind, order), value, (kind, order))

    def test_word_order(self):
        self.assertEqual(r.encode(0x00010002, "u32", "big"), [1, 2])
        self.assertEqual(r.encode(0x00010002, "u32", "little"), [2, 1])

    def test_values_that_do_not_fit_are_refused(self):
        with self.assertRaises(ValueError):
            r.encode(70000, "u16")
        with self.assertRaises(ValueError):
            r.encode(-1, "u32")

    def test_scale_offset_and_float32_precision(self):
        reg = {"type": "i16", "scale": 0.1, "offset": -40.0}
        self.assertEqual(r.scaled(reg, 615), 21.5)
        self.assertEqual(r.raw_for(reg, 21.5), 615.0)
        f32 = {"type": "f32"}
        self.assertEqual(r.scaled(f32, r.decode(r.encode(230.1, "f32"), "f32")), 230.1)
        self.assertIsNone(r.scaled(f32, float("nan")))


class Plan(unittest.TestCase):
    @staticmethod
    def reg(table, address, kind="u16"):
        return {"name": f"{table}{address}", "table": table, "address": address, "type": kind}

    def test_contiguous_registers_are_read_together(self):
        regs = [self.reg("input", 0, "f32"), self.reg("input", 2, "f32"), self.reg("input", 52, "f32"),
                self.reg("coil", 0), self.reg("coil", 1), self.reg("holding", 10, "u32")]
        blocks = [(t, s, c, len(m)) for t, s, c, m in r.plan(regs)]
        self.assertEqual(blocks, [("holding", 10, 2, 1), ("input", 0, 4, 2), ("input", 52, 2, 1), ("coil", 0, 2, 2)])

    def test_gaps_and_size_limits(self):
        regs = [self.reg("input", 0, "f32"), self.reg("input", 4, "f32")]
        self.assertEqual(len(r.plan(regs)), 2)
        self.assertEqual([(s, c) for _, s, c, _ in r.plan(regs, max_gap=2)], [(0, 6)])
        many = [self.reg("holding", a) for a in range(200)]
        self.assertEqual([c for _, _, c, _ in r.plan(many)], [125, 75])


if __name__ == "__main__":
    unittest.main()
