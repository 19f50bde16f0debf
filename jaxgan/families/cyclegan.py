"""CycleGAN (Zhu et al. 2017): two generators and two discriminators on unpaired images.

The step is `CycleGANModel.optimize_parameters` of junyanz/pytorch-CycleGAN-and-pix2pix
(`models/cycle_gan_model.py`), whose names this module keeps: G_A (the paper's G) turns
domain A into B, G_B (F) turns B into A; D_A (D_Y) judges domain B, D_B (D_X) domain A.

1. forward: fake_B = G_A(real_A), rec_A = G_B(fake_B); fake_A = G_B(real_B),
   rec_B = G_A(fake_A);
2. G_A and G_B are updated together (one Adam over both, `optimizer_G`), the
   discriminators frozen, on
     GAN(D_A(fake_B), real) + GAN(D_B(fake_A), real)
     + lambda_A |rec_A - real_A| + lambda_B |rec_B - real_B|          (`cycle_loss`)
     + lambda_B lambda_idt |G_A(real_B) - real_B|                     (`identity_loss`:
     + lambda_A lambda_idt |G_B(real_A) - real_A|                      G_A(B) ~ B, G_B(A) ~ A)
   with |.| the mean absolute difference (L1Loss) and lambda_A = lambda_B = 10,
   lambda_idt = 0.5 (sec. 5.2: identity weight "0.5 lambda");
3. D_A and D_B are updated together (one Adam, `optimizer_D`) on
     0.5 [GAN(D_A(real_B), real) + GAN(D_A(pool_B(fake_B)), fake)]
     + 0.5 [GAN(D_B(real_A), real) + GAN(D_B(pool_A(fake_A)), fake)]
   where fake_B and fake_A are step 1's images (made by the generators before their
   update) passed through the history pools (`jaxgan.image_pool`, 50 images each).

GAN is `losses.gan_loss(config.loss.name)`: `lsgan` is the reference's default
(--gan_mode lsgan: MSE to 1 for real, to 0 for fake). Both optimizers are Adam(2e-4,
beta1 0.5, 0.999) with the reference's linear policy (`jaxgan.schedules`): constant for
n_epochs epochs, then linearly to zero over n_epochs_decay more; an epoch is max(|A|, |B|)
steps at batch 1 (`len(UnalignedDataset)`). Initialisation as the reference's
`init_weights('normal', 0.02)`: kernels N(0, 0.02), biases 0 (`layers.init_weights`).

The networks use InstanceNorm (no running statistics) and no dropout (CycleGAN's
--no_dropout default), so the generators compute the same function in training and at
test time, image by image: `translate` is the reference's test.py.
"""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import config_fields as fields, image_metrics, image_pool, layers, losses, models
from jaxgan import visualize
from jaxgan.datasets import preparation, transforms
from jaxgan.errors import ConfigError
from jaxgan.families import pix2pix
from jaxgan.families.gan import Network, count_params, optimizer_step
from jaxgan.schedules import adam_pair

Array = jax.Array

EVAL_BATCH = 16  # images translated per call during evaluation
DIRECTIONS = {"AtoB": ("G_A", "G_B"), "BtoA": ("G_B", "G_A")}  # (translation, its inverse)


def config_sections(config: ml_collections.ConfigDict) -> None:
  """The cyclegan family's sections, with the reference's defaults (its train.py options)."""
  pix2pix.reference_sections(config, "resnet_9blocks", "instance")
  config.data.unpaired = True         # batches of A and B images drawn independently
  config.loss = ml_collections.ConfigDict()
  config.loss.name = "lsgan"          # --gan_mode lsgan
  config.loss.lambda_a = 10.0         # cycle A -> B -> A
  config.loss.lambda_b = 10.0         # cycle B -> A -> B
  config.loss.lambda_identity = 0.5   # identity weight: 0.5 x lambda
  config.loss.pool_size = 50          # history of generated images for each D


def validate(config: ml_collections.ConfigDict) -> None:
  """ConfigError for values of the cyclegan family's sections that no run can use."""
  pix2pix.validate_reference_sections(config)


def upgrade(config: dict) -> None:
  """Runs saved before model.remat existed trained without it."""
  fields.fill(config, {"model.remat": False})


@flax.struct.dataclass
class CycleGANState:
  step: Array
  rng: Array
  generators: Network          # params {"G_A": A -> B, "G_B": B -> A}, one Adam state
  discriminators: Network      # params {"D_A": judges B, "D_B": judges A}, one Adam state
  fake_a_pool: image_pool.ImagePool  # history of G_B(real_B), shown to D_B
  fake_b_pool: image_pool.ImagePool  # history of G_A(real_A), shown to D_A


