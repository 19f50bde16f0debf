"""benchmarks/steps/accelerator_check.py, with the CPU standing in for the accelerator."""

import json
import os
import subprocess
import sys

from conftest import REPO

SCRIPT = REPO / "benchmarks" / "steps" / "accelerator_check.py"


def test_accelerator_check_runs_and_reports_agreement_speed_and_flops(tmp_path):
  out = tmp_path / "check.json"
  run = subprocess.run(
      [sys.executable, str(SCRIPT), "--device", "cpu",
       "--cases", "configs/dcgan_mnist.py", "--set", "model.ngf=4", "--set", "model.ndf=4",
       "--set", "batch_size=8", "--steps", "2", "--timed-steps", "2", "--peak-tflops", "1.0",
       "--out", str(out)],
      env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True, timeout=600,
      check=False)
  assert run.returncode == 0, run.stderr[-3000:]
  result = json.loads(out.read_text())
  case = result["cases"]["configs/dcgan_mnist.py"]
  f32, bf16 = case["float32"], case["bfloat16"]
  # The same program on both sides: the same losses and parameters exactly.
  assert f32["loss_rel_diff"] == 0 and f32["update_rel_diff"] == 0 and f32["agrees"]
  assert len(f32["losses_device"]) == 2 and set(f32["losses_device"][0]) == {"d_loss", "g_loss"}
  # bfloat16 against float32 on the same device: close, not equal.
  assert 0 < bf16["loss_rel_diff"] <= bf16["tolerance"]["loss"] and bf16["agrees"]
  for r in (f32, bf16):
    assert r["compile_s"] > 0 and r["steps_per_s"] > 0 and r["flops_per_step"] > 1e6
    assert r["fraction_of_peak"] == round(r["achieved_tflops"] / 1.0, 4)
  assert result["all_agree"] and result["machine"]["platform"] == "cpu"


def test_accelerator_check_says_in_one_line_when_the_device_is_missing(tmp_path):
  run = subprocess.run(
      [sys.executable, str(SCRIPT), "--device", "tpu", "--out", str(tmp_path / "x.json")],
      env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True, timeout=300,
      check=False)
  assert run.returncode != 0
  assert run.stderr.strip().splitlines()[-1].startswith("error: no tpu device here")
  assert "Traceback" not in run.stderr
