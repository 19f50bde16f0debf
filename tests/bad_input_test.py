"""Bad input, tried systematically: every mistake in a config, a data folder or a
checkpoint gives one clear line and a non-zero exit status, never a traceback.

- Config overrides (hypothesis): any field of any experiment set to values of any type,
  sign and size, unknown fields, through the command line's own parsing (in-process, a
  fresh absl flag set each time), then everything a run does with the config before its
  first step (`start_of_training`, on TFDS mock data). The outcome is a parse error on
  one line, a `jaxgan.errors.USER_ERRORS` exception whose message is one line, or a
  config that trains.
- Image folders (hypothesis): facades-style folders (train/ and val/ of side-by-side
  pairs), unpaired ones (trainA/, trainB/) and any folder of images (`folder`) holding
  good pairs, grayscale, RGBA, palette and 16-bit images, mixed and odd
  sizes, other files, and broken ones (truncated, not an image, empty, a folder named
  like an image (searched by `folder`, which looks in subfolders), too small to be a
  pair), or no image at all. A broken file gives a
  DataError naming it; anything else prepares and yields batches of the configured shape.
  `FOLDER_CASES` lists the kinds; a new folder dataset adds its own `prepare` here.
- Checkpoints: missing, half-written, truncated or emptied, each one line with the files
  left as they were; Orbax's temporary folders are never taken for a checkpoint.
- Checkpoints and configs are data: only JSON and TensorStore arrays, no pickle, and
  loading a run executes nothing from its workdir.
- A few representative cases through the real command line.

`CASES` counts the cases each hypothesis test tried (printed at the end of the module;
the README quotes it).
"""

import collections
import io
import os
import pathlib
import pickle
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from absl import flags
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from conftest import REPO, write_images, write_pairs
from train_test import assert_trees_equal, mock_data, snapshot, tiny  # noqa: F401
from jaxgan import checkpoint, config as config_lib, errors, families, inference, main, train
from jaxgan.datasets import base as datasets_base
from jaxgan.datasets import preparation, streams
from jaxgan.errors import DataError

CONFIGS = ["dcgan_mnist.py", "cdcgan_mnist.py", "cgan_multiclass_mnist.py", "gan_mnist.py",
           "mnist_classifier.py", "pix2pix_facades_cpu.py", "cyclegan_grumpycat.py",
           "dcgan_grumpycat.py"]
CASES = collections.Counter()
# JAXGAN_BAD_INPUT_SCALE=k runs k times the examples of each hypothesis test.
SCALE = float(os.environ.get("JAXGAN_BAD_INPUT_SCALE", "1"))
OUTCOMES = collections.Counter()  # how the hypothesis cases ended
LAUNCHER = str(REPO / "tests" / "fault_launcher.py")


@pytest.fixture(scope="module", autouse=True)
def report_counts():
  yield
  if CASES:
    print("\nbad input cases tried: " + ", ".join(f"{k} {v}" for k, v in sorted(CASES.items()))
          + "; outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(OUTCOMES.items())))


def assert_one_line(error: BaseException) -> None:
  text = str(error)
  assert text.strip() and "\n" not in text.strip(), repr(text)


# ---------------------------------------------------------------------------------------
# Config overrides.


def fields_of(config, prefix=""):
  """{'data.image_size': 28, ...} for every leaf field of a config."""
  out = {}
  for key, value in config.items():
    if hasattr(value, "items"):
      out.update(fields_of(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


FIELDS = {name: fields_of(config_lib.load(str(REPO / "configs" / name))) for name in CONFIGS}

# Small, typical, or beyond int32 (refused): a size that fits int32 but not in memory is
# not a mistake that a config check can see, and would only exhaust the test's memory.
INTS = st.one_of(st.integers(-3, 3), st.sampled_from([0, 1, 2, 7, 28, 64, 127, 300]),
                 st.sampled_from([-2**31 - 1, 2**31, 10**12, 2**63, -2**70, 2**70]))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, 1e30]))
