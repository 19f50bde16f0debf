"""The two implementations of the layers (`jaxgan.implementation`) compute the same functions,
the portable one holds its statistics without default-precision products, and "auto" follows
the platform a program is compiled for.

Tolerances (float32): layer values and gradients agree to LAYER_TOL relative to the largest
magnitude of the result; one train step of each family gives losses and a state that agree
to STEP_TOL (relative norm per array). Both differ only in the order of float32 sums.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO
from family_cases import CASES, case
from jaxgan import divergence, families, implementation, layers, layers_cpu, train
from jaxgan.models import ddpm_unet
from tpu_precision import emulate
from train_test import assert_trees_equal

LAYER_TOL = 2e-5
STEP_TOL = 1e-4
IMPLEMENTATIONS = ("portable", "cpu")


def close(got, want, tol):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
  assert got.shape == want.shape
  assert float(np.max(np.abs(got - want), initial=0.0)) <= tol * scale, (
      float(np.max(np.abs(got - want))), scale)


def through_both(fn, *args):
  """{implementation: jit(fn)(*args)}, each traced afresh under its implementation, for the
  CPU that runs it (so the CPU forms' products take their CPU precision while tracing)."""
  results = {}
  for impl in IMPLEMENTATIONS:
    with implementation.use(impl, platform="cpu"):
      results[impl] = jax.jit(lambda *a: fn(*a))(*args)  # a new function: a new trace
  return results


def values_and_grads(module, x, rng, **apply_kwargs):
  """fn(variables, x) -> (y, grads of <y, r> wrt params and x), mutable collections kept."""
  variables = module.init(jax.random.PRNGKey(0), x, **apply_kwargs)
  mutable = [k for k in variables if k != "params"] or False
  y0 = jax.eval_shape(lambda v, x: module.apply(v, x, mutable=mutable, **apply_kwargs),
                      variables, x)
  y_shape = y0[0] if mutable else y0
  r = jnp.asarray(rng.normal(size=y_shape.shape), jnp.float32)

  def fn(variables, x):
    def loss(params, x):
      out = module.apply({**variables, "params": params}, x, mutable=mutable, **apply_kwargs)
      y, updates = out if mutable else (out, {})
      return jnp.sum(y * r), (y, updates)
    grads, (y, updates) = jax.grad(loss, (0, 1), has_aux=True)(variables.get("params", {}), x)
    return y, updates, grads
  return fn, variables


LAYER_CASES = {
    # (module, input shape): every form layers_cpu picks among.
    "conv_stride1": (layers.Conv(8, 3, 1, 1), (2, 9, 9, 6)),
    "conv_strided": (layers.Conv(8, 4, 2, 1), (8, 8, 8, 6)),
    "conv_strided_batch1": (layers.Conv(8, 4, 2, 1), (1, 8, 8, 6)),
    "conv_odd_stride": (layers.Conv(8, 3, 2, 1), (2, 8, 8, 6)),
    "conv_narrow_out": (layers.Conv(3, 7, 1, 0), (1, 12, 12, 8)),
    "conv_narrow_in": (layers.Conv(8, 7, 1, 0), (1, 12, 12, 3)),
    "conv_patch_logit": (layers.Conv(1, 4, 1, 1), (1, 6, 6, 32)),
    "conv_kernel_bound": (layers.Conv(64, 4, 2, 1), (1, 4, 4, 64)),
    "conv_transpose_4x4": (layers.ConvTranspose(8, 4, 2, 1, use_bias=False), (8, 7, 7, 6)),
    "conv_transpose_small": (layers.ConvTranspose(8, 4, 2, 1), (2, 2, 2, 6)),
    "conv_transpose_3x3": (layers.ConvTranspose(6, 3, 2, 1, output_padding=1), (1, 8, 8, 8)),
    "conv_transpose_from_z": (layers.ConvTranspose(8, 7, 1, 0, use_bias=False), (8, 1, 1, 10)),
    "conv_transpose_kernel_bound": (layers.ConvTranspose(64, 4, 2, 1), (1, 2, 2, 64)),
    "conv_transpose_narrow": (layers.ConvTranspose(3, 4, 2, 1), (4, 8, 8, 8)),
    "dense": (layers.Dense(16), (8, 20)),
    "batch_norm": (layers.BatchNorm(train=True), (8, 5, 5, 16)),
    "batch_norm_1d": (layers.BatchNorm(train=True), (16, 12)),
    "batch_norm_eval": (layers.BatchNorm(train=False), (4, 5, 5, 16)),
    "instance_norm": (layers.InstanceNorm(), (2, 9, 7, 8)),
    "group_norm": (ddpm_unet.GroupNorm(), (2, 6, 6, 16)),
}


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_every_layer_agrees_through_both_implementations(name):
  module, shape = LAYER_CASES[name]
  rng = np.random.default_rng(len(name))
  x = jnp.asarray(rng.normal(1.0, 2.0, size=shape), jnp.float32)
  fn, variables = values_and_grads(module, x, rng)
  got = through_both(fn, variables, x)
  for a, b in zip(jax.tree.leaves(got["cpu"]), jax.tree.leaves(got["portable"])):
    close(a, b, LAYER_TOL)


def test_finiteness_check_agrees_through_both_implementations():
  state = {"a": jnp.ones((3, 4)), "b": {"c": jnp.zeros(5), "step": jnp.int32(3)}}
  for bad in (None, jnp.nan, jnp.inf, -jnp.inf):
    s = state if bad is None else {**state, "a": state["a"].at[1, 2].set(bad)}
    flags = through_both(lambda s: divergence.finite_flags(s, {"loss": jnp.float32(1)}), s)
    assert flags["cpu"] == flags["portable"]
    assert bool(flags["portable"]["a"]) == (bad is None) and bool(flags["portable"]["b"])


# Families' train steps: each case built twice, forcing one implementation per build, for
# the CPU that runs them (`platform`; None: for any platform).
def _family(config, impl, platform="cpu"):
  config = config.copy_and_resolve_references()
  config.implementation = impl
  return families.create(config, platform)


@pytest.mark.parametrize("name", CASES)
def test_one_train_step_of_every_family_agrees_through_both_implementations(name):
  config, batch = case(name)
  results = {}
  state = None
  for impl in IMPLEMENTATIONS:
    family = _family(config, impl)
    if state is None:
      state = jax.jit(family.init_state)(jax.random.PRNGKey(0))
    new_state, metrics = jax.jit(family.train_step)(state, batch)
    results[impl] = jax.device_get((new_state, metrics))
  (cpu_state, cpu_metrics), (state_p, metrics_p) = results["cpu"], results["portable"]
  for key in metrics_p:  # the losses: forward values
    close(cpu_metrics[key], metrics_p[key], STEP_TOL)
  # Gradients, read from Adam's first moments (mu = (1 - b1) g after one step), per network;
  # batch statistics, image pools and the rest of the state leaf by leaf. Not the updated
  # parameters: Adam's first step moves each by lr * g / |g|, so a gradient that is zero
  # but for round-off (a bias before InstanceNorm) moves by +-lr either way.
  grads, networks = {"cpu": {}, "portable": {}}, set()
  for impl, tree in (("cpu", cpu_state), ("portable", state_p)):
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
      key = jax.tree_util.keystr(path)
      if ".mu" in key:
        networks.add(key.split(".")[1])
        grads[impl].setdefault(key.split(".")[1], []).append(np.ravel(leaf))
      elif not any(part in key for part in (".params", ".nu", "ema_params")):
        grads[impl][key] = [np.ravel(leaf)]
  assert grads["cpu"].keys() == grads["portable"].keys() and networks
  for key, parts in grads["portable"].items():
    a = np.concatenate(grads["cpu"][key]).astype(np.float64)
    b = np.concatenate(parts).astype(np.float64)
    err = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12)
    assert err <= STEP_TOL or np.max(np.abs(a - b), initial=0) <= 1e-7, (key, err)


