"""GANs: one generator, one discriminator, a loss chosen by name; optionally class-conditional.

The step follows the PyTorch DCGAN tutorial's training loop (and dm-haiku's
mnist_gan in form: one pure function over explicit state):

1. draw z and generate G(z) once (G in training mode: BatchNorm uses and updates
   batch statistics);
2. update D on `discriminator_loss(D(x), D(G(z)))`, with real and fake batches passed
   through D separately (so D's BatchNorm normalises each on its own statistics, as
   the tutorial's two forward passes do) and G(z) held constant;
3. update G on `generator_loss(D'(G(z)))` through the updated D', reusing the forward
   pass of step 1 (its vjp), as the tutorial backpropagates through the same `fake`.

With `config.augment.kind=diffaugment` (DiffAugment, Zhao et al. 2020; jaxgan/augment.py)
D sees T(x) wherever it sees an image: T(real) and T(G(z)) in step 2, T(G(z)) in step 3,
each a fresh per-example draw, and G's gradient flows back through T. The keys come from
a fold of z's key, so runs without augmentation draw exactly what they drew before. The
metrics D(x) and D(G(z)) are then D's scores of the augmented images, as D sees them.
(`deluxe` augments the real images in the input pipeline instead.)

Class-conditional models (`config.model.num_classes` K > 0; Mirza and Osindero 2014):
each generated image is asked for a label drawn uniformly from the K classes; G
receives it, and D scores the image against that same label (D reads the label with
the image), while real images come with their dataset labels. With the `multiclass`
loss D takes no label and has K + 1 outputs instead: real images are trained to their
class, generated ones to "fake", and G to the class it was asked for.

With `config.ema_decay` > 0 the state also holds an exponential moving average of G
(`jaxgan.ema`), updated after each G step: of its weights and of its BatchNorm running
statistics (themselves running means of the live G's activations, averaged over the same
window so that the statistics roughly follow the averaged weights). Sample grids,
`jaxgan.sample` and `jaxgan.evaluate` then draw from the average (`--raw_weights`: from G
itself). Off by default: DCGAN has no averaging.
"""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxgan import augment, config_fields as fields, ema, losses, models, visualize
from jaxgan.errors import ConfigError
from jaxgan.models.conditioning import class_rows, with_labels

Array = jax.Array

# `config.augment.kind`: "none"; "deluxe", the course's crops, flips and jitter of real
# images in the data stream (jaxgan.datasets.transforms); "diffaugment", DiffAugment's T
# on real and fake images wherever D sees them (jaxgan.augment).
AUGMENT_KINDS = ("none", "deluxe", "diffaugment")


def config_sections(config: ml_collections.ConfigDict) -> None:
  """The gan family's sections, with DCGAN's values (Radford et al. 2016)."""
  config.model = ml_collections.ConfigDict()
  config.model.generator = "dcgan_generator"
  config.model.discriminator = "dcgan_discriminator"
  config.model.latent_dim = 100
  config.model.ngf = 64
  config.model.ndf = 64
  config.model.num_classes = 0       # > 0: class-conditional (G and D receive the label)
  # Rematerialise the generator: recompute its activations in the backward pass instead
  # of keeping them (less memory, more compute).
  config.model.remat = False

  config.loss = ml_collections.ConfigDict()
  config.loss.name = "non_saturating"  # jaxgan.losses.NAMES

  # Augmentation for small data (single-image datasets), one of AUGMENT_KINDS: "deluxe"
  # adds a colour jitter with color_jitter=True; "diffaugment" applies `policy`, any
  # comma-separated list of color, translation, cutout.
  config.augment = ml_collections.ConfigDict()
  config.augment.kind = "none"
  config.augment.policy = "color,translation,cutout"
  config.augment.color_jitter = False

  # The first `data.holdout` images of the split (stored order) are never trained on: the
  # loop scores them with D next to as many training images (d_real_heldout, d_real_train,
  # d_real_gap in metrics.jsonl; overfitting.png) every `overfit_every_steps` steps (0: at
  # every log). 0 images: off.
  config.data.holdout = 0
  config.overfit_every_steps = 0

  # > 0: also keep a moving average of G with this decay (jaxgan.ema), which samples use.
  config.ema_decay = 0.0


def validate(config: ml_collections.ConfigDict) -> None:
  """ConfigError for values of the gan family's sections that no run can use."""
  fields.positive(config, "model.latent_dim", "model.ngf", "model.ndf")
  fields.nonnegative(config, "model.num_classes", "data.holdout", "overfit_every_steps")
  fields.fraction(config, "ema_decay")
  fields.one_of(config, "augment.kind", AUGMENT_KINDS)
  if fields.get(config, "loss.name") is not None:
    losses.check_name(config.loss.name)
  if fields.get(config, "augment.kind") == "diffaugment":
    augment.parse_policy(fields.get(config, "augment.policy") or "")


def upgrade(config: dict) -> None:
  """Runs saved before these fields existed trained without them."""
  fields.fill(config, {"model.num_classes": 0, "model.remat": False, "augment.kind": "none",
                       "augment.policy": "color,translation,cutout",
                       "augment.color_jitter": False, "ema_decay": 0.0})


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
  # The moving average of G, {"params", "batch_stats"}; None without config.ema_decay.
  generator_ema: Any = None


