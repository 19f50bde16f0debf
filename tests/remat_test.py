"""Rematerialising the generator (`config.model.remat`) changes nothing but what is kept
for the backward pass: the same parameters, outputs, losses and gradients as without; the
flag reaches every family's generator (and only it), and the step runs it in a remat
region."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO
from train_test import tiny
from jaxgan import families, models, workdir

TINY = {  # family configs at tiny shapes (the tests' usual ones)
    "gan": (REPO / "configs" / "dcgan_mnist.py", {"batch_size": 4, "model.ngf": 4,
                                                  "model.ndf": 4}),
    "pix2pix": (REPO / "configs" / "pix2pix_facades_cpu.py", {
        "data.image_size": 32, "data.load_size": 36, "model.generator": "unet_32",
        "model.ngf": 4, "model.ndf": 4, "batch_size": 2}),
    "cyclegan": (REPO / "configs" / "cyclegan_apple2orange64.py", {
        "data.image_size": 32, "data.load_size": 36, "model.ngf": 4, "model.ndf": 4,
        "batch_size": 2, "loss.pool_size": 0}),
}


def batch_for(config):
  from jaxgan.datasets import preparation  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  size, c, b = config.data.image_size, config.data.channels, config.batch_size
  batch = {k: rng.uniform(-1, 1, (b, size, size, c)).astype(np.float32)
           for k in preparation.image_features(config.data)}
  if preparation.stream_kind(config.data) is not preparation.StreamKind.UNPAIRED:
    batch["label"] = np.zeros(b, np.int32)
  return batch


@pytest.mark.parametrize("name", ["unet_32", "resnet_6blocks", "dcgan_generator"])
def test_rematerialised_module_is_the_same_function(name):
  kwargs = dict(channels=3, ngf=4, image_size=28)
  plain, remat = models.create(name, **kwargs), models.create(name, remat=True, **kwargs)
  x = (jnp.ones((2, 100)) if name == "dcgan_generator"
       else jax.random.uniform(jax.random.PRNGKey(1), (2, 32, 32, 3), minval=-1, maxval=1))
  rngs = {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(2)}
  variables = plain.init(rngs, x)
  assert (jax.tree.structure(remat.init(rngs, x)) == jax.tree.structure(variables))

  def loss(module, params):
    out, _ = module.apply({**variables, "params": params}, x, train=True, mutable=True,
                          rngs={"dropout": jax.random.PRNGKey(3)})
    return jnp.mean(jnp.square(out - 0.3))

  value, grads = jax.jit(jax.value_and_grad(lambda p: loss(plain, p)))(variables["params"])
  value_r, grads_r = jax.jit(jax.value_and_grad(lambda p: loss(remat, p)))(variables["params"])
  np.testing.assert_allclose(value_r, value, rtol=1e-6)
  for g, g_r in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_r)):
    np.testing.assert_allclose(g_r, g, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("family_name", sorted(TINY))
def test_flag_reaches_the_generator(family_name):
  path, overrides = TINY[family_name]
  for remat in (False, True):
    family = families.create(tiny(str(path), 1, **overrides, **{"model.remat": remat}), "cpu")
    assert getattr(family.g, "rematerialised", False) == remat
    assert not getattr(family.d, "rematerialised", False)


def test_pix2pix_step_is_unchanged():
  """One whole step (D then G, through the generator's vjp) with and without remat."""
  path, overrides = TINY["pix2pix"]
  results = []
  for remat in (False, True):
    config = tiny(str(path), 1, **overrides, **{"model.remat": remat})
    family = families.create(config, "cpu")
    state = family.init_state(jax.random.PRNGKey(0))
    program = str(jax.make_jaxpr(family.train_step)(state, batch_for(config)))
    assert ("remat" in program) == remat  # the step runs the generator in a remat region
    results.append(jax.jit(family.train_step)(state, batch_for(config)))
  (plain_state, plain_metrics), (state, metrics) = results
  for key in plain_metrics:
    np.testing.assert_allclose(metrics[key], plain_metrics[key], rtol=1e-5, atol=1e-6,
                               err_msg=key)
  # One Adam step from the same state: equal parameters mean equal gradients' directions.
  for a, b in zip(jax.tree.leaves(plain_state), jax.tree.leaves(state)):
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_a_run_may_switch_remat_on_resume():
  saved, new = {"model": {"remat": False, "ngf": 64}}, {"model": {"remat": True, "ngf": 64}}
  assert workdir.architecture_changes(saved, new) == []
  assert workdir.architecture_changes(saved, {"model": {"remat": False, "ngf": 8}})