def test_a_forced_implementation_reaches_every_layer_of_a_family():
  config, batch = case("dcgan_mnist")
  state = jax.jit(_family(config, "cpu").init_state)(jax.random.PRNGKey(0))
  counts = {}
  for impl in IMPLEMENTATIONS:
    jaxpr = str(jax.make_jaxpr(_family(config, impl, platform=None).train_step)(state, batch))
    counts[impl] = (jaxpr.count("conv_general_dilated"), jaxpr.count("dot_general"),
                    jaxpr.count("platform_index"))
  assert counts["portable"][1] == 0 and counts["cpu"][1] > 0  # no product in the portable one
  # Forced: no layer switches on the platform (the CPU forms' statistics products still do,
  # for their precision: `layers_cpu.exact_product`).
  assert counts["portable"][2] == 0


# Numerics at an accelerator's default precision.
def _single_pass_statistics(x):
  """The statistics as jaxgan computed them before: E[x], E[x^2] - E[x]^2 through products
  with a vector of ones at the backend's default precision."""
  m = x.size // x.shape[-1]
  ones = jnp.ones((m,), x.dtype)
  mean = ones @ x.reshape(m, -1) / m
  return mean, ones @ jnp.square(x).reshape(m, -1) / m - jnp.square(mean)


@pytest.mark.parametrize("offset", [0.0, 10.0])
def test_portable_batch_norm_statistics_hold_at_tpu_default_precision(offset):
  """DCGAN MNIST's first BatchNorm (128 x 7 x 7 x 128) with activations of mean `offset`
  standard deviations: the variance's largest relative error, with float32 operands of
  products rounded to bfloat16 as a TPU's default does. Measured (printed with -s): the
  single-pass product form 1.2e-4 at offset 0 and 1.6e-2 at 10; the portable form 6.7e-7
  and 8.4e-7, with no product rounded, also through the whole BatchNorm layer."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(offset, 1.0, size=(128, 7, 7, 128)), jnp.float32)
  truth = np.asarray(x, np.float64).reshape(-1, 128).var(0)

  def var_error(var):
    return float(np.max(np.abs(np.asarray(var, np.float64) - truth) / truth))

  old = emulate(_single_pass_statistics)
  old_error = var_error(old(x)[1])
  portable = emulate(layers.batch_statistics)
  portable_error = var_error(portable(x)[1])
  print(f"offset {offset}: single-pass product form {old_error:.1e}, portable {portable_error:.1e}")
  assert old.rounded == {"dot_general": 2} and portable.rounded == {}
  assert portable_error < 1e-5
  if offset:
    assert old_error > 1e-3  # what the portable form avoids: the old one fails here

  # The whole layer, as a train step runs it: its running variance from those statistics.
  bn = layers.BatchNorm(train=True, momentum=1.0)
  variables = bn.init(jax.random.PRNGKey(0), x)
  with implementation.use("portable"):
    layer = emulate(lambda v, x: bn.apply(v, x, mutable=["batch_stats"])[1])
    stats = layer(variables, x)
  assert layer.rounded == {}
  m = x.size // 128
  assert var_error(stats["batch_stats"]["var"] * (m - 1) / m) < 1e-5


def test_statistics_products_of_the_cpu_forms_are_full_float32_everywhere():
  """`layers_cpu.exact_product`: XLA:CPU's default precision is float32 (bitwise HIGHEST),
  and lowered for an accelerator (the CPU forms forced there) the products ask for HIGHEST."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(10.0, 1.0, size=(6272, 128)), jnp.float32)
  ones = jnp.ones((6272,), jnp.float32)
  default = jax.jit(lambda o, x: o @ x)(ones, x)
  highest = jax.jit(lambda o, x: jnp.matmul(o, x, precision=jax.lax.Precision.HIGHEST))(ones, x)
  np.testing.assert_array_equal(default, highest)
  for fn in (layers_cpu.channel_sum, layers_cpu.leaf_finite,
             lambda x: layers_cpu.spatial_sum(x.reshape(8, 28, 28, 128))):
    assert "precision = [HIGHEST, HIGHEST]" in _lowered(fn, "tpu", x)
    assert "HIGHEST" not in _lowered(fn, "cpu", x)


