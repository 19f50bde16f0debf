"""BatchNorm in training mode, forward + backward: jaxgan's against Flax's, at DCGAN shapes.

  python benchmarks/layers/batch_norm.py [--repeats 7]

Also times the per-channel sum alone, as XLA's reduction (`x.sum((0, 1, 2))`) and as the
matrix-vector product jaxgan uses. Prints milliseconds (median) and one JSON object.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/
import harness  # noqa: E402  (jaxgan's CPU XLA flags before JAX starts)

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxgan import layers, layers_cpu  # noqa: E402

SHAPES = [(128, 8, 8, 512), (128, 16, 16, 256), (128, 32, 32, 128), (128, 32, 32, 64),
          (128, 7, 7, 128), (128, 14, 14, 64)]




def fwd_bwd(module, x):
  variables = module.init(jax.random.PRNGKey(1), x)

  def loss(params, x):
    y, _ = module.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                        mutable=["batch_stats"])
    return jnp.sum(y * y)

  return jax.jit(jax.grad(loss, argnums=(0, 1))), variables["params"]


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--repeats", type=int, default=7)
  args = parser.parse_args()
  flax_bn = nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5)
  rows = []
  for shape in SHAPES:
    x = jax.random.normal(jax.random.PRNGKey(0), shape)
    row = {"shape": list(shape)}
    for name, module in (("flax_batchnorm", flax_bn), ("jaxgan_batchnorm", layers.BatchNorm(True))):
      step, params = fwd_bwd(module, x)
      row[name] = harness.median_ms(step, params, x, repeats=args.repeats)
    row["sum_reduce"] = harness.median_ms(jax.jit(lambda x: x.sum((0, 1, 2))), x, repeats=args.repeats)
    row["sum_gemv"] = harness.median_ms(jax.jit(layers_cpu.channel_sum), x, repeats=args.repeats)  # pylint: disable=protected-access
    rows.append(row)
    print(f"{str(shape):>20}: fwd+bwd flax {row['flax_batchnorm']:.1f} ms, jaxgan "
          f"{row['jaxgan_batchnorm']:.1f} ms | channel sum: reduce {row['sum_reduce']:.2f} ms, "
          f"gemv {row['sum_gemv']:.2f} ms", flush=True)
  print(json.dumps({"benchmark": "batch_norm_fwd_bwd_ms", "jax": jax.__version__,
                    "cpu_count": os.cpu_count(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
                    "results": rows}))


if __name__ == "__main__":
  main()
