"""Mixed precision (`config.dtype = "bfloat16"`): one step in bfloat16 stays close to the
same step in float32, and keeps everything it stores in float32.

From one float32 state and one batch, the family's step runs once with each config.dtype.
The bfloat16 step must
1. really compute in bfloat16: every convolution of its jaxpr (forward and backward) has
   a bfloat16 result, every one of the float32 step's a float32 result;
2. give the same losses to a relative LOSS_RTOL (measured: 5e-4 at most);
3. give nearly the same gradients, read from Adam's first moment (after one update
   mu = (1 - b1) * gradient in either dtype): per network, a relative error in norm
   below GRAD_RTOL and a cosine above GRAD_COSINE, and parameter updates of the same sign
   for at least SAME_SIGN of the parameters (measured, generator / discriminator: DCGAN
   0.100 / 0.061, cosines 0.995 / 0.998, signs 0.968 / 0.991; pix2pix 0.139 / 0.114,
   0.990 / 0.994, 0.978 / 0.984; single layers of the U-Net up to 0.18 and 0.984);
4. leave parameters, batch statistics and optimizer states float32.
bfloat16 keeps 8 bits of mantissa (2^-8 = 0.4% relative steps). The gradients differ
more than the losses because the backward pass through each BatchNorm subtracts from
the incoming gradient its mean and its projection on the normalised activations, which
cancel most of it at these widths and batches (8 and 2 images), so the rounding of the
bfloat16 gradient grows relative to what is left; float32 gradients of the same nets
move by 1.7e-2 between two XLA flag settings for the same reason.
A step that computed something else (another batch or noise, a wrong cast) would be far
off in direction, not 10% in norm.
"""

import glob
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import REPO
from jaxgan import config as config_lib, families, models, train
from jaxgan.datasets import streams
from train_test import mock_data, tiny  # noqa: F401  (mock_data: a fixture)

CONFIGS = sorted(glob.glob(str(REPO / "configs" / "*.py")))

LOSS_RTOL = 2e-2
GRAD_RTOL = 0.25
GRAD_COSINE = 0.97
SAME_SIGN = 0.9


def dcgan_case():
  config = tiny(str(REPO / "configs" / "dcgan_mnist.py"), **{"model.ngf": 8, "model.ndf": 8})
  rng = np.random.default_rng(0)
  return config, {"image": rng.uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32),
                  "label": np.zeros(8, np.int32)}


def pix2pix_case():
  config = tiny(str(REPO / "configs" / "pix2pix_facades_cpu.py"), **{
      "data.image_size": 32, "data.load_size": 36, "data.num_train_examples": 4,
      "model.generator": "unet_32", "batch_size": 2})
  rng = np.random.default_rng(0)
  x, y = (rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32) for _ in range(2))
  return config, {"input": x, "target": y, "label": np.zeros(2, np.int32)}


def with_dtype(config, dtype):
  config = config.copy_and_resolve_references()
  config.dtype = dtype
  return config


def conv_dtypes(family, state, batch) -> set[str]:
  """The output dtypes of every convolution in the step's jaxpr (forward and backward)."""
  text = str(jax.make_jaxpr(family.train_step)(state, batch))
  return set(re.findall(r":(\w+)\[[\d,]*\] = conv_general_dilated", text))


def flat(tree) -> np.ndarray:
  return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def relative_error(a, b) -> float:
  a, b = flat(a), flat(b)
  return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def cosine(a, b) -> float:
  a, b = flat(a), flat(b)
  return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.slow  # four compiled steps: 70 s of CPU
