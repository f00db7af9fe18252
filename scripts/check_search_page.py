"""Check the search page in a real headless browser and take its screenshot.

    python scripts/check_search_page.py runs/demo/<timestamp> --out docs/search_page.png

Builds the run's index if it has none, starts ``serve`` (the function behind ``hashbench serve``) on
127.0.0.1 in a subprocess, loads ``/?query=N&k=K`` in headless Chromium (Debian's ``chromium``:
``apt-get install -y chromium``), checks in the DOM the browser built that the query and its k results
are there with their distances, and saves a screenshot. Exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
]  # fmt: skip


def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def browser(url: str, profile: str, *args: str) -> str:
    command = [
        shutil.which("chromium") or "chromium",
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        *args,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "search_page.png")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--query", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    if not (args.run_dir / "index" / "index.json").is_file():
        from hashbench.retrieval.commands import index

        index(args.run_dir)
    code = (
        "from pathlib import Path; from hashbench.retrieval.commands import serve; "
        f"serve(Path({str(args.run_dir)!r}), port={args.port})"
    )
    server = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    url = f"http://127.0.0.1:{args.port}/?query={args.query}&k={args.k}"
    try:
        wait_for(f"http://127.0.0.1:{args.port}/", 120)
        with tempfile.TemporaryDirectory() as profile:
            dom = browser(url, profile, "--virtual-time-budget=5000", "--dump-dom")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            browser(url, profile, "--window-size=1250,640", f"--screenshot={args.out.resolve()}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    checks = {
        "query shown": 'class="query"' in dom,
        f"{args.k} results": dom.count('src="/picture/index/') == args.k,
        "distances": len(re.findall(r"d = \d+", dom)) == args.k,
        "screenshot written": args.out.is_file() and args.out.stat().st_size > 1000,
    }
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
