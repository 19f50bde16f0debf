"""The history of generated images that CycleGAN's discriminators learn from (Shrivastava et
al. 2017; CycleGAN paper sec. 4, "a history of generated images rather than the ones
produced by the latest generators"), as junyanz/pytorch-CycleGAN-and-pix2pix
`util/image_pool.py` (`ImagePool.query`) defines it, written as arrays in the train state.

A pool of `size` slots. Each image of a query, in order:
- while fewer than `size` images are stored, it is stored in the next slot and returned;
- once the pool is full, with probability 1/2 a uniformly chosen stored image is returned
  and the new image takes its slot; otherwise the new image itself is returned.
`size` 0 returns the images as they are.

The state is plain data (`images` [size, H, W, C], `count` of filled slots), so it is
checkpointed with the rest of the train state and a resumed run continues with the same
history; the draws come from the `jax.random` key the step passes in, so `query` is pure
and jit-compatible. The reference draws p ~ U(0, 1) and swaps when p > 0.5; here u ~ U[0, 1)
and u >= 0.5: the same probability. Stored images are held without gradients, as the
reference stores `image.data`.
"""

import flax.struct
import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array


@flax.struct.dataclass
class ImagePool:
  images: Array  # [size, H, W, C]; slots >= count hold zeros
  count: Array   # int32 []: how many slots are filled


def create(size: int, image_shape: tuple[int, ...], dtype=jnp.float32) -> ImagePool:
  """An empty pool of `size` images of `image_shape` (H, W, C)."""
  return ImagePool(jnp.zeros((size, *image_shape), dtype), jnp.zeros((), jnp.int32))


def query(pool: ImagePool, images: Array, rng: Array) -> tuple[ImagePool, Array]:
  """(the pool after the query, the images D sees): `ImagePool.query(images)`."""
  size = pool.images.shape[0]
  images = lax.stop_gradient(images)
  if size == 0:
    return pool, images

  def one(carry, inputs):
    stored, count = carry
    image, key = inputs
    swap_key, slot_key = jax.random.split(key)
    full = count >= size
    swap = full & (jax.random.uniform(swap_key) >= 0.5)
    slot = jnp.where(full, jax.random.randint(slot_key, (), 0, size), count)
    old = stored[slot]
    stored = stored.at[slot].set(jnp.where(full & ~swap, old, image))
    return (stored, jnp.minimum(count + 1, size)), jnp.where(swap, old, image)

  keys = jax.random.split(rng, images.shape[0])
  (stored, count), out = lax.scan(one, (pool.images, pool.count), (images, keys))
  return ImagePool(stored, count), out