NAMES = st.sampled_from(["", "x", "None", "mnist", "celeb_a", "pix2pix/facades", "lsgan",
                         "multiclass", "AtoB", "BtoA", "train", "test", "val[:1]", "rollback",
                         "unet_32", "dcgan_generator", "mlp_discriminator", "instance", "gan",
                         "classifier", "pix2pix", "cyclegan", "unpaired/grumpifycat",
                         "resnet_9blocks", "cycle_generator_64", "/nonexistent", "folder", "deluxe",
                         "diffaugment", "color,cutout"])
TEXT = st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=8)
ANY = st.one_of(INTS.map(str), FLOATS.map(repr), NAMES, TEXT, st.sampled_from(["true", "[1, 2]"]))


def values_for(default) -> st.SearchStrategy[str]:
  """Text for a field with this default: mostly of its type (any sign, size, or name),
  else anything."""
  if isinstance(default, bool):
    typed = st.sampled_from(["true", "false", "1", "0"])
  elif isinstance(default, int):
    typed = INTS.map(str)
  elif isinstance(default, float):
    typed = st.one_of(FLOATS.map(repr), INTS.map(str))
  else:  # strings and string placeholders
    typed = st.one_of(NAMES, TEXT)
  return st.integers(0, 3).flatmap(lambda i: ANY if i == 0 else typed)


@st.composite
def overrides(draw):
  """(config file, ['--config.field=value', ...]): one to three overrides, mostly of real
  fields, sometimes of misspelt or invented ones."""
  name = draw(st.sampled_from(CONFIGS))
  fields = FIELDS[name]
  args = []
  for _ in range(draw(st.integers(1, 3))):
    field = draw(st.sampled_from(sorted(fields)))
    mistake = draw(st.integers(0, 9))
    if mistake == 0:  # misspelt
      field += draw(st.sampled_from(["x", "s", "_"]))
    elif mistake == 1:  # invented
      field = draw(st.from_regex(r"[a-z]{1,6}(\.[a-z_]{1,6})?", fullmatch=True))
    args.append(f"--config.{field}={draw(values_for(fields.get(field)))}")
  return name, args


def parse(config_name, args, capsys):
  """The command line's parsing of these overrides: (config, None) or (None, its error line)."""
  flag_values = flags.FlagValues()
  main.define_flags(flag_values)
  argv = ["jaxgan.main", "--config", str(REPO / "configs" / config_name), "--workdir", "unused",
          *args]
  real_argv, sys.argv = sys.argv, argv  # config_flags finds the overrides in sys.argv
  try:
    main.parse_flags(argv, flag_values)
  except SystemExit as e:
    err = capsys.readouterr().err.strip().splitlines()
    assert e.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return None, err[0]
  finally:
    sys.argv = real_argv
  return flag_values.config, None


def start_of_training(config):
  """What `train.train_and_evaluate` does with a config before its first step, without a
  workdir: checks, the family, the initial state, a batch of data, the sample grid's
  inputs and the step, traced (shapes and types) rather than run."""
  config_lib.validate(config)
  mesh = train.make_mesh()
  train.check_batch_size(config, mesh)
  family = families.create(config, train.mesh_platform(mesh))
  state = jax.eval_shape(family.init_state, jax.random.PRNGKey(config.seed))
  batch = next(streams.create_train_iterator(config.data, config.batch_size, config.seed,
                                             augment_config=config.get("augment")))
  jax.eval_shape(family.train_step, state, batch)
  if config.num_grid_images > 0:
    inputs = family.fixed_inputs(jax.random.PRNGKey(config.seed + 1), config.num_grid_images)
    jax.eval_shape(family.generate, state, inputs)


