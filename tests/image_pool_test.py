"""The history pool of generated images (util/image_pool.py's semantics): filling, the
swap of a stored image with probability 1/2 once full, a uniformly chosen slot, images in
a batch taken one after the other, no gradients, and jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import image_pool

SHAPE = (2, 2, 1)


def images(values):
  """One constant image per value: an image's value names it."""
  return jnp.asarray(np.array(values, np.float32)[:, None, None, None] * np.ones(SHAPE, np.float32))


def names(batch):
  return [float(x) for x in np.asarray(batch)[:, 0, 0, 0]]


def full_pool(size):
  pool = image_pool.create(size, SHAPE)
  pool, _ = image_pool.query(pool, images(range(size)), jax.random.PRNGKey(0))
  return pool


query = jax.jit(image_pool.query)


def test_filling_stores_and_returns_every_image_in_order():
  pool = image_pool.create(4, SHAPE)
  pool, out = query(pool, images([10, 11, 12]), jax.random.PRNGKey(0))
  assert names(out) == [10, 11, 12] and int(pool.count) == 3
  assert names(pool.images) == [10, 11, 12, 0]  # the free slot still empty
  pool, out = query(pool, images([13]), jax.random.PRNGKey(1))
  assert names(out) == [13] and int(pool.count) == 4 and names(pool.images) == [10, 11, 12, 13]


def test_once_full_each_image_is_returned_or_swapped_for_a_stored_one():
  size = 5
  before = full_pool(size)
  swapped = 0
  for seed in range(40):
    after, out = query(before, images([100]), jax.random.PRNGKey(seed))
    assert int(after.count) == size
    old, new, (value,) = names(before.images), names(after.images), names(out)
    changed = [i for i in range(size) if old[i] != new[i]]
    if value == 100:  # kept: the pool is untouched
      assert changed == []
    else:  # swapped: the returned image left its slot and the new one took it
      assert changed == [old.index(value)] and new[changed[0]] == 100
      swapped += 1
  assert 0 < swapped < 40
  # Same key, same answer.
  a, b = query(before, images([100]), jax.random.PRNGKey(7)), query(before, images([100]),
                                                                    jax.random.PRNGKey(7))
  np.testing.assert_array_equal(a[1], b[1])


def test_swap_probability_is_one_half_and_the_slot_uniform():
  size, trials = 4, 4000
  pool = full_pool(size)
  keys = jax.random.split(jax.random.PRNGKey(3), trials)
  _, out = jax.jit(jax.vmap(lambda k: image_pool.query(pool, images([100]), k)))(keys)
  returned = np.asarray(out)[:, 0, 0, 0, 0]
  swap_rate = np.mean(returned != 100)
  assert abs(swap_rate - 0.5) < 4 * np.sqrt(0.25 / trials)  # 4 standard deviations
  counts = np.bincount(returned[returned != 100].astype(int), minlength=size)
  expected = counts.sum() / size
  assert np.all(np.abs(counts - expected) < 4 * np.sqrt(expected))


def test_a_batch_is_taken_image_by_image():
  # Pool of 3 holding 2: the first image of the batch fills the last slot (and is
  # returned); the next two meet a full pool.
  pool = image_pool.create(3, SHAPE)
  pool, _ = query(pool, images([1, 2]), jax.random.PRNGKey(0))
  for seed in range(10):
    after, out = query(pool, images([7, 8, 9]), jax.random.PRNGKey(seed))
    first, *rest = names(out)
    assert first == 7 and int(after.count) == 3
    # 8 meets {1, 2, 7}; 9 meets what the pool holds after 8 (8 itself if it went in).
    assert rest[0] in (8, 1, 2, 7) and rest[1] in (9, 1, 2, 7, 8)
    stored = sorted(names(after.images))
    # What left the pool is what was returned; nothing is lost or duplicated.
    assert sorted(stored + rest) == sorted([1, 2, 7, 8, 9])


def test_size_zero_returns_the_images():
  pool = image_pool.create(0, SHAPE)
  x = images([3, 4])
  after, out = query(pool, x, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(out, x)
  assert after.images.shape == (0, *SHAPE)


def test_no_gradient_flows_through_the_pool():
  pool = image_pool.create(2, SHAPE)
  grad = jax.grad(lambda x: jnp.sum(image_pool.query(pool, x, jax.random.PRNGKey(0))[1]))(
      images([1.0]))
  np.testing.assert_array_equal(grad, np.zeros_like(grad))


@pytest.mark.parametrize("size", [1, 50])
def test_pool_shape(size):
  pool = image_pool.create(size, (8, 8, 3))
  assert pool.images.shape == (size, 8, 8, 3) and pool.images.dtype == jnp.float32
  assert int(pool.count) == 0
