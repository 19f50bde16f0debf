"""`jaxgan.compare`: finished runs are not redone, and the table says what eval.json says."""

import json

from jaxgan import compare, evaluate


def fake_run(run_dir, steps, evaluated_step, num=100):
  run_dir.mkdir(parents=True)
  (run_dir / "config.json").write_text(json.dumps({"num_train_steps": steps, "batch_size": 64}))
  (run_dir / "eval.json").write_text(json.dumps(
      {"step": evaluated_step, "num_samples": num, "fid": 3.14159, "fid_train_reference": 0.5,
       "class_entropy_bits": 3.3, "confident_share": 0.9, "accuracy": 0.875,
       "pair_confusion": {"3_vs_7": {"3->7": 0.01, "7->3": 0.02, "both": 0.015}},
       "generation": {"seconds_per_1000": 12.34},
       # An evaluation's own wall time (as eval.json files of 0cc8093 name it) never
       # stands in for the training's.
       "wall_seconds": 999.0}))
  (run_dir / "wall_time.json").write_text(json.dumps({"sessions": [60, 3.5], "seconds": 63.5}))


def test_finished_runs_are_not_trained_again_and_unfinished_ones_are(tmp_path, monkeypatch):
  fake_run(tmp_path / "done", steps=10, evaluated_step=10)
  fake_run(tmp_path / "partial", steps=10, evaluated_step=5)
  trained, evaluated = [], []
  monkeypatch.setattr(compare, "train", lambda path, run_dir, overrides: trained.append(run_dir))

  def fake_evaluate(run_dir, num, classifier_dir):
    evaluated.append(run_dir)
    return json.loads((tmp_path / "done" / "eval.json").read_text())

  monkeypatch.setattr(evaluate, "evaluate", fake_evaluate)
  rows = [compare.run_one(f"configs/{name}.py", str(tmp_path), [], 100, None)
          for name in ("done", "partial")]
  assert trained == evaluated == [str(tmp_path / "partial")]
  table = compare.write_results(rows, str(tmp_path))
  assert ("| done | 10 | 64 | 64 | one G pass | 12.3 | 3.14 | 0.50 | 0.875 | 0.010 | 0.020 | - | - "
          "| 3.300 | 0.900 |") in table
  assert (tmp_path / "results.csv").read_text().splitlines()[1].startswith(
      "done,10,64,64,one G pass,12.3,3.14")


def test_the_sampler_column_names_how_the_images_were_drawn():
  assert compare.sampler_name({}) is None  # not evaluated
  assert compare.sampler_name({"num_samples": 10}) == "one G pass"
  ddim = {"sampler": "ddim", "steps": 50, "guidance": 2.0}
  assert compare.sampler_name({"num_samples": 10, "sampling": ddim}) == "DDIM 50"
  assert compare.sampler_name({"num_samples": 10, "sampling": ddim, "accuracy": 0.9}) == "DDIM 50, w 2"
  ancestral = {"sampler": "ddpm", "steps": 1000, "guidance": 1.0}
  assert compare.sampler_name({"num_samples": 10, "sampling": ancestral}) == "ancestral 1000"


def test_without_evaluation_runs_compare_by_losses_and_grids_at_chosen_steps(tmp_path,
                                                                              monkeypatch):
  """--noevaluate: a run logged to its last step is not trained again; the table takes
  the last logged losses, losses.png and a grid per run and chosen step are drawn."""
  import numpy as np
  import pytest
  from PIL import Image
  for name, last in (("done", 4), ("partial", 2)):
    run_dir = tmp_path / name
    (run_dir / "samples").mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"num_train_steps": 4, "batch_size": 64}))
    (run_dir / "metrics.jsonl").write_text("".join(
        json.dumps({"step": s, "d_loss": 1.0 / s, "g_loss": 2.0 * s, "d_real": 0.5,
                    "d_fake": 0.25}) + "\n" for s in range(2, last + 1, 2)))
    for s in (0, 2, 4):
      Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(run_dir / "samples" / f"step_{s:06d}.png")
  trained = []
  monkeypatch.setattr(compare, "train", lambda path, run_dir, overrides: trained.append(run_dir))
  rows = [compare.run_one(f"configs/{name}.py", str(tmp_path), [], 100, None, evaluate_run=False)
          for name in ("done", "partial")]
  assert trained == [str(tmp_path / "partial")]
  table = compare.write_results(rows, str(tmp_path))
  assert table.splitlines()[2].endswith("| - | 0.250 | 8.000 | 0.500 | 0.250 |")
  compare.write_grids(rows, str(tmp_path / "grids.png"), steps=["0", "4"])
  width, height = Image.open(tmp_path / "grids.png").size
  assert height > width  # a row per run, a column per step: 2 x 2 panels 4 x 4.4 inches
  compare.write_grids(rows, str(tmp_path / "grids.png"))
  width, height = Image.open(tmp_path / "grids.png").size
  assert width > 1.5 * height  # the last grids in one row
  compare.write_losses(rows, str(tmp_path / "losses.png"))
  assert Image.open(tmp_path / "losses.png").size == (1200, 400)  # one 6 x 4 inch panel per run
  with pytest.raises(SystemExit, match="has no grid step_000003.png"):
    compare.write_grids(rows, str(tmp_path / "grids.png"), steps=["3"])


def test_losses_skip_a_run_folder_without_curves(tmp_path):
  """A finished run copied in as its results only (config, eval, wall time) has no
  metrics.jsonl: the table takes it, the loss figure draws the others."""
  with_curves, results_only = tmp_path / "a", tmp_path / "b"
  with_curves.mkdir()
  results_only.mkdir()
  (with_curves / "metrics.jsonl").write_text(
      "".join(json.dumps({"step": s, "d_loss": 1.0, "g_loss": 2.0}) + "\n" for s in (1, 2)))
  rows = [{"name": "a", "batch_size": 4, "run_dir": str(with_curves)},
          {"name": "b", "batch_size": 4, "run_dir": str(results_only)}]
  compare.write_losses(rows, str(tmp_path / "losses.png"))
  assert (tmp_path / "losses.png").exists()
  compare.write_losses(rows[1:], str(tmp_path / "none.png"))
  assert not (tmp_path / "none.png").exists()
