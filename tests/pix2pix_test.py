"""The pix2pix family: losses by hand, the learning-rate schedule, the step's wiring, the
reference's test-time mode, and train -> evaluate -> translate a folder end to end on tiny
side-by-side images made here (unet_64: 6 levels, one of them with dropout, ngf 4)."""

import json
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, write_pairs
from train_test import tiny
from jaxgan import config as config_lib, evaluate, families, schedules, train
from jaxgan.datasets import preparation
from jaxgan.datasets import base as datasets_base
from jaxgan.families import pix2pix

CPU_CONFIG = str(REPO / "configs" / "pix2pix_facades_cpu.py")


def bce(logits, real):
  """-mean log sigmoid(l) for real, -mean log(1 - sigmoid(l)) for fake, by the formula."""
  p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
  return float(-np.mean(np.log(p if real else 1 - p)))


def test_losses_by_hand():
  real, fake = jnp.array([[2.0, -1.0]]), jnp.array([[0.5, -3.0]])
  want_d = 0.5 * (-(math.log(1 / (1 + math.exp(-2))) + math.log(1 / (1 + math.exp(1)))) / 2
                  - (math.log(1 - 1 / (1 + math.exp(-0.5))) + math.log(1 - 1 / (1 + math.exp(3)))) / 2)
  assert float(pix2pix.discriminator_loss("non_saturating", real, fake)) == pytest.approx(want_d, rel=1e-6)
  output = jnp.array([[0.5, -0.5], [1.0, 0.0]])
  target = jnp.array([[0.0, 0.0], [1.0, 1.0]])   # |diff| = .5, .5, 0, 1: L1 = 0.5
  total, gan, l1 = pix2pix.generator_loss("non_saturating", fake, output, target, 100.0)
  assert float(l1) == pytest.approx(0.5)
  assert float(gan) == pytest.approx(bce(fake, True), rel=1e-6)  # G wants "real"
  assert float(total) == pytest.approx(bce(fake, True) + 50.0, rel=1e-6)
  # lsgan: MSE to 1 for G, halved (real - 1)^2 + fake^2 for D.
  assert float(pix2pix.discriminator_loss("lsgan", real, fake)) == pytest.approx(
      0.5 * ((1 + 4) / 2 + (0.25 + 9) / 2))
  assert float(pix2pix.generator_loss("lsgan", fake, output, target, 0.0)[0]) == pytest.approx(
      (0.25 + 16) / 2)


def test_lr_multiplier_is_junyanz_lambda_rule():
  rule = lambda e: 1.0 - max(0, e + 1 - 100) / float(100 + 1)  # epoch_count 1
  for epoch in (0, 50, 98, 99, 100, 101, 150, 198, 199):
    assert float(schedules.lr_multiplier(epoch, 100, 100)) == pytest.approx(rule(epoch), abs=1e-7)
  assert float(schedules.lr_multiplier(99, 100, 100)) == 1.0
  assert float(schedules.lr_multiplier(100, 100, 100)) == pytest.approx(100 / 101)
  assert float(schedules.lr_multiplier(199, 100, 100)) == pytest.approx(1 / 101)  # last epoch
  assert float(schedules.lr_multiplier(500, 100, 100)) == 0.0  # past the schedule


def test_schedule_steps_once_per_epoch():
  config = config_lib.load(str(REPO / "configs" / "pix2pix_facades.py"))
  assert config.num_train_steps == 80_000  # 200 epochs of 400 images at batch 1
  schedule = schedules.learning_rate_schedule(config)
  # The update after `count` updates belongs to epoch count // 400.
  for count, multiplier in ((0, 1.0), (39_999, 1.0), (40_000, 100 / 101), (40_399, 100 / 101),
                            (40_400, 99 / 101), (79_999, 1 / 101)):
    assert float(schedule(count)) == pytest.approx(2e-4 * multiplier, rel=1e-6)
  config.batch_size = 4  # an epoch is 100 steps; the run follows the batch size
  assert config.num_train_steps == 20_000
  assert float(schedules.learning_rate_schedule(config)(10_000)) == pytest.approx(2e-4 * 100 / 101)
  config.schedule.n_epochs = config.schedule.n_epochs_decay = 5
  assert config.num_train_steps == 1_000


# ---------------------------------------------------------------------------------------
# Tiny runs.


