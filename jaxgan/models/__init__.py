"""Network registry: config strings (`config.model.generator`, ...) to Flax modules.

`create(name, **kwargs)` passes each module only the keyword arguments it declares, so
a family can hand every network the same description of the task (image size,
channels, widths, number of classes) and each architecture takes what it uses. The one
exception is `dtype` (`config.dtype`, the compute dtype): a model without mixed precision
is refused a dtype other than float32 rather than silently computing in float32.
`remat=True` (`config.model.remat`) rematerialises the network: its activations are not
kept for the backward pass but recomputed there (`flax.linen.remat`), trading compute for
memory; parameters and outputs are unchanged.
"""

import dataclasses
import functools
import inspect
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.errors import ConfigError

from jaxgan.models.classifier import DomainClassifier, MNISTClassifier
from jaxgan.models.course_dcgan import DCDiscriminator, DCGenerator
from jaxgan.models.ddpm_unet import DDPMUNet
from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jaxgan.models.dcgan_projection import ProjectionDiscriminator, ProjectionGenerator
from jaxgan.models.mlp import MLPDiscriminator, MLPGenerator
from jaxgan.models.patchgan import PatchDiscriminator
from jaxgan.models.resnet_generator import CycleGenerator64, ResnetGenerator
from jaxgan.models.unet import UNetGenerator

MODELS: dict[str, Callable[..., nn.Module]] = {
    "dcgan_generator": DCGANGenerator,
    "dcgan_discriminator": DCGANDiscriminator,
    # Radford et al. 2016, Figure 1: z -> dense -> 4x4x1024 -> ... -> 64x64x3; 4x4 kernels
    # (the ports' choice), or the figure's 5x5 (dcgan_projection.py says why 4x4 is default).
    "dcgan_projection_generator": ProjectionGenerator,
    "dcgan_projection_discriminator": ProjectionDiscriminator,
    "dcgan_projection_generator_5x5": functools.partial(ProjectionGenerator, kernel_size=5),
    "dcgan_projection_discriminator_5x5": functools.partial(ProjectionDiscriminator,
                                                            kernel_size=5),
    # CMU 16-726 "When Cats meet GANs": the course's smaller 64x64 DCGAN (conv_dim 32).
    "course_dcgan_generator": DCGenerator,
    "course_dcgan_discriminator": DCDiscriminator,
    "mlp_generator": MLPGenerator,
    # eriklindernoren/PyTorch-GAN gan.py: 784 -> 512 -> 256 -> 1.
    "mlp_discriminator": functools.partial(MLPDiscriminator, hidden=(512, 256), dropout=0.0),
    # eriklindernoren/PyTorch-GAN cgan.py: 794 -> 512 -> 512 -> 512 -> 1, dropout 0.4.
    "cgan_mlp_discriminator": functools.partial(MLPDiscriminator, hidden=(512, 512, 512),
                                                dropout=0.4),
    "mnist_classifier": MNISTClassifier,
    "domain_classifier": DomainClassifier,  # judges CycleGAN translations: domain A or B
    # junyanz's --netG names (unet_128, unet_256): the number is the image side that the
    # U-Net brings down to 1x1; unet_32 and unet_64 follow the same rule for small images.
    **{f"unet_{2 ** d}": functools.partial(UNetGenerator, num_downs=d) for d in range(5, 9)},
    "patch_discriminator": PatchDiscriminator,  # --netD basic (n_layers=3) and n_layers
    # junyanz's --netG resnet_6blocks / resnet_9blocks (CycleGAN's default).
    **{f"resnet_{n}blocks": functools.partial(ResnetGenerator, n_blocks=n) for n in (6, 9)},
    "cycle_generator_64": CycleGenerator64,  # the 64x64 course variant (grumpy cats)
    "ddpm_unet": DDPMUNet,  # Ho et al. 2020's eps_theta, sized for MNIST
}


# What kind of network each model is. A family asks `create` for the kind it needs, and a
# model of another kind is refused with one line (a U-Net where a noise-to-image generator
# belongs would fail deep in Flax). Models not listed here are not checked.
KINDS: dict[str, str] = {
    "dcgan_generator": "noise-to-image generator",
    "course_dcgan_generator": "noise-to-image generator",
    **dict.fromkeys(["dcgan_projection_generator", "dcgan_projection_generator_5x5"],
                    "noise-to-image generator"),
    **dict.fromkeys(["dcgan_projection_discriminator", "dcgan_projection_discriminator_5x5"],
                    "image discriminator"),
    "mlp_generator": "noise-to-image generator",
    **{f"unet_{2 ** d}": "image-to-image generator" for d in range(5, 9)},
    **{f"resnet_{n}blocks": "image-to-image generator" for n in (6, 9)},
    "cycle_generator_64": "image-to-image generator",
    "dcgan_discriminator": "image discriminator",
    "course_dcgan_discriminator": "image discriminator",
    "mlp_discriminator": "image discriminator",
    "cgan_mlp_discriminator": "image discriminator",
    "patch_discriminator": "patch discriminator",
    "mnist_classifier": "classifier",
    "domain_classifier": "classifier",
    "ddpm_unet": "denoiser",
}


def _fields(factory) -> set[str]:
  cls = factory.func if isinstance(factory, functools.partial) else factory
  return {f.name for f in dataclasses.fields(cls)}


def rematerialised(cls: type[nn.Module]) -> type[nn.Module]:
  """`cls` under `flax.linen.remat`, called as `cls` is: its boolean `train` argument is
  static (remat traces the others), passed positionally whether the caller names it or not."""
  signature = inspect.signature(cls.__call__)
  static = tuple(i for i, n in enumerate(signature.parameters) if n == "train")
  lifted = nn.remat(cls, static_argnums=static)

  class Rematerialised(lifted):  # pylint: disable=too-few-public-methods
    rematerialised = True  # a class attribute, not a field: tests and benchmarks read it

    def __call__(self, *args, **kwargs):
      bound = signature.bind(self, *args, **kwargs)
      bound.apply_defaults()
      return super().__call__(*bound.args[1:])

  Rematerialised.__name__ = Rematerialised.__qualname__ = cls.__name__
  return Rematerialised


def create(name: str, kind: str | None = None, remat: bool = False, **kwargs: Any) -> nn.Module:
  """The model `name`, given the keyword arguments it declares; `kind` (one of KINDS'
  values): refuse a model of another kind; `remat`: rematerialised (`rematerialised`)."""
  if name not in MODELS:
    raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
  if kind is not None and KINDS.get(name, kind) != kind:
    raise ConfigError(f"model {name!r} is a {KINDS[name]}, where this family needs a {kind}: "
                      f"{', '.join(sorted(n for n, k in KINDS.items() if k == kind))}")
  factory = MODELS[name]
  fields = _fields(factory)
  if "dtype" in kwargs:
    kwargs["dtype"] = jnp.dtype(kwargs["dtype"])
    if "dtype" not in fields and kwargs["dtype"] != jnp.float32:
      raise ConfigError(f"model {name!r} computes in float32 only; set config.dtype='float32'")
  if remat:
    cls = factory.func if isinstance(factory, functools.partial) else factory
    args = factory.keywords if isinstance(factory, functools.partial) else {}
    factory = functools.partial(rematerialised(cls), **args)
  return factory(**{k: v for k, v in kwargs.items() if k in fields})
