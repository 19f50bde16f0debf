"""Forms of a layer's pieces that jaxgan did not take, timed against the ones it takes.

  .venv/bin/python benchmarks/layers/alternatives.py [finite,weight_grad,conv3x3,op_overhead]
      [--repeats 5] [--out FILE]

- `finite`: the divergence guard's finiteness check of a state, over 268 MB of leaves
  shaped as pix2pix's kernels (as `divergence._all_finite` reads them), each leaf read as
  `x @ 0` (`layers_cpu.leaf_finite`, taken), as the boolean `all(isfinite(x))` (the
  portable form), or as `isfinite(sum(x * 0))` (a float reduction);
- `weight_grad`: the stride-2 transposed convolution's weight gradient at DCGAN-64's layers
  (batch 128) and CycleGAN's 3x3 upsamplings (batch 1): `jaxgan.layers_cpu.weight_grad`
  (taken: one product per kernel tap's strided view of `big`, or the views side by side),
  `weight_grad_phases` (`big`'s phases, one product per kernel shift) and
  `weight_grad_shift_small` (the small operand shifted instead, one product for all);
- `conv3x3`: forward+backward of CycleGAN's 3x3 resnet-block convolution (1x64x64x256),
  XLA's convolution (taken) against im2col and one matrix product (`layers_cpu.conv_dots`);
- `op_overhead`: XLA:CPU's cost per op: n independent 64x64 products in one jitted call.

Each figure is the median of `--repeats` calls after one warm-up call, in ms
(docs/performance.md).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/
import harness  # noqa: E402  (jaxgan's CPU XLA flags before JAX starts)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from jaxgan import layers_cpu  # noqa: E402

def leaf_isfinite(x):
  """A boolean reduction over the array, as the portable finiteness check reads a leaf."""
  return jnp.all(jnp.isfinite(x))


def leaf_sum_times_zero(x):
  """One float sum of x * 0: NaN exactly when something in x is not finite."""
  return jnp.isfinite(jnp.sum(x * jnp.zeros((), x.dtype)))


def weight_grad_phases(big, small, k: int, s: int):
  """`layers_cpu.weight_grad`'s sum with `big` cut into s x s phases (space-to-depth), one
  product per kernel shift over all s*s phases at once (m*m products, m = ceil(k/s))."""
  m = -(-k // s)
  n, h, w, _ = small.shape
  need_h, need_w = s * (h + m), s * (w + m)
  big = jnp.pad(big, ((0, 0), (0, max(0, need_h - big.shape[1])),
                      (0, max(0, need_w - big.shape[2])), (0, 0)))[:, :need_h, :need_w]
  phases = layers_cpu.space_to_depth(big, s).reshape(n, h + m, w + m, s, s, -1)
  rows = []
  for a in range(m):
    cols = [jnp.einsum("nhwo,nhwrqc->rqoc", small, phases[:, a:a + h, b:b + w])
            for b in range(m)]  # each [s, s, C_small, C_big]
    rows.append(jnp.stack(cols, axis=2))  # [s(r_h), s(r_w), m(b), C_small, C_big]
  g = jnp.stack(rows, axis=1)  # [s(r_h), m(a), s(r_w), m(b), ...]: tap t = s*a + r
  g = g.transpose(1, 0, 3, 2, 4, 5).reshape(m * s, m * s, *g.shape[-2:])
  return g[:k, :k]


def weight_grad_shift_small(big, small, k: int, s: int):
  """`layers_cpu.weight_grad` with `small` shifted (zero-padded) by each of the m x m kernel
  shifts and concatenated on channels, against `big`'s phases whole: one product."""
  m = -(-k // s)
  n, h, w, c_small = small.shape
  need_h, need_w = s * (h + m), s * (w + m)
  big = jnp.pad(big, ((0, 0), (0, max(0, need_h - big.shape[1])),
                      (0, max(0, need_w - big.shape[2])), (0, 0)))[:, :need_h, :need_w]
  phases = layers_cpu.space_to_depth(big, s)  # [n, h + m, w + m, s*s*C_big]
  padded = jnp.pad(small, ((0, 0), (m, m), (m, m), (0, 0)))
  shifted = jnp.concatenate([padded[:, m - a:m - a + h + m, m - b:m - b + w + m]
                             for a in range(m) for b in range(m)], axis=-1)
  g = jnp.einsum("nhwa,nhwb->ab", shifted, phases)  # [(a, b, C_small), (r, q, C_big)]
  g = g.reshape(m, m, c_small, s, s, big.shape[-1]).transpose(0, 3, 1, 4, 2, 5)
  return g.reshape(m * s, m * s, c_small, big.shape[-1])[:k, :k]


def timed_ms(fn, *args, repeats: int = 5) -> float:
  jitted = jax.jit(fn)
  jax.block_until_ready(jitted(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(jitted(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times))


def all_finite(leaf_finite):
  """A state's finiteness as `divergence._all_finite` reads it, each leaf by `leaf_finite`."""
  return lambda leaves: jnp.all(jnp.stack([leaf_finite(x) for x in leaves]))


def bench_finite(repeats):
  leaves = ([jnp.full((4, 4, 1024, 512), 0.01)] * 6 + [jnp.full((4, 4, 512, 512), 0.01)] * 4)
  forms = {"times_zero (kept)": layers_cpu.leaf_finite, "isfinite": leaf_isfinite,
           "sum_times_zero": leaf_sum_times_zero}
  ms = {name: timed_ms(all_finite(leaf_finite), leaves, repeats=repeats)
        for name, leaf_finite in forms.items()}
  return {"megabytes": sum(x.size for x in leaves) * 4 / 1e6, "ms": ms}


def bench_weight_grad(repeats):
  rng, s, p = np.random.default_rng(0), 2, 1
  rows = []
  # DCGAN-64's transposed convolutions at batch 128; CycleGAN's 3x3 upsamplings u128, u64
  # at batch 1 (output padding 1).
  for n, h, c_in, c_out, k, op in [(128, 4, 512, 256, 4, 0), (128, 8, 256, 128, 4, 0),
                                   (128, 16, 128, 64, 4, 0), (128, 32, 64, 3, 4, 0),
                                   (1, 64, 256, 128, 3, 1), (1, 128, 128, 64, 3, 1)]:
    x = jnp.asarray(rng.normal(size=(n, h, h, c_in)), jnp.float32)
    out = (h - 1) * s - 2 * p + k + op
    dy = jnp.pad(jnp.asarray(rng.normal(size=(n, out, out, c_out)), jnp.float32),
                 ((0, 0), (p, 0), (p, 0), (0, 0)))
    forms = {"tap_views (kept)": lambda d, x, k=k: layers_cpu.weight_grad(d, x, k, s),
             "phases_sliced (before)": lambda d, x, k=k: weight_grad_phases(d, x, k, s),
             "shift_small": lambda d, x, k=k: weight_grad_shift_small(d, x, k, s)}
    kept = forms["tap_views (kept)"](dy, x)
    error = max(float(jnp.max(jnp.abs(f(dy, x) - kept)) / jnp.max(jnp.abs(kept)))
                for f in forms.values())
    rows.append({"batch": n, "input": [h, h, c_in], "output_channels": c_out, "kernel": k,
                 "relative_difference": error,
                 "ms": {name: timed_ms(f, dy, x, repeats=repeats) for name, f in forms.items()}})
  return rows


def bench_conv3x3(repeats):
  x, w = jnp.full((1, 64, 64, 256), 0.1), jnp.full((3, 3, 256, 256), 0.01)

  def fwd_bwd(conv):
    return jax.grad(lambda x, w: jnp.sum(conv(x, w) ** 2), (0, 1))

  xla = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), [(1, 1)] * 2,  # noqa: E731
                                              dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return {"shape": "1x64x64x256, 3x3, 256 out", "ms": {
      "xla_conv (kept)": timed_ms(fwd_bwd(xla), x, w, repeats=repeats),
      "im2col_matmul": timed_ms(fwd_bwd(lambda x, w: layers_cpu.conv_dots(x, w, 1, 1)), x, w,
                                repeats=repeats)}}


def bench_op_overhead(repeats):
  result = {}
  for n in (10, 100, 1000):
    xs = [jnp.full((64, 64), float(i)) for i in range(n)]
    result[n] = timed_ms(lambda xs: [x @ x for x in xs], xs, repeats=repeats)
  return {"ms_for_n_products": result,
          "us_per_op_at_1000": 1e3 * result[1000] / 1000}


BENCHES = {"finite": bench_finite, "weight_grad": bench_weight_grad, "conv3x3": bench_conv3x3,
           "op_overhead": bench_op_overhead}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("which", nargs="?", default=",".join(BENCHES))
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--out", default=None, help="write the JSON here")
  args = parser.parse_args()
  out = {"machine": harness.machine_info()}
  for name in args.which.split(","):
    if name not in BENCHES:
      parser.error(f"unknown benchmark {name!r}; choose from {', '.join(BENCHES)}")
    out[name] = BENCHES[name](args.repeats)
    print(name, json.dumps(out[name]), flush=True)
  if args.out:
    with open(args.out, "w") as f:
      f.write(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
  main()