def tiny_config(data_root=None, data_dir=None, steps=2, **overrides):
  """The CPU experiment at 64x64 (unet_64: 6 levels, dropout at one), ngf = ndf = 4, batch 2,
  on the folder `data_root` (6 train pairs)."""
  return tiny(CPU_CONFIG, steps, **{
      "data.manual_dir": str(data_root) if data_root else None,
      "data.data_dir": str(data_dir) if data_dir else None,
      "data.image_size": 64, "data.load_size": 72, "data.num_train_examples": 6,
      "model.generator": "unet_64", "batch_size": 2, **overrides})


def no_network(*args, **kwargs):
  raise AssertionError(f"the network was used: {args}")


@pytest.fixture(scope="module")
def tiny_facades(tmp_path_factory):
  """(manual_dir, TFDS data_dir): 6 train and 3 val 80x40 pairs, prepared once, offline."""
  root = tmp_path_factory.mktemp("facades")
  write_pairs(root / "train", 6, side=40, identical=False)
  write_pairs(root / "val", 3, side=40, seed=1, identical=False)
  data_dir = tmp_path_factory.mktemp("tfds")
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(datasets_base, "network_available", no_network)
    preparation.prepare_dataset(tiny_config(root, data_dir).data)
    yield root, data_dir


def random_pairs(n=2, size=64, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.uniform(-1, 1, (n, size, size, 3)).astype(np.float32),
          rng.uniform(-1, 1, (n, size, size, 3)).astype(np.float32))


def init_and_step(config):
  """The loop's own jitted init and step (so later runs of this config find them compiled)."""
  family, mesh = families.create(config, "cpu"), train.make_mesh()
  return family, train.create_train_state(family, config, mesh), train.compile_train_step(family, mesh)


def test_step_is_d_then_g_on_the_reference_losses():
  family, state, step = init_and_step(tiny_config())
  x, y = random_pairs()
  state = jax.device_get(state)  # the step donates its input state: keep a copy
  new, metrics, _ = step(jax.device_put(state), {"input": x, "target": y, "label": np.zeros(2, np.int32)})

  @jax.jit
  def recompute(state, new):
    _, dropout_rng = jax.random.split(state.rng)
    g = state.generator
    fake, _ = family.g.apply({"params": g.params, "batch_stats": g.batch_stats}, x, train=True,
                             rngs={"dropout": dropout_rng}, mutable=["batch_stats"])

    def d(params, b):  # training mode: each call on its own batch statistics
      return family.d.apply({"params": params, "batch_stats": state.discriminator.batch_stats},
                            jnp.concatenate([x, b], -1), train=True, mutable=["batch_stats"])[0]

    old_d, new_d = state.discriminator.params, new.discriminator.params
    return d(old_d, fake), d(old_d, y), d(new_d, fake), fake

  fake_logits, real_logits, after_logits, fake = jax.device_get(recompute(state, new))
  assert fake_logits.shape == (2, 6, 6)  # 64 -> 32 -> 16 -> 8 -> 7 -> 6 (n_layers 3)
  assert float(metrics["d_loss"]) == pytest.approx(
      0.5 * (bce(fake_logits, False) + bce(real_logits, True)), rel=1e-4)
  # G's GAN term is measured by the D just updated (D step first, then G step).
  assert float(metrics["g_gan"]) == pytest.approx(bce(after_logits, True), rel=1e-4)
  assert float(metrics["g_l1"]) == pytest.approx(float(np.mean(np.abs(fake - y))), rel=1e-5)
  assert float(metrics["g_loss"]) == pytest.approx(
      float(metrics["g_gan"]) + 100 * float(metrics["g_l1"]), rel=1e-5)
  assert float(metrics["learning_rate"]) == pytest.approx(2e-4)
  assert int(new.step) == 1
  for before, after in ((state.generator.params, new.generator.params),
                        (state.discriminator.params, new.discriminator.params)):
    assert any(not np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(jax.device_get(before)), jax.tree.leaves(jax.device_get(after))))


def test_translate_is_the_reference_test_mode():
  family, state, _ = init_and_step(tiny_config())
  x, _ = random_pairs(3)
  keys = jax.random.split(jax.random.PRNGKey(1), 3)
  run = jax.jit(family.translate)
  together = np.asarray(run(state, x, keys))
  # Batch statistics of each image alone (test.py runs batch 1): no image affects another.
  for i in range(3):
    np.testing.assert_allclose(run(state, x[i:i + 1], keys[i:i + 1])[0], together[i], atol=1e-5)
  # Dropout stays on: another key, another output.
  assert not np.allclose(run(state, x, jax.random.split(jax.random.PRNGKey(2), 3)), together)
  # --eval: running statistics, no dropout: the keys no longer matter.
  eval_family = families.create(tiny_config(eval_mode=True), "cpu")
  a = eval_family.translate(state, x, keys)
  np.testing.assert_array_equal(a, eval_family.translate(state, x, keys[::-1]))
  assert not np.allclose(a, together)


