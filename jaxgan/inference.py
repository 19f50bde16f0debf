"""A trained run, back from its workdir.

Shared by `jaxgan.sample` and `jaxgan.evaluate` (both command lines): the model is
rebuilt from `W/config.json` and the newest checkpoint restored into it.
"""

import jax

from jaxgan import checkpoint, config as config_lib, families, train


def load_run(workdir: str):
  """(config, family, state) of the latest checkpoint of `workdir`, replicated over all
  devices."""
  config = config_lib.load_json(workdir)
  family = families.create(config)
  mesh = train.make_mesh()
  target = jax.eval_shape(family.init_state, jax.random.PRNGKey(0))
  target = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=train.replicated(mesh)), target)
  state = checkpoint.Checkpoints(f"{workdir}/checkpoints").restore(target)
  if state is None:
    raise checkpoint.CheckpointError(f"no checkpoint in {workdir}/checkpoints : train it first")
  return config, family, state
