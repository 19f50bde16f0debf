"""DCGAN-64 transposed-conv layers: forward + both gradients, three equivalent forms.

  python benchmarks/layers/conv_transpose.py [--batch 128] [--repeats 3]

- reference: the textbook form (`lax.conv_general_dilated` with input dilation), as
  `flax.linen.ConvTranspose` computes it; JAX autodiff for the gradients;
- subpixel_autodiff: jaxgan's sub-pixel forward with JAX autodiff for the gradients;
- jaxgan: `jaxgan.layers.conv_transpose` (sub-pixel forward, custom_vjp gradients).
Prints seconds per call (median of `repeats`) and one JSON object.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jaxgan  # noqa: E402,F401  (CPU XLA flags before JAX starts)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxgan import layers, layers_cpu  # noqa: E402

FORMS = {
    "reference": layers.conv_transpose_portable,
    "subpixel_autodiff": layers_cpu.conv_transpose_subpixel,
    "jaxgan": layers.conv_transpose,
}
# (input size, in channels, out channels) of the DCGAN-64 generator's stride-2 layers.
LAYERS = [(4, 512, 256), (8, 256, 128), (16, 128, 64), (32, 64, 3)]


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  rows = []
  for size, cin, cout in LAYERS:
    x = jax.random.normal(jax.random.PRNGKey(0), (args.batch, size, size, cin))
    w = 0.02 * jax.random.normal(jax.random.PRNGKey(1), (4, 4, cin, cout))
    row = {"input": [size, size, cin], "output_channels": cout}
    for name, fn in FORMS.items():
      step = jax.jit(jax.value_and_grad(lambda x, w, fn=fn: jnp.sum(fn(x, w, 2, 1, 0) ** 2), (0, 1)))
      jax.block_until_ready(step(x, w))
      times = []
      for _ in range(args.repeats):
        start = time.perf_counter()
        jax.block_until_ready(step(x, w))
        times.append(time.perf_counter() - start)
      row[name] = statistics.median(times)
    rows.append(row)
    print(f"{size}x{size}x{cin}->{cout}: " +
          ", ".join(f"{n} {row[n]:.3f} s" for n in FORMS), flush=True)
  print(json.dumps({"benchmark": "conv_transpose_fwd_bwd", "batch": args.batch,
                    "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
                    "jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""),
                    "results": rows}))


if __name__ == "__main__":
  main()
