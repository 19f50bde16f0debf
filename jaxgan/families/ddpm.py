"""The `ddpm` family: denoising diffusion (Ho et al. 2020), optionally class-conditional.

The step is Ho et al.'s Algorithm 1: for a batch of x_0, draw t uniformly from 0..T-1 and
eps ~ N(0, I), and take one optimizer step on L_simple = ||eps - eps_theta(x_t, t)||^2
(`jaxgan.diffusion`). The optimizer is theirs for CIFAR10 (appendix B): Adam at 2e-4
after a linear warmup, gradients clipped to global norm 1, and an exponential moving
average of the weights that sampling uses (`ema_params`, part of the checkpointed state;
`jaxgan.ema`): decay 0.9999 as Ho et al.'s (`config.ema_decay`), warmed up so that a
short run's average is not dominated by the initial weights. `jaxgan.sample` and
`jaxgan.evaluate` sample from the trained weights themselves with `--raw_weights`.

Class conditioning with classifier-free guidance (Ho and Salimans 2022): the network reads
the label through an embedding added to its time embedding (`jaxgan.models.ddpm_unet`); in
training each label is replaced by the null label with probability `p_uncond` (0.1), so
one network learns eps(x_t, t, y) and eps(x_t, t). Sampling uses

    eps = eps(x_t, t) + w * (eps(x_t, t, y) - eps(x_t, t))

with the guidance scale w = `config.sampling.guidance` (`jaxgan.sample --guidance`): w = 0 is
the unconditional model (the label is ignored), w = 1 the plain conditional model, w > 1
guided. (Ho and Salimans write (1 + w') eps_c - w' eps_u: their w' is w - 1 here.)

Sampling (`config.sampling`, overridable by `jaxgan.sample`/`jaxgan.evaluate` flags): the
ancestral sampler `ddpm` over all T steps, or `ddim` with `steps` steps and `eta`; with
`clip_denoised`, x0_hat clipped to [-1, 1] at every step (Ho et al.'s code).
"""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxgan import config_fields as fields, diffusion, ema, models, visualize
from jaxgan.models import ddpm_unet
from jaxgan.errors import ConfigError
from jaxgan.families.gan import count_params
from jaxgan.models.conditioning import class_rows, with_labels

Array = jax.Array


def config_sections(config: ml_collections.ConfigDict) -> None:
  """The ddpm family's sections, with Ho et al.'s values (2020) where they apply to MNIST:
  the U-Net, the diffusion, the sampler, and Adam with warmup and clipping."""
  config.model = ml_collections.ConfigDict()
  config.model.denoiser = "ddpm_unet"
  config.model.ch = 32
  config.model.ch_mult = (1, 2, 2)
  config.model.num_res_blocks = 2
  config.model.dropout = 0.1
  config.model.downsample = "conv"  # Ho et al.'s strided conv; "avg_pool": faster on a CPU
  config.model.num_classes = 0      # > 0: class-conditional with classifier-free guidance

  config.diffusion = ml_collections.ConfigDict()
  config.diffusion.num_timesteps = 1000
  config.diffusion.schedule = "linear"  # jaxgan.diffusion.SCHEDULES
  config.diffusion.p_uncond = 0.1       # conditional models: label dropped in training

  # The decay of the weights' moving average that sampling uses (jaxgan.ema: the most
  # the warmed-up decay reaches); Ho et al.'s 0.9999.
  config.ema_decay = 0.9999

  config.sampling = ml_collections.ConfigDict()
  config.sampling.sampler = "ddpm"      # ancestral (all T steps) or "ddim"
  config.sampling.steps = 1000
  config.sampling.eta = 0.0             # ddim only: 0 deterministic, 1 DDPM's variance
  config.sampling.guidance = 1.0        # conditional models: eps_u + w (eps_c - eps_u)
  config.sampling.clip_denoised = False  # clip x0_hat to [-1, 1] at every step (jaxgan.diffusion)

  config.optimizer.learning_rate = 2e-4  # Ho et al., appendix B
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.warmup_steps = 1000   # Ho et al.: 5000 on CIFAR10 (800k steps)
  config.optimizer.decay = "constant"    # after warmup (Ho et al.); "cosine": to 0 at the last step
  config.optimizer.grad_clip = 1.0


