"""PyTorch reference DCGANs and the PyTorch DCGAN tutorial's train step.

The reference side of `benchmarks/steps/train_step.py` for the DCGANs, beside the other
references the tests load. The nets are written from one table per model (`SPECS`, right
below) in the same form as `jaxgan/models/dcgan.py` (`GENERATOR_BLOCKS`/
`DISCRIMINATOR_BLOCKS`), so that matching the two is a matter of
comparing a few tuples:

- `"64"`: exactly the PyTorch DCGAN tutorial's `Generator`/`Discriminator` (nz=100,
  ngf=ndf=64, nc=3; G 3,576,704 and D 2,765,568 parameters; module layout
  `self.main = nn.Sequential(...)`, so state dict keys are the tutorial's).
- `"mnist"`: the 28x28x1 DCGAN of `jaxgan/models/dcgan.py` (1 -> 4 -> 7 -> 14 -> 28,
  with 4 -> 7 a 3x3 stride-2 block; D mirrors it; G 837,504 and D 431,872 parameters).

D outputs logits (no sigmoid); the step uses `BCEWithLogitsLoss`. Init is the
tutorial's `weights_init`: conv weights N(0, 0.02), BatchNorm weight N(1, 0.02), bias 0.
BatchNorm keeps PyTorch's defaults (momentum 0.1, eps 1e-5).

  .venv/bin/python tests/torch_reference/torch_dcgan.py   # self-check: parameter counts, shapes, one step
"""

import time
from typing import Callable, NamedTuple, Sequence, Tuple

import torch
from torch import nn

# ---------------------------------------------------------------------------------------
# The model definitions. A block is (width as a multiple of ngf or ndf, kernel, stride,
# padding); each hidden block is conv (bias=False) -> BatchNorm -> ReLU (G) or
# LeakyReLU(0.2) (D). G's hidden blocks start from z as a 1x1 map and are followed by
# ConvTranspose(ngf * last_mult -> nc, *g_out) and tanh. D starts with
# Conv(nc -> ndf * d_in_mult, *d_in) -> LeakyReLU(0.2) (no BatchNorm), then its hidden
# blocks, then Conv(-> 1, *d_out) giving one logit per image.
# ---------------------------------------------------------------------------------------
Block = Tuple[int, int, int, int]


class Spec(NamedTuple):
  image_size: int
  nc: int
  nz: int
  ngf: int
  ndf: int
  g_blocks: Sequence[Block]
  g_out: Tuple[int, int, int]          # kernel, stride, padding of G's last ConvTranspose
  d_in: Block                          # D's first conv (no BatchNorm)
  d_blocks: Sequence[Block]
  d_out: Tuple[int, int, int]          # kernel, stride, padding of D's last conv
  g_params: int                        # expected parameter counts (checked by self_check)
  d_params: int


SPECS = {
    # The PyTorch DCGAN tutorial (= jaxgan GENERATOR_BLOCKS[64] / DISCRIMINATOR_BLOCKS[64]).
    "64": Spec(image_size=64, nc=3, nz=100, ngf=64, ndf=64,
               g_blocks=((8, 4, 1, 0), (4, 4, 2, 1), (2, 4, 2, 1), (1, 4, 2, 1)),
               g_out=(4, 2, 1),
               d_in=(1, 4, 2, 1),
               d_blocks=((2, 4, 2, 1), (4, 4, 2, 1), (8, 4, 2, 1)),
               d_out=(4, 1, 0),
               g_params=3_576_704, d_params=2_765_568),
    # jaxgan/models/dcgan.py at 28x28 (GENERATOR_BLOCKS[28] / DISCRIMINATOR_BLOCKS[28]).
    # The smaller variant first sketched for this benchmark (z -> 7x7 -> 14 -> 28) would be:
    #   g_blocks=((4, 7, 1, 0), (2, 4, 2, 1)), g_out=(4, 2, 1),
    #   d_in=(1, 4, 2, 1), d_blocks=((2, 4, 2, 1),), d_out=(7, 1, 0)
    #   (G 1,781,504 and D 138,624 parameters); it is NOT what jaxgan trains.
    "mnist": Spec(image_size=28, nc=1, nz=100, ngf=64, ndf=64,
                  g_blocks=((4, 4, 1, 0), (2, 3, 2, 1), (1, 4, 2, 1)),
                  g_out=(4, 2, 1),
                  d_in=(1, 4, 2, 1),
                  d_blocks=((2, 4, 2, 1), (4, 3, 2, 1)),
                  d_out=(4, 1, 0),
                  g_params=837_504, d_params=431_872),
}


def weights_init(m: nn.Module) -> None:
  """The tutorial's custom init: conv N(0, 0.02); BatchNorm weight N(1, 0.02), bias 0."""
  classname = m.__class__.__name__
  if classname.find("Conv") != -1:
    nn.init.normal_(m.weight.data, 0.0, 0.02)
  elif classname.find("BatchNorm") != -1:
    nn.init.normal_(m.weight.data, 1.0, 0.02)
    nn.init.constant_(m.bias.data, 0)


