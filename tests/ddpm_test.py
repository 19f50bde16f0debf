"""DDPM: noise schedules, the epsilon objective on hand-made cases, the samplers against an
oracle, classifier-free guidance, the U-Net's shapes and size, and runs through the loop."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO
from train_test import assert_trees_equal, mock_data, tiny  # noqa: F401  (a fixture)
from jaxgan import (config as config_lib, diffusion, evaluate, families, inference, models, sample,
                    train, visualize)
from jaxgan.config import ConfigError
from jaxgan.families import ddpm

UNCONDITIONAL = str(REPO / "configs" / "ddpm_mnist.py")
CONDITIONAL = str(REPO / "configs" / "ddpm_mnist_conditional.py")


# --- schedules ---------------------------------------------------------------------------

def test_linear_schedule_endpoints_and_alpha_bar():
  s = diffusion.Schedule("linear", 1000)
  assert float(s.betas[0]) == pytest.approx(1e-4) and float(s.betas[-1]) == pytest.approx(0.02)
  abar = np.asarray(s.alphas_cumprod, np.float64)
  assert abar[0] == pytest.approx(1 - 1e-4)
  assert (np.diff(abar) < 0).all()  # strictly decreasing: every step adds noise
  # prod(1 - beta_t) with beta linear in t: computed here as exp(sum(log(1 - beta))).
  expected = np.exp(np.sum(np.log1p(-np.linspace(1e-4, 0.02, 1000))))
  assert abar[-1] == pytest.approx(expected, rel=1e-4) and abar[-1] < 5e-5
  np.testing.assert_allclose(s.alphas_cumprod_prev[1:], s.alphas_cumprod[:-1])
  assert float(s.alphas_cumprod_prev[0]) == 1.0


def test_cosine_schedule_follows_nichol_dhariwal():
  s = diffusion.Schedule("cosine", 1000)
  abar = np.asarray(s.alphas_cumprod, np.float64)
  assert (np.diff(abar) < 0).all() and 0 < abar[-1] < 1e-4 and abar[0] > 0.9999
  f = lambda t: np.cos((t / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
  np.testing.assert_allclose(abar[:990], f(np.arange(1, 991)) / f(0), rtol=1e-5)
  assert diffusion.betas("cosine", 1000).max() == 0.999  # the clip, at the last step


def test_unknown_schedule_and_sampler_are_config_errors():
  with pytest.raises(ConfigError, match="unknown noise schedule 'quadratic'"):
    diffusion.Schedule("quadratic", 1000)
  with pytest.raises(ConfigError, match="unknown sampler"):
    diffusion.timesteps("euler", 1000, 50)
  with pytest.raises(ConfigError, match="ancestral sampler.*use the ddim sampler"):
    diffusion.timesteps("ddpm", 1000, 50)
  with pytest.raises(ConfigError, match="must be in 1..1000"):
    diffusion.timesteps("ddim", 1000, 0)


def test_sampler_timesteps():
  np.testing.assert_array_equal(diffusion.timesteps("ddim", 1000, 50), np.arange(980, -1, -20))
  np.testing.assert_array_equal(diffusion.timesteps("ddpm", 10, 10), np.arange(9, -1, -1))
  np.testing.assert_array_equal(diffusion.timesteps("ddim", 1000, 50, start=500),
                                [500, *range(480, -1, -20)])
  np.testing.assert_array_equal(diffusion.timesteps("ddim", 1000, 50, start=540),
                                [540, *range(520, -1, -20)])


# --- the objective -----------------------------------------------------------------------

def test_q_sample_by_hand():
  s = diffusion.Schedule("linear", 1000)
  x = diffusion.q_sample(s, jnp.ones((2, 1, 1, 1)), jnp.array([0, 999]), jnp.ones((2, 1, 1, 1)))
  abar_last = float(s.alphas_cumprod[-1])
  np.testing.assert_allclose(x.ravel(), [np.sqrt(1 - 1e-4) + 1e-2,
                                         np.sqrt(abar_last) + np.sqrt(1 - abar_last)], rtol=1e-5)
  assert float(diffusion.simple_loss(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0]))) == 2.5


class OracleEps(nn.Module):
  """For x_0 = 0, x_t = sqrt(1 - abar_t) eps: this returns eps exactly, for the t it is given."""
  alphas_cumprod: jax.Array
  scale: float = 1.0

  @nn.compact
  def __call__(self, x, t, labels=None, train=False):
    w = self.param("w", nn.initializers.ones, ())  # something for the optimizer to hold
    return self.scale * w * x / jnp.sqrt(1 - self.alphas_cumprod[t])[:, None, None, None]


def small_config(path=UNCONDITIONAL, steps=1, **overrides):
  """`tiny`'s config on 8x8 images with a U-Net of two levels and one block each (fast to
  compile)."""
  return tiny(path, steps, **{"data.image_size": 8, "model.ch_mult": (1, 2),
                              "model.num_res_blocks": 1, **overrides})


@pytest.mark.parametrize("scale,expected", [(1.0, 0.0), (0.0, 1.0)])
def test_training_loss_on_a_hand_made_case(scale, expected):
  """x_0 = 0: the oracle's loss is 0 only if it is given the t the batch was noised at; a
  network that predicts 0 has loss E[eps^2] = 1."""
  family = families.create(small_config(**{"batch_size": 256}), "cpu")
  family.net = OracleEps(family.schedule.alphas_cumprod, scale)
  state = family.init_state(jax.random.PRNGKey(0))
  _, metrics = jax.jit(family.train_step)(state, {"image": jnp.zeros((256, 8, 8, 1))})
  assert float(metrics["loss"]) == pytest.approx(expected, abs=0.02 if expected else 1e-6)


@pytest.mark.parametrize("sampler,steps,eta", [("ddim", 10, 0.0), ("ddim", 7, 1.0),
                                               ("ddpm", 1000, 0.0)])
def test_samplers_recover_the_point_an_oracle_denoises_to(sampler, steps, eta):
  """With eps(x_t, t) = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t) (the data is the one point
  x0), every sampler must end at x0 from any x_T."""
  s = diffusion.Schedule("linear", 1000)
  x0 = jnp.linspace(-0.9, 0.9, 16).reshape(1, 4, 4, 1)

  def eps_fn(x, t):
    abar = s.alphas_cumprod[t][:, None, None, None]
    return (x - jnp.sqrt(abar) * x0) / jnp.sqrt(1 - abar)

  seq = diffusion.timesteps(sampler, 1000, steps)
  out = jax.jit(lambda x, k: diffusion.sample_loop(s, eps_fn, x, k, sampler, seq, eta))(
      jax.random.normal(jax.random.PRNGKey(1), (3, 4, 4, 1)), jax.random.PRNGKey(2))
  np.testing.assert_allclose(out, jnp.broadcast_to(x0, out.shape), atol=2e-3)


def oracle(s, x0):
  """eps(x_t, t) of a model whose estimate of x_0 is always `x0`."""
  def eps_fn(x, t):
    abar = s.alphas_cumprod[t][:, None, None, None]
    return (x - jnp.sqrt(abar) * x0) / jnp.sqrt(1 - abar)
  return eps_fn


@pytest.mark.parametrize("sampler,steps", [("ddim", 10), ("ddpm", 1000)])
def test_clipping_the_estimate_changes_nothing_inside_the_range(sampler, steps):
  """With x0_hat in [-1, 1], the clipped samplers are the plain ones: for `ddpm` eq. 7's
  posterior mean around x0_hat is Algorithm 2's mean (the same noise draws)."""
  s = diffusion.Schedule("linear", 1000)
  eps_fn = oracle(s, jnp.linspace(-0.9, 0.9, 16).reshape(1, 4, 4, 1))
  seq = diffusion.timesteps(sampler, 1000, steps)
  run = jax.jit(lambda x, k, clip: diffusion.sample_loop(s, eps_fn, x, k, sampler, seq, 1.0,
                                                         trajectory=True, clip_denoised=clip),
                static_argnums=2)
  x_T = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 1))
  plain, clipped = (run(x_T, jax.random.PRNGKey(2), clip)[1] for clip in (False, True))
  np.testing.assert_allclose(clipped, plain, atol=2e-4)


