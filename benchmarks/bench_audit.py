"""Audit of 100,000 and 1,000,000 generated users: wall time and peak memory, in one run.

Each size runs in a fresh child process so its peak resident memory is its own. The
organisation has realistic problems (invalid addresses, legacy msn auth, port/security
mismatches, duplicates, overrides that repeat the org). Growth is reported as the ratio of the
two times against the ratio of the sizes (10): close to 10 means linear.
Targets: at most 1 s for 100,000 users and 10 s for 1,000,000 on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

SIZES = (100_000, 1_000_000)
TARGETS = {100_000: 1.0, 1_000_000: 10.0}


def generated_users(n: int, seed: int = 7) -> pd.DataFrame:
    """A users table in the canonical columns, built with column operations (no loop)."""
    rng = np.random.default_rng(seed)
    index = np.arange(n)
    codes = pd.Series(index).map("u{:07d}".format)
    domains = np.array(["example.com", "example.org", "corp.example.net"])
    email = codes + "@" + domains[rng.integers(0, 3, n)]
    email = email.mask(rng.random(n) < 0.01, "not-an-address")
    override = rng.random(n) < 0.3
    modes = np.array(["smtp", "outlook", "mapi", "exchange_ews", None], dtype=object)
    auths = np.array(["auto", "login", "msn", None], dtype=object)
    return pd.DataFrame(
        {
            "user_code": codes.mask(rng.random(n) < 0.001, "u0000001"),
            "display_name": "User " + codes,
            "email": email,
            "override_enabled": override,
            "mode": modes[rng.integers(0, 5, n)],
            "username": email.where(override),
            "from_address": email.where(override & (rng.random(n) < 0.8)),
            "host": pd.Series(
                np.where(rng.random(n) < 0.05, "smtp.office365.com", None), dtype=object
            ),
            "port": pd.array(np.where(rng.random(n) < 0.02, 465, None), dtype="Int64"),
            "security": pd.Series(np.where(rng.random(n) < 0.02, "starttls", None), dtype=object),
            "auth": auths[rng.integers(0, 4, n)],
        }
    )


def measure(n: int) -> dict[str, float]:
    """Run in a child: generate, audit, report seconds and peak RSS."""
    from mailkit.audit import audit
    from mailkit.settings import OrgSettings

    org = OrgSettings(host="smtp.example.com", port=587, from_address="it@example.com")
    users = generated_users(n)
    started = time.perf_counter()
    findings = audit(org, users)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"users": n, "seconds": seconds, "findings": len(findings), "peak_mib": peak_mib}


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(measure(int(sys.argv[2]))))
        return 0
    results = []
    for n in SIZES:
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(n)],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print("Audit of generated users (each size in a fresh process; peak RSS includes the data)")
    # Other work on the machine inflates the times: report it next to them.
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{'users':>10} {'seconds':>9} {'target s':>9} {'findings':>10} {'peak MiB':>9}")
    for r in results:
        target = TARGETS[int(r["users"])]
        mark = "met" if r["seconds"] <= target else "NOT MET"
        print(
            f"{int(r['users']):>10,} {r['seconds']:>9.2f} {target:>9.1f} {int(r['findings']):>10,} "
            f"{r['peak_mib']:>9.0f}  {mark}"
        )
    small, large = results
    print(
        f"growth: {large['seconds'] / small['seconds']:.1f}x the time for "
        f"{large['users'] / small['users']:.0f}x the users (10 = linear)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
