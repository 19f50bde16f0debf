"""The forms benchmarks/layers/alternatives.py times against jaxgan's compute the same thing,
so docs/performance.md compares equal functions; the settings benchmarks/steps/
step_variants.py builds its variants under (`layers_cpu.thresholds`) change how a step
computes, not what, and hold only within their context."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO
from jaxgan import divergence, layers_cpu

sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "benchmarks" / "layers"))
sys.path.insert(0, str(REPO / "benchmarks" / "steps"))
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


@pytest.mark.parametrize("h,k,p", [(8, 3, 1), (14, 3, 1), (10, 5, 2), (8, 4, 1), (9, 4, 1)])
@pytest.mark.parametrize("batch", [2, 8])
def test_strided_weight_gradient_variants_equal_jaxgans(h, k, p, batch):
  """`space_to_depth_weight_grad` and `xla_weight_grad`: either weight gradient at any batch."""
  rng = np.random.default_rng(h + k)
  x = jnp.asarray(rng.normal(size=(batch, h, h, 3)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, 3, 4)), jnp.float32)

  def grads():
    return jax.grad(lambda x, w: jnp.sum(jnp.sin(layers_cpu.conv_strided(x, w, 2, p))),
                    (0, 1))(x, w)
  want = grads()
  for name in ("space_to_depth_weight_grad", "xla_weight_grad"):
    with layers_cpu.thresholds(**step_variants.variant(name)[1]):
      got = grads()
    for g, r in zip(got, want):
      np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


def over_leaves(leaf_finite):
  """A state's finiteness with each leaf read by `leaf_finite` (`alternatives.all_finite`)."""
  return lambda tree: alternatives.all_finite(leaf_finite)(jax.tree.leaves(tree))


@pytest.mark.parametrize("check", [over_leaves(alternatives.leaf_isfinite),
                                   over_leaves(alternatives.leaf_sum_times_zero),
                                   over_leaves(layers_cpu.leaf_finite),
                                   divergence._all_finite],  # the kept form, small leaves together
                         ids=["isfinite", "sum_times_zero", "times_zero", "kept"])
def test_every_finiteness_check_finds_nan_and_infinities_and_nothing_else(check):
  big = jnp.full((4, 4, 32, 64), 3e38)  # above layers_cpu.SMALL_LEAF values: read on its own
  good = {"w": big, "b": jnp.zeros(3), "s": jnp.ones(5, jnp.bfloat16)}
  assert bool(check(good))
  for bad in (jnp.nan, jnp.inf, -jnp.inf):
    for name, index in (("w", (3, 1, 31, 0)), ("b", 2), ("s", 0)):
      assert not bool(check({**good, name: good[name].at[index].set(bad)}))
  assert divergence._all_finite({"step": jnp.int32(1)}) is None


def test_thresholds_hold_only_within_their_context():
  assert layers_cpu.kernel_bound(8, 16, 16) and not layers_cpu.kernel_bound(9, 16, 16)
  with layers_cpu.thresholds(**step_variants.variant("kernel_bound_1")[1]):
    assert layers_cpu.kernel_bound(16, 16, 16)
    with layers_cpu.thresholds(**step_variants.variant("no_kernel_bound")[1]):
      assert not layers_cpu.kernel_bound(1, 16, 16)
    assert layers_cpu.kernel_bound(16, 16, 16)
  assert not layers_cpu.kernel_bound(9, 16, 16)
  with pytest.raises(ValueError, match="unknown thresholds"):
    with layers_cpu.thresholds(FASTEST=1):
      pass
  assert step_variants.variant("portable") == (("implementation=portable",), {})
  with pytest.raises(SystemExit, match="unknown variant"):
    step_variants.variant("fastest")


def test_side_by_side_taps_variant_computes_jaxgans_weight_gradient():
  """`side_by_side_taps` changes how the tap products are grouped, not what they sum."""
  rng = np.random.default_rng(0)
  small = jnp.asarray(rng.normal(size=(2, 4, 4, 3)), jnp.float32)
  big = jnp.asarray(rng.normal(size=(2, 10, 10, 64)), jnp.float32)  # 64 wide: per tap
  want = layers_cpu.weight_grad(big, small, 4, 2)
  with layers_cpu.thresholds(**step_variants.variant("side_by_side_taps")[1]):
    got = layers_cpu.weight_grad(big, small, 4, 2)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_keep_freed_memory_is_off_unless_asked(monkeypatch):
  """The benchmarks' allocator setting is opt-in: without BENCH_KEEP_FREED_MEMORY the
  process's malloc is left alone (the package itself never sets it)."""
  import harness  # pylint: disable=import-outside-toplevel
  monkeypatch.delenv("BENCH_KEEP_FREED_MEMORY", raising=False)
  assert harness.keep_freed_memory() is False
  monkeypatch.setenv("BENCH_KEEP_FREED_MEMORY", "0")
  assert harness.keep_freed_memory() is False


def test_benchmark_overrides_parse_tuples():
  """`--set model.ch_mult=(1,2)` in the benchmark scripts gives the tuple (1, 2), not the
  characters of the text."""
  import harness  # pylint: disable=import-outside-toplevel
  config = harness.load_config("configs/ddpm_mnist_cpu.py", ("model.ch_mult=(1,2)",))
  assert tuple(config.model.ch_mult) == (1, 2)
  config = harness.load_config("configs/ddpm_mnist_cpu.py", ("model.ch_mult=1,2,2", "seed=3"))
  assert tuple(config.model.ch_mult) == (1, 2, 2) and config.seed == 3
  with pytest.raises(SystemExit, match="give a Python tuple"):
    harness.override(config, "model.ch_mult=(1,")


def test_whole_run_update_replaces_only_what_was_measured():
  """`whole_run.py --update` of one case keeps the other cases and parts, and records
  which machine measured what."""
  import whole_run  # pylint: disable=import-outside-toplevel
  earlier = {"machine": {"cpu_model": "A"}, "cases": {"dcgan_mnist": 1, "pix2pix128": 2},
             "host_overhead": 3}
  result = {"machine": {"cpu_model": "B"}, "cases": {"dcgan_mnist": 4}, "host_overhead": {}}
  got = whole_run.updated(earlier, result)
  assert got["cases"] == {"dcgan_mnist": 4, "pix2pix128": 2} and got["host_overhead"] == 3
  assert got["machine"] == {"cpu_model": "A"}
  assert got["updates"] == {"cases.dcgan_mnist": {"cpu_model": "B"}}
  assert earlier["cases"] == {"dcgan_mnist": 1, "pix2pix128": 2}  # not changed in place
