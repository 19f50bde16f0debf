"""`jaxgan.evaluate`'s standard metrics (--metrics): the flag's words, what is chosen by
default, the one line without weights, and every image family's path on tiny data with
random Inception weights (a PyTorch network's state dict in a .pth file: no download)."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest
import torch

import cyclegan_test
import pix2pix_test
from conftest import REPO, write_images, write_pairs
from jaxgan import evaluate, families, train
from jaxgan.datasets import base as datasets_base, preparation
from jaxgan.errors import ConfigError
from jaxgan.metrics import inception
from pix2pix_models_test import torch_reference
from train_test import mock_data, tiny  # noqa: F401  (a fixture)

STANDARD = ("fid", "kid", "pr")


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
  path = tmp_path_factory.mktemp("inception") / "random_inception.pth"
  torch.save(torch_reference("torch_fid_inception")[1].random_fid_inception().state_dict(), path)
  return str(path)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
  """A fresh cache folder, no weights named by the environment, no network."""
  monkeypatch.setenv(inception.CACHE_ENV, str(tmp_path / "cache"))
  monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
  monkeypatch.setattr(datasets_base, "network_available", lambda *a, **k: False)
  return tmp_path / "cache"


def test_the_metrics_words_and_the_default(monkeypatch, random_weights):
  assert evaluate.parse_metrics(None) is None
  assert evaluate.parse_metrics("own,fid") == ("own", "fid")
  assert evaluate.parse_metrics(["kid", " pr"]) == ("kid", "pr")
  for bad in ("own,bogus", "", "FID"):
    with pytest.raises(ConfigError, match="--metrics takes a comma-separated list of own, fid"):
      evaluate.parse_metrics(bad)
  default = evaluate.EvalArgs("w")
  assert evaluate.wants_own(default) and evaluate.standard_names(default) == ()
  assert evaluate.standard_names(default, needed=True) == STANDARD
  chosen = evaluate.EvalArgs("w", metrics=("kid",))
  assert not evaluate.wants_own(chosen) and evaluate.standard_names(chosen) == ("kid",)
  monkeypatch.setenv(inception.WEIGHTS_ENV, random_weights)  # weights at hand: all of them
  assert evaluate.standard_names(default) == STANDARD
  with pytest.raises(ConfigError, match="a classifier makes no images"):
    evaluate.EVALUATORS["classifier"](None, None, None, chosen)


def test_an_unknown_metric_is_one_line_before_anything_is_loaded(tmp_path):
  out = subprocess.run([sys.executable, "-m", "jaxgan.evaluate", "--workdir", str(tmp_path),
                        "--metrics=own,bogus"], cwd=REPO, capture_output=True, text=True,
                       timeout=120, check=False)
  assert out.returncode == 1 and "Traceback" not in out.stderr
  assert out.stderr.strip().splitlines()[-1].startswith("error: --metrics takes")


def test_a_gan_against_its_training_set(tmp_path, cache, mock_data, random_weights,  # noqa: F811
                                       monkeypatch):
  run = tmp_path / "run"
  train.train_and_evaluate(tiny(str(REPO / "configs" / "gan_mnist.py"), steps=1), str(run))
  result = evaluate.evaluate(str(run), num=8, batch_size=4, metrics="fid,kid,pr",
                             inception_weights=random_weights)
  assert json.loads((run / "eval.json").read_text()) == result
  assert "class_histogram" not in result  # own not asked for
  scores = result["inception"]["vs_train"]
  assert scores["num_generated"] == scores["num_reference"] == 8
  for name in ("fid", "kid", "kid_std", "precision", "recall"):
    assert np.isfinite(scores[name]), name
  assert 0 <= scores["precision"] <= 1 and 0 <= scores["recall"] <= 1
  weights = result["inception"]["weights"]
  assert weights["path"] == random_weights and weights["standard"] is False
  assert weights["sha256"] == inception.sha256(random_weights)
  assert [p.name for p in (cache / "reference").iterdir()] == [
      f"{scores['reference']}-{weights['sha256'][:12]}.npy"]
  # The reference's features come from the cache the second time: the same figures.
  again = evaluate.evaluate(str(run), num=8, batch_size=4, metrics="kid,pr",
                            inception_weights=random_weights)["inception"]["vs_train"]
  assert again == {k: v for k, v in scores.items() if k != "fid"}
  monkeypatch.setattr(datasets_base, "network_available", lambda *a, **k: False)  # mock_data's: True
  with pytest.raises(inception.WeightsNotFoundError, match="no Inception weights: download"):
    evaluate.evaluate(str(run), num=8, batch_size=4, metrics="fid")


def test_pix2pix_against_the_eval_split_photos(tmp_path_factory, tmp_path, random_weights):
  root = tmp_path_factory.mktemp("facades")
  write_pairs(root / "train", 6, side=40, identical=False)
  write_pairs(root / "val", 3, side=40, seed=1, identical=False)
  config = pix2pix_test.tiny_config(root, tmp_path_factory.mktemp("tfds"))
  preparation.prepare_dataset(config.data)
  family = families.create(config, "cpu")
  state = family.init_state(jax.random.PRNGKey(0))
  args = evaluate.EvalArgs(str(tmp_path), batch_size=4, metrics=("kid", "pr"),  # FID: above
                           inception_weights=random_weights)
  result = evaluate.EVALUATORS["pix2pix"](family, state, config, args)
  assert set(result) == {"inception"}
  scores = result["inception"]["vs_val"]
  assert scores["num_generated"] == scores["num_reference"] == 3
  assert np.isfinite(scores["kid"]) and "fid" not in scores
  assert scores["pr_skipped"] == "needs more than 3 images a side"


def test_cyclegan_each_direction_against_the_target_domain(tmp_path_factory, tmp_path,
                                                           random_weights):
  root = tmp_path_factory.mktemp("apple2orange64")
  write_images(root / "trainA", 3, side=40, seed=1)
  write_images(root / "trainB", 5, side=40, seed=2)
  config = cyclegan_test.tiny_config(root, tmp_path_factory.mktemp("tfds"))
  preparation.prepare_dataset(config.data)
  family = families.create(config, "cpu")
  state = family.init_state(jax.random.PRNGKey(0))
  args = evaluate.EvalArgs(str(tmp_path), batch_size=4, metrics=("kid",),
                           inception_weights=random_weights)
  result = evaluate.EVALUATORS["cyclegan"](family, state, config, args)  # no judge: not own
  assert set(result) == {"inception"}
  for direction, generated, reference in (("AtoB", 3, 5), ("BtoA", 5, 3)):
    scores = result["inception"][direction]
    assert (scores["num_generated"], scores["num_reference"]) == (generated, reference)
    assert np.isfinite(scores["kid"]) and "fid" not in scores and "precision" not in scores
  assert result["inception"]["AtoB"]["reference"].endswith("trainB-all-32px")
