"""PyTorch reference networks of pix2pix, as junyanz/pytorch-CycleGAN-and-pix2pix defines them.

The reference side for `jaxgan/models/unet.py` and `jaxgan/models/patchgan.py`: the U-Net
generator built recursively from one skip-connection block (`UnetGenerator`,
`UnetSkipConnectionBlock` in the reference's `models/networks.py`), the n-layer PatchGAN
(`NLayerDiscriminator`), their norm choice (`batch` | `instance`: conv biases only where
the norm is InstanceNorm) and `init_weights('normal', 0.02)`. Written here from the
reference's description so that parameter counts, layouts and outputs can be compared
(`tests/pix2pix_models_test.py` does, when torch is installed), plus the pix2pix train step of
`models/pix2pix_model.py` (D on fake then real, halved; G on GAN + 100 L1).

  .venv/bin/python tests/torch_reference/torch_pix2pix.py   # parameter counts, shapes, one step
"""

import functools

import torch
from torch import nn


def norm_layer(kind: str):
  """The reference's get_norm_layer: BatchNorm2d(affine) or InstanceNorm2d(no affine)."""
  if kind == "batch":
    return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
  if kind == "instance":
    return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
  raise ValueError(kind)


class UnetBlock(nn.Module):
  """One level of the U-Net: down, the inner levels, up; the input joins the output."""

  def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False,
               innermost=False, norm="batch", use_dropout=False):
    super().__init__()
    self.outermost = outermost
    use_bias = norm == "instance"
    norm = norm_layer(norm)
    input_nc = outer_nc if input_nc is None else input_nc
    downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=use_bias)
    downrelu, uprelu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
    if outermost:
      upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1)  # bias: default True
      layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
    elif innermost:
      upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=use_bias)
      layers = [downrelu, downconv, uprelu, upconv, norm(outer_nc)]
    else:
      upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=use_bias)
      layers = [downrelu, downconv, norm(inner_nc), submodule, uprelu, upconv, norm(outer_nc)]
      if use_dropout:
        layers.append(nn.Dropout(0.5))
    self.model = nn.Sequential(*layers)

  def forward(self, x):
    if self.outermost:
      return self.model(x)
    return torch.cat([x, self.model(x)], 1)


def unet_generator(num_downs, input_nc=3, output_nc=3, ngf=64, norm="batch", use_dropout=True):
  """The reference's UnetGenerator (unet_256: num_downs 8; unet_128: 7)."""
  block = UnetBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
  for _ in range(num_downs - 5):
    block = UnetBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
  block = UnetBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
  block = UnetBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
  block = UnetBlock(ngf, ngf * 2, submodule=block, norm=norm)
  return init_weights(UnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                outermost=True, norm=norm))


def patch_discriminator(input_nc=6, ndf=64, n_layers=3, norm="batch"):
  """The reference's NLayerDiscriminator."""
  use_bias = norm == "instance"
  norm = norm_layer(norm)
  layers = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
  mult = 1
  for n in range(1, n_layers + 1):
    prev, mult = mult, min(2 ** n, 8)
    stride = 2 if n < n_layers else 1
    layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=use_bias), norm(ndf * mult),
               nn.LeakyReLU(0.2, True)]
  layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
  return init_weights(nn.Sequential(*layers))


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
  """init_weights('normal'): conv weights N(0, gain), biases 0, BatchNorm weight N(1, gain)."""
  for m in net.modules():
    name = m.__class__.__name__
    if hasattr(m, "weight") and "Conv" in name:
      nn.init.normal_(m.weight, 0.0, gain)
      if m.bias is not None:
        nn.init.zeros_(m.bias)
    elif "BatchNorm2d" in name:
      nn.init.normal_(m.weight, 1.0, gain)
      nn.init.zeros_(m.bias)
  return net


def count(net: nn.Module) -> int:
  return sum(p.numel() for p in net.parameters())


def train_step(g, d, g_opt, d_opt, real_a, real_b, lambda_l1=100.0):
  """`Pix2PixModel.optimize_parameters` with GANLoss('vanilla'): one D then one G update."""
  bce = nn.BCEWithLogitsLoss()
  fake_b = g(real_a)
  d_opt.zero_grad()
  pred_fake = d(torch.cat((real_a, fake_b.detach()), 1))
  pred_real = d(torch.cat((real_a, real_b), 1))
  loss_d = 0.5 * (bce(pred_fake, torch.zeros_like(pred_fake)) +
                  bce(pred_real, torch.ones_like(pred_real)))
  loss_d.backward()
  d_opt.step()
  for p in d.parameters():
    p.requires_grad_(False)
  g_opt.zero_grad()
  pred_fake = d(torch.cat((real_a, fake_b), 1))
  loss_g = (bce(pred_fake, torch.ones_like(pred_fake)) +
            lambda_l1 * nn.functional.l1_loss(fake_b, real_b))
  loss_g.backward()
  g_opt.step()
  for p in d.parameters():
    p.requires_grad_(True)
  return loss_d.item(), loss_g.item()


def self_check() -> None:
  g, d = unet_generator(8), patch_discriminator(6)
  print(f"unet_256: {count(g):,} parameters; PatchGAN (6 inputs, batch): {count(d):,}; "
        f"PatchGAN (3 inputs, instance): {count(patch_discriminator(3, norm='instance')):,}; "
        f"unet_128: {count(unet_generator(7)):,}")
  x = torch.rand(1, 3, 256, 256) * 2 - 1
  print("G(x):", tuple(g(x).shape), "D:", tuple(d(torch.cat([x, x], 1)).shape))
  opt = lambda net: torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))
  print("one step (loss_D, loss_G):", train_step(g, d, opt(g), opt(d), x, x))


if __name__ == "__main__":
  self_check()
