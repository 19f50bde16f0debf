"""Keep the notebooks of colab/ free of outputs: `python colab/strip_outputs.py [--check] [NB ...]`.

Notebooks are committed as documents, without outputs, execution counts or the
per-cell metadata Colab adds when it runs them (`colab`, `outputId`, `execution`), so that
a diff shows only what a person changed and a notebook stays a few kilobytes. With no
notebooks named, every colab/*.ipynb. Without --check each dirty notebook is rewritten in
place; with --check nothing is written and the exit status is 1 when any notebook would
change (tests/notebooks_test.py runs the same check).
"""

import argparse
import pathlib
import sys

import nbformat

COLAB = pathlib.Path(__file__).resolve().parent
# Per-cell metadata that Colab or Jupyter write when a cell runs; `tags` and `id` stay.
RUN_METADATA = ("colab", "outputId", "execution", "collapsed", "scrolled")


def strip(nb) -> bool:
  """Removes outputs, execution counts and run metadata from `nb` in place; returns whether
  anything was removed."""
  changed = False
  for cell in nb.cells:
    if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
      cell.outputs, cell.execution_count = [], None
      changed = True
    for key in RUN_METADATA:
      if key in cell.metadata:
        del cell.metadata[key]
        changed = True
  if "widgets" in nb.metadata:
    del nb.metadata["widgets"]
    changed = True
  return changed


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--check", action="store_true",
                      help="write nothing; exit 1 if any notebook has outputs")
  parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
  args = parser.parse_args(argv)
  dirty = []
  for path in args.notebooks or sorted(COLAB.glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    if strip(nb):
      dirty.append(path)
      if not args.check:
        nbformat.write(nb, path)
  for path in dirty:
    print(f"{path}: {'has outputs' if args.check else 'stripped'}")
  return 1 if args.check and dirty else 0


if __name__ == "__main__":
  sys.exit(main())
