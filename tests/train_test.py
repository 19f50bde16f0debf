"""The training loop end to end, on TFDS mock data: one step of every config, exact
resumption, clean stops, checkpoint errors, sampling, and command-line mistakes."""

import contextlib
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import REPO
from jaxgan import checkpoint, config as config_lib, families, sample, train, workdir
from jaxgan.datasets import streams
from jaxgan.datasets import base as datasets_base

CONFIGS = sorted(glob.glob(str(REPO / "configs" / "*.py")))


def tiny(path, steps=1, **overrides):
  """The experiment at toy width and batch, logging and checkpointing every step.

  The suite's time is compile time, so the largest programs shrink further: the U-Net keeps
  two levels of one block each, and a 256-pixel CycleGAN (whose ResNet generator takes any
  multiple of 4) trains at 64 pixels. The experiments' full networks are checked by their
  parameter counts (ddpm_test, cyclegan_test, models_test).
  """
  config = config_lib.load(path)
  config.num_train_steps = steps
  config.batch_size = 4
  if config.family == "ddpm":  # a narrow U-Net, and grids from 2 DDIM steps, not 1000
    config.model.ch, config.model.ch_mult, config.model.num_res_blocks = 4, (1, 2), 1
    config.sampling.sampler, config.sampling.steps = "ddim", 2
  else:
    config.model.ngf = config.model.ndf = 4
  if config.family == "cyclegan" and config.data.image_size > 64:
    config.data.image_size, config.data.load_size = 64, 72
  config.log_every_steps = config.checkpoint_every_steps = config.sample_every_steps = 1
  config.num_grid_images = min(config.num_grid_images, 4)  # a classifier keeps 0
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def params_of(state):
  return jax.device_get((state.generator.params, state.discriminator.params))


def assert_trees_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


@contextlib.contextmanager
def mocked_data():
  """TFDS's mock data for every builder; the (mocked) download path is taken, as if online."""
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(datasets_base, "network_available", lambda url: True)
    with tfds.testing.mock_data(num_examples=12):
      yield


@pytest.fixture
def mock_data():
  with mocked_data():
    yield


class Runs:
  """One step of each config's toy run (`tiny`, over TFDS's mock data), each trained once per
  test module in a folder of its own: the one-step test checks what it wrote, and the tests
  that read, resume or damage a finished run work on copies of it (`copy_run`)."""

  def __init__(self, root):
    self.root, self.steps = root, {}

  def get(self, name: str):
    """The workdir of config file `name`'s run; its final step is in `steps[name]`."""
    if name not in self.steps:
      with mocked_data():
        state = train.train_and_evaluate(tiny(str(REPO / "configs" / name)), str(self.root / name))
      self.steps[name] = int(state.step)
    return self.root / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  return Runs(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def dcgan_run(runs):
  return runs.get("dcgan_mnist.py")


@pytest.fixture(scope="module")
def cdcgan_run(runs):
  return runs.get("cdcgan_mnist.py")


def copy_run(run, workdir):
  """`run`'s files copied into `workdir`, as if it had trained there."""
  shutil.copytree(run, workdir, dirs_exist_ok=True)
  return workdir


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(c) for c in CONFIGS])
def test_one_step_of_every_config(path, runs):
  config, config_file = tiny(path), os.path.basename(path)
  workdir = runs.get(config_file)
  assert runs.steps[config_file] == 1
  expected = ["config.json", "params.json", "metrics.jsonl", "losses.png", "checkpoints/1"]
  if config.num_grid_images:  # models that generate (not the classifier)
    expected += ["real_vs_fake.png", "samples/step_000000.png", "samples/step_000001.png"]
  if config.family == "ddpm":  # the reverse process from noise, at the end of a run
    expected += ["trajectory.png"]
  for name in expected:
    assert (workdir / name).exists(), name
  assert glob.glob(str(workdir / "tensorboard" / "events.out.tfevents.*"))
  row = config_lib.load_json(str(workdir))  # the resolved config round-trips
  assert row.num_train_steps == 1 and row.data.image_size == config.data.image_size
  metrics = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines() if l]
  assert len(metrics) == 1 and "steps_per_sec" in metrics[0]
  assert set(families.create(config).loss_metrics) <= set(metrics[0])  # what losses.png plots


