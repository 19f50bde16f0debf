"""The Colab notebooks of colab/ are code: each runs top to bottom against this package.

Every colab/*.ipynb is found by glob, so a new notebook is tested by being there. It is
executed with nbclient in a fresh kernel, from the repository root, as Colab runs it after
its install cell: that one cell (tagged `install`: it clones and pip-installs, which needs
the network) is left out, and the tiny run the notebook declares in its metadata is
injected after its `parameters` cell, papermill's convention:

  metadata.jaxgan.test = {
    "needs": folders of ../shared/data the run reads (the test skips when one is absent),
    "parameters": {variable: value} (values of the parameters cell, overridden),
    "expect": globs that must match files in the run's WORKDIR afterwards,
  }

Strings in `parameters` may hold `{workdir}` (a fresh folder for the notebook's runs),
`{data}` (../shared/data), `{tfds}` (a TFDS data dir shared by the session's notebooks:
each dataset is prepared there once, from the files the first notebook to read it names)
and `{tiny_pairs}` (6 train and 3 val pairs in the pix2pix layout, `conftest.write_pairs`).

Without executing anything, every notebook is also checked as a document: stored without
outputs (`colab/strip_outputs.py`), one install cell, one parameters cell, a markdown cell
before every code cell (the why of each step), no function or class of its own (the
package does the work), and an "Open in Colab" link in the README.
"""

import ast
import glob
import importlib.util
import json
import re

import pytest

from conftest import REPO, SHARED_DATA, write_pairs

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((REPO / "colab").glob("*.ipynb"))
IDS = [path.stem for path in NOTEBOOKS]
INSTALL_TAG = "install"
PARAMETERS_TAG = "parameters"
CELL_TIMEOUT = 600  # seconds for one cell; a tiny run takes seconds
BADGE_URL = "https://colab.research.google.com/github/jaxgan/jaxgan/blob/main/colab/{}.ipynb"


