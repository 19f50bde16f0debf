"""`jaxgan.compare`: finished runs are not redone, and the table says what eval.json says."""

import json

from jaxgan import compare, evaluate


def fake_run(run_dir, steps, evaluated_step, num=100):
  run_dir.mkdir(parents=True)
  (run_dir / "config.json").write_text(json.dumps({"num_train_steps": steps, "batch_size": 64}))
  (run_dir / "eval.json").write_text(json.dumps(
      {"step": evaluated_step, "num_samples": num, "fid": 3.14159, "fid_train_reference": 0.5,
       "class_entropy_bits": 3.3, "confident_share": 0.9, "accuracy": 0.875,
       "pair_confusion": {"3_vs_7": {"3->7": 0.01, "7->3": 0.02, "both": 0.015}}}))
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
  assert "| done | 10 | 64 | 64 | 3.14 | 0.50 | 0.875 | 0.010 | 0.020 | - | - | 3.300 | 0.900 |" in table
  assert (tmp_path / "results.csv").read_text().splitlines()[1].startswith("done,10,64,64,3.14")