# "auto": the platform the program is compiled for decides.
def _lowered(fn, platform, *args):
  return jax.jit(fn).trace(*args).lower(lowering_platforms=(platform,)).as_text()


def test_auto_takes_the_cpu_forms_only_where_xla_cpu_compiles():
  x = jnp.zeros((1, 4, 4, 64))  # a kernel-bound layer: the CPU form is matrix products
  w = jnp.zeros((4, 4, 64, 64))
  assert implementation.current() == "auto"
  cpu = _lowered(lambda x, w: layers.conv(x, w, 2, 1), "cpu", x, w)
  assert "dot_general" in cpu and "convolution" not in cpu
  for platform in ("tpu", "cuda"):
    text = _lowered(lambda x, w: layers.conv(x, w, 2, 1), platform, x, w)
    assert "stablehlo.convolution" in text and "dot_general" not in text, platform


def test_a_known_platform_traces_only_its_forms_and_computes_what_auto_does():
  """The training loop names its mesh's platform (`families.create(config, platform)`):
  "auto" then traces that platform's forms alone, and the step is the one "auto" compiles
  for that platform: bit for bit on a CPU, XLA's own convolutions for a TPU."""
  config, batch = case("dcgan_mnist")
  auto, on_cpu, on_tpu = (families.create(config, p) for p in (None, "cpu", "tpu"))
  state = jax.jit(on_cpu.init_state)(jax.random.PRNGKey(0))
  jaxprs = {name: str(jax.make_jaxpr(train.compile_train_step(f, train.make_mesh()))(state, batch))
            for name, f in (("auto", auto), ("cpu", on_cpu), ("tpu", on_tpu))}
  assert jaxprs["auto"].count("platform_index") > 0  # every layer and flag keeps both forms
  assert jaxprs["cpu"].count("platform_index") == jaxprs["tpu"].count("platform_index") == 0
  assert "dot_general" in jaxprs["cpu"] and "dot_general" not in jaxprs["tpu"]
  assert_trees_equal(jax.jit(auto.train_step)(state, batch), jax.jit(on_cpu.train_step)(state, batch))
  text = jax.jit(on_tpu.train_step).trace(state, batch).lower(lowering_platforms=("tpu",)).as_text()
  assert "stablehlo.convolution" in text and "stablehlo.dot_general" not in text


