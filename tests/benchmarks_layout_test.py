"""benchmarks/ keeps one result per benchmark and machine, and nothing cites one that is gone:
every benchmarks/results file named in the docs or the code exists (an earlier run is cited
as `git show <commit>:benchmarks/results/<file>`), every result is listed in
benchmarks/README.md, and no benchmark replaces a function of the package (variants go
through `config.implementation` and `layers_cpu.thresholds`). Pure file reads."""

import fnmatch
import itertools
import re

from conftest import REPO

RESULTS = REPO / "benchmarks" / "results"
CITED = re.compile(r"benchmarks/results/([A-Za-z0-9_.*{},<>-]+\.json)")
EARLIER = re.compile(r"git show\s+[0-9a-f]{7,40}:$")  # right before a citation
WRITTEN = re.compile(r"--out\s+$")  # a command's output, not a file of the repo


def sources():
  yield REPO / "README.md"
  yield from (REPO / "docs").rglob("*.md")
  for folder in ("benchmarks", "jaxgan", "configs", "tests"):
    yield from (REPO / folder).rglob("*.md")
    yield from (REPO / folder).rglob("*.py")


def expand(pattern: str) -> list[str]:
  """{a,b} alternatives expanded; * stays a glob."""
  parts = re.split(r"\{([^}]*)\}", pattern)
  choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
  return ["".join(c) for c in itertools.product(*choices)]


def matches(pattern: str) -> bool:
  names = [p.name for p in RESULTS.glob("*.json")]
  return all(fnmatch.filter(names, p) for p in expand(pattern))


def test_every_cited_result_exists():
  missing = []
  for path in sources():
    if path == REPO / "tests" / "benchmarks_layout_test.py":
      continue
    text = path.read_text()
    for m in CITED.finditer(text):
      before = text[max(0, m.start() - 60):m.start()]
      if "<" in m.group(1) or EARLIER.search(before) or WRITTEN.search(before):
        continue
      if not matches(m.group(1)):
        missing.append(f"{path.relative_to(REPO)}: {m.group(1)}")
  assert not missing, f"results cited but not in benchmarks/results: {missing}"


def test_every_result_is_listed_in_the_benchmarks_readme():
  readme = (REPO / "benchmarks" / "README.md").read_text()
  listed = [p for name in re.findall(r"`([A-Za-z0-9_.*{},<>-]+\.json)`", readme)
            for p in expand(re.sub(r"<[^>]+>", "*", name))]
  unlisted = [p.name for p in RESULTS.glob("*.json")
              if not any(fnmatch.fnmatch(p.name, pattern) for pattern in listed)]
  assert not unlisted, f"benchmarks/README.md does not list {unlisted}"


def test_no_benchmark_replaces_a_function_of_the_package():
  patching = [str(p.relative_to(REPO)) for p in (REPO / "benchmarks").rglob("*.py")
              if re.search(r"setattr\(|\b(layers|layers_cpu|divergence|schedules)\.\w+ = ",
                           p.read_text())]
  assert not patching, f"benchmarks that monkey-patch jaxgan: {patching}"