class DCGANGenerator(nn.Module):
  """z [N, nz, 1, 1] -> images [N, nc, S, S] in [-1, 1]."""

  def __init__(self, spec: Spec):
    super().__init__()
    self.spec = spec
    layers = []
    cin = spec.nz
    for mult, k, s, p in spec.g_blocks:
      cout = spec.ngf * mult
      layers += [nn.ConvTranspose2d(cin, cout, k, s, p, bias=False),
                 nn.BatchNorm2d(cout), nn.ReLU(True)]
      cin = cout
    layers += [nn.ConvTranspose2d(cin, spec.nc, *spec.g_out, bias=False), nn.Tanh()]
    self.main = nn.Sequential(*layers)
    self.apply(weights_init)

  def forward(self, z):
    return self.main(z)


class DCGANDiscriminator(nn.Module):
  """images [N, nc, S, S] -> logits [N, 1, 1, 1] (no sigmoid)."""

  def __init__(self, spec: Spec):
    super().__init__()
    self.spec = spec
    mult, k, s, p = spec.d_in
    cin = spec.ndf * mult
    layers = [nn.Conv2d(spec.nc, cin, k, s, p, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    for mult, k, s, p in spec.d_blocks:
      cout = spec.ndf * mult
      layers += [nn.Conv2d(cin, cout, k, s, p, bias=False),
                 nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]
      cin = cout
    layers += [nn.Conv2d(cin, 1, *spec.d_out, bias=False)]
    self.main = nn.Sequential(*layers)
    self.apply(weights_init)

  def forward(self, x):
    return self.main(x)


def build(model: str) -> Tuple[nn.Module, nn.Module]:
  """(G, D) for `model` in SPECS ("64" or "mnist"), freshly initialised."""
  return DCGANGenerator(SPECS[model]), DCGANDiscriminator(SPECS[model])


def count_params(module: nn.Module) -> int:
  return sum(p.numel() for p in module.parameters())


def make_torch_step(G: nn.Module, D: nn.Module, batch_size: int, nz: int, lr: float = 2e-4,
                    betas: Tuple[float, float] = (0.5, 0.999)) -> Callable:
  """The tutorial's training iteration as `step(real_images_nchw) -> (d_loss, g_loss)`.

  (1) D: maximise log D(x) + log(1 - D(G(z))): BCE on real (label 1) plus BCE on the
  detached fake (label 0), summed, one backward, Adam step. (2) G: maximise log D(G(z))
  (non-saturating: the same fake labelled 1, through the just-updated D), Adam step.
  Noise is drawn inside with torch.randn. The losses come back as detached 0-d tensors.
  """
  criterion = nn.BCEWithLogitsLoss()
  opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
  opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
  G.train()
  D.train()
  real_label = torch.ones(batch_size)
  fake_label = torch.zeros(batch_size)

  def step(real):
    n = real.shape[0]
    ones, zeros = (real_label, fake_label) if n == batch_size else (torch.ones(n), torch.zeros(n))
    # (1) Update D.
    D.zero_grad()
    err_real = criterion(D(real).view(-1), ones)
    noise = torch.randn(n, nz, 1, 1)
    fake = G(noise)
    err_fake = criterion(D(fake.detach()).view(-1), zeros)
    err_d = err_real + err_fake
    err_d.backward()
    opt_d.step()
    # (2) Update G.
    G.zero_grad()
    err_g = criterion(D(fake).view(-1), ones)
    err_g.backward()
    opt_g.step()
    return err_d.detach(), err_g.detach()

  return step


def self_check(time_steps: int = 0, batch_size: int = 128) -> dict:
  """Asserts parameter counts and output shapes, runs one step per model (finite losses).

  With `time_steps` > 0 also times that many steps per model after one warm-up step and
  returns {model: median seconds/step}.
  """
  torch.manual_seed(0)
  times = {}
  for model, spec in SPECS.items():
    g, d = build(model)
    ng, nd = count_params(g), count_params(d)
    assert (ng, nd) == (spec.g_params, spec.d_params), (model, ng, nd)
    with torch.no_grad():
      img = g.eval()(torch.randn(2, spec.nz, 1, 1))
      assert img.shape == (2, spec.nc, spec.image_size, spec.image_size), img.shape
      logits = d.eval()(img)
      assert logits.shape == (2, 1, 1, 1), logits.shape
    n = batch_size if time_steps else 8
    step = make_torch_step(g, d, n, spec.nz)
    real = torch.rand(n, spec.nc, spec.image_size, spec.image_size) * 2 - 1
    err_d, err_g = step(real)
    assert torch.isfinite(err_d) and torch.isfinite(err_g), (err_d, err_g)
    if time_steps:
      ts = []
      for _ in range(time_steps):
        t = time.perf_counter()
        step(real)
        ts.append(time.perf_counter() - t)
      times[model] = sorted(ts)[len(ts) // 2]
  return times


if __name__ == "__main__":
  import argparse
  import os

  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--time-steps", type=int, default=0, help="also time this many steps")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--threads", type=int, default=os.cpu_count())
  args = parser.parse_args()
  torch.set_num_threads(args.threads)
  result = self_check(args.time_steps, args.batch)
  print("self-check passed:", {m: (s.g_params, s.d_params) for m, s in SPECS.items()})
  for model, t in result.items():
    print(f"{model}: {t:.3f} s/step at batch {args.batch}, {args.threads} threads "
          f"({args.batch / t:.0f} images/s)")
