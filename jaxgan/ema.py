"""An exponential moving average of the weights (Polyak averaging), for sampling.

After each optimizer step the average moves toward the new weights,
ema <- d * ema + (1 - d) * weights. Ho et al. (2020, appendix B) sample DDPM from such an
average with d = 0.9999; GANs often sample from an average of G (Yazici et al. 2019,
"The Unusual Effectiveness of Averaging in GAN Training"; Karras et al.'s ProGAN). The
decay here is warmed up, min(max_decay, (1 + n) / (10 + n)) after n updates (TensorFlow's
`ExponentialMovingAverage` with `num_updates`), so that the average of a short run is not
mostly its initial weights: it reaches 0.999 after about 9,000 updates and 0.9999 after
90,000. `config.ema_decay` is `max_decay`; a run keeps the average in its checkpointed
state, so it resumes exactly.
"""

import jax
import jax.numpy as jnp

Array = jax.Array


def decay(max_decay: float, num_updates: Array) -> Array:
  """min(max_decay, (1 + n) / (10 + n)) for the n-th update (n from 0)."""
  n = jnp.asarray(num_updates).astype(jnp.float32)
  return jnp.minimum(max_decay, (1.0 + n) / (10.0 + n))


def update(average, weights, d: Array):
  """d * average + (1 - d) * weights, leaf by leaf (the same tree structure)."""
  return jax.tree.map(lambda a, w: d * a + (1.0 - d) * w, average, weights)
