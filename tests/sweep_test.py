"""`jaxgan.sweep`: the grid, its names, one-line errors before any run, resumption, the table."""

import csv
import json
import os
import subprocess
import sys

import pytest

from jaxgan import compare, config as config_lib, evaluate, sweep, train
from train_test import mock_data, tiny  # noqa: F401  (a fixture)
from evaluate_test import classifier_dir  # noqa: F401  (a fixture)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DCGAN = os.path.join(REPO, "configs", "dcgan_mnist.py")
STUDY = ["optimizer.learning_rate=1e-3,2e-4", "optimizer.b1=0.5,0.9", "model.latent_dim=10,100,1000"]


def test_the_grid_is_every_combination_in_order_with_typed_values():
  runs = sweep.expand(DCGAN, STUDY + ["num_train_steps=7"])
  assert len(runs) == 12
  assert [r["name"] for r in runs[:4]] == [
      "learning_rate=0.001_b1=0.5_latent_dim=10", "learning_rate=0.001_b1=0.5_latent_dim=100",
      "learning_rate=0.001_b1=0.5_latent_dim=1000", "learning_rate=0.001_b1=0.9_latent_dim=10"]
  assert len({r["name"] for r in runs}) == 12
  last = runs[-1]
  assert last["values"] == {"optimizer.learning_rate": 2e-4, "optimizer.b1": 0.9,
                            "model.latent_dim": 1000}  # the single-valued field is no axis
  assert last["overrides"] == ["optimizer.learning_rate=0.0002", "optimizer.b1=0.9",
                               "model.latent_dim=1000", "num_train_steps=7"]
  config = last["config"]
  assert config.optimizer.learning_rate == 2e-4 and config.num_train_steps == 7
  assert type(config.model.latent_dim) is int and type(config.optimizer.b1) is float
  assert config.batch_size == 128  # fields not set keep the config file's values


def test_names_use_the_dotted_name_where_leaves_collide_and_no_odd_characters():
  assert sweep.run_name({}) == "run"
  assert sweep.run_name({"data.name": "a", "loss.name": "b", "seed": 1}) == \
      "data.name=a_loss.name=b_seed=1"
  assert sweep.run_name({"data.path": "../x/y z", "augment.color_jitter": True}) == \
      "path=..-x-y-z_color_jitter=true"


@pytest.mark.parametrize("setting, message", [
    ("optimizer.lr=1e-3", "unknown config field optimizer.lr"),
    ("nothing.at.all=1", "unknown config field nothing.at.all"),
    ("optimizer=1", "config.optimizer is a section"),
    ("optimizer.b1=", "--set optimizer.b1: empty value"),
    ("optimizer.b1=0.5,,0.9", "--set optimizer.b1: empty value"),
    ("model.latent_dim=1.5", "'1.5' is not an integer"),
    ("optimizer.learning_rate=fast", "'fast' is not a number"),
    ("optimizer.learning_rate=nan", "'nan' is not a number"),
    ("augment.color_jitter=maybe", "'maybe' is not a boolean"),
    ("optimizer.b1=0.5,0.50", "a value is repeated"),
    ("optimizer.b1", "expected name=value"),
    ("optimizer.b1=1.5", "config.optimizer.b1 must be in [0, 1), got 1.5"),  # validate()'s range
    ("model.latent_dim=100,0", "config.model.latent_dim must be positive, got 0"),
])
def test_bad_settings_are_one_clear_error(setting, message):
  with pytest.raises(config_lib.ConfigError) as error:  # SweepError is one
    sweep.expand(DCGAN, [setting])
  assert message in str(error.value)
  assert "\n" not in str(error.value)


def test_a_field_given_twice_is_refused():
  with pytest.raises(sweep.SweepError, match="given twice"):
    sweep.expand(DCGAN, ["optimizer.b1=0.5", "optimizer.b1=0.9"])


