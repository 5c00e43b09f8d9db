"""The test suite (see conftest.py)."""

import os

# The suite runs as development (no production refusals) unless a test says otherwise; set
# before any test module reads the settings.
os.environ.setdefault("KAIXU_ENV", "development")
