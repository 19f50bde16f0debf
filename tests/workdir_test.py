"""One workdir, one run: the lock (refuses a second run, never stuck after a kill), the
architecture check and --start_over (nothing overwritten or deleted), runs extended with
other lengths and rates, and workdir files written whole."""

import glob
import json
import os
import pathlib
import signal
import subprocess
import sys

import pytest

from conftest import REPO
from train_test import mock_data, snapshot, tiny  # noqa: F401  (mock_data: a fixture)
from jaxgan import train, workdir

DCGAN = str(REPO / "configs" / "dcgan_mnist.py")
LAUNCHER = str(REPO / "tests" / "fault_launcher.py")
TOY = ["--config", "configs/dcgan_mnist.py", "--config.batch_size=4", "--config.model.ngf=4",
       "--config.model.ndf=4", "--config.num_grid_images=0", "--config.num_train_steps=2"]


def hold_lock(folder):
  """A separate process holding `folder`'s lock until killed."""
  code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); import time; from jaxgan import workdir\n"
          f"with workdir.lock({str(folder)!r}):\n  print('held', flush=True); time.sleep(600)")
  proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "held"
  return proc


def run_files(folder):
  """Every file of a run and its bytes, but the lock (which names its latest holder)."""
  return {f: data for f, data in snapshot(folder).items()
          if os.path.basename(f) != workdir.LOCK_FILE}


def launch(*args):
  return subprocess.run([sys.executable, LAUNCHER, *TOY, *args], cwd=REPO, capture_output=True,
                        text=True, timeout=300, check=False)


def assert_one_line_error(out, message, code=1):
  errors = [l for l in out.stderr.splitlines() if l.startswith("error:")]
  assert out.returncode == code and len(errors) == 1 and message in errors[0], out.stderr[-2000:]
  assert "Traceback" not in out.stderr


def test_a_second_run_is_refused_and_a_killed_holder_frees_the_workdir(tmp_path, mock_data):
  holder = hold_lock(tmp_path)
  try:
    with pytest.raises(workdir.WorkdirError,
                       match=rf"{tmp_path} is in use by another run \(pid {holder.pid} on "
                             rf"{os.uname().nodename}, started .*\)"):
      train.train_and_evaluate(tiny(DCGAN), str(tmp_path))
    assert os.listdir(tmp_path) == [workdir.LOCK_FILE]  # nothing written meanwhile
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  state = train.train_and_evaluate(tiny(DCGAN), str(tmp_path))  # the kernel dropped the lock
  assert int(state.step) == 1
  with workdir.lock(str(tmp_path)):  # and this run released it when it ended
    pass


def test_a_second_run_from_the_command_line_is_one_line(tmp_path):
  holder = hold_lock(tmp_path)
  try:
    out = launch("--workdir", str(tmp_path))
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  assert_one_line_error(out, f"is in use by another run (pid {holder.pid}")


def test_architecture_change_is_refused_unless_starting_over(tmp_path, mock_data):
  train.train_and_evaluate(tiny(DCGAN, steps=2), str(tmp_path))  # ngf 4, as TOY
  before = run_files(tmp_path)
  out = launch("--workdir", str(tmp_path), "--config.model.ngf=8", "--config.data.image_size=64")
  assert_one_line_error(out, "holds a run of another architecture (data.image_size: 28 -> 64; "
                             "model.ngf: 4 -> 8)")
  assert run_files(tmp_path) == before
  out = launch("--workdir", str(tmp_path), "--config.model.ngf=8", "--start_over")
  assert out.returncode == 0, out.stderr[-2000:]
  moved = glob.glob(f"{tmp_path}.old-*")
  assert len(moved) == 1 and f"moved the previous run in {tmp_path} to {moved[0]}" in out.stdout
  assert run_files(pathlib.Path(moved[0])) == {f.replace(str(tmp_path), moved[0]): data
                                for f, data in before.items()}  # the old run, whole
  assert json.loads((tmp_path / "config.json").read_text())["model"]["ngf"] == 8


def test_other_lengths_and_rates_resume(tmp_path, mock_data):
  train.train_and_evaluate(tiny(DCGAN, steps=1), str(tmp_path))
  state = train.train_and_evaluate(tiny(DCGAN, steps=2, **{"optimizer.learning_rate": 1e-4,
                                                           "log_every_steps": 2}), str(tmp_path))
  assert int(state.step) == 2


def test_a_run_without_checkpoints_is_not_guarded(tmp_path, mock_data):
  """A run that saved no checkpoint leaves nothing to resume: another model may start."""
  tmp_path.joinpath("config.json").write_text(json.dumps({"family": "gan", "model": {"ngf": 99}}))
  assert int(train.train_and_evaluate(tiny(DCGAN), str(tmp_path)).step) == 1


def test_architecture_changes_compares_what_both_configs_have():
  saved = {"family": "gan", "model": {"ngf": 64, "sizes": [1, 2]}, "data": {"image_size": 28,
           "name": "mnist"}, "optimizer": {"learning_rate": 2e-4}}
  new = {"family": "gan", "model": {"ngf": 64, "sizes": (1, 2), "num_classes": 10},
         "data": {"image_size": 28, "name": "other"}, "optimizer": {"learning_rate": 1.0}}
  assert workdir.architecture_changes(saved, new) == []  # lists as tuples; new fields; not arch
  new["model"]["ngf"], new["family"] = 8, "pix2pix"
  assert workdir.architecture_changes(saved, new) == ["family: 'gan' -> 'pix2pix'",
                                                      "model.ngf: 64 -> 8"]


def test_files_are_replaced_whole(tmp_path, monkeypatch):
  path = tmp_path / "a.json"
  workdir.write_json(str(path), {"x": 1})
  real_replace = os.replace

  def killed_before_rename(src, dst):
    raise KeyboardInterrupt  # as if the process died between the write and the rename

  monkeypatch.setattr(os, "replace", killed_before_rename)
  with pytest.raises(KeyboardInterrupt):
    workdir.write_json(str(path), {"x": 2})
  monkeypatch.setattr(os, "replace", real_replace)
  assert json.loads(path.read_text()) == {"x": 1}


def test_unusable_workdirs_are_one_line(tmp_path):
  afile = tmp_path / "file"
  afile.write_text("")
  # A usage mistake (exit status 2), found before any data are prepared.
  assert_one_line_error(launch("--workdir", str(afile)), f"{afile} is a file, not a folder", 2)
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "config.json").write_text('{"family": "gan", "mod')  # cut short
  (tmp_path / "run" / "checkpoints" / "3").mkdir(parents=True)
  assert_one_line_error(launch("--workdir", str(tmp_path / "run")), "config.json is unreadable")
