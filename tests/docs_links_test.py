"""The README is the front door and docs/ holds the rest (issue 22): every relative link
and image of README.md and of every page under docs/ points at a file that exists, every
figure under docs/ is shown or linked by some page, the README stays short, and its test
command is the one .ci/run runs. Pure file reads: no JAX, no network.
"""

import re

import pytest

from conftest import REPO

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").rglob("*.md"))]
IDS = [str(p.relative_to(REPO)) for p in PAGES]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)  # fenced code blocks
CODE_SPAN = re.compile(r"`[^`\n]*`")
INLINE = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")  # [..](t), ![..](t)
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.M)  # [label]: t
HTML = re.compile(r"\b(?:src|href)=\"([^\"]+)\"")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...
IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".svg")


def targets(page):
  """The link and image targets of a markdown page, outside code."""
  text = CODE_SPAN.sub("", FENCE.sub("", page.read_text()))
  for pattern in (INLINE, REFERENCE, HTML):
    yield from pattern.findall(text)


def local(target):
  """A relative target's path without its #fragment; None for external links and anchors."""
  if EXTERNAL.match(target) or target.startswith("#"):
    return None
  return target.split("#", 1)[0].split("?", 1)[0]


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_relative_link_and_image_exists(page):
  missing = [t for t in targets(page) if local(t) and not (page.parent / local(t)).exists()]
  assert not missing, f"{page.relative_to(REPO)} links to missing files: {missing}"


def test_the_link_parser_sees_what_renders(tmp_path):
  # Badges nest an image in a link; code is not a link; anchors and URLs are not files.
  page = tmp_path / "probe.md"
  page.write_text("[![b](https://x/badge.svg)](https://x/nb.ipynb) ![a](img/a.png#x) [c](c.md)\n"
                  "<img src=\"d.png\" width=\"9\"> [e](#section) `[f](f.md)`\n"
                  "```bash\n[g](g.md)\n```\n[h]: docs/h.md\n")
  found = [local(t) for t in targets(page)]
  assert [f for f in found if f] == ["img/a.png", "c.md", "docs/h.md", "d.png"]


def test_every_figure_under_docs_is_shown_by_a_page():
  shown = {(page.parent / local(t)).resolve()
           for page in PAGES for t in targets(page) if local(t)}
  figures = [p for p in (REPO / "docs").rglob("*") if p.suffix.lower() in IMAGES]
  orphans = [str(p.relative_to(REPO)) for p in figures if p.resolve() not in shown]
  assert figures and not orphans, f"figures no page shows or links: {orphans}"


def test_the_readme_is_a_front_door():
  lines = README.read_text().count("\n")
  assert lines <= 320, f"README.md has {lines} lines; move detail to a page under docs/"


def test_the_readme_test_command_is_the_one_ci_runs():
  ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
        if "pytest" in line and not line.lstrip().startswith("#")]
  assert len(ci) == 1, ci
  readme = [line for line in README.read_text().splitlines()
            if "-m pytest" in line and line.startswith("python3 -m venv")]
  assert readme == ci, f"README: {readme}; .ci/run: {ci}"
