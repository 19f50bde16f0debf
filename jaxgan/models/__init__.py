"""Network registry: config strings (`config.model.generator`, ...) to Flax modules."""

import functools
from typing import Any, Callable

import flax.linen as nn

from jaxgan.config import ConfigError

from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jaxgan.models.patchgan import PatchDiscriminator
from jaxgan.models.unet import UNetGenerator

MODELS: dict[str, Callable[..., nn.Module]] = {
    "dcgan_generator": DCGANGenerator,
    "dcgan_discriminator": DCGANDiscriminator,
    # junyanz's --netG names: the number is the image side that reaches 1x1 at the bottleneck.
    "unet_128": functools.partial(UNetGenerator, num_downs=7),
    "unet_256": functools.partial(UNetGenerator, num_downs=8),
    "patch_discriminator": PatchDiscriminator,  # --netD basic (n_layers=3) and n_layers
}


def create(name: str, **kwargs: Any) -> nn.Module:
  if name not in MODELS:
    raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
  return MODELS[name](**kwargs)
