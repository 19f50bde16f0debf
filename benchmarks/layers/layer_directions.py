"""Single layers, each direction alone: jaxgan's form against the ones it was chosen over,
and PyTorch's layer (docs/performance.md, "Each direction of a convolution").

  .venv/bin/python benchmarks/layers/layer_directions.py [--layers dcgan64_d1,...] [--repeats 7]
      [--out FILE]

For each layer (its family's shapes and batch) and each form: the forward, the input
gradient alone and the weight gradient alone (a `jax.vjp` with respect to one argument,
jitted), and the forward with both gradients together; PyTorch's `Conv2d` or
`ConvTranspose2d` (no bias) forward under `no_grad` and forward with `backward`, on the same
thread count (its directions do not separate). Forms:

- convolutions: `jaxgan` (`layers.conv`), `xla` (`layers_cpu.conv_xla`: XLA's convolution
  with autodiff's gradients), and for strided ones whose kernel side is a multiple of the
  stride `space_to_depth` (`layers_cpu.conv_space_to_depth` with autodiff's gradients, in
  every direction; `layers_cpu.conv_strided` takes only gradients from it);
- transposed convolutions: `jaxgan` (`layers.conv_transpose`), `one_subpixel` (the same
  with `layers_cpu.thresholds(UNION_WASTE=inf)`: one sub-pixel convolution on every map) and
  `xla_dilated` (`layers.conv_transpose_portable`, the input-dilated form XLA would run).

Each figure is the median of `--repeats` calls after a warm-up call, in ms; the JSON adds
the forward's GFLOP/s (2 * multiply-adds of the layer as defined, over the forward's time).
"""

import argparse
import json
import math
import os
import sys
from typing import NamedTuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/
import harness  # noqa: E402  (jaxgan's CPU XLA flags before JAX starts)
import jax  # noqa: E402
import numpy as np  # noqa: E402

from alternatives import timed_ms  # noqa: E402
from jaxgan import layers, layers_cpu  # noqa: E402


class Layer(NamedTuple):
  batch: int
  size: int  # input height = width
  c_in: int
  c_out: int
  k: int
  stride: int
  padding: int
  transposed: bool = False
  output_padding: int = 0


LAYERS = {
    # Discriminators' strided convolutions (`layers_cpu.conv_strided`).
    "dcgan64_d1": Layer(128, 32, 64, 128, 4, 2, 1),
    "dcgan_mnist_d1": Layer(128, 14, 64, 128, 4, 2, 1),
    # The rest of DCGAN MNIST, so that its eight layers are all here.
    "dcgan_mnist_d0": Layer(128, 28, 1, 64, 4, 2, 1),
    "dcgan_mnist_d2": Layer(128, 7, 128, 256, 3, 2, 1),
    "dcgan_mnist_d3": Layer(128, 4, 256, 1, 4, 1, 0),
    "pix2pix_e2": Layer(1, 128, 64, 128, 4, 2, 1),
    "cyclegan_d1": Layer(1, 256, 64, 128, 3, 2, 1),  # 3x3: the kernel zero-padded to 4x4
    # A CycleGAN residual block's 3x3 convolution (its reflection-padded 66x66 input).
    "cyclegan_r": Layer(1, 66, 256, 256, 3, 1, 0),
    # Narrow stride-1 convolutions (`layers_cpu.conv_narrow`): CycleGAN's 7x7 layers on their
    # reflection-padded 262x262 inputs, a PatchGAN's last layer.
    "cyclegan_c7s1_out": Layer(1, 262, 64, 3, 7, 1, 0),
    "cyclegan_c7s1_in": Layer(1, 262, 3, 64, 7, 1, 0),
    "patchgan_last": Layer(1, 31, 512, 1, 4, 1, 1),
    # Transposed convolutions (`layers_cpu.UNION_WASTE`).
    "dcgan64_g1": Layer(128, 4, 512, 256, 4, 2, 1, True),
    "dcgan_mnist_g1": Layer(128, 4, 256, 128, 3, 2, 1, True),
    "dcgan_mnist_g2": Layer(128, 7, 128, 64, 4, 2, 1, True),
    "dcgan_mnist_g0": Layer(128, 1, 100, 256, 4, 1, 0, True),
    "dcgan_mnist_g3": Layer(128, 14, 64, 1, 4, 2, 1, True),
    "pix2pix_u2": Layer(1, 64, 256, 64, 4, 2, 1, True),  # unet_256's last two levels
    "pix2pix_u_out": Layer(1, 128, 128, 3, 4, 2, 1, True),
    "cyclegan_u1": Layer(1, 64, 256, 128, 3, 2, 1, True, 1),
    "cyclegan_u2": Layer(1, 128, 128, 64, 3, 2, 1, True, 1),
}


