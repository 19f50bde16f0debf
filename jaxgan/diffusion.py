"""Denoising diffusion: noise schedules, the training objective and the samplers.

- Forward process (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", eq. 4):
  q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), abar_t = prod_{s<=t} (1 - beta_s),
  t = 0 .. T-1 here (the paper's 1 .. T, shifted as in its reference code).
- Schedules: `linear`, beta from 1e-4 to 0.02 over T = 1000 steps (Ho et al. sec. 4);
  `cosine`, abar_t = f(t) / f(0) with f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2),
  s = 0.008, betas clipped at 0.999 (Nichol and Dhariwal 2021, "Improved DDPM", eq. 17).
- Objective: the simplified loss L_simple = E ||eps - eps_theta(x_t, t)||^2 with t uniform
  (Ho et al. eq. 14, Algorithm 1), here a mean over pixels.
- Samplers, both run as one `lax.scan` over a descending list of timesteps:
  - `ddpm`, ancestral sampling (Ho et al. Algorithm 2) over all T steps:
    x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) + sigma_t z, with
    sigma_t^2 = beta_t (the paper's choice for CIFAR10) and no noise at the last step;
  - `ddim` (Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 12) on S of the T
    steps, tau = 0, T/S, 2T/S, ... (their "uniform" skip):
    x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z with
    x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) and
    sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev) (eq. 16);
    eta = 0 is deterministic (their DDIM), eta = 1 DDPM's posterior variance.
  With `clip_denoised` both clip x0_hat to [-1, 1] at every step, as Ho et al.'s code does
  in its ancestral sampler (`p_sample(..., clip_denoised=True)`): `ddpm` then takes the
  posterior mean of q(x_{t-1} | x_t, x0_hat) (their eq. 7), which equals Algorithm 2's
  when nothing is clipped; `ddim` re-derives eps from the clipped x0_hat (as guided-
  diffusion's `ddim_sample`). Without it neither clips (the DDIM reference does not).
  The final images are clipped to [-1, 1] either way.
"""

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.errors import ConfigError

Array = jax.Array

SCHEDULES = ("linear", "cosine")
SAMPLERS = ("ddpm", "ddim")
LINEAR_BETAS = (1e-4, 0.02)  # Ho et al. 2020, sec. 4
COSINE_OFFSET = 0.008        # Nichol and Dhariwal 2021, sec. 3.2
MAX_BETA = 0.999             # ibid.: "to prevent singularities at the end of the diffusion process"