def adam(opt_config) -> optax.GradientTransformation:
  """Adam as in DCGAN (sec. 4): lr 2e-4, beta1 0.5 (configurable)."""
  return optax.adam(opt_config.learning_rate, b1=opt_config.b1, b2=opt_config.b2)


def optimizer_step(tx: optax.GradientTransformation, network: Network, grads,
                   batch_stats) -> Network:
  """`network` after one update of `tx` with `grads`, holding `batch_stats`."""
  updates, opt_state = tx.update(grads, network.opt_state, network.params)
  return Network(optax.apply_updates(network.params, updates), batch_stats, opt_state)


def count_params(params) -> int:
  return int(sum(x.size for x in jax.tree.leaves(params)))


class GAN:
  """The `gan` family: DCGAN, the MLP GANs and their conditional forms (`jaxgan.models`)."""

  loss_metrics = ("d_loss", "g_loss")

  def __init__(self, config):
    m = config.model
    self.latent_dim = m.latent_dim
    self.num_classes = m.num_classes
    self.image_shape = (config.data.image_size, config.data.image_size, config.data.channels)
    self.loss = config.loss.name
    losses.check_name(self.loss)  # fail early on an unknown name
    multiclass = self.loss == "multiclass"
    if multiclass and not self.num_classes:
      raise ConfigError("the multiclass loss needs a conditional model: set "
                        "config.model.num_classes (10 for MNIST)")
    # A multiclass D classifies instead of reading the label.
    self.d_reads_label = bool(self.num_classes) and not multiclass
    dtype = config.dtype
    self.g = models.create(m.generator, "noise-to-image generator",
                           remat=m.remat,
                           image_size=config.data.image_size, channels=config.data.channels,
                           ngf=m.ngf, num_classes=self.num_classes, dtype=dtype)
    self.d = models.create(m.discriminator, "image discriminator", dtype=dtype,
                           image_size=config.data.image_size, ndf=m.ndf,
                           num_classes=self.num_classes if self.d_reads_label else 0,
                           num_outputs=self.num_classes + 1 if multiclass else 1)
    self.ema_decay = config.ema_decay
    self.use_ema = self.ema_decay > 0  # samples from the average (`load_run` may unset it)
    self.g_tx = adam(config.optimizer)
    self.d_tx = adam(config.optimizer)
    # DiffAugment's T, or None: the policy is checked here, before anything compiles.
    self.policy = None
    if config.augment.kind == "diffaugment":
      self.policy = ",".join(augment.parse_policy(config.augment.policy or ""))
    # Conditional grids: one row per class, the same noise down each column.
    self.grid_columns = max(1, config.num_grid_images // self.num_classes) if self.num_classes else 0

  def _init_network(self, module, tx, rng, x, labels) -> Network:
    variables = module.init(rng, x, labels, train=False)
    params = variables["params"]
    return Network(params, variables.get("batch_stats", {}), tx.init(params))

  def init_state(self, rng: Array) -> GANState:
    rng, g_rng, d_rng = jax.random.split(rng, 3)
    labels = jnp.zeros((1,), jnp.int32) if self.num_classes else None
    z = jnp.zeros((1, self.latent_dim))
    images = jnp.zeros((1, *self.image_shape))
    generator = self._init_network(self.g, self.g_tx, g_rng, z, labels)
    return GANState(step=jnp.zeros((), jnp.int32), rng=rng, generator=generator,
                    discriminator=self._init_network(self.d, self.d_tx, d_rng, images,
                                                     labels if self.d_reads_label else None),
                    generator_ema=self._averaged(generator) if self.ema_decay else None)

  @staticmethod
  def _averaged(network: Network) -> dict:
    """What the moving average of G covers: its weights and BatchNorm statistics."""
    return {"params": network.params, "batch_stats": network.batch_stats}

  def _apply_d(self, params, batch_stats, images, labels, rng):
    logits, updates = self.d.apply({"params": params, "batch_stats": batch_stats}, images,
                                   labels if self.d_reads_label else None, train=True,
                                   mutable=["batch_stats"], rngs={"dropout": rng})
    return logits, updates["batch_stats"]

  def _t(self, images: Array, rng: Array) -> Array:
    """DiffAugment's T(images) under the configured policy; the images themselves without."""
    return images if self.policy is None else augment.diff_augment(images, rng, self.policy)

  def train_step(self, state: GANState, batch: dict[str, Array]):
    real = batch["image"]
    rng, z_rng = jax.random.split(state.rng)
    # Keys for labels and dropout come from a fold of z's key, so unconditional models
    # without dropout draw exactly the noise they drew before these existed.
    label_rng, *d_rngs = jax.random.split(jax.random.fold_in(z_rng, 1), 4)
    t_rngs = jax.random.split(jax.random.fold_in(z_rng, 2), 3)  # T in D's and G's steps
    z = jax.random.normal(z_rng, (real.shape[0], self.latent_dim), real.dtype)
    # The label each generated image is asked for; D scores it against the same label.
    real_labels = fake_labels = None
    if self.num_classes:
      real_labels = batch["label"]
      fake_labels = jax.random.randint(label_rng, real.shape[:1], 0, self.num_classes)
    g, d = state.generator, state.discriminator

    def generate(params):
      fake, updates = self.g.apply({"params": params, "batch_stats": g.batch_stats}, z,
                                   fake_labels, train=True, mutable=["batch_stats"])
      return fake, updates["batch_stats"]

    fake, g_vjp, g_batch_stats = jax.vjp(generate, g.params, has_aux=True)

    def d_loss_fn(params):
      real_logits, stats = self._apply_d(params, d.batch_stats, self._t(real, t_rngs[0]),
                                         real_labels, d_rngs[0])
      fake_logits, stats = self._apply_d(params, stats, self._t(fake, t_rngs[1]), fake_labels,
                                         d_rngs[1])
      loss = losses.discriminator_loss(self.loss, real_logits, fake_logits, real_labels)
      return loss, (stats, real_logits, fake_logits)

    (d_loss, (d_stats, real_logits, fake_logits)), d_grads = jax.value_and_grad(
        d_loss_fn, has_aux=True)(d.params)
    d = optimizer_step(self.d_tx, d, d_grads, d_stats)

    def g_loss_fn(fake_images):
      logits, stats = self._apply_d(d.params, d.batch_stats, self._t(fake_images, t_rngs[2]),
                                    fake_labels, d_rngs[2])
      return losses.generator_loss(self.loss, logits, fake_labels), (stats, logits)

    (g_loss, (d_stats, fake_logits_after)), fake_grad = jax.value_and_grad(
        g_loss_fn, has_aux=True)(fake)
    (g_grads,) = g_vjp(fake_grad)
    g = optimizer_step(self.g_tx, g, g_grads, g_batch_stats)
    d = d.replace(batch_stats=d_stats)

    metrics = {
        "d_loss": d_loss,
        "g_loss": g_loss,
        "d_real": losses.discriminator_score(self.loss, real_logits),
        "d_fake": losses.discriminator_score(self.loss, fake_logits),
        "d_fake_after": losses.discriminator_score(self.loss, fake_logits_after),
    }
    if self.loss == "multiclass":  # how well D tells the digits of real images apart
      metrics["d_class_accuracy"] = jnp.mean(
          jnp.argmax(real_logits[:, :self.num_classes], -1) == real_labels)
    generator_ema = None
    if self.ema_decay:
      decay = ema.decay(self.ema_decay, state.step)
      generator_ema = ema.update(state.generator_ema, self._averaged(g), decay)
    new_state = GANState(step=state.step + 1, rng=rng, generator=g, discriminator=d,
                         generator_ema=generator_ema)
    return new_state, metrics

  def discriminator_scores(self, state: GANState, batch: dict[str, Array]) -> Array:
    """D's score of each real image of `batch` ({'image', 'label'}), float32 [N]: what the
    metric d_real averages (`losses.discriminator_score`: a probability for the BCE losses,
    the raw output for LSGAN, 1 - P(fake) for `multiclass`), but on the images as given (no
    DiffAugment) and in inference mode (no dropout; BatchNorm, where a D has it, with its
    running statistics; InstanceNorm is the same in both modes). The loop logs it on
    held-out and training images (`config.data.holdout`)."""
    d = state.discriminator
    labels = batch.get("label") if self.d_reads_label else None
    logits = self.d.apply({"params": d.params, "batch_stats": d.batch_stats}, batch["image"],
                          labels, train=False)
    return losses.discriminator_scores(self.loss, logits.astype(jnp.float32))

  def latent_inputs(self, rng: Array, num: int, labels=None) -> dict[str, Array]:
    """Noise for `num` images; conditional models also take the labels asked for
    (default: 0, 1, ..., K-1, 0, 1, ...)."""
    return with_labels({"z": jax.random.normal(rng, (num, self.latent_dim))}, num, labels,
                       self.num_classes)

  def fixed_inputs(self, rng: Array, num: int) -> dict[str, Array]:
    """The grids' inputs; conditional: row k is class k, column j the same noise z_j."""
    if not self.num_classes:
      return self.latent_inputs(rng, num)
    cols = self.grid_columns
    z, labels = class_rows(jax.random.normal(rng, (cols, self.latent_dim)), self.num_classes, cols)
    return {"z": z, "label": labels}

  def generate(self, state: GANState, inputs: dict[str, Array]) -> Array:
    """G's images, from the moving average of G where the run keeps one (`use_ema`)."""
    g = state.generator_ema if self.use_ema else self._averaged(state.generator)
    return self.g.apply(g, inputs["z"], inputs.get("label"), train=False)

  def grid(self, inputs, images) -> np.ndarray:
    """The images tiled; conditional models: a row per class (`fixed_inputs`' layout)."""
    return visualize.image_grid(images, ncol=self.grid_columns)

  def param_counts(self, state: GANState) -> dict[str, int]:
    return {"generator": count_params(state.generator.params),
            "discriminator": count_params(state.discriminator.params)}
