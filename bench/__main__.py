"""`python -m bench` (or `make bench`): run every benchmark, each in its own process and databases;
`python -m bench catalog` runs one."""

import subprocess
import sys

BENCHMARKS = ["catalog", "approvals", "scaffold", "grant_check", "telemetry"]

if __name__ == "__main__":
    failed = []
    for name in sys.argv[1:] or BENCHMARKS:
        print(f"\n=== bench.{name} ===", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode != 0:
            failed.append(name)
    if failed:
        sys.exit(f"benchmarks that did not complete: {', '.join(failed)}")
