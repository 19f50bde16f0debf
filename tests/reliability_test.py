"""What a week-long run on shared storage meets (issue 26; docs/reliability.md's table):
storage that flips bits, a disk that fills up, a lock file deleted by hand, image folders
with symlink loops, and command lines that are wrong before anything is loaded."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import REPO, write_images
from train_test import mock_data, tiny  # noqa: F401  (mock_data: a fixture)
from workdir_test import assert_one_line_error, hold_lock, launch
from jaxgan import checkpoint, config as config_lib, inference, train, workdir
from jaxgan.datasets import folder
from jaxgan.errors import DataError

DCGAN = str(REPO / "configs" / "dcgan_mnist.py")


def snapshot(path):
  return {str(f): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


def flip_a_bit(step_dir, name):
  """Stands in for storage that returns other bytes than were written, undetected by the
  file format: `step_dir`'s arrays are replaced by the same state with one bit of the array
  `name` flipped (a float's exponent: 1e-8 becomes ~1e30), its step metadata kept."""
  state = ocp.StandardCheckpointer().restore(step_dir / "default")
  flat = ocp.tree.to_flat_dict(state)
  key = next(k for k in flat if "/".join(map(str, k)) == name)
  bits = np.array(flat[key]).view(np.uint32)
  bits.flat[0] ^= 1 << 30
  flat[key] = bits.view(np.float32)
  state = ocp.tree.from_flat_dict(flat, target=state)
  scratch = step_dir.parent.parent / "scratch"
  with ocp.StandardCheckpointer() as saver:
    saver.save(scratch, state)
  shutil.rmtree(step_dir / "default")
  shutil.move(scratch, step_dir / "default")


def test_a_flipped_bit_is_refused_naming_the_array_and_kept(tmp_path, mock_data):
  run = tmp_path / "run"
  train.train_and_evaluate(tiny(DCGAN, steps=2), str(run))
  name = "discriminator/opt_state/0/mu/Conv_0/kernel"
  assert name in checkpoint.checksums(inference.load_run(str(run))[2])
  flip_a_bit(run / "checkpoints" / "2", name)
  before = snapshot(run / "checkpoints")
  message = (rf"checkpoint {run}/checkpoints/2 is damaged: array {name} does not match the "
             r"checksum .* left untouched: move it out of the way .* to resume from step 1")
  with pytest.raises(checkpoint.CheckpointError, match=message):
    train.train_and_evaluate(tiny(DCGAN, steps=3), str(run))
  with pytest.raises(checkpoint.CheckpointError, match=message):  # jaxgan.sample, evaluate
    inference.load_run(str(run))
  assert snapshot(run / "checkpoints") == before
  shutil.move(run / "checkpoints" / "2", tmp_path / "damaged")  # as the message says
  assert int(train.train_and_evaluate(tiny(DCGAN, steps=2), str(run)).step) == 2


def test_a_failed_write_of_a_save_is_one_line(tmp_path, monkeypatch):
  """A disk full while TensorStore writes: the step, the cause and the file, and the steps
  that are intact (the full-disk test below does it for real, where mounting is possible)."""
  ckpts = checkpoint.Checkpoints(str(tmp_path))
  ckpts.save(1, {"x": np.ones(3, np.float32)})
  ckpts.wait()

  def full(*args, **kwargs):
    raise ValueError('RESOURCE_EXHAUSTED: Error writing "x/0" in OCDBT database at local file '
                     '"/d/": Failed writing: "/d/ocdbt.process_0/d/ab": Failed to write 10 '
                     "bytes to file 16: No space left on device [os_error_code='28']")

  monkeypatch.setattr(ckpts.manager, "save", full)
  with pytest.raises(workdir.WriteError) as e:
    ckpts.save(2, {"x": np.ones(3, np.float32)})
  assert str(e.value).startswith(
      f"cannot write checkpoint 2 into {tmp_path}: No space left on device (ENOSPC, "
      "/d/ocdbt.process_0/d/ab); checkpoints up to step 1 are intact")


def _can_mount() -> bool:
  try:
    return subprocess.run(["unshare", "--mount", "mount", "-t", "tmpfs", "tmpfs", "/mnt"],
                          capture_output=True, timeout=10, check=False).returncode == 0
  except (OSError, subprocess.TimeoutExpired):
    return False


@pytest.mark.skipif(not _can_mount(), reason="needs `unshare --mount` and tmpfs mounts (root)")
def test_a_full_disk_stops_with_one_line_and_the_next_start_resumes(tmp_path):
  mount = tmp_path / "mnt"
  mount.mkdir()
  args = ["--config", "configs/dcgan_mnist.py", "--config.batch_size=4", "--config.model.ngf=4",
          "--config.model.ndf=4", "--config.num_grid_images=0", "--config.num_train_steps=1000",
          "--config.checkpoint_every_steps=2", "--config.keep_checkpoints=2",
          "--config.log_every_steps=1000"]
  out = subprocess.run(["unshare", "--mount", sys.executable,
                        str(REPO / "tests" / "full_disk_launcher.py"), str(mount), *args],
                       capture_output=True, text=True, timeout=600, check=True)
  result = json.loads(out.stdout.splitlines()[-1])
  code, stderr = result["full"]
  lines = [l for l in stderr.splitlines() if l.startswith("error:")]
  assert code == 1 and len(lines) == 1, stderr[-3000:]
  assert "Traceback" not in stderr
  assert "No space left on device (ENOSPC" in lines[0] and f"{mount}/run/checkpoints" in lines[0]
  assert "checkpoints up to step 4 are intact" in lines[0] and "the full trace is in" in lines[0]
  assert {"2", "4"} <= set(result["after_full"])  # the earlier checkpoints are there
  code, stderr = result["again"]
  assert code == 0, stderr[-3000:]
  assert "resuming at step 4" in result["train_log"]  # INFO goes to the workdir's log
  assert result["after_again"] == ["4", "6"]  # the partial save is gone


def test_a_deleted_or_replaced_lock_file_does_not_free_the_workdir(tmp_path):
  partial = tmp_path / "checkpoints" / "5.orbax-checkpoint-tmp"
  partial.mkdir(parents=True)  # the live run's save in progress
  holder = hold_lock(tmp_path)
  try:
    (tmp_path / workdir.LOCK_FILE).unlink()  # "a leftover from a crash"
    out = launch("--workdir", str(tmp_path))
    assert_one_line_error(out, f"{tmp_path} is in use by another run")
    (tmp_path / workdir.LOCK_FILE).write_text("{}")  # replaced by hand
    with pytest.raises(workdir.WorkdirError, match="is in use by another run"):
      with workdir.lock(str(tmp_path)):
        pass
    assert partial.is_dir()  # the live run's files are its own
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  with workdir.lock(str(tmp_path)):  # free once the holder is gone
    pass


def test_symlink_loops_neither_hang_nor_duplicate(tmp_path, caplog):
  signal.alarm(60)  # a loop that is followed would run until memory ends
  try:
    root = tmp_path / "set"
    write_images(root / "a", 2, side=4)
    write_images(root / "b", 1, side=4)
    (root / "a" / "up").symlink_to(root)  # to a parent
    (root / "b" / "self").symlink_to(root / "b")  # to itself
    (root / "again").symlink_to(root / "a")  # a second way to the same images
    (root / "0-copy.png").symlink_to(root / "b" / "0.png")
    (root / "outside").symlink_to(tmp_path / "more")  # a real folder elsewhere: followed
    write_images(tmp_path / "more", 1, side=4)
    found = folder.scan(folder.check_folder(root))
  finally:
    signal.alarm(0)
  assert [os.path.relpath(p, root) for p in found.images] == [
      "a/0.png", "a/1.png", "b/0.png", "outside/0.png"]
  assert found.repeated == 4
  with caplog.at_level(logging.WARNING):
    assert list(folder.Folder(config=folder.FolderConfig(name="x", path=str(root)),
                              data_dir=str(tmp_path / "tfds"))._split_generators(None))
  assert "skipped 4 links to folders or files already visited" in caplog.text


def test_a_folder_without_images_or_mostly_other_files_says_so(tmp_path, caplog):
  root = tmp_path / "set"
  root.mkdir()
  for i in range(12):
    (root / f"{i}.txt").write_text("")
  builder = folder.Folder(config=folder.FolderConfig(name="x", path=str(root)),
                          data_dir=str(tmp_path / "tfds"))
  with pytest.raises(DataError, match=r"holds no images .*found 12 other files: 12 \.txt"):
    builder._split_generators(None)
  write_images(root, 1, side=4)
  with caplog.at_level(logging.WARNING):
    builder._split_generators(None)
  assert "1 images among 12 other files: 12 .txt" in caplog.text


@pytest.mark.parametrize("text, message", [
    (None, "not found"),
    ("def get_config(:\n", "does not parse: invalid syntax (line 1)"),
    ("x = 1\n", "has no get_config()"),
    ("import no_such_module\n", "failed to load: ModuleNotFoundError: No module named "
                                "'no_such_module' (line 1)"),
], ids=["missing", "syntax", "no_get_config", "raises"])
def test_a_bad_config_file_is_one_line_naming_it(text, message, tmp_path):
  path = tmp_path / "exp.py"
  if text is not None:
    path.write_text(text)
  assert config_lib.file_problem(str(path)) == f"config file {path} {message}" or \
      config_lib.file_problem(str(path)).startswith(f"config file {path} {message}")
  assert config_lib.file_problem(DCGAN) is None


TOOLS = [
    ("jaxgan.main", ["--config", "{bad}", "--workdir", "{tmp}/w"], "does not parse"),
    ("jaxgan.main", ["--config", DCGAN, "--workdir", "{file}/w"], "is a file, not a folder"),
    ("jaxgan.sample", ["--workdir", "{tmp}", "--num", "0"], "--num=0 must be positive"),
    ("jaxgan.sample", ["--workdir", "{tmp}", "--out", "{tmp}/no/s.npz"], "does not exist"),
    ("jaxgan.sample", ["--workdir", "{tmp}", "--denoise", "d.png", "--grid", "g.png"],
     "--denoise draws its own figure"),
    ("jaxgan.evaluate", ["--workdir", "{tmp}", "--batch_size", "-1"], "--batch_size=-1 must be"),
    ("jaxgan.evaluate", [], "--workdir is required (or --npz"),
    ("jaxgan.evaluate", ["--npz", "{tmp}/none.npz"], "none.npz: no such file"),
    ("jaxgan.evaluate", ["--npz", "{file}", "--workdir", "{tmp}"], "leave out --workdir"),
    ("jaxgan.sample", ["--workdir", "{tmp}", "--trajectory", "t.png", "--denoise", "d.png"],
     "--denoise and --trajectory are two pictures"),
    ("jaxgan.compare", ["--workdir", "{tmp}/c", "--configs", f"{DCGAN},{{bad}}"], "does not parse"),
    ("jaxgan.sweep", ["--workdir", "{tmp}/s", "--config", DCGAN, "--num", "0"], "--num=0 must"),
]


def test_every_tool_checks_its_arguments_before_loading(tmp_path):
  """All tools in one process each, quickly: nothing is loaded before the check."""
  bad, afile = tmp_path / "bad.py", tmp_path / "file"
  bad.write_text("def get_config(:\n")
  afile.write_text("")
  for module, args, message in TOOLS:
    args = [a.format(bad=bad, tmp=tmp_path, file=afile) for a in args]
    out = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=False)
    lines = [l for l in out.stderr.splitlines() if l.startswith(("error:", "FATAL Flags"))]
    assert out.returncode in (1, 2) and len(lines) == 1 and message in lines[0], (module, out.stderr[-1500:])
    assert "Traceback" not in out.stderr