@settings(max_examples=int(300 * SCALE), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=overrides())
def test_config_overrides_are_trained_or_one_line(case, mock_data, capsys):
  CASES["config overrides"] += 1
  config, _ = parse(*case, capsys)
  if config is None:
    OUTCOMES["overrides: refused by the parser"] += 1
    return
  try:
    start_of_training(config)
    OUTCOMES["overrides: train"] += 1
  except errors.USER_ERRORS as e:
    assert_one_line(e)
    OUTCOMES[f"overrides: refused ({type(e).__name__})"] += 1


@pytest.mark.parametrize("override,message", [
    ("model.ngf=0", "config.model.ngf must be positive, got 0"),
    ("optimizer.learning_rate=nan", "config.optimizer.learning_rate must be positive, got nan"),
    ("optimizer.b1=1.5", "config.optimizer.b1 must be in [0, 1)"),
    ("divergence.on_nonfinite=sometimes", "config.divergence.on_nonfinite must be 'stop' or"),
    ("keep_checkpoints=0", "config.keep_checkpoints must be positive"),
    ("batch_size=0", "config.batch_size must be positive"),
])
def test_named_config_mistakes(override, message, capsys):
  CASES["named config mistakes"] += 1
  config, _ = parse("pix2pix_facades_cpu.py" if "batch" in override else "dcgan_mnist.py",
                    [f"--config.{override}"], capsys)
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.validate(config)
  assert message in str(e.value)


@pytest.mark.parametrize("config_name,override,message", [
    ("dcgan_mnist.py", "data.name=no_such_dataset", "config.data.name='no_such_dataset' is not a dataset"),
    ("dcgan_mnist.py", "model.ngf=-1", "config.model.ngf must be positive, got -1"),
    ("pix2pix_facades_cpu.py", "data.channels=1",
     "config.data.channels=1, but the input images of pix2pix/facades have 3 channels"),
])
def test_config_mistakes_from_the_command_line(config_name, override, message, tmp_path):
  """The real command (over mock data): one line, exit status 1 or 2, no traceback."""
  CASES["command line"] += 1
  out = subprocess.run([sys.executable, LAUNCHER, f"--config=configs/{config_name}",
                        f"--config.{override}", "--workdir", str(tmp_path / "w")], cwd=REPO,
                       capture_output=True, text=True, timeout=300, check=False)
  lines = [l for l in out.stderr.splitlines() if l.startswith("error:")]
  assert out.returncode in (1, 2) and len(lines) == 1 and message in lines[0], out.stderr[-3000:]
  assert "Traceback" not in out.stderr


# ---------------------------------------------------------------------------------------
# Image folders: pix2pix/facades (train/ and val/ of side-by-side pairs) and the unpaired
# sets (trainA/ and trainB/ of single images).


def encoded(image: Image.Image, fmt: str) -> bytes:
  out = io.BytesIO()
  image.save(out, fmt)
  return out.getvalue()


def pair(rng, height, width, mode="RGB") -> Image.Image:
  """A random image of `mode`: RGB, L (grayscale), RGBA, P (palette), I;16, CMYK."""
  if mode == "I;16":
    return Image.fromarray(rng.integers(0, 65536, (height, width)).astype(np.uint16))
  rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3)).astype(np.uint8))
  return rgb if mode == "RGB" else rgb.convert(mode)


