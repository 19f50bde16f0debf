"""The moving average of the weights (jaxgan.ema): its decay and update, the GAN option
(`config.ema_decay`), and sampling from the average or from the trained weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO
from train_test import copy_run, dcgan_run, mock_data, runs, tiny  # noqa: F401  (fixtures)
from jaxgan import ema, families, inference, train
from jaxgan.config import ConfigError

DCGAN = str(REPO / "configs" / "dcgan_mnist.py")


def test_decay_warms_up_to_its_cap():
  np.testing.assert_allclose([float(ema.decay(0.999, jnp.array(n))) for n in (0, 10, 10_000)],
                             [0.1, 11 / 20, 0.999], rtol=1e-6)
  assert float(ema.decay(0.9999, 89_990)) == pytest.approx(0.9999, rel=1e-7)  # float32


def test_update_is_the_weighted_mean_leaf_by_leaf():
  average = {"a": jnp.array([1.0, 2.0]), "b": {"c": jnp.array(4.0)}}
  weights = {"a": jnp.array([3.0, 6.0]), "b": {"c": jnp.array(0.0)}}
  out = ema.update(average, weights, jnp.float32(0.75))
  np.testing.assert_allclose(out["a"], [1.5, 3.0])
  assert float(out["b"]["c"]) == 3.0


def test_gan_average_follows_g_by_the_formula_and_samples_use_it():
  family = families.create(tiny(DCGAN, ema_decay=0.5), "cpu")
  state = family.init_state(jax.random.PRNGKey(0))
  step = jax.jit(family.train_step)
  batch = {"image": jax.random.uniform(jax.random.PRNGKey(1), (4, 28, 28, 1), minval=-1)}
  expected = family._averaged(state.generator)  # pylint: disable=protected-access
  for n in range(3):
    state, _ = step(state, batch)
    d = min(0.5, (1 + n) / (10 + n))
    expected = jax.tree.map(lambda e, w, d=d: d * e + (1 - d) * w, expected,
                            family._averaged(state.generator))  # pylint: disable=protected-access
    for e, got in zip(jax.tree.leaves(expected), jax.tree.leaves(state.generator_ema)):
      np.testing.assert_allclose(got, e, rtol=1e-5, atol=1e-7)
  inputs = family.latent_inputs(jax.random.PRNGKey(2), 3)
  from_average = family.g.apply(state.generator_ema, inputs["z"], None, train=False)
  np.testing.assert_array_equal(family.generate(state, inputs), from_average)
  family.use_ema = False  # --raw_weights: G itself
  raw = family.generate(state, inputs)
  np.testing.assert_array_equal(raw, family.g.apply(
      {"params": state.generator.params, "batch_stats": state.generator.batch_stats},
      inputs["z"], None, train=False))
  assert not np.allclose(raw, from_average, rtol=1e-2, atol=0)


def test_without_the_option_the_gan_state_is_as_before():
  family = families.create(tiny(DCGAN), "cpu")
  state = jax.eval_shape(family.init_state, jax.random.PRNGKey(0))
  assert state.generator_ema is None and not family.use_ema
  assert len(jax.tree.leaves(state)) == 2 + sum(
      len(jax.tree.leaves(n)) for n in (state.generator, state.discriminator))


def test_raw_weights_need_a_run_that_keeps_an_average(tmp_path, dcgan_run):  # noqa: F811
  with pytest.raises(ConfigError, match="--raw_weights: this run keeps no moving average"):
    inference.load_run(str(copy_run(dcgan_run, tmp_path / "run")), raw_weights=True)


def test_ema_decay_must_be_a_fraction():
  from jaxgan import config as config_lib  # pylint: disable=import-outside-toplevel
  for path in (DCGAN, str(REPO / "configs" / "ddpm_mnist.py")):
    config = tiny(path, ema_decay=1.0)
    with pytest.raises(ConfigError, match=r"config.ema_decay must be in \[0, 1\), got 1.0"):
      config_lib.validate(config)


def test_saved_ddpm_configs_keep_their_decay():
  from jaxgan import config as config_lib  # pylint: disable=import-outside-toplevel
  saved = {"family": "ddpm", "diffusion": {"ema_decay": 0.999, "schedule": "linear"}}
  upgraded = config_lib.upgrade(saved)
  assert upgraded["ema_decay"] == 0.999 and "ema_decay" not in upgraded["diffusion"]
  assert config_lib.upgrade({"family": "ddpm", "diffusion": {}})["ema_decay"] == 0.9995
  assert config_lib.upgrade({"family": "gan"})["ema_decay"] == 0.0