def test_clipped_ancestral_step_moves_by_the_clipped_part_of_the_estimate():
  """x0_hat = 3 everywhere: one ancestral step from t = 500 with clipping lands
  sqrt(abar_{t-1}) beta_t / (1 - abar_t) * (1 - 3) away from the plain step (eq. 7)."""
  s = diffusion.Schedule("linear", 1000)
  eps_fn = oracle(s, 3.0)
  x_T = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 1))
  steps = {clip: diffusion.sample_loop(s, eps_fn, x_T, jax.random.PRNGKey(2), "ddpm", [500, 499],
                                       trajectory=True, clip_denoised=clip)[1][1]
           for clip in (False, True)}
  t = 500
  coef = np.sqrt(float(s.alphas_cumprod[t - 1])) * float(s.betas[t]) / (1 - float(s.alphas_cumprod[t]))
  np.testing.assert_allclose(steps[True] - steps[False], coef * (1.0 - 3.0), rtol=1e-3)


@pytest.mark.parametrize("sampler,steps,eta", [("ddim", 10, 1.0), ("ddpm", 1000, 0.0)])
def test_padded_timesteps_run_the_same_steps_through_one_program(sampler, steps, eta):
  """The denoising view's loop: sequences from several starts, padded with -1 to one length
  and passed as an argument (one compiled program), give bit for bit what each sequence
  gives unpadded, noise draws included."""
  s = diffusion.Schedule("linear", 1000)
  eps_fn = lambda x, t: jnp.sin(x + t[:, None, None, None] / 1000.0)  # noqa: E731
  x, key = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 1)), jax.random.PRNGKey(2)
  starts = [5, 300, 12]
  padded = diffusion.padded_timesteps(sampler, 1000, steps, starts)
  assert padded.shape[1] == max(len(diffusion.timesteps(sampler, 1000, steps, start=t))
                                for t in starts) and padded.min() == -1
  one_program = jax.jit(lambda q: diffusion.sample_loop(s, eps_fn, x, key, sampler, q, eta,
                                                        padded=True))
  for start, seq in zip(starts, padded):
    alone = diffusion.sample_loop(s, eps_fn, x, key, sampler,
                                  diffusion.timesteps(sampler, 1000, steps, start=start), eta)
    np.testing.assert_array_equal(one_program(seq), alone)
  assert one_program._cache_size() == 1  # pylint: disable=protected-access