def betas(schedule: str, num_timesteps: int) -> np.ndarray:
  """beta_0 .. beta_{T-1} (float64)."""
  if num_timesteps < 2:
    raise ConfigError(f"config.diffusion.num_timesteps must be at least 2, got {num_timesteps}")
  if schedule == "linear":
    return np.linspace(*LINEAR_BETAS, num_timesteps, dtype=np.float64)
  if schedule == "cosine":
    s = COSINE_OFFSET
    f = np.cos((np.arange(num_timesteps + 1) / num_timesteps + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return np.minimum(1 - abar[1:] / abar[:-1], MAX_BETA)
  raise ConfigError(f"unknown noise schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


class Schedule:
  """The constants of one schedule, float32 arrays indexed by t = 0 .. T-1."""

  def __init__(self, schedule: str, num_timesteps: int):
    b = betas(schedule, num_timesteps)
    abar = np.cumprod(1.0 - b)
    self.num_timesteps = num_timesteps
    self.betas = jnp.asarray(b, jnp.float32)
    self.alphas_cumprod = jnp.asarray(abar, jnp.float32)
    # abar of the step before: 1 before step 0 (nothing added yet).
    self.alphas_cumprod_prev = jnp.asarray(np.concatenate([[1.0], abar[:-1]]), jnp.float32)


def _bcast(values: Array, x: Array) -> Array:
  """Per-example scalars [N] -> [N, 1, 1, 1] (as x's rank)."""
  return values.reshape(values.shape + (1,) * (x.ndim - 1))


def q_sample(schedule: Schedule, x0: Array, t: Array, noise: Array) -> Array:
  """x_t ~ q(x_t | x_0) for per-example t [N]: sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise."""
  abar = _bcast(schedule.alphas_cumprod[t], x0)
  return jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * noise


def predict_x0(schedule: Schedule, x_t: Array, t: Array, eps: Array) -> Array:
  """x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t): the forward process inverted."""
  abar = _bcast(schedule.alphas_cumprod[t], x_t)
  return (x_t - jnp.sqrt(1.0 - abar) * eps) / jnp.sqrt(abar)


def simple_loss(eps_pred: Array, noise: Array) -> Array:
  """L_simple (Ho et al. eq. 14): mean squared error of the predicted noise, in float32."""
  return jnp.mean(jnp.square(eps_pred.astype(jnp.float32) - noise.astype(jnp.float32)))


def timesteps(sampler: str, num_timesteps: int, steps: int, start: int | None = None) -> np.ndarray:
  """The descending timesteps a sampler visits, from `start` (default T - 1) down.

  `ddpm`: every step (steps must be T); `ddim`: tau = 0, T/S, 2T/S, ... (S of them),
  from its top; given `start`, those below it with `start` itself first (the denoising
  view starts anywhere).
  """
  if sampler not in SAMPLERS:
    raise ConfigError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
  if not 1 <= steps <= num_timesteps:
    raise ConfigError(f"the number of sampling steps must be in 1..{num_timesteps}, got {steps}")
  if sampler == "ddpm" and steps != num_timesteps:
    raise ConfigError(f"the ancestral sampler (ddpm) runs all {num_timesteps} steps, got "
                      f"steps={steps}; use the ddim sampler for fewer steps")
  if sampler == "ddpm":
    return np.arange(num_timesteps - 1 if start is None else start, -1, -1)
  seq = np.arange(0, num_timesteps, num_timesteps // steps)[:steps]
  if start is None:  # from pure noise at the top of tau, as the DDIM reference
    return seq[::-1].astype(np.int64)
  seq = seq[seq < start]
  return np.concatenate([[start], seq[::-1]]).astype(np.int64)


def padded_timesteps(sampler: str, num_timesteps: int, steps: int, starts) -> np.ndarray:
  """int32 [len(starts), L]: `timesteps(..., start)` of each start, padded at its end with -1
  to the longest (L), as `sample_loop(..., padded=True)` reads them."""
  seqs = [timesteps(sampler, num_timesteps, steps, start=int(t)) for t in starts]
  out = np.full((len(seqs), max(len(q) for q in seqs)), -1, np.int32)
  for row, q in zip(out, seqs):
    row[:len(q)] = q
  return out


def sample_loop(schedule: Schedule, eps_fn: Callable[[Array, Array], Array], x: Array,
                rng: Array, sampler: str, seq, eta: float = 0.0, padded: bool = False,
                trajectory: bool = False, clip_denoised: bool = False):
  """Runs the reverse process from x (at timestep seq[0]) through `seq`; -> x_0 in [-1, 1].

  `eps_fn(x_t, t)` -> the predicted noise, t an int32 [N] array. With `padded`, `seq` (an
  int32 array, which may be traced) may end in -1s (`padded_timesteps`): those steps leave
  x as it is, so that sequences of different lengths run through one compiled loop. With
  `trajectory`, -> (x_0, every x on the way: [len(seq) + 1, N, ...], the x given first, x
  after step i at i + 1, unclipped).
  """
  seq = jnp.asarray(seq, jnp.int32)
  prev = jnp.concatenate([seq[1:], jnp.full((1,), -1, jnp.int32)])
  n = x.shape[0]

  def update(x, t, t_prev, key):
    t_vec = jnp.full((n,), t, jnp.int32)
    eps = eps_fn(x, t_vec).astype(jnp.float32)
    z = jax.random.normal(key, x.shape, jnp.float32)
    abar = schedule.alphas_cumprod[t]
    if sampler == "ddpm":  # Algorithm 2; t_prev == t - 1
      beta = schedule.betas[t]
      if clip_denoised:  # eq. 7's posterior mean around the clipped x0_hat
        abar_prev = schedule.alphas_cumprod_prev[t]
        x0 = jnp.clip((x - jnp.sqrt(1.0 - abar) * eps) / jnp.sqrt(abar), -1.0, 1.0)
        mean = (jnp.sqrt(abar_prev) * beta * x0 + jnp.sqrt(1.0 - beta) * (1.0 - abar_prev) * x) / (
            1.0 - abar)
      else:
        mean = (x - beta / jnp.sqrt(1.0 - abar) * eps) / jnp.sqrt(1.0 - beta)
      return mean + jnp.where(t > 0, jnp.sqrt(beta), 0.0) * z
    abar_prev = jnp.where(t_prev >= 0, schedule.alphas_cumprod[jnp.maximum(t_prev, 0)], 1.0)
    x0 = (x - jnp.sqrt(1.0 - abar) * eps) / jnp.sqrt(abar)
    if clip_denoised:
      x0 = jnp.clip(x0, -1.0, 1.0)
      eps = (x - jnp.sqrt(abar) * x0) / jnp.sqrt(1.0 - abar)
    sigma = eta * jnp.sqrt((1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev))
    direction = jnp.sqrt(jnp.maximum(1.0 - abar_prev - sigma ** 2, 0.0)) * eps
    return jnp.sqrt(abar_prev) * x0 + direction + sigma * z

  def step(x, inputs):
    t, t_prev, key = inputs
    if padded:
      x = jax.lax.cond(t >= 0, update, lambda x, *_: x, x, t, t_prev, key)
    else:
      x = update(x, t, t_prev, key)
    return x, (x if trajectory else None)

  keys = jax.random.split(rng, seq.shape[0])  # key i does not depend on the count
  x0 = x.astype(jnp.float32)
  x, path = jax.lax.scan(step, x0, (seq, prev, keys))
  if trajectory:
    return jnp.clip(x, -1.0, 1.0), jnp.concatenate([x0[None], path])
  return jnp.clip(x, -1.0, 1.0)


def trajectory_columns(seq, columns: int) -> tuple[np.ndarray, np.ndarray]:
  """(indices into a trajectory of `seq`, the timestep each shows): `columns` evenly spaced
  from x at seq[0] to x_0, x_0 shown as t = -1."""
  seq = np.asarray(seq)
  index = np.unique(np.round(np.linspace(0, len(seq), max(2, columns))).astype(int))
  return index, np.concatenate([seq, [-1]])[index]
