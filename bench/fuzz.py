"""The contract fuzzed longer: ``python bench/fuzz.py [--examples N]``.

Runs the suite's schemathesis test (``tests/contract``) against the live test server with N
generated requests per operation and credential (the suite takes 4), and with hypothesis'
randomness instead of the suite's fixed examples, so each run explores new inputs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=200, help="requests per operation and credential")
    args = parser.parse_args()
    env = {**os.environ, "KAIXU_FUZZ_EXAMPLES": str(args.examples), "KAIXU_FUZZ_RANDOM": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-rfE", "tests/contract", "-k", "schemathesis"]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
