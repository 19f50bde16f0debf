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
    # junyanz's --netG names (unet_128, unet_256): the number is the image side that the
    # U-Net brings down to 1x1; unet_32 and unet_64 follow the same rule for small images.
    **{f"unet_{2 ** d}": functools.partial(UNetGenerator, num_downs=d) for d in range(5, 9)},
    "patch_discriminator": PatchDiscriminator,  # --netD basic (n_layers=3) and n_layers
}


def create(name: str, **kwargs: Any) -> nn.Module:
  if name not in MODELS:
    raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
  return MODELS[name](**kwargs)
