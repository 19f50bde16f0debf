"""Where the test suite's time goes: a pytest plugin that records, per test, its wall time
and what JAX spent in that test process tracing, lowering, compiling and reading the
compilation cache (`jax.monitoring`'s duration events; subprocesses are not seen), and a
summary of those records.

  JAXGAN_SUITE_TIME_DIR=/tmp/suite PYTHONPATH=benchmarks/suite \\
      .venv/bin/python -m pytest -q -n 2 --dist loadfile tests -p suite_time
  .venv/bin/python benchmarks/suite/suite_time.py /tmp/suite --out benchmarks/results/suite_time_cpu.json

The plugin writes one TSV per pytest worker into $JAXGAN_SUITE_TIME_DIR; the summary sums
them over the suite and per test file (docs/testing.md).
"""

import argparse
import collections
import json
import os
import time

import pytest

EVENTS = {"trace": "/jax/core/compile/jaxpr_trace_duration",
          "lower": "/jax/core/compile/jaxpr_to_mlir_module_duration",
          "compile": "/jax/core/compile/backend_compile_duration",
          "cache_read": "/jax/compilation_cache/cache_retrieval_time_sec"}
_seconds = collections.defaultdict(float)
_out = None


def _listen(event, duration, **_):
  _seconds[event] += duration


def pytest_sessionstart(session):  # after the suite's conftest has set JAX's environment
  global _out
  folder = os.environ.get("JAXGAN_SUITE_TIME_DIR")
  if not folder:
    return
  import jax.monitoring  # pylint: disable=import-outside-toplevel
  jax.monitoring.register_event_duration_secs_listener(_listen)
  os.makedirs(folder, exist_ok=True)
  worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
  _out = open(os.path.join(folder, f"{worker}.tsv"), "w", encoding="utf-8")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
  _seconds.clear()
  start = time.time()
  yield
  if _out is not None:
    row = [item.nodeid, f"{time.time() - start:.3f}"]
    row += [f"{_seconds.get(event, 0.0):.3f}" for event in EVENTS.values()]
    _out.write("\t".join(row) + "\n")
    _out.flush()


def summary(folder: str) -> dict:
  """{"total": {wall, trace, ...}, "files": {test file: {...}}} over the folder's TSVs."""
  keys = ["wall", *EVENTS]
  total, files = dict.fromkeys(keys, 0.0), collections.defaultdict(lambda: dict.fromkeys(keys, 0.0))
  for name in sorted(os.listdir(folder)):
    if not name.endswith(".tsv"):
      continue
    with open(os.path.join(folder, name), encoding="utf-8") as f:
      for line in f:
        nodeid, *values = line.rstrip("\n").split("\t")
        for key, value in zip(keys, map(float, values)):
          total[key] += value
          files[nodeid.split("::")[0]][key] += value
  rounded = lambda d: {k: round(v, 1) for k, v in d.items()}  # noqa: E731
  total["other"] = total["wall"] - sum(total[k] for k in EVENTS)
  return {"total": rounded(total),
          "files": {f: rounded(v) for f, v in sorted(files.items(), key=lambda kv: -kv[1]["wall"])}}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("folder", help="$JAXGAN_SUITE_TIME_DIR of a suite run")
  parser.add_argument("--out", help="write the summary here as JSON, with the machine")
  args = parser.parse_args()
  result = summary(args.folder)
  print(json.dumps(result["total"]))
  for name, seconds in list(result["files"].items())[:15]:
    print(f"{seconds['wall']:8.1f} s  {name}")
  if args.out:
    import platform  # pylint: disable=import-outside-toplevel
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    result["machine"] = {"cpu_model": cpu, "cpu_count": os.cpu_count(),
                         "uname": " ".join(platform.uname())}
    with open(args.out, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