def test_the_command_stops_with_one_line_before_any_run(tmp_path):
  workdir = tmp_path / "sweep"
  out = subprocess.run([sys.executable, "-m", "jaxgan.sweep", f"--config={DCGAN}",
                        f"--workdir={workdir}", "--set", "optimizer.b1=0.5,0.9",
                        "--set", "model.latent_dim=10,ten"],
                       cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert out.returncode == 1
  assert out.stderr.strip().splitlines()[-1] == (
      "error: --set model.latent_dim: 'ten' is not an integer (the type of "
      "config.model.latent_dim)")
  assert not workdir.exists()


@pytest.fixture
def tiny_config(tmp_path):
  """configs/dcgan_mnist.py at toy width and batch, one step, as a config file."""
  path = tmp_path / "tiny_dcgan.py"
  path.write_text(
      "from jaxgan.config import load\n"
      f"def get_config():\n  c = load({DCGAN!r})\n"
      "  c.num_train_steps = 1\n  c.batch_size = 4\n  c.model.ngf = c.model.ndf = 4\n"
      "  c.log_every_steps = c.checkpoint_every_steps = c.sample_every_steps = 1\n"
      "  c.num_grid_images = 4\n  return c\n")
  return str(path)


def test_a_finished_run_is_not_redone_and_an_unfinished_one_resumes(
    tmp_path, tiny_config, classifier_dir, mock_data, monkeypatch):  # noqa: F811
  """Training in this process over TFDS's mock data stands in for `jaxgan.main`'s child
  process; everything else (what is skipped, evaluation, the table) is the sweep's own."""
  trained = []

  def train_here(config_path, run_dir, overrides):
    trained.append(os.path.basename(run_dir))
    train.train_and_evaluate(sweep.expand(config_path, overrides)[0]["config"], run_dir)
    return 1.0

  monkeypatch.setattr(compare, "train", train_here)
  workdir = str(tmp_path / "sweep")
  # Two seeds: the same programs, so the second run compiles nothing new (JAX's cache).
  settings = ["seed=0,1", "optimizer.b1=0.5"]

  def run(*extra, num=20):
    return sweep.sweep(tiny_config, workdir, settings + list(extra), num, classifier_dir)

  rows = run()
  names = ["seed=0", "seed=1"]
  assert trained == names
  assert [r["name"] for r in rows] == names and all(r["step"] == 1 for r in rows)
  checkpoints = [os.path.join(workdir, n, "checkpoints", "1") for n in names]
  mtimes = [os.path.getmtime(c) for c in checkpoints]

  trained.clear()
  evaluated, evaluate_for_real = [], evaluate.evaluate
  monkeypatch.setattr(evaluate, "evaluate", lambda *a, **k: evaluated.append(a) or {})
  rows_again = run()
  assert trained == [] and evaluated == []  # nothing trained or evaluated again
  assert [os.path.getmtime(c) for c in checkpoints] == mtimes
  assert [r["fid"] for r in rows_again] == [r["fid"] for r in rows]
  monkeypatch.setattr(evaluate, "evaluate", evaluate_for_real)

  # A longer budget: both runs go on from their checkpoint at step 1 to step 2.
  rows = run("num_train_steps=2")
  assert trained == names and all(r["step"] == 2 for r in rows)
  assert [os.path.getmtime(c) for c in checkpoints] == mtimes  # step 1 was not trained again
  for name in names:
    steps = [json.loads(l)["step"] for l in open(os.path.join(workdir, name, "metrics.jsonl"))]
    assert steps == [1, 2]

  # The table: one row per combination, the swept field first, the values of eval.json.
  with open(os.path.join(workdir, "results.csv")) as f:
    table = list(csv.reader(f))
  assert table[0][:5] == ["seed", "steps", "batch", "train wall time (s)", "FID"]
  assert [r[:3] for r in table[1:]] == [["0", "2", "4"], ["1", "2", "4"]]
  assert [float(r[4]) for r in table[1:]] == [round(r["fid"], 2) for r in rows]
  text = open(os.path.join(workdir, "results.md")).read()
  assert text.count("| seed | 1 | 1 |") == 1  # the means over the runs of seed 1
  assert os.path.getsize(os.path.join(workdir, "grids.png")) > 0
