"""Digit metrics on known inputs, and `jaxgan.evaluate` end to end on tiny runs."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from jaxgan import evaluate, metrics, train
from train_test import mock_data, tiny  # noqa: F401  (a fixture)


def test_fid_of_a_set_against_itself_is_zero_and_grows_with_a_shift():
  features = np.random.default_rng(0).normal(size=(2000, 16))
  assert abs(metrics.fid(features, features)) < 1e-6
  assert metrics.fid(features, features + 0.5) > metrics.fid(features, features + 0.1) > 0.01


def test_frechet_distance_of_known_gaussians():
  # 1-d: (mu_a - mu_b)^2 + (s_a - s_b)^2.
  assert metrics.frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-1.0]),
                                  np.array([[1.0]])) == pytest.approx(4 + 1)
  # Diagonal covariances: a sum over dimensions.
  a, b = np.diag([1.0, 9.0]), np.diag([4.0, 1.0])
  assert metrics.frechet_distance(np.zeros(2), a, np.ones(2), b) == pytest.approx(
      2 + (1 - 2) ** 2 + (3 - 1) ** 2)
  # Full covariances: against sqrtm by eigendecomposition of the product's symmetrised form.
  rng = np.random.default_rng(1)
  m = rng.normal(size=(3, 3))
  ca, cb = m @ m.T + np.eye(3), np.diag([1.0, 2.0, 3.0])
  root_b = np.sqrt(cb)
  values = np.linalg.eigvalsh(root_b @ ca @ root_b)
  expected = np.trace(ca) + np.trace(cb) - 2 * np.sqrt(values).sum()
  assert metrics.frechet_distance(np.zeros(3), ca, np.zeros(3), cb) == pytest.approx(expected)


def test_confusion_and_pair_rates():
  requested = np.array([3, 3, 3, 3, 7, 7, 4, 9])
  predicted = np.array([3, 7, 7, 3, 3, 7, 9, 9])
  matrix = metrics.confusion_matrix(requested, predicted, 10)
  assert matrix[3, 7] == 2 and matrix[7, 3] == 1 and matrix[4, 9] == 1 and matrix.sum() == 8
  assert metrics.pair_confusion(matrix, 3, 7) == {"3->7": 0.5, "7->3": 0.5, "both": 0.5}
  assert metrics.pair_confusion(matrix, 4, 9) == {"4->9": 1.0, "9->4": 0.0, "both": 0.5}


def test_histogram_and_entropy():
  assert metrics.entropy_bits(np.full(10, 7)) == pytest.approx(np.log2(10))
  assert metrics.entropy_bits(np.array([5, 0, 0])) == 0.0
  assert metrics.entropy_bits(np.array([1, 1, 0, 0])) == pytest.approx(1.0)
  np.testing.assert_array_equal(metrics.class_histogram(np.array([0, 2, 2]), 4), [1, 0, 2, 0])


@pytest.fixture
def classifier_dir(tmp_path, mock_data):  # noqa: F811
  """A classifier trained for two steps on mock data (its accuracy is irrelevant here)."""
  path = tmp_path / "classifier"
  train.train_and_evaluate(tiny(str(REPO / "configs" / "mnist_classifier.py"), steps=2), str(path))
  return str(path)


@pytest.mark.parametrize("config_name", ["cdcgan_mnist.py", "gan_mnist.py"])
def test_evaluate_writes_eval_json(config_name, tmp_path, classifier_dir, mock_data):  # noqa: F811
  run = tmp_path / "run"
  train.train_and_evaluate(tiny(str(REPO / "configs" / config_name), steps=1), str(run))
  result = evaluate.evaluate(str(run), num=30, batch_size=16, classifier_dir=classifier_dir)
  assert json.loads((run / "eval.json").read_text()) == result
  assert result["step"] == 1 and result["num_samples"] == 30
  assert np.isfinite(result["fid"]) and np.isfinite(result["fid_train_reference"])
  assert sum(result["class_histogram"]) == 30 and 0 <= result["class_entropy_bits"] <= np.log2(10)
  assert 0 <= result["confident_share"] <= 1
  if config_name == "cdcgan_mnist.py":
    matrix = np.array(result["confusion_matrix"])
    assert matrix.shape == (10, 10) and (matrix.sum(1) == 3).all()  # 30 samples: 3 per digit
    assert result["accuracy"] == pytest.approx(np.trace(matrix) / 30)
    assert set(result["pair_confusion"]) == {"3_vs_7", "4_vs_9"}
    assert (run / "confusion.png").exists()
  else:
    assert "accuracy" not in result and not (run / "confusion.png").exists()


def test_evaluate_trains_the_classifier_when_missing(tmp_path, mock_data, monkeypatch):  # noqa: F811
  small = tmp_path / "mnist_classifier.py"
  small.write_text(
      "from jaxgan.config import load\n"
      f"def get_config():\n  c = load({str(REPO / 'configs' / 'mnist_classifier.py')!r})\n"
      "  c.num_train_steps = c.checkpoint_every_steps = 2\n  c.batch_size = 4\n  return c\n")
  monkeypatch.setattr(evaluate, "CLASSIFIER_CONFIG", small)
  run, judge = tmp_path / "run", tmp_path / "judge"
  train.train_and_evaluate(tiny(str(REPO / "configs" / "cgan_mnist.py"), steps=1), str(run))
  evaluate.evaluate(str(run), num=10, batch_size=10, classifier_dir=str(judge))
  assert (judge / "checkpoints" / "2").exists()
  assert "test_accuracy" in json.loads((judge / "eval.json").read_text())


def test_evaluate_command_without_a_run_is_one_line(tmp_path):
  out = subprocess.run([sys.executable, "-m", "jaxgan.evaluate", "--workdir", str(tmp_path)],
                       cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert out.returncode == 1 and "config.json not found" in out.stderr
  assert "Traceback" not in out.stderr
