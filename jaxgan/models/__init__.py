"""Network registry: config strings (`config.model.generator`, ...) to Flax modules."""

from typing import Any, Callable

import flax.linen as nn

from jaxgan.config import ConfigError

from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator

MODELS: dict[str, Callable[..., nn.Module]] = {
    "dcgan_generator": DCGANGenerator,
    "dcgan_discriminator": DCGANDiscriminator,
}


def create(name: str, **kwargs: Any) -> nn.Module:
  if name not in MODELS:
    raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
  return MODELS[name](**kwargs)
