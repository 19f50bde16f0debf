"""A trained run, back from its workdir, and what its generator draws.

Shared by `jaxgan.sample` and `jaxgan.evaluate` (both command lines): the model is
rebuilt from `W/config.json` and the newest checkpoint restored into it.
"""

import jax
import numpy as np

from jaxgan import checkpoint, config as config_lib, families, train, visualize
from jaxgan.errors import CheckpointError, ConfigError


def override_sampling(config, **sampling) -> None:
  """Sets the diffusion run's `config.sampling` fields given (not None): the sampler,
  steps, eta and guidance of `jaxgan.sample` and `jaxgan.evaluate`'s flags."""
  given = {k: v for k, v in sampling.items() if v is not None}
  if not given:
    return
  if "sampling" not in config:
    flags = ", ".join(f"--{k}" for k in given)
    raise ConfigError(f"{flags}: only diffusion runs have a sampler; this run is "
                                 f"a {config.family!r} run")
  with config.unlocked():
    config.sampling.update(given)


def load_run(workdir: str, **sampling):
  """(config, family, state) of the latest checkpoint of `workdir`; `sampling`: diffusion
  runs' `config.sampling` fields to override (`override_sampling`)."""
  config = config_lib.load_json(workdir)
  override_sampling(config, **sampling)
  mesh = train.make_mesh()
  family = families.create(config, train.mesh_platform(mesh))
  target = jax.eval_shape(family.init_state, jax.random.PRNGKey(0))
  target = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=train.replicated(mesh)), target)
  state = checkpoint.Checkpoints(f"{workdir}/checkpoints").restore(target)
  if state is None:
    raise CheckpointError(f"no checkpoint in {workdir}/checkpoints: train it first")
  return config, family, state


def generate(family, state, num: int, seed: int, batch_size: int = 500, labels=None):
  """(uint8 images [num, H, W, C], int32 labels [num] or None) from `family`'s generator.

  `labels`: None (unconditional; or 0..K-1 in turn for a conditional model), one class,
  or one class per image. Batch i draws its noise from fold_in(PRNGKey(seed), i).
  """
  if not families.supports(family, families.NoiseSampling):
    raise ConfigError("this model translates images rather than drawing them from "
                                 "noise: use --input_dir and --output_dir")
  if labels is None and getattr(family, "num_classes", 0):
    labels = np.arange(num) % family.num_classes
  if labels is not None:
    labels = np.broadcast_to(np.asarray(labels, np.int32), (num,))
    if getattr(family, "num_classes", 0) and not ((labels >= 0) & (labels < family.num_classes)).all():
      raise ValueError(f"labels must be in 0..{family.num_classes - 1}")
  gen = jax.jit(family.generate)
  images = []
  for i, start in enumerate(range(0, num, batch_size)):
    stop = min(start + batch_size, num)
    inputs = family.latent_inputs(jax.random.fold_in(jax.random.PRNGKey(seed), i), stop - start,
                                  None if labels is None else labels[start:stop])
    images.append(visualize.to_uint8(jax.device_get(gen(state, inputs))))
  return np.concatenate(images), labels