def cycle_loss(real: Array, reconstructed: Array, weight: float) -> Array:
  """weight * mean |F(G(x)) - x| (the paper's eq. 2, the reference's criterionCycle)."""
  return weight * jnp.mean(jnp.abs(reconstructed - real))


def identity_loss(real: Array, same: Array, weight: float) -> Array:
  """weight * mean |G(y) - y| for y already in G's target domain (sec. 5.2, Taigman et al.
  2017): G_A(real_B) ~ real_B and G_B(real_A) ~ real_A."""
  return weight * jnp.mean(jnp.abs(same - real))


class CycleGAN:
  """The `cyclegan` family: unpaired image-to-image translation."""

  loss_metrics = ("d_a", "d_b", "g_a", "g_b", "cycle_a", "cycle_b", "idt_a", "idt_b")
  directions = tuple(DIRECTIONS)

  def __init__(self, config):
    self.config = config
    data, m, loss = config.data, config.model, config.loss
    if preparation.stream_kind(data) is not preparation.StreamKind.UNPAIRED:
      raise ConfigError("CycleGAN trains on unpaired images: set config.data.unpaired=True and "
                        "an unpaired dataset (cycle_gan/*, unpaired/*)")
    if m.norm != "instance":
      raise ConfigError(f"the cyclegan family trains with InstanceNorm (the reference's "
                        f"--norm instance), got config.model.norm={m.norm!r}")
    losses.check_name(loss.name)
    if loss.name == "multiclass":
      raise ConfigError("CycleGAN's discriminators score real or fake: config.loss.name "
                        "must be lsgan, non_saturating or minimax")
    self.loss = loss.name
    self.lambda_a, self.lambda_b = loss.lambda_a, loss.lambda_b
    self.lambda_identity = loss.lambda_identity
    self.pool_size = loss.pool_size
    if self.pool_size < 0:
      raise ConfigError(f"config.loss.pool_size must be >= 0, got {self.pool_size}")
    self.image_size, self.channels = data.image_size, data.channels
    dtype = config.dtype
    self.g = models.create(m.generator, "image-to-image generator",
                           remat=m.remat, channels=data.channels,
                           ngf=m.ngf, norm=m.norm, dtype=dtype)
    self.d = models.create(m.discriminator, "patch discriminator", ndf=m.ndf,
                           n_layers=m.n_layers, norm=m.norm, dtype=dtype)
    self.schedule, self.g_tx, self.d_tx = adam_pair(config)

  def init_state(self, rng: Array) -> CycleGANState:
    rng, *keys = jax.random.split(rng, 5)
    shape = (self.image_size, self.image_size, self.channels)
    images = jnp.zeros((1, *shape))

    def networks(module, tx, names, keys):
      shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), images, train=False))
      params = {name: layers.init_weights(shapes["params"], key) for name, key in zip(names, keys)}
      return Network(params, {}, tx.init(params))

    return CycleGANState(step=jnp.zeros((), jnp.int32), rng=rng,
                         generators=networks(self.g, self.g_tx, ("G_A", "G_B"), keys[:2]),
                         discriminators=networks(self.d, self.d_tx, ("D_A", "D_B"), keys[2:]),
                         fake_a_pool=image_pool.create(self.pool_size, shape),
                         fake_b_pool=image_pool.create(self.pool_size, shape))

  def _g(self, params, x):
    return self.g.apply({"params": params}, x, train=True)

  def _d(self, params, x):
    return self.d.apply({"params": params}, x, train=True)

  def generator_loss(self, g_params, d_params, real_a: Array, real_b: Array):
    """`forward` + `backward_G`: (loss_G, (terms, fake_A, fake_B)), terms by the
    reference's loss names (g_a, g_b, cycle_a, cycle_b, idt_a, idt_b).

    One call per image set, as the reference. Batching a generator's two inputs (its
    source and, for the identity loss, an image of its target domain) into one call is
    the same function under InstanceNorm, but made the CPU step slower (docs/performance.md, "Speed on
    a CPU": CycleGAN-256), and under BatchNorm it would mix the two sets' statistics.
    """
    fake_b = self._g(g_params["G_A"], real_a)
    fake_a = self._g(g_params["G_B"], real_b)
    rec_a = self._g(g_params["G_B"], fake_b)
    rec_b = self._g(g_params["G_A"], fake_a)
    terms = {
        "g_a": losses.generator_loss(self.loss, self._d(d_params["D_A"], fake_b)),
        "g_b": losses.generator_loss(self.loss, self._d(d_params["D_B"], fake_a)),
        "cycle_a": cycle_loss(real_a, rec_a, self.lambda_a),
        "cycle_b": cycle_loss(real_b, rec_b, self.lambda_b),
        "idt_a": jnp.zeros(()), "idt_b": jnp.zeros(()),
    }
    if self.lambda_identity > 0:  # G_A(real_B) ~ real_B, G_B(real_A) ~ real_A
      terms["idt_a"] = identity_loss(real_b, self._g(g_params["G_A"], real_b),
                                     self.lambda_b * self.lambda_identity)
      terms["idt_b"] = identity_loss(real_a, self._g(g_params["G_B"], real_a),
                                     self.lambda_a * self.lambda_identity)
    return sum(terms.values()), (terms, fake_a, fake_b)

  def discriminator_loss(self, d_params, real_a, real_b, fake_a, fake_b):
    """`backward_D_A` + `backward_D_B`: (D_A's + D_B's loss, each halved, (terms, scores));
    each D scores its real and its fake images in separate calls, as the reference."""
    logits = {"d_a_real": self._d(d_params["D_A"], real_b),
              "d_a_fake": self._d(d_params["D_A"], fake_b),
              "d_b_real": self._d(d_params["D_B"], real_a),
              "d_b_fake": self._d(d_params["D_B"], fake_a)}
    terms = {d: 0.5 * losses.discriminator_loss(self.loss, logits[f"{d}_real"], logits[f"{d}_fake"])
             for d in ("d_a", "d_b")}
    scores = {k: losses.discriminator_score(self.loss, v) for k, v in logits.items()}
    return terms["d_a"] + terms["d_b"], (terms, scores)

  def train_step(self, state: CycleGANState, batch: dict[str, Array]):
    real_a, real_b = batch["A"], batch["B"]
    rng, a_pool_rng, b_pool_rng = jax.random.split(state.rng, 3)
    g, d = state.generators, state.discriminators
    (g_loss, (g_terms, fake_a, fake_b)), g_grads = jax.value_and_grad(
        self.generator_loss, has_aux=True)(g.params, d.params, real_a, real_b)
    g = optimizer_step(self.g_tx, g, g_grads, {})
    fake_a_pool, fake_a = image_pool.query(state.fake_a_pool, fake_a, a_pool_rng)
    fake_b_pool, fake_b = image_pool.query(state.fake_b_pool, fake_b, b_pool_rng)
    (_, (d_terms, scores)), d_grads = jax.value_and_grad(self.discriminator_loss, has_aux=True)(
        d.params, real_a, real_b, fake_a, fake_b)
    d = optimizer_step(self.d_tx, d, d_grads, {})
    metrics = {**g_terms, **d_terms, **scores, "g_loss": g_loss,
               "learning_rate": self.schedule(state.step)}
    return CycleGANState(step=state.step + 1, rng=rng, generators=g, discriminators=d,
                         fake_a_pool=fake_a_pool, fake_b_pool=fake_b_pool), metrics

  def translate(self, state: CycleGANState, images: Array, rngs=None,
                direction: str = "AtoB") -> Array:
    """G_A(images) (AtoB) or G_B(images) (BtoA): the reference's test.py. `rngs` is
    unused (no dropout; InstanceNorm normalises each image on its own)."""
    del rngs
    if direction not in DIRECTIONS:
      raise ConfigError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return self._g(state.generators.params[DIRECTIONS[direction][0]], images)

  def cycle(self, state: CycleGANState, images: Array, direction: str = "AtoB"):
    """(G(x), F(G(x))) for x in the source domain of `direction`."""
    forward, inverse = DIRECTIONS[direction]
    params = state.generators.params
    translated = self._g(params[forward], images)
    return translated, self._g(params[inverse], translated)

  def fixed_inputs(self, rng: Array, num: int) -> dict[str, np.ndarray]:
    """The first num - num // 2 images of domain A and the first num // 2 of domain B
    (training split, stored order, test-time preprocessing). `target` holds the real
    images real_vs_fake.png shows next to what `generate` makes: a real image of the target
    domain next to each translation, the input itself next to each reconstruction."""
    del rng
    data = self.config.data
    k, m = num - num // 2, num // 2
    real = {d: preparation.load_split(data, split, max(k, m))["image"]
            for d, split in preparation.domain_splits(data.split).items()}
    a, b = real["A"][:k], real["B"][:m]
    return {"A": a, "B": b,
            "target": np.concatenate([real["B"][:k], real["A"][:m], a, b])}

  def generate(self, state: CycleGANState, inputs: dict[str, Array]) -> Array:
    """[G_A(A); G_B(B); G_B(G_A(A)); G_A(G_B(B))]: translations, then reconstructions."""
    fake_b, rec_a = self.cycle(state, inputs["A"], "AtoB")
    fake_a, rec_b = self.cycle(state, inputs["B"], "BtoA")
    return jnp.concatenate([fake_b, fake_a, rec_a, rec_b])

  def grid(self, inputs: dict[str, Array], images: Array) -> np.ndarray:
    """Sample grids: X | G(X) | F(G(X)), two triplets a row, A -> B first, then B -> A."""
    x = np.concatenate([inputs["A"], inputs["B"]])
    return visualize.triplet_grid(x, images[:len(x)], images[len(x):])

  def param_counts(self, state: CycleGANState) -> dict[str, int]:
    return {name: count_params(params) for network in (state.generators, state.discriminators)
            for name, params in network.params.items()}