# --- the network -------------------------------------------------------------------------

def count(module, *args):
  variables = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *args))
  return sum(x.size for x in jax.tree.leaves(variables["params"]))


X, T, Y = jnp.zeros((2, 28, 28, 1)), jnp.zeros((2,), jnp.int32), jnp.zeros((2,), jnp.int32)


# The reference's downsampling: a 3x3 stride-2 conv (with bias) at the end of every level
# but the last; 2x2 average pooling has no parameters.
DOWN_32_64 = (9 * 32 * 32 + 32) + (9 * 64 * 64 + 64)
DOWN_16_32 = (9 * 16 * 16 + 16) + (9 * 32 * 32 + 32)


@pytest.mark.parametrize("kwargs,args,expected", [
    # configs/ddpm_mnist.py's U-Net: ch 32, ch_mult (1, 2, 2), 2 residual blocks per level.
    ({"ch": 32, "ch_mult": (1, 2, 2), "num_res_blocks": 2}, (X, T), 1_493_153 + DOWN_32_64),
    ({"ch": 32, "ch_mult": (1, 2, 2), "num_res_blocks": 2, "downsample": "avg_pool"}, (X, T),
     1_493_153),
    # ... conditional: 11 x 128 more (the label embedding, with the null label).
    ({"ch": 32, "ch_mult": (1, 2, 2), "num_res_blocks": 2, "num_classes": 10}, (X, T, Y),
     1_493_153 + DOWN_32_64 + 11 * 128),
    # The README's CPU runs: ch 16, ch_mult (1, 2, 4), 1 residual block per level, pooling.
    ({"ch": 16, "ch_mult": (1, 2, 4), "num_res_blocks": 1, "downsample": "avg_pool"}, (X, T),
     624_897),
    ({"ch": 16, "ch_mult": (1, 2, 4), "num_res_blocks": 1}, (X, T), 624_897 + DOWN_16_32),
])
def test_unet_parameter_counts(kwargs, args, expected):
  assert count(models.create("ddpm_unet", **kwargs), *args) == expected


# configs/ddpm_mnist_cpu.py's U-Net: ch 16, ch_mult (1, 2, 2), 1 residual block per level.
CPU_PARAMS = 255_745 + DOWN_16_32


