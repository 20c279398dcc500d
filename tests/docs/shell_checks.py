#!/usr/bin/env python3
"""Runs every shell block marked `<!-- check -->` in the README, ARCHITECTURE.md
and the manual, so that a command the documentation shows cannot drift from
the command itself.

    tests/docs/shell_checks.py BUILD_DIR [--only PAGE]

Each block runs under `bash -euo pipefail` in a fresh temporary folder with
`apps`, `build`, `cmake`, `docs` and `tests` linked to the checkout's (and
BUILD_DIR/bin on PATH), in a process group of its own that is ended with it,
background jobs included. A block passes when it exits 0 within its limit.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import markdown_blocks  # noqa: E402

LIMIT_S = 300


def run_block(where, text, build):
    with tempfile.TemporaryDirectory(prefix="stamen-doc-check-") as cwd:
        for name in ("apps", "cmake", "docs", "tests"):
            os.symlink(os.path.join(markdown_blocks.ROOT, name), os.path.join(cwd, name))
        os.symlink(build, os.path.join(cwd, "build"))
        script = os.path.join(cwd, ".check.sh")
        with open(script, "w") as f:
            f.write("set -euo pipefail\n" + text)
        env = dict(os.environ, PATH=os.path.join(build, "bin") + os.pathsep + os.environ["PATH"])
        started = time.monotonic()
        # Output into a file, not a pipe: background jobs the block started
        # hold its descriptors, and a pipe would not end before they do.
        log = os.path.join(cwd, ".check.log")
        with open(log, "w") as sink:
            p = subprocess.Popen(["bash", script], cwd=cwd, env=env, start_new_session=True,
                                 stdout=sink, stderr=subprocess.STDOUT)
            try:
                code = p.wait(timeout=LIMIT_S)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                code = None
        # Whatever the block left running (a superlink, supernodes) ends with it.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        took = time.monotonic() - started
        with open(log, errors="replace") as f:
            out = f.read()
    if code == 0:
        print(f"ok   {where} ({took:.1f} s)")
        return True
    why = f"exit {code}" if code is not None else f"still running after {LIMIT_S} s"
    print(f"FAIL {where}: {why}\n--- the block:\n{text}--- its output:\n{out}---", flush=True)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--only", help="run the checks of this one document")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    passed = failed = 0
    for doc in markdown_blocks.documents():
        if args.only and doc != args.only:
            continue
        for line, language, marked, text in markdown_blocks.blocks(doc):
            if not marked:
                continue
            if language not in ("sh", "bash"):
                print(f"FAIL {doc}:{line}: a check must be a sh block, not '{language}'")
                failed += 1
                continue
            if run_block(f"{doc}:{line}", text, build):
                passed += 1
            else:
                failed += 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