def _judge_size(images: np.ndarray, size: int) -> np.ndarray:
  """uint8 images at the classifier's side, preprocessed as its training images were
  (`transforms.center_square`: identity when the sides already agree)."""
  if images.shape[1] == size:
    return images
  return np.stack([np.asarray(transforms.center_square(x, size, x.shape[-1])) for x in images])


def evaluate(config, family: CycleGAN, state: CycleGANState, workdir: str, judge,
             judge_state, judge_size: int, images: dict | None = None) -> dict[str, Any]:
  """How often a translation lands in its target domain, and how well it cycles back.

  For each direction, every image of the source domain's eval split (`config.data.
  eval_split` + A or B; the 64x64 sets have only a train split) is translated (G) and
  translated back (F(G(x))), both in float; then, as the uint8 images a user sees:
  - `in_target_domain`: the share of G(x) that the domain classifier `judge` assigns to
    the target domain;
  - `cycle_l1`: mean |F(G(x)) - x| on the [-1, 1] scale of the training loss
    (`image_metrics.mean_l1`);
  - `classifier_accuracy_on_real`: the judge's accuracy on the real images of the source
    domain (how much its verdicts can be trusted).
  Also writes `triplets_AtoB.png` and `triplets_BtoA.png` (x | G(x) | F(G(x))) for the first
  `config.num_grid_images` images of each eval split (8 if unset). Without a `judge`, the
  two judged shares are left out. `images`, when given, receives the uint8 images of each
  direction ('AtoB', 'BtoA': the translations) and domain ('A', 'B': the real images) for
  the standard metrics.
  """
  predict = jax.jit(judge.predict) if judge is not None else None
  cycle = jax.jit(family.cycle, static_argnames="direction")

  def judged(images):
    probs, _ = predict(judge_state, _judge_size(images, judge_size).astype(np.float32) / 127.5 - 1)
    return np.argmax(np.asarray(probs), -1)

  splits = preparation.domain_splits(config.data.eval_split)
  grid_size = config.get("num_grid_images") or 8
  result = {"eval_split": config.data.eval_split, "image_size": config.data.image_size}
  for direction, (source, target) in (("AtoB", ("A", "B")), ("BtoA", ("B", "A"))):
    labels = {"A": 0, "B": 1}  # TFDS cycle_gan's ClassLabel(names=["A", "B"])
    in_target, l1, real_right, triplets = [], [], [], []
    for batch in preparation.create_eval_iterator(config.data, splits[source], EVAL_BATCH):
      x = batch["image"]
      n = len(x)
      padded = np.pad(x, [(0, EVAL_BATCH - n)] + [(0, 0)] * 3)  # one compiled shape
      translated, reconstructed = (visualize.to_uint8(np.asarray(y)[:n]) for y in
                                   jax.device_get(cycle(state, padded, direction=direction)))
      real = visualize.to_uint8(x)
      if judge is not None:
        in_target.append(judged(translated) == labels[target])
        real_right.append(judged(real) == labels[source])
      if images is not None:
        images.setdefault(direction, []).append(translated)
        images.setdefault(source, []).append(real)
      l1.append(np.asarray(image_metrics.mean_l1(reconstructed, real)))
      if sum(len(t[0]) for t in triplets) < grid_size:
        triplets.append((real, translated, reconstructed))
    x, y, z = (np.concatenate(parts)[:grid_size] for parts in zip(*triplets))
    visualize.save_png(visualize.triplet_grid(x, y, z), f"{workdir}/triplets_{direction}.png")
    result[direction] = {"split": splits[source], "num_images": int(sum(len(v) for v in l1))}
    if judge is not None:
      result[direction]["in_target_domain"] = float(np.mean(np.concatenate(in_target)))
    result[direction]["cycle_l1"] = float(np.mean(np.concatenate(l1)))
    if judge is not None:
      result[direction]["classifier_accuracy_on_real"] = float(np.mean(np.concatenate(real_right)))
  if images is not None:
    images.update({k: np.concatenate(v) for k, v in images.items()})
  return result