@pytest.mark.parametrize("name,expected", [("ddpm_mnist_cpu.py", CPU_PARAMS),
                                           ("ddpm_mnist_conditional_cpu.py", CPU_PARAMS + 11 * 64)])
def test_one_step_of_each_cpu_config_at_its_size(name, expected):
  """The CPU configs' own U-Nets (not `tiny`'s), one step on a batch of two digits."""
  config = config_lib.load(str(REPO / "configs" / name))
  family = families.create(config, "cpu")
  state = family.init_state(jax.random.PRNGKey(0))
  assert family.param_counts(state) == {"denoiser": expected}
  batch = {"image": jax.random.uniform(jax.random.PRNGKey(1), (2, 28, 28, 1), minval=-1),
           "label": jnp.array([3, 7])}
  state, metrics = jax.jit(family.train_step)(state, batch)
  assert int(state.step) == 1 and np.isfinite(float(metrics["loss"]))
  assert float(metrics["ema_decay"]) == pytest.approx(0.1)  # the warmed-up decay's first value


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_unet_output_shape_and_dtype(dtype):
  net = models.create("ddpm_unet", ch=8, ch_mult=(1, 2, 2), num_res_blocks=1, num_classes=10,
                      dtype=dtype)
  out, variables = jax.eval_shape(lambda: net.init_with_output(jax.random.PRNGKey(0), X, T, Y))
  assert out.shape == X.shape and out.dtype == jnp.float32
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))


def test_timestep_embedding_is_the_transformers():
  from jaxgan.models.ddpm_unet import timestep_embedding  # pylint: disable=import-outside-toplevel
  emb = np.asarray(timestep_embedding(jnp.array([0, 7]), 8))
  np.testing.assert_allclose(emb[0], [0, 0, 0, 0, 1, 1, 1, 1], atol=1e-7)
  freqs = 10_000 ** (-np.arange(4) / 3)
  np.testing.assert_allclose(emb[1], np.concatenate([np.sin(7 * freqs), np.cos(7 * freqs)]),
                             rtol=1e-5, atol=1e-6)


def test_image_size_must_fit_the_downsamplings():
  with pytest.raises(ConfigError, match="divisible by 2\\^2"):
    families.create(small_config(**{"data.image_size": 6, "model.ch_mult": (1, 2, 2)}), "cpu")


# --- classifier-free guidance ------------------------------------------------------------

def perturbed_state(family, seed=0):
  """The initial state with every weight moved (the output convs start at zero, which would
  make every prediction 0 whatever the label)."""
  def perturbed(key, moves):  # one compiled program, not an eager op per weight
    state = family.init_state(key)
    leaves, treedef = jax.tree.flatten(state.ema_params)
    keys = jax.random.split(moves, len(leaves))
    moved = [p + 0.3 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)]
    return state.replace(ema_params=jax.tree.unflatten(treedef, moved))
  return jax.jit(perturbed)(jax.random.PRNGKey(seed), jax.random.PRNGKey(seed + 1))


def conditional_family(guidance):
  return families.create(small_config(CONDITIONAL, **{"sampling.guidance": guidance}), "cpu")


def test_guidance_zero_ignores_the_label():
  images = {}
  for guidance in (0.0, 1.0):
    family = conditional_family(guidance)
    state = perturbed_state(family)
    generate = jax.jit(family.generate)
    for label in (3, 7):
      inputs = family.latent_inputs(jax.random.PRNGKey(5), 4, label)
      images[guidance, label] = np.asarray(generate(state, inputs))
  np.testing.assert_array_equal(images[0.0, 3], images[0.0, 7])
  assert np.abs(images[1.0, 3] - images[1.0, 7]).max() > 1e-3  # the label matters at w = 1


