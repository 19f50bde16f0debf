"""The forms benchmarks/alternatives.py times against jaxgan's compute the same thing, so
the README's "tried and not kept" figures compare equal functions; step_variants.py's
patches are undone after each variant is built."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO
from jaxgan import divergence, layers, layers_cpu

sys.path.insert(0, str(REPO / "benchmarks"))
import alternatives  # noqa: E402  pylint: disable=wrong-import-position
import step_variants  # noqa: E402  pylint: disable=wrong-import-position


@pytest.mark.parametrize("h,k,s", [(3, 4, 2), (4, 4, 2), (5, 3, 2)])
def test_other_weight_gradients_equal_jaxgans(h, k, s):
  rng = np.random.default_rng(h)
  small = jnp.asarray(rng.normal(size=(2, h, h, 3)), jnp.float32)
  big = jnp.asarray(rng.normal(size=(2, s * h + k, s * h + k, 5)), jnp.float32)
  want = layers_cpu.weight_grad(big, small, k, s)
  for other in (alternatives.weight_grad_shift_small, alternatives.weight_grad_phases):
    np.testing.assert_allclose(other(big, small, k, s), want, rtol=1e-5, atol=1e-5)


def test_batched_spatial_sum_and_plain_bias_equal_jaxgans():
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(3, 4, 5, 6)), jnp.float32)
  np.testing.assert_allclose(alternatives.spatial_sum_batched(x), layers_cpu.spatial_sum(x),
                             rtol=1e-5, atol=1e-5)
  b = jnp.asarray(rng.normal(size=(6,)), jnp.float32)
  got = jax.grad(lambda b: jnp.sum(jnp.sin(alternatives.add_bias_autodiff(x, b))))(b)
  want = jax.grad(lambda b: jnp.sum(jnp.sin(layers.add_bias(x, b))))(b)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("h,k,p", [(8, 3, 1), (14, 3, 1), (10, 5, 2), (8, 4, 1), (9, 4, 1)])
@pytest.mark.parametrize("batch", [2, 8])
def test_strided_convolution_alternatives_equal_jaxgans(h, k, p, batch):
  rng = np.random.default_rng(h + k)
  x = jnp.asarray(rng.normal(size=(batch, h, h, 3)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, 3, 4)), jnp.float32)

  def grads(conv):
    return jax.grad(lambda x, w: jnp.sum(jnp.sin(conv(x, w, 2, p))), (0, 1))(x, w)
  want = grads(layers_cpu.conv_strided)
  with step_variants.patched(*step_variants.variant_patches("space_to_depth_strided")):
    before = grads(alternatives.conv_strided_space_to_depth)
  for alternative in (grads(alternatives.conv_strided_xla), before):
    for g, r in zip(alternative, want):
      np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


def test_matmul_weight_gradient_convolution_equals_jaxgans():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(16, 8, 8, 3)), jnp.float32)  # activation-bound: XLA's path
  w = jnp.asarray(rng.normal(size=(4, 4, 3, 5)), jnp.float32)

  def grads(conv):
    return jax.grad(lambda x, w: jnp.sum(jnp.sin(conv(x, w, 2, 1))), (0, 1))(x, w)
  want = grads(layers.conv)
  with step_variants.patched(*step_variants.variant_patches("strided_weight_grad")):
    got = grads(layers.conv)
  for g, r in zip(got, want):
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("leaf_finite", [alternatives.leaf_isfinite,
                                         alternatives.leaf_sum_times_zero,
                                         layers_cpu.leaf_finite])
def test_every_finiteness_check_finds_nan_and_infinities_and_nothing_else(leaf_finite,
                                                                          monkeypatch):
  monkeypatch.setattr(layers_cpu, "leaf_finite", leaf_finite)
  check = divergence._all_finite
  good = {"w": jnp.full((4, 3), 3e38), "b": jnp.zeros(3), "step": jnp.int32(7)}
  assert bool(check(good))
  for bad in (jnp.nan, jnp.inf, -jnp.inf):
    assert not bool(check({**good, "w": good["w"].at[2, 1].set(bad)}))
  assert check({"step": jnp.int32(1)}) is None


def test_variants_patch_only_while_their_step_is_built():
  strided, leaf_finite = layers_cpu.conv_space_to_depth, layers_cpu.leaf_finite
  with step_variants.patched(*step_variants.variant_patches("strided_weight_grad"),
                             *step_variants.variant_patches("isfinite_flags")):
    assert layers_cpu.conv_space_to_depth is alternatives.conv_space_to_depth_matmul_weight_grad
    assert layers_cpu.leaf_finite is alternatives.leaf_isfinite
  assert layers_cpu.conv_space_to_depth is strided and layers_cpu.leaf_finite is leaf_finite
  with pytest.raises(SystemExit, match="unknown variant"):
    step_variants.variant_patches("fastest")


def test_side_by_side_taps_variant_computes_jaxgans_weight_gradient():
  """`side_by_side_taps` changes how the tap products are grouped, not what they sum."""
  rng = np.random.default_rng(0)
  small = jnp.asarray(rng.normal(size=(2, 4, 4, 3)), jnp.float32)
  big = jnp.asarray(rng.normal(size=(2, 10, 10, 64)), jnp.float32)  # 64 wide: per tap
  want = layers_cpu.weight_grad(big, small, 4, 2)
  with step_variants.patched(*step_variants.variant_patches("side_by_side_taps")):
    got = layers_cpu.weight_grad(big, small, 4, 2)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  assert layers_cpu.WIDE_PRODUCT == 64  # restored


def test_keep_freed_memory_is_off_unless_asked(monkeypatch):
  """The benchmarks' allocator setting is opt-in: without BENCH_KEEP_FREED_MEMORY the
  process's malloc is left alone (the package itself never sets it)."""
  import harness  # pylint: disable=import-outside-toplevel
  monkeypatch.delenv("BENCH_KEEP_FREED_MEMORY", raising=False)
  assert harness.keep_freed_memory() is False
  monkeypatch.setenv("BENCH_KEEP_FREED_MEMORY", "0")
  assert harness.keep_freed_memory() is False
