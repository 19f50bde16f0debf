"""Unconditional GANs: one generator, one discriminator, a loss chosen by name.

The step follows the PyTorch DCGAN tutorial's training loop (and dm-haiku's
mnist_gan in form: one pure function over explicit state):

1. draw z and generate G(z) once (G in training mode: BatchNorm uses and updates
   batch statistics);
2. update D on `discriminator_loss(D(x), D(G(z)))`, with real and fake batches passed
   through D separately (so D's BatchNorm normalises each on its own statistics, as
   the tutorial's two forward passes do) and G(z) held constant;
3. update G on `generator_loss(D'(G(z)))` through the updated D', reusing the forward
   pass of step 1 (its vjp), as the tutorial backpropagates through the same `fake`.
"""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from jaxgan import losses, models

Array = jax.Array


@flax.struct.dataclass
class Network:
  """One network's trainable state."""
  params: Any
  batch_stats: Any
  opt_state: Any


@flax.struct.dataclass
class GANState:
  step: Array
  rng: Array
  generator: Network
  discriminator: Network


def adam(opt_config) -> optax.GradientTransformation:
  """Adam as in DCGAN (sec. 4): lr 2e-4, beta1 0.5 (configurable)."""
  return optax.adam(opt_config.learning_rate, b1=opt_config.b1, b2=opt_config.b2)


def count_params(params) -> int:
  return int(sum(x.size for x in jax.tree.leaves(params)))


class GAN:
  """The `gan` family: DCGAN, and any G/D pair from `jaxgan.models`."""

  loss_metrics = ("d_loss", "g_loss")

  def __init__(self, config):
    m = config.model
    self.latent_dim = m.latent_dim
    self.image_shape = (config.data.image_size, config.data.image_size, config.data.channels)
    self.loss = config.loss.name
    losses.gan_loss(self.loss, jnp.zeros(()), True)  # fail early on an unknown name
    self.g = models.create(m.generator, image_size=config.data.image_size,
                           channels=config.data.channels, ngf=m.ngf)
    self.d = models.create(m.discriminator, image_size=config.data.image_size, ndf=m.ndf)
    self.g_tx = adam(config.optimizer)
    self.d_tx = adam(config.optimizer)

  def _init_network(self, module, tx, rng, x) -> Network:
    variables = module.init(rng, x, train=False)
    params = variables["params"]
    return Network(params, variables.get("batch_stats", {}), tx.init(params))

  def init_state(self, rng: Array) -> GANState:
    rng, g_rng, d_rng = jax.random.split(rng, 3)
    z = jnp.zeros((1, self.latent_dim))
    images = jnp.zeros((1, *self.image_shape))
    return GANState(step=jnp.zeros((), jnp.int32), rng=rng,
                    generator=self._init_network(self.g, self.g_tx, g_rng, z),
                    discriminator=self._init_network(self.d, self.d_tx, d_rng, images))

  def _apply_d(self, params, batch_stats, images):
    logits, updates = self.d.apply({"params": params, "batch_stats": batch_stats}, images,
                                   train=True, mutable=["batch_stats"])
    return logits, updates["batch_stats"]

  def train_step(self, state: GANState, batch: dict[str, Array]):
    real = batch["image"]
    rng, z_rng = jax.random.split(state.rng)
    z = jax.random.normal(z_rng, (real.shape[0], self.latent_dim), real.dtype)
    g, d = state.generator, state.discriminator

    def generate(params):
      fake, updates = self.g.apply({"params": params, "batch_stats": g.batch_stats}, z,
                                   train=True, mutable=["batch_stats"])
      return fake, updates["batch_stats"]

    fake, g_vjp, g_batch_stats = jax.vjp(generate, g.params, has_aux=True)

    def d_loss_fn(params):
      real_logits, stats = self._apply_d(params, d.batch_stats, real)
      fake_logits, stats = self._apply_d(params, stats, fake)
      loss = losses.discriminator_loss(self.loss, real_logits, fake_logits)
      return loss, (stats, real_logits, fake_logits)

    (d_loss, (d_stats, real_logits, fake_logits)), d_grads = jax.value_and_grad(
        d_loss_fn, has_aux=True)(d.params)
    d_updates, d_opt_state = self.d_tx.update(d_grads, d.opt_state, d.params)
    d = Network(optax.apply_updates(d.params, d_updates), d_stats, d_opt_state)

    def g_loss_fn(fake_images):
      logits, stats = self._apply_d(d.params, d.batch_stats, fake_images)
      return losses.generator_loss(self.loss, logits), (stats, logits)

    (g_loss, (d_stats, fake_logits_after)), fake_grad = jax.value_and_grad(
        g_loss_fn, has_aux=True)(fake)
    (g_grads,) = g_vjp(fake_grad)
    g_updates, g_opt_state = self.g_tx.update(g_grads, g.opt_state, g.params)
    g = Network(optax.apply_updates(g.params, g_updates), g_batch_stats, g_opt_state)
    d = d.replace(batch_stats=d_stats)

    metrics = {
        "d_loss": d_loss,
        "g_loss": g_loss,
        "d_real": losses.discriminator_score(self.loss, real_logits),
        "d_fake": losses.discriminator_score(self.loss, fake_logits),
        "d_fake_after": losses.discriminator_score(self.loss, fake_logits_after),
    }
    new_state = GANState(step=state.step + 1, rng=rng, generator=g, discriminator=d)
    return new_state, metrics

  def fixed_inputs(self, rng: Array, num: int) -> Array:
    return jax.random.normal(rng, (num, self.latent_dim))

  def generate(self, state: GANState, z: Array) -> Array:
    g = state.generator
    return self.g.apply({"params": g.params, "batch_stats": g.batch_stats}, z, train=False)

  def param_counts(self, state: GANState) -> dict[str, int]:
    return {"generator": count_params(state.generator.params),
            "discriminator": count_params(state.discriminator.params)}
