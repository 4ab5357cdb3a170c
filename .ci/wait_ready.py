"""Wait until URL answers 200 (exit 0), or SECONDS pass (exit 1, the last answer printed).

python .ci/wait_ready.py http://127.0.0.1:8000/health/ready 180
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request


def wait(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    print(f"{url}: {response.status} {response.read().decode()[:200]}")
                    return True
                last = f"{response.status}"
        except urllib.error.HTTPError as exc:
            last = f"{exc.code} {exc.read().decode()[:200]}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.5)
    print(f"{url}: not ready after {seconds:g} s (last: {last})")
    return False


if __name__ == "__main__":
    sys.exit(0 if wait(sys.argv[1], float(sys.argv[2])) else 1)