# kind -> (suffix, bytes from (rng, height, width) or None for a folder, must fail: True,
# False, or None when either is right (a truncated JPEG may still decode)). "too_small"
# fails only as a pair (a 1x1 file cannot hold two images side by side); "folder" only
# where images are not searched for in subfolders.
FOLDER_CASES = {
    "rgb_jpeg": (".jpg", lambda rng, h, w: encoded(pair(rng, h, w), "JPEG"), False),
    "rgb_png": (".png", lambda rng, h, w: encoded(pair(rng, h, w), "PNG"), False),
    "grayscale": (".png", lambda rng, h, w: encoded(pair(rng, h, w, "L"), "PNG"), False),
    "rgba": (".png", lambda rng, h, w: encoded(pair(rng, h, w, "RGBA"), "PNG"), False),
    "palette": (".png", lambda rng, h, w: encoded(pair(rng, h, w, "P"), "PNG"), False),
    "gray16": (".png", lambda rng, h, w: encoded(pair(rng, h, w, "I;16"), "PNG"), False),
    "cmyk_jpeg": (".jpeg", lambda rng, h, w: encoded(pair(rng, h, w, "CMYK"), "JPEG"), False),
    "upper_case_suffix": (".JPG", lambda rng, h, w: encoded(pair(rng, h, w), "JPEG"), False),
    "other_file": (".txt", lambda rng, h, w: b"notes", False),  # not an image: ignored
    "truncated": (".jpg", lambda rng, h, w: encoded(pair(rng, h, w), "JPEG")[
        :int(rng.integers(1, 400))], None),
    "garbage": (".png", lambda rng, h, w: rng.bytes(int(rng.integers(1, 300))), True),
    "empty": (".jpg", lambda rng, h, w: b"", True),
    "html": (".jpg", lambda rng, h, w: b"<html>rate limited</html>", True),
    "too_small": (".png", lambda rng, h, w: encoded(pair(rng, 1, 1), "PNG"), "pairs"),
    "folder": (".jpg", None, "flat"),
}
IGNORED = "ignored"  # an entry that is no image to the dataset (a text file; a subfolder)


@st.composite
def folders(draw):
  """A list of (kind, height, width) for the training folder drawn; the others get one
  good image each."""
  files = draw(st.lists(st.tuples(st.sampled_from(sorted(FOLDER_CASES)), st.integers(2, 40),
                                  st.integers(2, 90)), max_size=6))
  return files


def facades_dataset(root: pathlib.Path, data_dir):
  """pix2pix/facades: train/ (drawn) and val/ (one good pair); a tiny config over it."""
  write_pairs(root / "val", 1, side=8)
  config = tiny(str(REPO / "configs" / "pix2pix_facades_cpu.py"), **{
      "data.manual_dir": str(root), "data.data_dir": str(data_dir), "data.image_size": 16,
      "data.load_size": 18, "data.num_train_examples": 1, "batch_size": 2})
  return root / "train", config, ("input", "target"), "pairs"


def unpaired_dataset(root: pathlib.Path, data_dir):
  """unpaired/grumpifycat: trainA/ (drawn) and trainB/ (one good image); a tiny config."""
  write_images(root / "trainB", 1, side=8)
  config = tiny(str(REPO / "configs" / "cyclegan_grumpycat.py"), **{
      "data.manual_dir": str(root), "data.data_dir": str(data_dir), "data.image_size": 16,
      "data.load_size": 18, "data.num_train_examples": 1, "batch_size": 2})
  return root / "trainA", config, ("A", "B"), "flat"


def folder_dataset(root: pathlib.Path, data_dir):
  """folder: the drawn folder is the whole dataset, searched recursively; a tiny config."""
  config = tiny(str(REPO / "configs" / "dcgan_mnist.py"), **{
      "data.name": "folder", "data.path": str(root / "images"), "data.data_dir": str(data_dir),
      "data.image_size": 16, "data.channels": 3, "batch_size": 2})
  return root / "images", config, ("image",), "tree"


DATASETS = {"facades": facades_dataset, "unpaired": unpaired_dataset, "folder": folder_dataset}


