"""PyTorch reference of CycleGAN, as junyanz/pytorch-CycleGAN-and-pix2pix defines it.

The reference side for `jaxgan/models/resnet_generator.py`, `jaxgan/image_pool.py` and
`jaxgan/families/cyclegan.py`: `ResnetGenerator` and `ResnetBlock` (`models/networks.py`;
the PatchGAN and `init_weights` come from torch_pix2pix.py; `cycle_generator_64` is
jaxgan's 64x64 variant written in PyTorch the same way), `ImagePool`
(`util/image_pool.py`) and `CycleGANModel.optimize_parameters`
(`models/cycle_gan_model.py`) with GANLoss('lsgan'). Written here from the reference's
description so that parameter counts, outputs and a whole train step can be compared
(`tests/cyclegan_test.py` does, when torch is installed).

  .venv/bin/python tests/torch_reference/torch_cyclegan.py   # parameter counts, shapes, one step
"""

import itertools
import os
import random
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_pix2pix import count, init_weights, norm_layer, patch_discriminator  # noqa: E402


class ResnetBlock(nn.Module):
  """x + [ReflectionPad2d(1), conv3, norm, ReLU, ReflectionPad2d(1), conv3, norm](x)."""

  def __init__(self, dim, norm="instance"):
    super().__init__()
    use_bias, norm = norm == "instance", norm_layer(norm)
    self.conv_block = nn.Sequential(
        nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim), nn.ReLU(True),
        nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim))

  def forward(self, x):
    return x + self.conv_block(x)


def resnet_generator(n_blocks, input_nc=3, output_nc=3, ngf=64, norm="instance"):
  """The reference's ResnetGenerator (resnet_9blocks: n_blocks 9; resnet_6blocks: 6)."""
  use_bias, norm_fn = norm == "instance", norm_layer(norm)
  layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=use_bias), norm_fn(ngf),
            nn.ReLU(True)]
  for i in range(2):
    mult = 2 ** i
    layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
               norm_fn(ngf * mult * 2), nn.ReLU(True)]
  layers += [ResnetBlock(ngf * 4, norm) for _ in range(n_blocks)]
  for i in range(2):
    mult = 2 ** (2 - i)
    layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                  output_padding=1, bias=use_bias),
               norm_fn(ngf * mult // 2), nn.ReLU(True)]
  layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
  return init_weights(nn.Sequential(*layers))


def cycle_generator_64(input_nc=3, output_nc=3, ngf=32, n_blocks=6, norm="instance"):
  """jaxgan's `cycle_generator_64` (the course's 64x64 CycleGenerator with the reference's
  residual blocks, jaxgan/models/resnet_generator.py) in PyTorch."""
  use_bias, norm_fn = norm == "instance", norm_layer(norm)
  layers = [nn.Conv2d(input_nc, ngf, 4, 2, 1, bias=use_bias), norm_fn(ngf), nn.ReLU(True),
            nn.Conv2d(ngf, ngf * 2, 4, 2, 1, bias=use_bias), norm_fn(ngf * 2), nn.ReLU(True)]
  layers += [ResnetBlock(ngf * 2, norm) for _ in range(n_blocks)]
  layers += [nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=use_bias), norm_fn(ngf), nn.ReLU(True),
             nn.ConvTranspose2d(ngf, output_nc, 4, 2, 1), nn.Tanh()]
  return init_weights(nn.Sequential(*layers))


class ImagePool:
  """util/image_pool.py: a history of `pool_size` images (module random for the draws)."""

  def __init__(self, pool_size):
    self.pool_size, self.images = pool_size, []

  def query(self, images):
    if self.pool_size == 0:
      return images
    out = []
    for image in images:
      image = image.data.unsqueeze(0)
      if len(self.images) < self.pool_size:
        self.images.append(image)
        out.append(image)
      elif random.uniform(0, 1) > 0.5:
        i = random.randint(0, self.pool_size - 1)
        out.append(self.images[i].clone())
        self.images[i] = image
      else:
        out.append(image)
    return torch.cat(out, 0)


class CycleGAN:
  """CycleGANModel's training side: G_A, G_B, D_A, D_B, the two pools and optimizers."""

  def __init__(self, g_a, g_b, d_a, d_b, lr=2e-4, pool_size=50, lambda_a=10.0, lambda_b=10.0,
               lambda_identity=0.5):
    self.g_a, self.g_b, self.d_a, self.d_b = g_a, g_b, d_a, d_b
    self.lambda_a, self.lambda_b, self.lambda_identity = lambda_a, lambda_b, lambda_identity
    self.fake_a_pool, self.fake_b_pool = ImagePool(pool_size), ImagePool(pool_size)
    self.optimizer_g = torch.optim.Adam(itertools.chain(g_a.parameters(), g_b.parameters()),
                                        lr=lr, betas=(0.5, 0.999))
    self.optimizer_d = torch.optim.Adam(itertools.chain(d_a.parameters(), d_b.parameters()),
                                        lr=lr, betas=(0.5, 0.999))

  @staticmethod
  def gan(prediction, target_is_real):  # GANLoss('lsgan')
    return nn.functional.mse_loss(prediction, torch.full_like(prediction, float(target_is_real)))

  def optimize_parameters(self, real_a, real_b) -> dict[str, float]:
    """One step; returns the reference's losses by name (lower case)."""
    l1 = nn.functional.l1_loss
    fake_b = self.g_a(real_a)
    rec_a = self.g_b(fake_b)
    fake_a = self.g_b(real_b)
    rec_b = self.g_a(fake_a)
    for d in (self.d_a, self.d_b):
      d.requires_grad_(False)
    self.optimizer_g.zero_grad()
    losses = {
        "idt_a": l1(self.g_a(real_b), real_b) * self.lambda_b * self.lambda_identity,
        "idt_b": l1(self.g_b(real_a), real_a) * self.lambda_a * self.lambda_identity,
        "g_a": self.gan(self.d_a(fake_b), True),
        "g_b": self.gan(self.d_b(fake_a), True),
        "cycle_a": l1(rec_a, real_a) * self.lambda_a,
        "cycle_b": l1(rec_b, real_b) * self.lambda_b,
    }
    sum(losses.values()).backward()
    self.optimizer_g.step()
    for d in (self.d_a, self.d_b):
      d.requires_grad_(True)
    self.optimizer_d.zero_grad()
    for name, d, real, fake in (("d_a", self.d_a, real_b, self.fake_b_pool.query(fake_b)),
                                ("d_b", self.d_b, real_a, self.fake_a_pool.query(fake_a))):
      losses[name] = 0.5 * (self.gan(d(real), True) + self.gan(d(fake.detach()), False))
      losses[name].backward()
    self.optimizer_d.step()
    return {k: v.item() for k, v in losses.items()}


def self_check() -> None:
  g9, g6 = resnet_generator(9), resnet_generator(6)
  d = patch_discriminator(3, norm="instance")
  print(f"resnet_9blocks: {count(g9):,} parameters; resnet_6blocks: {count(g6):,}; "
        f"PatchGAN (3 inputs, instance): {count(d):,}")
  x = torch.rand(1, 3, 256, 256) * 2 - 1
  print("G(x):", tuple(g9(x).shape), "D(x):", tuple(d(x).shape))
  model = CycleGAN(resnet_generator(9), resnet_generator(9), d, patch_discriminator(3, norm="instance"))
  print("one step:", model.optimize_parameters(x, x))


if __name__ == "__main__":
  self_check()
