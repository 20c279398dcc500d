"""Fenced code blocks of the README, ARCHITECTURE.md and the manual's pages."""

import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHECK_MARK = "<!-- check -->"


def documents():
    """The Markdown files a reader is shown, repository-relative."""
    pages = sorted(glob.glob(os.path.join(ROOT, "docs", "manual", "*.md")))
    return ["README.md", "ARCHITECTURE.md"] + [os.path.relpath(p, ROOT) for p in pages]


def blocks(path):
    """Yields (line, language, marked, text) for each fenced block of `path`:
    `line` is where its fence opens (1-based), `marked` whether the line
    before the fence is the check mark."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("```"):
            fence = stripped[:len(stripped) - len(stripped.lstrip("`"))]
            language = stripped[len(fence):].strip().split(" ")[0]
            marked = i > 0 and lines[i - 1].strip() == CHECK_MARK
            start, i = i, i + 1
            body = []
            while i < len(lines) and lines[i].strip() != fence:
                body.append(lines[i])
                i += 1
            yield start + 1, language, marked, "\n".join(body) + "\n"
        i += 1
