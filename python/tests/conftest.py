import os
import sys

# Tests import the helper from the source tree, installed or not.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
