"""Run the three benches in turn (overhead, fanout, scale) with their default settings.

Run: python bench/run_all.py [--quick] [--no-postgres] [--json-dir DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Run each bench as its own process (peak RSS and imports stay separate)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="pass --quick to every bench")
    p.add_argument("--no-postgres", action="store_true", help="overhead without PostgreSQL")
    p.add_argument("--json-dir", help="write <bench>.json files here")
    args = p.parse_args()
    if args.json_dir:
        Path(args.json_dir).mkdir(parents=True, exist_ok=True)
    rc = 0
    for name in ("overhead", "fanout", "scale"):
        cmd = [sys.executable, str(HERE / f"{name}.py")]
        cmd += ["--quick"] if args.quick else []
        cmd += ["--no-postgres"] if args.no_postgres and name == "overhead" else []
        cmd += ["--json", str(Path(args.json_dir) / f"{name}.json")] if args.json_dir else []
        print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
        rc = subprocess.run(cmd, check=False).returncode or rc
    return rc


if __name__ == "__main__":
    sys.exit(main())