def write_folder(folder: pathlib.Path, files, seed: int, layout: str) -> dict[str, bool | str]:
  """Writes the drawn files into `folder`; returns {path: must fail, or IGNORED}. `layout`:
  "pairs" (side-by-side images), "flat" (single images, no subfolders), "tree" (single
  images, subfolders searched)."""
  rng = np.random.default_rng(seed)
  folder.mkdir(parents=True)
  outcome = {}
  for i, (kind, height, width) in enumerate(files):
    suffix, make, fails = FOLDER_CASES[kind]
    path = folder / f"{i:02d}_{kind}{suffix}"
    if make is None:
      path.mkdir()
    else:
      path.write_bytes(make(rng, height, width))
    if suffix == ".txt" or (make is None and layout == "tree"):
      fails = IGNORED
    elif fails == "pairs":  # a 1x1 image is too small only to be a pair
      fails = layout == "pairs"
    elif fails == "flat":  # a folder named like an image, where none is searched
      fails = True
    outcome[str(path)] = fails
  return outcome


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@settings(max_examples=int(30 * SCALE), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(files=folders(), seed=st.integers(0, 2**16))
def test_image_folders_prepare_or_name_the_bad_file(dataset, files, seed, tmp_path_factory,
                                                    monkeypatch):
  CASES[f"image folders ({dataset})"] += 1
  monkeypatch.setattr(datasets_base, "network_available", lambda url: False)
  root = tmp_path_factory.mktemp("folder")
  folder, config, keys, layout = DATASETS[dataset](root / "set", root / "tfds")
  outcome = write_folder(folder, files, seed, layout)
  images = sorted(p for p in outcome if outcome[p] != IGNORED)
  try:
    preparation.prepare_dataset(config.data)
    batch = next(streams.create_train_iterator(config.data, config.batch_size,
                                               config.seed))
  except DataError as e:
    OUTCOMES[f"folders: refused (DataError, {dataset})"] += 1
    assert_one_line(e)
    if not images:
      assert "holds no images" in str(e) or "holds no trainA/" in str(e), str(e)
    else:  # the first file that could not be read, in the order they are read
      bad = next(p for p in images if outcome[p] is not False and p in str(e))
      assert all(outcome[p] is not True for p in images if p < bad)
    return
  OUTCOMES[f"folders: prepared ({dataset})"] += 1
  assert not any(outcome[p] for p in images), "a broken file was accepted"
  for key in keys:
    assert batch[key].shape == (2, 16, 16, 3)
    assert np.isfinite(batch[key]).all() and np.abs(batch[key]).max() <= 1


# ---------------------------------------------------------------------------------------
# Checkpoints: missing, half-written, damaged.


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A workdir after 2 steps (checkpoints 1 and 2) of the toy DCGAN."""
  workdir = tmp_path_factory.mktemp("trained")
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(datasets_base, "network_available", lambda url: True)
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    with tfds.testing.mock_data(num_examples=12):
      train.train_and_evaluate(tiny(str(REPO / "configs" / "dcgan_mnist.py"), steps=2),
                               str(workdir))
  return workdir


def emptied(step_dir):  # a copy that stopped after creating the folder
  shutil.rmtree(step_dir)
  step_dir.mkdir()


def without_metadata(step_dir):  # a copy that lost its tree metadata
  (step_dir / "default" / "_METADATA").unlink()


def truncated(step_dir):  # every file cut to half its length
  for f in step_dir.rglob("*"):
    if f.is_file():
      f.write_bytes(f.read_bytes()[:f.stat().st_size // 2])


def without_arrays(step_dir):  # the array data gone
  for f in step_dir.rglob("*"):
    if f.is_file() and f.parent.name == "d":
      f.unlink()


@pytest.mark.parametrize("damage", [emptied, without_metadata, truncated, without_arrays],
                         ids=lambda f: f.__name__)
def test_damaged_latest_checkpoint_is_one_line_and_kept(damage, trained, tmp_path, mock_data):
  CASES["damaged checkpoints"] += 1
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  damage(workdir / "checkpoints" / "2")
  before = snapshot(workdir / "checkpoints")
  with pytest.raises(checkpoint.CheckpointError, match=r"checkpoints/2 .*left untouched") as e:
    train.train_and_evaluate(tiny(str(REPO / "configs" / "dcgan_mnist.py"), steps=3), str(workdir))
  assert_one_line(e.value)
  assert snapshot(workdir / "checkpoints") == before


def test_partial_saves_are_never_checkpoints(trained, tmp_path, mock_data):
  """What a kill during a save leaves: `<step>.orbax-checkpoint-tmp` folders, complete or
  not, which are never restored and are removed by the run that takes the workdir; and,
  killed while Orbax deleted an old step, part of that step, which the next save deletes."""
  CASES["damaged checkpoints"] += 1
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  ckpts = workdir / "checkpoints"
  shutil.copytree(ckpts / "2", ckpts / "7.orbax-checkpoint-tmp")  # complete but not renamed
  (ckpts / "9.orbax-checkpoint-tmp" / "default").mkdir(parents=True)  # barely begun
  for i, f in enumerate(sorted(p for p in (ckpts / "1").rglob("*") if p.is_file())):
    if i % 2 == 0:
      f.unlink()  # step 1 half deleted
  assert checkpoint.Checkpoints(str(ckpts)).latest_step() == 2
  assert int(inference.load_run(str(workdir))[2].step) == 2
  state = train.train_and_evaluate(tiny(str(REPO / "configs" / "dcgan_mnist.py"), steps=3,
                                        keep_checkpoints=2), str(workdir))
  assert int(state.step) == 3
  assert sorted(os.listdir(ckpts)) == ["2", "3"]


def test_sampling_without_a_checkpoint_is_one_line(tmp_path):
  CASES["damaged checkpoints"] += 1
  config_lib.save_json(tiny(str(REPO / "configs" / "dcgan_mnist.py")), str(tmp_path / "config.json"))
  out = subprocess.run([sys.executable, "-m", "jaxgan.sample", "--workdir", str(tmp_path)],
                       cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  lines = [l for l in out.stderr.splitlines() if l.startswith("error:")]
  assert out.returncode == 1 and len(lines) == 1 and "no checkpoint in" in lines[0], out.stderr
  assert "Traceback" not in out.stderr


# ---------------------------------------------------------------------------------------
# Checkpoints and configs are data.

OCDBT, ZSTD = b"\x0c\xdb", b"\x28\xb5\x2f\xfd"  # TensorStore's OCDBT files; zstd-compressed chunks


def test_checkpoints_hold_only_json_and_arrays(trained):
  kinds = collections.Counter()
  for f in (trained / "checkpoints").rglob("*"):
    if not f.is_file():
      continue
    data = f.read_bytes()
    if f.name == "commit_success.txt":
      kinds["commit marker"] += 1
    elif data.startswith((OCDBT, ZSTD)):
      kinds["arrays"] += 1
    else:
      import json  # pylint: disable=import-outside-toplevel
      json.loads(data)  # anything else must be JSON
      kinds["json"] += 1
    assert not data.startswith(b"\x80"), f"{f} looks like a pickle"
  assert kinds["arrays"] and kinds["json"]


def test_loading_a_run_executes_nothing_from_its_workdir(trained, tmp_path, monkeypatch):
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  marker = tmp_path / "executed"
  payload = f"open({str(marker)!r}, 'w').close()\n"
  for folder in (workdir, workdir / "checkpoints", workdir / "checkpoints" / "2"):
    for name in ("config.py", "__init__.py", "sitecustomize.py", "jaxgan_config_file.py"):
      (folder / name).write_text(payload)
  config = (workdir / "config.json").read_text()
  (workdir / "config.json").write_text(config.replace('"mnist"', '"__import__(\'os\')"', 1))

  def no_unpickling(*args, **kwargs):
    raise AssertionError("a checkpoint or config was unpickled")

  monkeypatch.setattr(pickle, "load", no_unpickling)
  monkeypatch.setattr(pickle, "loads", no_unpickling)
  monkeypatch.setattr(pickle, "Unpickler", no_unpickling)
  loaded, _, state = inference.load_run(str(workdir))
  assert loaded.data.name == "__import__('os')"  # a string, as written
  assert int(state.step) == 2 and not marker.exists()
  assert_trees_equal(jax.device_get(state), jax.device_get(inference.load_run(str(trained))[2]))