def test_guided_eps_is_the_documented_combination():
  family = conditional_family(2.5)
  state = perturbed_state(family)
  x = jax.random.normal(jax.random.PRNGKey(3), (2, 8, 8, 1))
  t, labels = jnp.array([10, 900]), jnp.array([3, 7])
  eps_c = family.eps(state.ema_params, x, t, labels, 1.0)
  eps_u = family.eps(state.ema_params, x, t, jnp.full((2,), 10), 1.0)  # the null label
  np.testing.assert_allclose(family.eps(state.ema_params, x, t, labels, 2.5),
                             eps_u + 2.5 * (eps_c - eps_u), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(family.eps(state.ema_params, x, t, None, 2.5), eps_u, atol=1e-6)
  # w = 0 is the unguided model: the null label's prediction, whatever the label.
  np.testing.assert_allclose(family.eps(state.ema_params, x, t, labels, 0.0), eps_u, atol=1e-6)


def test_trajectory_ends_in_the_sample_and_starts_in_the_noise():
  family = conditional_family(2.0)
  family.sampler, family.steps = "ddim", 5
  state = perturbed_state(family)
  inputs = family.latent_inputs(jax.random.PRNGKey(4), 3)
  picture, ts = family.trajectory(state, inputs, columns=4)
  # tau = 800, 600, ..., 0: columns after 0, 2, 3 and 5 of the 5 steps (x_0 shown as -1).
  np.testing.assert_array_equal(ts, [800, 400, 200, -1])
  tiles = picture_tiles(picture, rows=3, cols=4, size=8).astype(int)
  samples = visualize.to_uint8(jax.jit(family.generate)(state, inputs)).astype(int)
  assert np.abs(tiles[:, -1] - samples).max() <= 1  # the same loop, compiled apart
  np.testing.assert_array_equal(tiles[:, 0], visualize.to_uint8(jnp.clip(inputs["x_T"], -1, 1)))


def picture_tiles(picture, rows, cols, size):
  """A grid's tiles back, [rows, cols, size, size, C] (`visualize.image_grid`'s padding)."""
  pad = (picture.shape[0] - rows * size) // (rows + 1)
  step = size + pad
  return np.stack([np.stack([picture[pad + r * step:pad + r * step + size,
                                     pad + c * step:pad + c * step + size]
                             for c in range(cols)]) for r in range(rows)])


def test_unconditional_models_take_no_label_or_guidance():
  family = families.create(small_config(), "cpu")
  with pytest.raises(ConfigError, match="unconditional"):
    family.latent_inputs(jax.random.PRNGKey(0), 2, 3)
  with pytest.raises(ConfigError, match="guidance is for class-conditional models"):
    families.create(small_config(**{"sampling.guidance": 2.0}), "cpu")


def test_labels_are_dropped_with_probability_p_uncond():
  family = conditional_family(1.0)
  labels = jnp.arange(4096) % 10
  y = np.asarray(family.drop_labels(jax.random.PRNGKey(0), labels))
  dropped = y == 10  # the null label
  assert 0.08 < dropped.mean() < 0.12
  np.testing.assert_array_equal(y[~dropped], np.asarray(labels)[~dropped])


# --- the loop, sampling and evaluation ---------------------------------------------------

def test_resume_is_exact_and_the_ema_is_checkpointed(tmp_path, mock_data):  # noqa: F811
  straight = train.train_and_evaluate(small_config(steps=3), str(tmp_path / "straight"))
  train.train_and_evaluate(small_config(steps=2), str(tmp_path / "resumed"))
  resumed = train.train_and_evaluate(small_config(steps=3), str(tmp_path / "resumed"))
  assert int(resumed.step) == 3
  assert_trees_equal(jax.device_get(resumed), jax.device_get(straight))
  # The EMA is its own copy of the weights, not the weights.
  assert any(np.abs(a - b).max() > 0 for a, b in zip(jax.tree.leaves(jax.device_get(straight.params)),
                                                     jax.tree.leaves(jax.device_get(straight.ema_params))))


def png_shape(path):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  with Image.open(path) as image:
    return image.size[::-1]


def test_one_step_run_then_sample_denoise_and_evaluate(tmp_path, mock_data):  # noqa: F811
  run = tmp_path / "run"
  config = small_config(CONDITIONAL, **{"data.image_size": 28})
  state = train.train_and_evaluate(config, str(run))
  assert int(state.step) == 1
  # 10,737 and the one 3x3 stride-2 downsampling conv of 4 channels.
  assert json.loads((run / "params.json").read_text()) == {"denoiser": 10_737 + 9 * 4 * 4 + 4}
  images, labels = sample.sample(str(run), 6, 0, 4, label=None, sampler="ddim", steps=3,
                                 guidance=0.5)
  assert images.shape == (6, 28, 28, 1) and images.dtype == np.uint8
  np.testing.assert_array_equal(labels, [0, 1, 2, 3, 4, 5])
  sample.denoising_view(str(run), str(tmp_path / "denoise.png"), 2, [10, 500], steps=3)
  assert (tmp_path / "denoise.png").exists()
  # The loop's last picture (one row per class), and the command's from the raw weights.
  # 2 DDIM steps (`tiny`): x_T, x after one step, x_0.
  assert png_shape(run / "trajectory.png") == (2 + 10 * 30, 2 + 3 * 30)
  sample.trajectory(str(run), str(tmp_path / "trajectory.png"), 3, seed=1, label=4,
                    raw_weights=True)
  assert png_shape(tmp_path / "trajectory.png") == (2 + 3 * 30, 2 + 3 * 30)
  judge = tmp_path / "judge"
  train.train_and_evaluate(tiny(str(REPO / "configs" / "mnist_classifier.py"), steps=1), str(judge))
  result = evaluate.evaluate(str(run), num=10, batch_size=10, classifier_dir=str(judge),
                             sampler="ddim", steps=2, guidance=3.0)
  assert result["num_samples"] == 10 and np.isfinite(result["fid"]) and "accuracy" in result
  assert result["sampling"]["steps"] == 2 and result["sampling"]["guidance"] == 3.0
  generation = result["generation"]
  assert generation["weights"] == "ema" and generation["compile_seconds"] > 0
  assert generation["seconds_per_1000"] == pytest.approx(100 * generation["seconds"])
  # The same images written out and judged as outside samples: the same numbers.
  images, labels = sample.sample(str(run), 10, 0, 10, sampler="ddim", steps=2, guidance=3.0)
  np.savez(tmp_path / "outside.npz", images=images[..., 0], labels=labels)  # [N, 28, 28] too
  outside = evaluate.evaluate_npz(str(tmp_path / "outside.npz"), classifier_dir=str(judge))
  assert json.loads((tmp_path / "outside.eval.json").read_text())["fid"] == outside["fid"]
  for key in ("fid", "fid_train_reference", "accuracy", "per_class_accuracy", "confident_share"):
    assert outside[key] == pytest.approx(result[key], rel=1e-6, abs=1e-9), key
  np.savez(tmp_path / "floats.npz", images=images.astype(np.float32))
  with pytest.raises(ConfigError, match="images must be uint8 digits"):
    evaluate.evaluate_npz(str(tmp_path / "floats.npz"), classifier_dir=str(judge))
  np.savez(tmp_path / "other.npz", x=images)
  with pytest.raises(ConfigError, match="has no array named 'images' \\(it has x\\)"):
    evaluate.evaluate_npz(str(tmp_path / "other.npz"), classifier_dir=str(judge))


def test_sampler_flags_are_refused_for_gans(tmp_path, mock_data):  # noqa: F811
  run = tmp_path / "gan"
  train.train_and_evaluate(tiny(str(REPO / "configs" / "gan_mnist.py")), str(run))
  with pytest.raises(ConfigError, match="--steps: only diffusion runs have a sampler"):
    inference.load_run(str(run), steps=50)


def test_learning_rate_warms_up_then_stays_or_decays_to_zero():
  """Ho et al.'s constant rate after the linear warmup by default; `optimizer.decay=cosine`
  halves it mid-run and ends at zero on the last step."""
  config = config_lib.load(str(REPO / "configs" / "ddpm_mnist_cpu.py"))
  constant = ddpm.learning_rate(config)
  peak, warmup, steps = (config.optimizer.learning_rate, config.optimizer.warmup_steps,
                         config.num_train_steps)
  np.testing.assert_allclose([constant(0), constant(warmup // 2), constant(warmup),
                              constant(steps)], [0, peak / 2, peak, peak], rtol=1e-6)
  config.optimizer.decay = "cosine"
  cosine = ddpm.learning_rate(config)
  middle = warmup + (steps - warmup) // 2
  np.testing.assert_allclose([cosine(warmup // 2), cosine(warmup), cosine(middle)],
                             [peak / 2, peak, peak / 2], rtol=1e-5)
  assert 0 <= float(cosine(steps - 1)) < peak * 1e-6 and float(cosine(steps)) == 0
  config.optimizer.decay = "linear"
  with pytest.raises(ConfigError, match="optimizer.decay must be one of constant, cosine"):
    config_lib.validate(config)
  old = {"family": "ddpm", "optimizer": {"learning_rate": 2e-4}}
  assert config_lib.upgrade(old)["optimizer"]["decay"] == "constant"
