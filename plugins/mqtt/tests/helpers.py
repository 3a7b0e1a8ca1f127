"""Puts the plugin's src/ on the import path for the unit tests."""

import os
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
sys.path.insert(0, SRC)
sys.path.insert(0, os.path.join(SRC, "..", "..", "sdk-python"))
