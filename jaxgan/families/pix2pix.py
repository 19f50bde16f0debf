"""pix2pix (Isola et al. 2017): a U-Net G(x) and a PatchGAN D(x, y), trained on GAN + L1.

The step is `Pix2PixModel.optimize_parameters` of junyanz/pytorch-CycleGAN-and-pix2pix
(`models/pix2pix_model.py`), with D fed the channel-wise concatenation (x, y):

1. fake = G(x) once, in training mode (BatchNorm on batch statistics, Dropout on);
2. D update on 0.5 * [GAN(D(x, fake), fake) + GAN(D(x, y), real)] with fake held
   constant, the fake pair through D first as `backward_D` does (each pass normalised on
   its own batch statistics);
3. G update on GAN(D'(x, fake), real) + lambda_L1 * mean|fake - y| through the updated D',
   reusing step 1's forward pass (its vjp).

GAN is `losses.gan_loss(config.loss.name)`: `non_saturating` is the reference's
`GANLoss('vanilla')` (BCE on logits, G trained toward "real"), `lsgan` its 'lsgan'. Both
networks use Adam(lr, b1, b2) with the reference's `lambda_rule` schedule
(`jaxgan.schedules`): the rate is constant for `n_epochs` epochs, then falls linearly over
`n_epochs_decay` more, stepped once per epoch.

Test time follows the reference's test.py, which never calls `model.eval()` unless given
`--eval`: G keeps Dropout on and its BatchNorm uses batch statistics, of one image at a time
(test.py runs batch 1). `translate` does exactly that, image by image (vmap), with one
dropout key per image and without touching the running statistics; `config.eval_mode=True`
is the reference's `--eval` (running statistics, no Dropout).
"""

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import config_fields as fields, image_metrics, losses, models, schedules, translate
from jaxgan import visualize
from jaxgan.datasets import preparation
from jaxgan.schedules import adam_pair
from jaxgan.errors import ConfigError
from jaxgan.families.gan import GANState, Network, count_params, optimizer_step

Array = jax.Array

EVAL_BATCH = 16  # images translated per call during evaluation


def reference_sections(config: ml_collections.ConfigDict, generator: str, norm: str) -> None:
  """What pix2pix and CycleGAN share, with the reference's defaults (its train.py options):
  the data's resize and random crop, G by name, the PatchGAN D, and the linear schedule."""
  config.data.load_size = 286         # --load_size: resized to this, then cropped
  config.data.flip = True             # not --no_flip
  config.data.eval_split = "test"     # --phase of test.py

  config.model = ml_collections.ConfigDict()
  config.model.generator = generator
  config.model.discriminator = "patch_discriminator"
  config.model.n_layers = 3           # 70x70 receptive field
  config.model.norm = norm
  config.model.ngf = 64
  config.model.ndf = 64
  config.model.remat = False          # rematerialise G (jaxgan.families.gan)
  schedules.config_section(config)


def validate_reference_sections(config: ml_collections.ConfigDict) -> None:
  fields.positive(config, "data.load_size", "model.ngf", "model.ndf")
  schedules.validate(config)


def config_sections(config: ml_collections.ConfigDict) -> None:
  """The pix2pix family's sections, with the reference's defaults."""
  reference_sections(config, "unet_256", "batch")
  config.data.direction = "AtoB"      # --direction: which half of a pair is the input
  config.model.dropout = 0.5
  config.loss = ml_collections.ConfigDict()
  config.loss.name = "non_saturating"  # the reference's GANLoss('vanilla')
  config.loss.lambda_l1 = 100.0
  config.eval_mode = False            # True: the reference's test.py --eval


def validate(config: ml_collections.ConfigDict) -> None:
  """ConfigError for values of the pix2pix family's sections that no run can use."""
  validate_reference_sections(config)
  fields.nonnegative(config, "loss.lambda_l1")
  fields.fraction(config, "model.dropout")


def upgrade(config: dict) -> None:
  """Runs saved before these fields existed trained without them."""
  fields.fill(config, {"model.remat": False, "eval_mode": False})


def discriminator_loss(kind: str, real_logits: Array, fake_logits: Array) -> Array:
  """`backward_D`: the real and fake terms averaged ("we divide the objective by 2 while
  optimizing D", sec. 3.3)."""
  return 0.5 * losses.discriminator_loss(kind, real_logits, fake_logits)


def generator_loss(kind: str, fake_logits: Array, fake: Array, target: Array,
                   lambda_l1: float) -> tuple[Array, Array, Array]:
  """`backward_G`: (GAN + lambda_L1 * L1, GAN, L1), L1 the mean |fake - target|."""
  gan = losses.generator_loss(kind, fake_logits)
  l1 = jnp.mean(jnp.abs(fake - target))
  return gan + lambda_l1 * l1, gan, l1