def test_pix2pix_needs_a_direction():
  with pytest.raises(config_lib.ConfigError, match="direction must be one of AtoB, BtoA"):
    families.create(tiny_config(**{"data.direction": "LtoR"}), "cpu")
  with pytest.raises(config_lib.ConfigError, match="pix2pix trains on pairs"):
    families.create(tiny_config(**{"data.direction": ""}), "cpu")


def test_train_evaluate_and_translate_a_folder(tiny_facades, tmp_path, monkeypatch):
  monkeypatch.setattr(datasets_base, "network_available", no_network)
  root, data_dir = tiny_facades
  workdir = tmp_path / "run"
  state = train.train_and_evaluate(tiny_config(root, data_dir, steps=2), str(workdir))
  assert int(state.step) == 2
  for name in ("losses.png", "real_vs_fake.png", "samples/step_000002.png", "checkpoints/2"):
    assert (workdir / name).exists(), name
  # Two input | output | target triplets a row: 2 train pairs, then 2 val pairs.
  assert Image.open(workdir / "samples" / "step_000002.png").size == (6 * 66 + 2, 2 * 66 + 2)
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert {"d_loss", "g_gan", "g_l1", "d_real", "d_fake", "learning_rate"} <= set(rows[-1])
  assert json.loads((workdir / "params.json").read_text())["generator"] > 0

  result = evaluate.evaluate(str(workdir))
  assert json.loads((workdir / "eval.json").read_text()) == result
  assert result["num_images"] == 3 and result["split"] == "val" and result["step"] == 2
  assert 0 < result["l1"] < 2 and 0 < result["ssim"] < 1 and 0 < result["psnr"] < 60
  train_scores = result["train"]
  assert set(train_scores) == {"l1", "psnr", "ssim", "num_images"}
  assert train_scores["num_images"] == 6 and 0 < train_scores["ssim"] < 1
  assert (workdir / "triplets_train.png").exists() and (workdir / "triplets_val.png").exists()
  # Fixed dropout keys: reproducible.
  assert evaluate.judged(evaluate.evaluate(str(workdir))) == evaluate.judged(result)

  labels, out = tmp_path / "labels", tmp_path / "out"
  labels.mkdir()
  rng = np.random.default_rng(0)
  for name, (h, w) in (("a.png", (50, 30)), ("b.jpg", (64, 64)), ("c.png", (20, 41))):
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(labels / name)
  (labels / "notes.txt").write_text("not an image")
  cli = subprocess.run([sys.executable, "-m", "jaxgan.sample", "--workdir", str(workdir),
                        "--input_dir", str(labels), "--output_dir", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert cli.returncode == 0, cli.stderr[-2000:]
  assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg", "c.png"]
  for name in ("a.png", "b.jpg", "c.png"):
    assert Image.open(out / name).size == (64, 64)  # the model's resolution


def test_resume_equals_uninterrupted(tiny_facades, tmp_path, monkeypatch):
  monkeypatch.setattr(datasets_base, "network_available", no_network)
  root, data_dir = tiny_facades
  config = lambda steps: tiny_config(root, data_dir, steps=steps, num_grid_images=0,
                                     **{"schedule.n_epochs": 0, "schedule.n_epochs_decay": 2})
  straight = train.train_and_evaluate(config(4), str(tmp_path / "straight"))
  train.train_and_evaluate(config(3), str(tmp_path / "resumed"))
  resumed = train.train_and_evaluate(config(4), str(tmp_path / "resumed"))
  # The learning rate decays from the first epoch here, so the optimizer's step count
  # (checkpointed) matters as much as the parameters and the data order.
  for a, b in zip(jax.tree.leaves(jax.device_get(straight)), jax.tree.leaves(jax.device_get(resumed))):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("args,message", [
    (["--config.data.direction=LtoR"], "config.data.direction must be one of AtoB, BtoA"),
    (["--config.data.image_size=100"], "multiples of 128, got shape (1, 100, 100, 3)"),
])
def test_command_line_mistakes_are_one_line(tmp_path, args, message):
  out = subprocess.run([sys.executable, "-m", "jaxgan.main", "--config", CPU_CONFIG,
                        "--workdir", str(tmp_path), *args],
                       cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert out.returncode != 0
  assert message in out.stderr and "Traceback" not in out.stderr