def test_resume_equals_uninterrupted(tmp_path, mock_data):
  """With the moving average of G on (config.ema_decay): it resumes exactly too."""
  path = str(REPO / "configs" / "dcgan_mnist.py")
  straight = train.train_and_evaluate(tiny(path, steps=4, ema_decay=0.9), str(tmp_path / "straight"))
  first = train.train_and_evaluate(tiny(path, steps=2, ema_decay=0.9), str(tmp_path / "resumed"))
  assert int(first.step) == 2
  resumed = train.train_and_evaluate(tiny(path, steps=4, ema_decay=0.9), str(tmp_path / "resumed"))
  assert int(resumed.step) == 4
  assert_trees_equal(params_of(resumed), params_of(straight))
  assert_trees_equal(jax.device_get(resumed.generator.opt_state),
                     jax.device_get(straight.generator.opt_state))
  assert_trees_equal(jax.device_get(resumed.generator_ema), jax.device_get(straight.generator_ema))
  # The average is its own copy of G, not G.
  average, weights = jax.device_get((resumed.generator_ema["params"], resumed.generator.params))
  assert jax.tree.structure(average) == jax.tree.structure(weights)
  assert all(not np.array_equal(a, w) for a, w in zip(jax.tree.leaves(average),
                                                      jax.tree.leaves(weights)))
  steps = [int(l.split(",")[0].split(":")[1]) for l in
           (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
  assert steps == [1, 2, 3, 4]


def test_grids_of_a_family_that_draws_none_are_refused_before_the_workdir(tmp_path):
  config = tiny(str(REPO / "configs" / "mnist_classifier.py"), num_grid_images=4)
  with pytest.raises(config_lib.ConfigError, match="draws no sample grids.*num_grid_images=0"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_sigterm_saves_a_checkpoint_and_stops(tmp_path, mock_data, monkeypatch):
  real_iterator = streams.create_train_iterator

  def iterator_that_signals(*args, **kwargs):
    for i, batch in enumerate(real_iterator(*args, **kwargs)):
      if i == 9:  # the tenth batch: as if the scheduler preempted us during the run
        os.kill(os.getpid(), signal.SIGTERM)
      yield batch

  monkeypatch.setattr(streams, "create_train_iterator", iterator_that_signals)
  path = str(REPO / "configs" / "dcgan_mnist.py")
  config = tiny(path, steps=50, checkpoint_every_steps=100)
  state = train.train_and_evaluate(config, str(tmp_path))
  # The input's thread reads batch 10 up to PREFETCH + 1 calls before step 10 is taken, at
  # a time of its own: the loop stops at the end of the step it is in, and saves it.
  stopped_at = int(state.step)
  assert 10 - (train.PREFETCH + 1) <= stopped_at <= 10
  assert checkpoint.Checkpoints(str(tmp_path / "checkpoints")).latest_step() == stopped_at
  assert signal.getsignal(signal.SIGTERM) is not None  # the handler was restored


def test_sigterm_during_a_steps_logging_still_saves_that_step(tmp_path, mock_data, monkeypatch):
  """A signal that arrives after the loop has decided whether to checkpoint this step (here
  while it logs) must not make it print "checkpoint saved" and stop without saving: the
  decision and the stop read the request once (a DDPM run lost steps 351-400 this way)."""
  real_report = train.Progress.report

  def report_then_signal(self, step, scalars):
    if step == 3:
      os.kill(os.getpid(), signal.SIGTERM)
    return real_report(self, step, scalars)

  monkeypatch.setattr(train.Progress, "report", report_then_signal)
  config = tiny(str(REPO / "configs" / "dcgan_mnist.py"), steps=50, checkpoint_every_steps=100)
  config.log_every_steps = 1
  state = train.train_and_evaluate(config, str(tmp_path))
  assert checkpoint.Checkpoints(str(tmp_path / "checkpoints")).latest_step() == int(state.step)
  assert int(state.step) in (3, 4)  # this step, or the next one; never unsaved


def test_incompatible_checkpoint_is_refused_and_kept(tmp_path, mock_data, dcgan_run):
  path = str(REPO / "configs" / "dcgan_mnist.py")
  copy_run(dcgan_run, tmp_path)
  before = snapshot(tmp_path / "checkpoints")
  wider = tiny(path, steps=2)
  wider.model.ngf = 8
  # The saved config.json says so first; without it, the checkpoint's shapes do.
  with pytest.raises(workdir.WorkdirError, match=r"another architecture \(model.ngf: 4 -> 8\)"):
    train.train_and_evaluate(wider, str(tmp_path))
  os.remove(tmp_path / "config.json")
  with pytest.raises(checkpoint.CheckpointError, match=r"does not match this config's model"):
    train.train_and_evaluate(wider, str(tmp_path))
  assert snapshot(tmp_path / "checkpoints") == before


def test_corrupt_checkpoint_is_a_clear_error_and_kept(tmp_path, mock_data, dcgan_run):
  path = str(REPO / "configs" / "dcgan_mnist.py")
  copy_run(dcgan_run, tmp_path)
  for f in glob.glob(str(tmp_path / "checkpoints" / "1" / "**" / "*"), recursive=True):
    if os.path.isfile(f) and os.path.getsize(f) > 64:
      with open(f, "r+b") as fh:  # overwrite the middle of every data file with garbage
        fh.seek(os.path.getsize(f) // 2)
        fh.write(b"\xff" * 32)
  before = snapshot(tmp_path / "checkpoints")
  with pytest.raises(checkpoint.CheckpointError, match=r"checkpoints/1 .*left untouched"):
    train.train_and_evaluate(tiny(path, steps=2), str(tmp_path))
  assert snapshot(tmp_path / "checkpoints") == before


def snapshot(folder):
  return {f: open(f, "rb").read() for f in glob.glob(str(folder / "**" / "*"), recursive=True)
          if os.path.isfile(f)}


def test_sample_from_checkpoint(tmp_path, dcgan_run):
  copy_run(dcgan_run, tmp_path)
  images, labels = sample.sample(str(tmp_path), num=7, seed=0, batch_size=3)
  assert images.shape == (7, 28, 28, 1) and images.dtype == np.uint8 and labels is None
  np.testing.assert_array_equal(images, sample.sample(str(tmp_path), num=7, seed=0, batch_size=3)[0])
  assert not np.array_equal(images, sample.sample(str(tmp_path), num=7, seed=1, batch_size=3)[0])


def test_sample_command_writes_npz_and_grid(tmp_path, dcgan_run):
  copy_run(dcgan_run, tmp_path)
  out = subprocess.run([sys.executable, "-m", "jaxgan.sample", "--workdir", str(tmp_path),
                        "--num", "5", "--out", str(tmp_path / "s.npz"),
                        "--grid", str(tmp_path / "g.png")],
                       cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert out.returncode == 0, out.stderr[-2000:]
  with np.load(tmp_path / "s.npz") as f:
    assert f["images"].shape == (5, 28, 28, 1) and f["images"].dtype == np.uint8
  assert (tmp_path / "g.png").exists()


def test_sample_command_with_label(tmp_path, cdcgan_run):
  copy_run(cdcgan_run, tmp_path)
  out = subprocess.run([sys.executable, "-m", "jaxgan.sample", "--workdir", str(tmp_path),
                        "--num", "5", "--label", "3", "--out", str(tmp_path / "s.npz"),
                        "--grid", str(tmp_path / "g.png")],
                       cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert out.returncode == 0, out.stderr[-2000:]
  with np.load(tmp_path / "s.npz") as f:
    assert f["images"].shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(f["labels"], [3] * 5)
  out = subprocess.run([sys.executable, "-m", "jaxgan.sample", "--workdir", str(tmp_path),
                        "--num", "2", "--label", "12", "--out", str(tmp_path / "t.npz")],
                       cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert out.returncode == 1 and "labels must be in 0..9" in out.stderr
  assert "Traceback" not in out.stderr


def test_sample_without_checkpoint_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="config.json not found"):
    sample.sample(str(tmp_path), num=1, seed=0)


def test_config_validation():
  config = tiny(str(REPO / "configs" / "dcgan_mnist.py"), batch_size=0)
  with pytest.raises(config_lib.ConfigError, match="config.batch_size must be positive"):
    config_lib.validate(config)


def run_cli(*args):
  return subprocess.run([sys.executable, "-m", "jaxgan.main", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("args,message", [
    (["--config.nope=1"], "unknown config field config.nope"),
    (["--config.data.nme=x"], "unknown config field config.data.nme"),
    (["--config.batch_size=abc"], "invalid literal for int"),
    (["--config.batch_size=-4"], "config.batch_size must be positive"),
    (["--config.loss.name=wgan"], "unknown GAN loss 'wgan'"),
])
def test_command_line_mistakes_are_one_line(tmp_path, args, message):
  out = run_cli("--config", "configs/dcgan_mnist.py", "--workdir", str(tmp_path), *args)
  assert out.returncode != 0
  assert message in out.stderr
  assert "Traceback" not in out.stderr


def test_missing_config_file_is_one_line(tmp_path):
  out = run_cli("--config", "configs/nothere.py", "--workdir", str(tmp_path))
  assert out.returncode != 0 and "config file configs/nothere.py not found" in out.stderr
  assert "Traceback" not in out.stderr


def test_capabilities_are_discovered_through_the_family_wrapper():
  """`families.create` wraps a family (`_Implemented`); what the wrapper can do is what the
  family inside can do, and a family without a capability has none of its methods."""
  expected = {"dcgan_mnist.py": {"sampling", "noise_sampling", "discriminator_probe"},
              "mnist_classifier.py": {"prediction"},
              "pix2pix_facades_cpu.py": {"sampling", "translation"},
              "cyclegan_grumpycat.py": {"sampling", "translation"},
              "ddpm_mnist.py": {"sampling", "noise_sampling", "denoising_view"}}
  for name, capabilities in expected.items():
    family = families.create(config_lib.load(str(REPO / "configs" / name)))
    inner = family._family  # pylint: disable=protected-access
    assert families.capabilities(family) == families.capabilities(inner) == capabilities, name
    assert isinstance(inner, families.Family)
  classifier = families.create(config_lib.load(str(REPO / "configs" / "mnist_classifier.py")))
  assert not families.supports(classifier, families.Sampling)
  assert not hasattr(classifier, "generate")


def test_the_terminal_shows_progress_and_the_workdir_log_keeps_library_info(tmp_path):
  """A real run from the command line (over mock data): stdout has the progress lines, the
  terminal no Python INFO line (Orbax logs some at every save), and `<workdir>/train.log`
  has them."""
  out = subprocess.run(
      [sys.executable, str(REPO / "tests" / "fault_launcher.py"), "--config",
       "configs/dcgan_mnist.py", "--workdir", str(tmp_path / "run"),
       "--config.num_train_steps=2", "--config.batch_size=4", "--config.model.ngf=4",
       "--config.model.ndf=4", "--config.log_every_steps=1", "--config.checkpoint_every_steps=1",
       "--config.num_grid_images=0"],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "step 2/2" in out.stdout
  terminal = out.stdout + out.stderr
  assert not re.search(r"^I\d{4} .*\.py:\d+\]", terminal, re.M), terminal[-3000:]  # absl INFO
  assert "CheckpointManager" not in terminal
  log = (tmp_path / "run" / "train.log").read_text()
  assert "absl INFO" in log and "CheckpointManager" in log