class Pix2Pix:
  """The `pix2pix` family: image-to-image translation with a conditional GAN."""

  loss_metrics = ("d_loss", "g_gan", "g_l1")

  def __init__(self, config):
    self.config = config
    m, data = config.model, config.data
    if "input" not in preparation.image_features(data):  # also checks the direction
      raise ConfigError("pix2pix trains on pairs: set config.data.direction (AtoB or BtoA) "
                        "and a paired dataset (pix2pix/facades)")
    self.image_size, self.channels = data.image_size, data.channels
    self.loss = config.loss.name
    losses.gan_loss(self.loss, jnp.zeros(()), True)  # fail early on an unknown name
    self.lambda_l1 = config.loss.lambda_l1
    self.eval_mode = bool(config.eval_mode)
    dtype = config.dtype
    self.g = models.create(m.generator, "image-to-image generator",
                           remat=m.remat, channels=data.channels,
                           ngf=m.ngf, norm=m.norm, dropout=m.dropout, dtype=dtype)
    self.d = models.create(m.discriminator, "patch discriminator", ndf=m.ndf,
                           n_layers=m.n_layers, norm=m.norm, dtype=dtype)
    self.schedule, self.g_tx, self.d_tx = adam_pair(config)

  def init_state(self, rng: Array) -> GANState:
    rng, g_rng, d_rng = jax.random.split(rng, 3)
    images = jnp.zeros((1, self.image_size, self.image_size, self.channels))

    def network(module, tx, key, x):
      variables = module.init(key, x, train=False)
      return Network(variables["params"], variables.get("batch_stats", {}),
                     tx.init(variables["params"]))

    return GANState(step=jnp.zeros((), jnp.int32), rng=rng,
                    generator=network(self.g, self.g_tx, g_rng, images),
                    discriminator=network(self.d, self.d_tx, d_rng,
                                          jnp.concatenate([images, images], -1)))

  def _apply_d(self, params, batch_stats, x, y):
    logits, updates = self.d.apply({"params": params, "batch_stats": batch_stats},
                                   jnp.concatenate([x, y], -1), train=True,
                                   mutable=["batch_stats"])
    return logits, updates["batch_stats"]

  def train_step(self, state: GANState, batch: dict[str, Array]):
    x, y = batch["input"], batch["target"]
    rng, dropout_rng = jax.random.split(state.rng)
    g, d = state.generator, state.discriminator

    def generate(params):
      fake, updates = self.g.apply({"params": params, "batch_stats": g.batch_stats}, x,
                                   train=True, rngs={"dropout": dropout_rng},
                                   mutable=["batch_stats"])
      return fake, updates["batch_stats"]

    fake, g_vjp, g_batch_stats = jax.vjp(generate, g.params, has_aux=True)

    def d_loss_fn(params):
      fake_logits, stats = self._apply_d(params, d.batch_stats, x, fake)
      real_logits, stats = self._apply_d(params, stats, x, y)
      loss = discriminator_loss(self.loss, real_logits, fake_logits)
      return loss, (stats, real_logits, fake_logits)

    (d_loss, (d_stats, real_logits, fake_logits)), d_grads = jax.value_and_grad(
        d_loss_fn, has_aux=True)(d.params)
    d = optimizer_step(self.d_tx, d, d_grads, d_stats)

    def g_loss_fn(fake_images):
      logits, stats = self._apply_d(d.params, d.batch_stats, x, fake_images)
      loss, gan, l1 = generator_loss(self.loss, logits, fake_images, y, self.lambda_l1)
      return loss, (stats, gan, l1, logits)

    (g_loss, (d_stats, g_gan, g_l1, fake_logits_after)), fake_grad = jax.value_and_grad(
        g_loss_fn, has_aux=True)(fake)
    (g_grads,) = g_vjp(fake_grad)
    g = optimizer_step(self.g_tx, g, g_grads, g_batch_stats)
    d = d.replace(batch_stats=d_stats)

    metrics = {
        "d_loss": d_loss,
        "g_loss": g_loss,
        "g_gan": g_gan,
        "g_l1": g_l1,  # mean |G(x) - y| on the [-1, 1] scale, before the lambda_L1 weight
        "d_real": losses.discriminator_score(self.loss, real_logits),
        "d_fake": losses.discriminator_score(self.loss, fake_logits),
        "d_fake_after": losses.discriminator_score(self.loss, fake_logits_after),
        "learning_rate": self.schedule(state.step),
    }
    return GANState(step=state.step + 1, rng=rng, generator=g, discriminator=d), metrics

  def translate(self, state: GANState, images: Array, rngs: Array) -> Array:
    """G at test time, as the reference's test.py: each image alone through G in training
    mode (Dropout drawn from its key in `rngs`, BatchNorm on its own statistics; running
    statistics left as they are), or in eval mode with `config.eval_mode`."""
    g = state.generator
    variables = {"params": g.params, "batch_stats": g.batch_stats}
    if self.eval_mode:
      return self.g.apply(variables, images, train=False)

    def one(image, rng):
      out, _ = self.g.apply(variables, image[None], train=True, rngs={"dropout": rng},
                            mutable=["batch_stats"])
      return out[0]

    return jax.vmap(one)(images, rngs)

  def fixed_inputs(self, rng: Array, num: int) -> dict[str, np.ndarray]:
    """The first num // 2 train pairs and the first num - num // 2 eval pairs (stored order,
    test-time preprocessing), with one dropout key per image."""
    data = self.config.data
    parts = [next(preparation.create_eval_iterator(data, split, k, num=k))
             for split, k in ((data.split, num // 2), (data.eval_split, num - num // 2)) if k]
    inputs = {key: np.concatenate([p[key] for p in parts]) for key in ("input", "target")}
    inputs["rng"] = np.asarray(jax.random.split(rng, len(inputs["input"])))
    return inputs

  def generate(self, state: GANState, inputs: dict[str, Array]) -> Array:
    return self.translate(state, inputs["input"], inputs["rng"])

  def grid(self, inputs: dict[str, Array], images: Array) -> np.ndarray:
    """Sample grids: input | output | target, two triplets a row, train pairs first."""
    return visualize.triplet_grid(inputs["input"], images, inputs["target"])

  def param_counts(self, state: GANState) -> dict[str, int]:
    return {"generator": count_params(state.generator.params),
            "discriminator": count_params(state.discriminator.params)}


def evaluate(config, state: GANState, workdir: str, images: dict | None = None) -> dict[str, Any]:
  """Mean L1, PSNR and SSIM of G's translations of the eval split against the real targets,
  and the same for the training split under "train" (how far the model is from what it
  was fitted to, the seeds' train-versus-val comparison).

  Each image is translated as the reference's test.py does (`Pix2Pix.translate`; dropout
  keys from config.seed and the image's position), both sides compared as the uint8
  images a user sees, at the model's resolution (`image_metrics`); figures are means over
  the images. Also writes `triplets_train.png` and `triplets_<eval split>.png` (input |
  output | target) for the pairs of the training grids, with the same dropout keys.
  `images`, when given, receives the eval split's translations and targets (uint8,
  'outputs' and 'targets') for the standard metrics.
  """
  family = Pix2Pix(config)
  translate_fn = jax.jit(family.translate)

  def scores(split, keep=None):
    """{metric: mean over the split's images}, num_images; dropout keys by position; `keep`
    collects the translations and targets."""
    metrics = {"l1": image_metrics.mean_l1, "psnr": image_metrics.psnr, "ssim": image_metrics.ssim}
    values = {name: [] for name in metrics}
    seen = 0
    for batch in preparation.create_eval_iterator(config.data, split, EVAL_BATCH):
      n = len(batch["input"])
      outputs = translate.translate_batch(translate_fn, state, batch["input"],
                                          translate.image_keys(config.seed, seen, n), EVAL_BATCH)
      targets = visualize.to_uint8(batch["target"])
      for name, fn in metrics.items():
        values[name].append(np.asarray(fn(outputs, targets)))
      if keep is not None:
        keep.setdefault("outputs", []).append(outputs)
        keep.setdefault("targets", []).append(targets)
      seen += n
    return {name: float(np.mean(np.concatenate(v))) for name, v in values.items()}, seen

  if 0 < config.num_grid_images <= EVAL_BATCH:
    fixed = family.fixed_inputs(jax.random.PRNGKey(config.seed + 1), config.num_grid_images)
    outputs = translate.translate_batch(translate_fn, state, fixed["input"], fixed["rng"],
                                        EVAL_BATCH)
    n_train = config.num_grid_images // 2
    for name, part in (("train", slice(0, n_train)), (config.data.eval_split, slice(n_train, None))):
      if len(outputs[part]):
        visualize.save_png(visualize.triplet_grid(fixed["input"][part], outputs[part],
                                                  fixed["target"][part]),
                           f"{workdir}/triplets_{name}.png")
  result, seen = scores(config.data.eval_split, images)
  if images is not None:
    images.update({k: np.concatenate(v) for k, v in images.items()})
  train_result, train_seen = scores("train")
  return {**result, "split": config.data.eval_split, "num_images": seen,
          "train": {**train_result, "num_images": train_seen},
          "image_size": config.data.image_size, "step": int(jax.device_get(state.step)),
          "test_mode": "eval (running statistics, no dropout)" if family.eval_mode else
                       "reference (dropout on, batch statistics of each image)"}