@pytest.mark.parametrize("case", [dcgan_case, pix2pix_case], ids=["dcgan", "pix2pix"])
def test_bfloat16_step_is_close_to_float32_step(case):
  config, batch = case()
  f32, bf16 = (families.create(with_dtype(config, d), "cpu") for d in ("float32", "bfloat16"))
  state = jax.jit(f32.init_state)(jax.random.PRNGKey(0))
  assert conv_dtypes(f32, state, batch) == {"f32"}
  assert conv_dtypes(bf16, state, batch) == {"bf16"}

  (new32, m32), (new16, m16) = (jax.device_get(jax.jit(f.train_step)(state, batch))
                                for f in (f32, bf16))
  for name in f32.loss_metrics:
    assert m16[name].dtype == np.float32
    assert abs(m16[name] - m32[name]) <= LOSS_RTOL * abs(m32[name]), (name, m16[name], m32[name])
  for net in ("generator", "discriminator"):
    n32, n16 = getattr(new32, net), getattr(new16, net)
    for leaf in jax.tree.leaves((n16.params, n16.batch_stats, n16.opt_state)):
      assert leaf.dtype in (np.float32, np.int32), leaf.dtype
    g16, g32 = (optax.tree_utils.tree_get(n.opt_state, "mu") for n in (n16, n32))
    grads_error, grads_cosine = relative_error(g16, g32), cosine(g16, g32)
    old = flat(getattr(state, net).params)
    same_sign = float(np.mean(np.sign(flat(n16.params) - old) == np.sign(flat(n32.params) - old)))
    stats_error = relative_error(n16.batch_stats, n32.batch_stats) if n32.batch_stats else 0.0
    print(f"{case.__name__} {net}: gradient relative error {grads_error:.3f}, cosine "
          f"{grads_cosine:.4f}, same update sign {same_sign:.3f}, batch statistics "
          f"{stats_error:.1e}, losses " + ", ".join(
              f"{k} {abs(m16[k] - m32[k]) / abs(m32[k]):.1e}" for k in f32.loss_metrics))
    # Not zero: the bfloat16 step computed in bfloat16, not float32 again.
    assert 1e-5 < grads_error < GRAD_RTOL, (net, grads_error)
    assert grads_cosine > GRAD_COSINE, (net, grads_cosine)
    assert same_sign >= SAME_SIGN, (net, same_sign)
    assert stats_error < LOSS_RTOL, (net, stats_error)


def test_dtype_is_checked():
  config = tiny(str(REPO / "configs" / "dcgan_mnist.py"), dtype="float16")
  with pytest.raises(config_lib.ConfigError, match="config.dtype must be one of float32, "
                                                   "bfloat16, got 'float16'"):
    config_lib.validate(config)
  with pytest.raises(config_lib.ConfigError, match="'mnist_classifier' computes in float32 only"):
    models.create("mnist_classifier", "classifier", dtype="bfloat16")
  assert models.create("mnist_classifier", "classifier", dtype="float32") is not None
  module = models.create("dcgan_generator", dtype="bfloat16", image_size=28, channels=1, ngf=4)
  z = jnp.zeros((2, 100))
  variables = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), z, train=False))
  # Parameters float32; the image handed back float32 (for the losses).
  assert {x.dtype for x in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
  assert jax.eval_shape(lambda v: module.apply(v, z, train=False), variables).dtype == jnp.float32


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(c) for c in CONFIGS])
def test_every_config_traces_in_bfloat16_or_refuses_it(path, mock_data):
  """Every experiment's step with config.dtype=bfloat16, traced (shapes and dtypes) on a
  batch of its (mock) data as a CPU and as an accelerator would build it (the CPU forms,
  the portable ones): what it stores stays float32; the classifiers refuse it."""
  config = tiny(path, dtype="bfloat16")
  # Each platform's forms traced on their own: "auto" with no platform traces both, but
  # differentiating every layer's platform choice costs more than the two traces.
  try:
    built = {platform: families.create(config, platform) for platform in ("cpu", "tpu")}
  except config_lib.ConfigError as e:
    assert config.family == "classifier" and "computes in float32 only" in str(e), e
    return
  batch = next(streams.create_train_iterator(config.data, config.batch_size, config.seed))
  for platform, family in built.items():
    state = jax.eval_shape(family.init_state, jax.random.PRNGKey(0))
    new, metrics = jax.eval_shape(family.train_step, state, batch)
    stored = {jnp.dtype(x.dtype) for x in jax.tree.leaves(new)
              if jnp.issubdtype(x.dtype, jnp.floating)}
    assert stored == {jnp.dtype(jnp.float32)}, (platform, stored)
    assert {jnp.dtype(m.dtype) for m in metrics.values()} == {jnp.dtype(jnp.float32)}, platform


@pytest.mark.slow  # two runs, each compiling its step: about 30 s
def test_a_run_switches_dtype_when_it_resumes(tmp_path, mock_data):
  """The checkpoint holds float32 whatever the compute dtype, and config.dtype is no
  architecture field: a bfloat16 run goes on in float32 (and back) from its checkpoint."""
  path = str(REPO / "configs" / "dcgan_mnist.py")
  train.train_and_evaluate(tiny(path, steps=1, dtype="bfloat16", num_grid_images=0), str(tmp_path))
  state = train.train_and_evaluate(tiny(path, steps=2, num_grid_images=0), str(tmp_path))
  assert int(state.step) == 2
  assert config_lib.load_json(str(tmp_path)).dtype == "float32"
  assert [json.loads(line)["step"] for line in
          (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]