def load_strip_outputs():
  spec = importlib.util.spec_from_file_location("strip_outputs", REPO / "colab" / "strip_outputs.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def read(path):
  return nbformat.read(path, as_version=4)


def tagged(nb, tag):
  return [i for i, cell in enumerate(nb.cells) if tag in cell.metadata.get("tags", [])]


def code_without_magics(source: str) -> str:
  """A code cell's Python, with IPython's `!` and `%` lines made `pass`."""
  return "\n".join(line[:len(line) - len(line.lstrip())] + "pass"
                   if line.lstrip().startswith(("!", "%")) else line
                   for line in source.splitlines())


def test_there_are_notebooks():
  assert {"mnist_gans", "pix2pix_facades", "cyclegan", "small_data"} <= set(IDS)


# ---------------------------------------------------------------------------------------
# The notebooks as documents.


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stored_without_outputs(path):
  nb = read(path)
  nbformat.validate(nb)
  assert not load_strip_outputs().strip(nb), (
      f"{path.name} holds outputs or run metadata: run `python colab/strip_outputs.py`")


def test_strip_outputs_removes_what_a_run_leaves(tmp_path):
  strip_outputs = load_strip_outputs()
  nb = read(NOTEBOOKS[0])
  cell = next(c for c in nb.cells if c.cell_type == "code")
  cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1 device(s)\n")]
  cell.execution_count = 3
  cell.metadata["colab"] = {"base_uri": "https://localhost:8080/"}
  dirty = tmp_path / "dirty.ipynb"
  nbformat.write(nb, dirty)
  assert strip_outputs.main(["--check", str(dirty)]) == 1
  assert read(dirty).cells[nb.cells.index(cell)].execution_count == 3  # --check writes nothing
  assert strip_outputs.main([str(dirty)]) == 0
  assert strip_outputs.main(["--check", str(dirty)]) == 0
  stripped = read(dirty).cells[nb.cells.index(cell)]
  assert stripped.outputs == [] and stripped.execution_count is None
  assert "colab" not in stripped.metadata and stripped.metadata.get("tags") == cell.metadata.get("tags")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_reads_as_a_document(path):
  nb = read(path)
  install, parameters = tagged(nb, INSTALL_TAG), tagged(nb, PARAMETERS_TAG)
  code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
  assert install == code[:1], "one install cell, the first code cell"
  assert len(parameters) == 1, "one parameters cell"
  for i in code:
    assert i > 0 and nb.cells[i - 1].cell_type == "markdown", (
        f"code cell {i} has no markdown cell before it saying why")
    tree = ast.parse(code_without_magics(nb.cells[i].source))
    defined = [node.name for node in ast.walk(tree)
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert not defined, f"cell {i} defines {defined}: call the package instead"
  test = nb.metadata.get("jaxgan", {}).get("test")
  assert test and test.get("parameters") and test.get("expect"), "metadata.jaxgan.test"
  tiny = ast.parse(nb.cells[parameters[0]].source)
  assigned = {t.id for node in tiny.body if isinstance(node, ast.Assign) for t in node.targets}
  assert set(test["parameters"]) <= assigned, "the test overrides only the parameters cell's names"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_readme_links_the_notebook(path):
  assert BADGE_URL.format(path.stem) in (REPO / "README.md").read_text()


# ---------------------------------------------------------------------------------------
# The notebooks, executed.


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("notebooks_tfds")


@pytest.fixture(scope="session")
def tiny_pairs(tmp_path_factory):
  root = tmp_path_factory.mktemp("tiny_pairs")
  write_pairs(root / "train", 6, side=40, identical=False)
  write_pairs(root / "val", 3, side=40, seed=1, identical=False)
  return root


def fill(value, places):
  """`value` with every {name} of `places` replaced in its strings, at any depth."""
  if isinstance(value, str):
    for name, place in places.items():
      value = value.replace("{" + name + "}", str(place))
    return value
  if isinstance(value, dict):
    return {k: fill(v, places) for k, v in value.items()}
  if isinstance(value, list):
    return [fill(v, places) for v in value]
  return value


def outputs_of(nb):
  return [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path, tmp_path, tfds_dir, request):
  nb = read(path)
  test = nb.metadata["jaxgan"]["test"]
  for need in test.get("needs", []):
    if not (SHARED_DATA / need).exists():
      pytest.skip(f"{SHARED_DATA / need} is not here")
  places = {"workdir": tmp_path / "workdir", "data": SHARED_DATA.resolve(), "tfds": tfds_dir}
  if "{tiny_pairs}" in json.dumps(test["parameters"]):
    places["tiny_pairs"] = request.getfixturevalue("tiny_pairs")
  parameters = fill(test["parameters"], places)

  parameters_cell = nb.cells[tagged(nb, PARAMETERS_TAG)[0]]
  injected = nbformat.v4.new_code_cell(
      "\n".join(f"{name} = {value!r}" for name, value in parameters.items()),
      metadata={"tags": ["injected-parameters"]})
  nb.cells.insert(nb.cells.index(parameters_cell) + 1, injected)
  nb.cells = [cell for cell in nb.cells if INSTALL_TAG not in cell.metadata.get("tags", [])]
  nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                          resources={"metadata": {"path": str(REPO)}}).execute()

  workdir = places["workdir"]
  missing = [pattern for pattern in test["expect"] if not glob.glob(str(workdir / pattern))]
  assert not missing, f"not in the workdir: {missing}"
  outputs = outputs_of(nb)
  text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
  assert re.search(r"\d+ device\(s\), (CPU|GPU|TPU): ", text), "the device count and kind"
  assert any("image/png" in o.get("data", {}) for o in outputs), "no image shown inline"
  assert not any(o.output_type == "error" for o in outputs)
  steps = parameters.get("OVERRIDES", {}).get("num_train_steps")
  for config in workdir.rglob("config.json"):  # the runs trained the tiny override
    assert steps is None or json.loads(config.read_text())["num_train_steps"] == steps