def validate(config: ml_collections.ConfigDict) -> None:
  """ConfigError for values of the ddpm family's sections that no run can use (the
  diffusion's and the sampler's are checked where the family is built)."""
  fields.nonnegative(config, "model.num_classes")
  fields.fraction(config, "model.dropout", "ema_decay")
  fields.one_of(config, "optimizer.decay", LR_DECAYS)


def upgrade(config: dict) -> None:
  """Runs saved before these fields existed: unconditional, their U-Net pooled, and the EMA's
  decay where it was (`diffusion.ema_decay`, 0.9995 by default)."""
  fields.fill(config, {"model.num_classes": 0, "model.downsample": "avg_pool",
                       "sampling.clip_denoised": False, "optimizer.decay": "constant"})
  if "ema_decay" not in config:
    config["ema_decay"] = config.get("diffusion", {}).pop("ema_decay", 0.9995)


@flax.struct.dataclass
class DDPMState:
  step: Array
  rng: Array
  params: Any
  ema_params: Any
  opt_state: Any


# What the rate does after the warmup: Ho et al. keep it constant; "cosine" takes it to 0
# at config.num_train_steps (half a cosine), for runs too short for the average alone to
# smooth out the last updates' noise.
LR_DECAYS = ("constant", "cosine")


def learning_rate(config) -> optax.Schedule:
  """The rate after `count` updates: linear warmup from 0 over `optimizer.warmup_steps`,
  then `optimizer.decay`."""
  o = config.optimizer
  if o.decay == "cosine":
    return optax.warmup_cosine_decay_schedule(
        0.0, o.learning_rate, o.warmup_steps, max(config.num_train_steps, o.warmup_steps + 1))
  if o.warmup_steps:
    return optax.linear_schedule(0.0, o.learning_rate, o.warmup_steps)
  return optax.constant_schedule(o.learning_rate)


def optimizer(config) -> optax.GradientTransformation:
  """Ho et al. (appendix B): Adam, linear warmup, global-norm clipping at 1."""
  o = config.optimizer
  return optax.chain(optax.clip_by_global_norm(o.grad_clip),
                     optax.adam(learning_rate(config), b1=o.b1, b2=o.b2))