# Every family lowered for TPU and GPU on 8 host devices: a child process, as JAX fixes its
# device count when its backend starts.
def run_lowering_child():
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=os.environ.get("XLA_FLAGS", "")
             + " --xla_force_host_platform_device_count=8")
  out = subprocess.run([sys.executable, str(REPO / "tests" / "lowering_child.py")], env=env,
                       capture_output=True, text=True, timeout=900, check=False, cwd=REPO / "tests")
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def lowerings():
  return run_lowering_child()


@pytest.mark.slow
def test_every_family_lowers_for_tpu_and_gpu_to_native_convolutions(lowerings):
  assert sorted(lowerings["cases"]) == sorted(CASES) and lowerings["devices"] == 8
  for name, result in lowerings["cases"].items():
    for platform in ("tpu", "cuda"):
      for fn, hlo in result[platform].items():
        where = f"{name} {fn} for {platform}"
        assert not hlo["callbacks"], where  # nothing goes back to the host
        # No matrix product carries a normalisation sum or the finiteness check: every
        # product is one of the nets' dense layers or attention, whose operands are
        # matrices (a sum is a product with a vector of ones or zeros).
        assert hlo["vector_products"] == 0, (where, hlo)
        if not result["dense_layers"]:
          assert hlo["dot_general"] == 0, (where, hlo)
      # Native convolutions carry every convolution: each conv kernel of the nets has at
      # least its forward and its weight gradient as an XLA convolution in the step.
      step = result[platform]["train_step"]
      assert step["convolution"] >= 2 * result["conv_kernels"], (name, platform, step)
  # "auto" with no platform named lowers to what the platform's own trace does.
  first = lowerings["cases"][CASES[0]]
  assert first["auto"] == {"tpu": first["tpu"], "cuda": first["cuda"]}


@pytest.mark.slow
def test_bfloat16_steps_keep_parameters_and_optimizer_state_float32(lowerings):
  mixed = {name: result for name, result in lowerings["cases"].items()
           if "bfloat16_state_dtypes" in result}
  assert sorted(mixed) == sorted(set(CASES) - {"mnist_classifier"})  # a float32-only judge
  for name, result in mixed.items():
    assert result["bfloat16_state_dtypes"] == ["float32"], name
    assert "bf16" in result["bfloat16_step_types"], name  # it really computes in bfloat16
