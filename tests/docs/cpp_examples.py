#!/usr/bin/env python3
"""Compiles every ```cpp block of the README and the manual, so that an
example a reader copies builds against the headers as they are.

    tests/docs/cpp_examples.py BUILD_DIR

Each block is a whole translation unit or header (its own includes). It is
compiled with -fsyntax-only and the flags the build gives the quickstart's
task.cpp (the repository's root, LibTorch, the dependencies' include paths),
read from BUILD_DIR/compile_commands.json.
"""

import concurrent.futures
import json
import os
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import markdown_blocks  # noqa: E402

REFERENCE = os.path.join("apps", "quickstart", "task.cpp")


def reference_flags(build):
    with open(os.path.join(build, "compile_commands.json")) as f:
        commands = json.load(f)
    for c in commands:
        if os.path.normpath(c["file"]).endswith(REFERENCE):
            args = c.get("arguments") or shlex.split(c["command"])
            break
    else:
        sys.exit(f"cpp_examples: {REFERENCE} is not in {build}/compile_commands.json")
    # The compiler (behind ccache, if it is the launcher) and its include,
    # define and language flags; not the output, the input or dependency files.
    compiler, flags, skip = None, [], False
    for a in args:
        if skip:
            skip = False
        elif compiler is None:
            if not a.endswith("ccache"):
                compiler = a
        elif a in ("-o", "-MF", "-MT", "-MQ", "-c"):
            skip = a != "-c"
        elif a.startswith(("-I", "-D", "-std=", "-isystem", "-f", "-W", "-m")) or a == "-isystem":
            flags.append(a)
        elif flags and flags[-1] == "-isystem":
            flags.append(a)
    return compiler, flags


def compile_block(compiler, flags, where, text, folder):
    name = where.replace("/", "_").replace(":", "_").replace(".", "_")
    header = os.path.join(folder, name + ".hpp")
    with open(header, "w") as f:
        f.write(text)
    unit = os.path.join(folder, name + ".cpp")
    with open(unit, "w") as f:
        f.write(f'#include "{header}"\n')
    r = subprocess.run([compiler, *flags, "-fsyntax-only", "-Werror", unit],
                       cwd=markdown_blocks.ROOT, capture_output=True, text=True)
    return where, r.returncode == 0, r.stderr


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    compiler, flags = reference_flags(build)
    examples = [(f"{doc}:{line}", text)
                for doc in markdown_blocks.documents()
                for line, language, _, text in markdown_blocks.blocks(doc)
                if language in ("cpp", "c++")]
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="stamen-doc-cpp-") as folder, \
            concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for where, ok, err in pool.map(lambda e: compile_block(compiler, flags, *e, folder), examples):
            if ok:
                passed += 1
                print(f"ok   {where}")
            else:
                failed += 1
                print(f"FAIL {where}:\n{err}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