class DDPM:
  """Trains `config.model.denoiser` (eps_theta) with the epsilon objective."""

  loss_metrics = ("loss",)

  def __init__(self, config):
    m, d, s = config.model, config.diffusion, config.sampling
    self.num_classes = m.num_classes
    self.image_shape = (config.data.image_size, config.data.image_size, config.data.channels)
    self.schedule = diffusion.Schedule(d.schedule, d.num_timesteps)
    if not 0 <= d.p_uncond < 1:
      raise ConfigError(f"config.diffusion.p_uncond must be in [0, 1), got {d.p_uncond}")
    self.p_uncond = d.p_uncond if self.num_classes else 0.0
    self.max_ema_decay = config.ema_decay
    self.use_ema = True  # sampling reads ema_params (`jaxgan.inference.load_run` may unset it)
    self.sampler, self.steps, self.eta, self.guidance = s.sampler, s.steps, s.eta, s.guidance
    self.clip_denoised = bool(s.clip_denoised)
    diffusion.timesteps(self.sampler, d.num_timesteps, self.steps)  # checks sampler and steps
    if not 0 <= self.eta <= 1:
      raise ConfigError(f"the DDIM eta must be in [0, 1], got {self.eta}")
    if self.guidance < 0:
      raise ConfigError(f"the guidance scale must be >= 0, got {self.guidance}")
    if not self.num_classes and self.guidance != 1.0:
      raise ConfigError("guidance is for class-conditional models; this one is unconditional "
                        "(config.model.num_classes=0)")
    if m.downsample not in ddpm_unet.DOWNSAMPLE:
      raise ConfigError(f"config.model.downsample must be one of {', '.join(ddpm_unet.DOWNSAMPLE)},"
                        f" got {m.downsample!r}")
    levels = len(m.ch_mult) - 1
    if config.data.image_size % 2 ** levels:
      raise ConfigError(f"config.data.image_size={config.data.image_size} must be divisible by "
                        f"2^{levels} (the U-Net's {levels} downsamplings; ch_mult={m.ch_mult})")
    self.net = models.create(m.denoiser, "denoiser", channels=config.data.channels, ch=m.ch,
                             ch_mult=tuple(m.ch_mult), num_res_blocks=m.num_res_blocks,
                             dropout=m.dropout, num_classes=self.num_classes,
                             downsample=m.downsample, dtype=config.dtype)
    self.tx = optimizer(config)
    self.grid_columns = max(1, config.num_grid_images // self.num_classes) if self.num_classes else 0

  def init_state(self, rng: Array) -> DDPMState:
    rng, init_rng = jax.random.split(rng)
    labels = jnp.zeros((1,), jnp.int32) if self.num_classes else None
    params = self.net.init(init_rng, jnp.zeros((1, *self.image_shape)), jnp.zeros((1,), jnp.int32),
                           labels)["params"]
    return DDPMState(jnp.zeros((), jnp.int32), rng, params, params, self.tx.init(params))

  def drop_labels(self, rng: Array, labels: Array) -> Array:
    """Each label replaced by the null label (K) with probability p_uncond."""
    return jnp.where(jax.random.bernoulli(rng, self.p_uncond, labels.shape), self.num_classes,
                     labels)

  def train_step(self, state: DDPMState, batch: dict[str, Array]):
    x0 = batch["image"]
    n = x0.shape[0]
    rng, t_rng, noise_rng, drop_rng, dropout_rng = jax.random.split(state.rng, 5)
    t = jax.random.randint(t_rng, (n,), 0, self.schedule.num_timesteps)
    noise = jax.random.normal(noise_rng, x0.shape, jnp.float32)
    x_t = diffusion.q_sample(self.schedule, x0.astype(jnp.float32), t, noise)
    labels = self.drop_labels(drop_rng, batch["label"]) if self.num_classes else None

    def loss_fn(params):
      eps = self.net.apply({"params": params}, x_t, t, labels, train=True,
                           rngs={"dropout": dropout_rng})
      return diffusion.simple_loss(eps, noise)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    decay = ema.decay(self.max_ema_decay, state.step)
    ema_params = ema.update(state.ema_params, params, decay)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), "ema_decay": decay}
    return DDPMState(state.step + 1, rng, params, ema_params, opt_state), metrics

  def sampling_params(self, state: DDPMState):
    """The weights sampling uses: their moving average, or with `use_ema` unset the
    trained weights themselves."""
    return state.ema_params if self.use_ema else state.params

  def eps(self, params, x_t: Array, t: Array, labels=None, guidance: float = 1.0) -> Array:
    """The predicted noise; conditional models with `labels`: the guided combination
    eps_u + w (eps_c - eps_u) of the module docstring (w = 1: eps_c alone)."""
    apply = lambda x, tt, y: self.net.apply({"params": params}, x, tt, y)  # noqa: E731
    if labels is None or not self.num_classes or guidance == 1.0:
      return apply(x_t, t, labels if self.num_classes else None)
    null = jnp.full_like(labels, self.num_classes)
    both = apply(jnp.concatenate([x_t, x_t]), jnp.concatenate([t, t]),
                 jnp.concatenate([labels, null]))
    eps_c, eps_u = jnp.split(both, 2)
    return eps_u + guidance * (eps_c - eps_u)

  def latent_inputs(self, rng: Array, num: int, labels=None) -> dict[str, Array]:
    """x_T for `num` images and the sampler's key; conditional models also take the labels
    asked for (default: 0, 1, ..., K-1, 0, 1, ...)."""
    noise_rng, sampler_rng = jax.random.split(rng)
    return with_labels({"x_T": jax.random.normal(noise_rng, (num, *self.image_shape)),
                        "rng": sampler_rng}, num, labels, self.num_classes)

  def fixed_inputs(self, rng: Array, num: int) -> dict[str, Array]:
    """The grids' inputs; conditional: row k is class k, column j the same x_T."""
    if not self.num_classes:
      return self.latent_inputs(rng, num)
    cols = self.grid_columns
    inputs = self.latent_inputs(rng, cols * self.num_classes)
    inputs["x_T"], inputs["label"] = class_rows(inputs["x_T"], self.num_classes, cols)
    return inputs

  def guided_eps(self, state: DDPMState, labels=None):
    """eps_fn(x_t, t) of the sampling weights (`sampling_params`) at the configured
    guidance, for `diffusion.sample_loop`."""
    params = self.sampling_params(state)
    return lambda x, t: self.eps(params, x, t, labels, self.guidance)

  def reverse(self, state: DDPMState, x: Array, rng: Array, seq, labels=None, **loop):
    """`diffusion.sample_loop` from x through `seq` with the configured sampler, eta and
    clipping; `loop`: its `padded` and `trajectory`."""
    return diffusion.sample_loop(self.schedule, self.guided_eps(state, labels), x, rng,
                                 self.sampler, seq, self.eta, clip_denoised=self.clip_denoised,
                                 **loop)

  def generate(self, state: DDPMState, inputs: dict[str, Array]) -> Array:
    """Samples with the EMA weights and `config.sampling`'s sampler, steps, eta, guidance."""
    seq = diffusion.timesteps(self.sampler, self.schedule.num_timesteps, self.steps)
    return self.reverse(state, inputs["x_T"], inputs["rng"], seq, inputs.get("label"))

  def trajectory(self, state: DDPMState, inputs: dict[str, Array], columns: int = 8):
    """(a uint8 picture, the timesteps of its columns): the sampler's reverse process of
    each of `inputs` (`latent_inputs`) as a row, x_t at `columns` evenly spaced steps from
    pure noise x_T to the sample x_0 (the last column, shown as t = -1)."""
    seq = diffusion.timesteps(self.sampler, self.schedule.num_timesteps, self.steps)
    index, ts = diffusion.trajectory_columns(seq, columns)

    def run(state, inputs):
      _, path = self.reverse(state, inputs["x_T"], inputs["rng"], seq, inputs.get("label"),
                             trajectory=True)
      return jnp.clip(path[index], -1.0, 1.0)

    tiles = np.asarray(jax.jit(run)(state, inputs))  # [columns, N, H, W, C]
    tiles = tiles.transpose(1, 0, 2, 3, 4).reshape(-1, *tiles.shape[2:])
    return visualize.image_grid(tiles, ncol=len(index)), ts

  def denoise(self, state: DDPMState, images: Array, seq: Array, rng: Array, labels=None):
    """The denoising view of one t = seq[0]: (x_t, the one-step estimate x0_hat(x_t), the
    reverse process from x_t to x_0 with the configured sampler through `seq`, padded as
    `diffusion.padded_timesteps`); `images` in [-1, 1]."""
    noise_rng, sampler_rng = jax.random.split(rng)
    n = images.shape[0]
    t_vec = jnp.full((n,), seq[0], jnp.int32)
    x_t = diffusion.q_sample(self.schedule, images, t_vec,
                             jax.random.normal(noise_rng, images.shape))
    eps = self.guided_eps(state, labels)(x_t, t_vec)
    x0_hat = jnp.clip(diffusion.predict_x0(self.schedule, x_t, t_vec, eps), -1, 1)
    return x_t, x0_hat, self.reverse(state, x_t, sampler_rng, seq, labels, padded=True)

  def denoising_view(self, state: DDPMState, images: np.ndarray, ts, seed: int = 0,
                     labels=None) -> np.ndarray:
    """A uint8 picture: per test image three rows, with one column per t after the image
    itself: x_t (noised), x0_hat (one network evaluation), and the sampler's reverse
    process from x_t (every row: the clean image first). Every t runs through one
    compiled program (its timesteps padded to the longest)."""
    images = jnp.asarray(visualize.to_uint8(images), jnp.float32) / 127.5 - 1.0
    for t in ts:
      if not 0 <= t < self.schedule.num_timesteps:
        raise ConfigError(f"denoising timesteps must be in 0..{self.schedule.num_timesteps - 1}, "
                          f"got {t}")
    seqs = diffusion.padded_timesteps(self.sampler, self.schedule.num_timesteps, self.steps, ts)
    denoise = jax.jit(self.denoise)
    columns = [(images, images, images)]
    for i, seq in enumerate(seqs):
      columns.append(denoise(state, images, seq, jax.random.fold_in(jax.random.PRNGKey(seed), i),
                             labels))
    # [columns, 3 rows, N] -> rows ordered image by image: x_t, x0_hat, reverse.
    tiles = np.stack([np.stack([np.asarray(r) for r in c]) for c in columns])
    tiles = tiles.transpose(2, 1, 0, 3, 4, 5).reshape(-1, *tiles.shape[3:])
    return visualize.image_grid(tiles, ncol=len(columns))

  def grid(self, inputs, images) -> np.ndarray:
    """The images tiled; conditional models: a row per class (`fixed_inputs`' layout)."""
    return visualize.image_grid(images, ncol=self.grid_columns)

  def param_counts(self, state: DDPMState) -> dict[str, int]:
    return {"denoiser": count_params(state.params)}
