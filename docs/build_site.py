#!/usr/bin/env python3
"""Builds the manual and the API reference into one static site.

    docs/build_site.py [--out build/docs] [--work build/docs-src]

Stages docs/manual/*.md, the top-level ARCHITECTURE.md (as architecture.md)
and the images beside them, runs Doxygen over the installed headers into
api/ (docs/Doxyfile: a warning fails), then Debian's mkdocs in strict mode
(a link to a missing page fails). MkDocs 1.4 does not check anchors, so this
script does, on the built pages, for every link of the site and of the
README. Exits non-zero, naming each broken link, when anything is wrong.
"""

import argparse
import html.parser
import os
import re
import shutil
import subprocess
import sys
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _page_parser(html.parser.HTMLParser):
    """Collects a page's element ids and the targets of its links."""

    def __init__(self):
        super().__init__()
        self.ids = set()
        self.links = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "img", "link", "script"):
                self.links.append(a[key])


def _parse(path, cache):
    if path not in cache:
        p = _page_parser()
        with open(path, encoding="utf-8") as f:
            p.feed(f.read())
        cache[path] = p
    return cache[path]


def _is_external(target):
    return bool(urllib.parse.urlparse(target).scheme) or target.startswith("//")


def check_site(site):
    """Every relative link of a manual page names a file of the site and, with
    a fragment, an id on that page. The API reference's own pages are
    Doxygen's and are not checked."""
    cache, broken, checked = {}, [], 0
    api = os.path.join(site, "api") + os.sep
    for dirpath, _, names in os.walk(site):
        for name in names:
            page = os.path.join(dirpath, name)
            if not name.endswith(".html") or page.startswith(api) or name == "404.html":
                continue
            for target in _parse(page, cache).links:
                if _is_external(target) or target.startswith(("mailto:", "javascript:")):
                    continue
                path, _, fragment = target.partition("#")
                dest = page if not path else os.path.normpath(
                    os.path.join(os.path.dirname(page), urllib.parse.unquote(path)))
                checked += 1
                if not os.path.exists(dest):
                    broken.append(f"{os.path.relpath(page, site)}: link to missing {target}")
                elif fragment and dest.endswith(".html") and not dest.startswith(api):
                    if urllib.parse.unquote(fragment) not in _parse(dest, cache).ids:
                        broken.append(f"{os.path.relpath(page, site)}: no anchor #{fragment} in {path or 'itself'}")
    return broken, checked


_MD_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def check_readme(site):
    """The README's relative links name files of the checkout; one into the
    manual (docs/manual/X.md#a, ARCHITECTURE.md#a) names an id of X's page."""
    broken, checked, cache = [], 0, {}
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    in_code = False
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        for target in _MD_LINK.findall(line):
            if _is_external(target):
                continue
            path, _, fragment = target.partition("#")
            checked += 1
            if path and not os.path.exists(os.path.join(ROOT, path)):
                broken.append(f"README.md:{number}: link to missing {path}")
                continue
            if not fragment:
                continue
            if path == "ARCHITECTURE.md":
                page = "architecture.html"
            elif path.startswith("docs/manual/") and path.endswith(".md"):
                page = path[len("docs/manual/"):-3] + ".html"
            elif not path:
                page = None  # an anchor of the README itself: GitHub's, not checked
            else:
                continue
            if page and fragment not in _parse(os.path.join(site, page), cache).ids:
                broken.append(f"README.md:{number}: no anchor #{fragment} in {path}")
    return broken, checked


def stage(work):
    """The site's sources in one folder: mkdocs.yml, pages/ (the manual, the
    architecture page, the images). Links written for the repository
    (docs/manual/X.md from ARCHITECTURE.md) are made relative to the site."""
    if os.path.exists(work):
        shutil.rmtree(work)
    pages = os.path.join(work, "pages")
    os.makedirs(pages)
    shutil.copy(os.path.join(ROOT, "docs", "mkdocs.yml"), work)
    manual = os.path.join(ROOT, "docs", "manual")
    for name in sorted(os.listdir(manual)):
        if name.endswith(".md"):
            shutil.copy(os.path.join(manual, name), pages)
    for name in sorted(os.listdir(os.path.join(ROOT, "docs"))):
        if name.endswith((".svg", ".png")):
            shutil.copy(os.path.join(ROOT, "docs", name), pages)
    with open(os.path.join(ROOT, "ARCHITECTURE.md"), encoding="utf-8") as f:
        text = f.read()
    text = text.replace("](docs/manual/", "](").replace("](README.md", "](index.md")
    with open(os.path.join(pages, "architecture.md"), "w", encoding="utf-8") as f:
        f.write(text)
    return pages


def run_doxygen(api):
    os.makedirs(api)
    env = dict(os.environ, STAMEN_DOXYGEN_OUT=api)
    r = subprocess.run(["doxygen", os.path.join("docs", "Doxyfile")], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    warnings = sorted(set(l for l in r.stderr.splitlines() if l.strip()))
    for w in warnings:
        print(f"doxygen: {w}", file=sys.stderr)
    if r.returncode != 0 or warnings:
        print(f"docs: the API reference has {len(warnings)} warning(s) (docs/Doxyfile treats them as errors)",
              file=sys.stderr)
        return False
    return os.path.exists(os.path.join(api, "index.html"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "docs"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "docs-src"))
    args = ap.parse_args()
    out, work = os.path.abspath(args.out), os.path.abspath(args.work)

    pages = stage(work)
    if not run_doxygen(os.path.join(pages, "api")):
        return 1
    r = subprocess.run(["mkdocs", "build", "--strict", "--clean", "--quiet",
                        "-f", os.path.join(work, "mkdocs.yml"), "-d", out])
    if r.returncode != 0:
        print("docs: mkdocs failed (see its warnings above)", file=sys.stderr)
        return 1
    broken, checked = check_site(out)
    readme_broken, readme_checked = check_readme(out)
    broken += readme_broken
    for b in broken:
        print(f"docs: {b}", file=sys.stderr)
    if broken:
        print(f"docs: {len(broken)} broken link(s) of {checked + readme_checked}", file=sys.stderr)
        return 1
    print(f"docs: {out}/index.html built; {checked} site links and {readme_checked} README links "
          f"checked; API reference in {out}/api/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
