"""InstanceNorm forward + backward at CycleGAN's shapes, and the compile time of a
generator's initialisation: jaxgan's forms against the plain ones.

  python benchmarks/layers/instance_norm.py [--repeats 20]

1. `layers.InstanceNorm` (matrix-product sums, closed-form backward) against the plain
   `jnp.mean` formula differentiated by JAX, batch 1, from the 64x64 configs' 16x16x64
   residual blocks to resnet_9blocks' maps at 256x256;
2. the seconds to compile (and run once) resnet_9blocks' initialisation at 256x256: Flax's
   `init` (one threefry draw per parameter) against `layers.init_weights` (one draw).
Prints milliseconds (median) and seconds, and one JSON object.
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

from jaxgan import layers, models  # noqa: E402

SHAPES = [(1, 16, 16, 64), (1, 32, 32, 32), (1, 64, 64, 64), (1, 64, 64, 256),
          (1, 128, 128, 128), (1, 256, 256, 64)]


def plain_instance_norm(x, eps=1e-5):
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  return (x - mean) * jax.lax.rsqrt(jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True) + eps)




def seconds_to_compile_and_run(fn, *args):
  start = time.perf_counter()
  jax.block_until_ready(jax.jit(fn)(*args))
  return time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--repeats", type=int, default=20)
  args = parser.parse_args()
  rows = []
  for shape in SHAPES:
    x = jax.random.normal(jax.random.PRNGKey(0), shape) * 2 + 1
    row = {"shape": list(shape)}
    for name, norm in (("plain", plain_instance_norm), ("jaxgan", layers.instance_norm)):
      step = jax.jit(jax.grad(lambda x, norm=norm: jnp.sum(jnp.square(norm(x)) * x)))
      row[name] = harness.median_ms(step, x, repeats=args.repeats)
    rows.append(row)
    print(f"{str(shape):>20}: fwd+bwd plain {row['plain']:.2f} ms, jaxgan {row['jaxgan']:.2f} ms",
          flush=True)
  g = models.create("resnet_9blocks")
  x = jnp.zeros((1, 256, 256, 3))
  shapes = jax.eval_shape(lambda: g.init(jax.random.PRNGKey(0), x))["params"]
  init = {"flax_init_s": seconds_to_compile_and_run(lambda k: g.init(k, x), jax.random.PRNGKey(0)),
          "init_weights_s": seconds_to_compile_and_run(lambda k: layers.init_weights(shapes, k),
                                                       jax.random.PRNGKey(0))}
  print(f"resnet_9blocks init, compile + run: flax {init['flax_init_s']:.2f} s, "
        f"init_weights {init['init_weights_s']:.2f} s")
  print(json.dumps({"benchmark": "instance_norm_fwd_bwd_ms", "jax": jax.__version__,
                    "cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
                    "results": rows, "resnet_9blocks_init": init}))


if __name__ == "__main__":
  main()