def forms(layer: Layer) -> dict:
  """name -> (fn(x, w), `layers_cpu.thresholds` that must hold while it is traced)."""
  s, p, op = layer.stride, layer.padding, layer.output_padding
  if layer.transposed:
    return {"jaxgan": (lambda x, w: layers.conv_transpose(x, w, s, p, op), {}),
            "one_subpixel": (lambda x, w: layers.conv_transpose(x, w, s, p, op),
                             {"UNION_WASTE": math.inf}),
            "xla_dilated": (lambda x, w: layers.conv_transpose_portable(x, w, s, p, op), {})}
  out = {"jaxgan": (lambda x, w: layers.conv(x, w, s, p), {}),
         "xla": (lambda x, w: layers_cpu.conv_xla(x, w, s, p), {})}
  if s > 1 and layer.k % s == 0:
    out["space_to_depth"] = (lambda x, w: layers_cpu.conv_space_to_depth(x, w, s, p), {})
  return out


def directions(fn, x, w, dy, repeats: int) -> dict[str, float]:
  def both(x, w, dy):
    y, vjp = jax.vjp(fn, x, w)
    return y, vjp(dy)
  return {
      "forward": timed_ms(fn, x, w, repeats=repeats),
      "input_grad": timed_ms(lambda x, w, dy: jax.vjp(lambda x: fn(x, w), x)[1](dy)[0],
                             x, w, dy, repeats=repeats),
      "weight_grad": timed_ms(lambda x, w, dy: jax.vjp(lambda w: fn(x, w), w)[1](dy)[0],
                              x, w, dy, repeats=repeats),
      "forward_and_both_grads": timed_ms(both, x, w, dy, repeats=repeats),
  }


def torch_layer(layer: Layer, x: np.ndarray, w: np.ndarray, dy: np.ndarray,
                repeats: int) -> dict[str, float] | None:
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  torch.set_num_threads(os.cpu_count() or 1)
  if layer.transposed:
    module = torch.nn.ConvTranspose2d(layer.c_in, layer.c_out, layer.k, layer.stride,
                                      layer.padding, layer.output_padding, bias=False)
    weight = w.transpose(2, 3, 0, 1)  # HWIO -> (in, out, kh, kw)
  else:
    module = torch.nn.Conv2d(layer.c_in, layer.c_out, layer.k, layer.stride, layer.padding,
                             bias=False)
    weight = w.transpose(3, 2, 0, 1)  # HWIO -> (out, in, kh, kw)
  with torch.no_grad():
    module.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
  tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_()
  tdy = torch.from_numpy(np.ascontiguousarray(dy.transpose(0, 3, 1, 2)))

  def forward():
    with torch.no_grad():
      module(tx)

  def forward_and_both_grads():
    tx.grad, module.weight.grad = None, None
    module(tx).backward(tdy)

  out = {}
  for name, call in (("forward", forward), ("forward_and_both_grads", forward_and_both_grads)):
    call()
    out[name] = 1e3 * harness.median(harness.timed(call, repeats))
  return out


def flops(layer: Layer, y_shape) -> float:
  """2 * multiply-adds: each output of a convolution (each input of a transposed one) meets
  k*k*C_in (k*k*C_out) weights."""
  if layer.transposed:
    return 2.0 * layer.batch * layer.size ** 2 * layer.c_in * layer.c_out * layer.k ** 2
  return 2.0 * np.prod(y_shape) * layer.c_in * layer.k ** 2


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--layers", default=",".join(LAYERS))
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--out", default=None, help="write the JSON here")
  args = parser.parse_args()
  out = {"machine": harness.machine_info(), "repeats": args.repeats, "layers": {}}
  for name in args.layers.split(","):
    if name not in LAYERS:
      parser.error(f"unknown layer {name!r}; choose from {', '.join(LAYERS)}")
    layer = LAYERS[name]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(layer.batch, layer.size, layer.size, layer.c_in)).astype(np.float32)
    w = (0.05 * rng.normal(size=(layer.k, layer.k, layer.c_in, layer.c_out))).astype(np.float32)
    y_shape = jax.eval_shape(next(iter(forms(layer).values()))[0], x, w).shape
    dy = rng.normal(size=y_shape).astype(np.float32)
    row = {"layer": layer._asdict(), "gflop": flops(layer, y_shape) / 1e9, "ms": {}}
    on_device = [jax.device_put(a) for a in (x, w, dy)]
    for form, (fn, thresholds) in forms(layer).items():
      with layers_cpu.thresholds(**thresholds):  # each function is traced on its first call
        row["ms"][form] = directions(fn, *on_device, args.repeats)
    row["ms"]["pytorch"] = torch_layer(layer, x, w, dy, args.repeats)
    row["forward_gflop_per_s"] = {form: row["gflop"] / ms["forward"] * 1e3
                                  for form, ms in row["ms"].items() if ms}
    out["layers"][name] = row
    print(name, " | ".join(f"{form} " + " ".join(f"{d} {v:.2f}" for d, v in ms.items())
                           for form, ms in row["ms"].items() if ms), flush=True)
  if args.out:
    with open(args.out, "w") as f:
      f.write(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
  main()
