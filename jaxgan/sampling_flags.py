"""The command-line flags of how a run draws its images, shared by `jaxgan.sample` and
`jaxgan.evaluate`: a diffusion run's sampler settings (each overrides the run's
`config.sampling` field of the same name when given; `inference.override_sampling`) and
`--raw_weights` (`inference.load_run`). Imports only absl, so that a command checks its
arguments before JAX loads."""

from absl import flags

# The flags that override `config.sampling` fields of the same name.
SAMPLING = ("sampler", "steps", "eta", "guidance", "clip_denoised")


def define() -> None:
  flags.DEFINE_enum("sampler", None, ["ddpm", "ddim"], "Diffusion runs: ancestral sampling "
                    "over all T steps (ddpm) or DDIM; default: the run's config.sampling.")
  flags.DEFINE_integer("steps", None, "Diffusion runs: sampling steps (ddim: any of 1..T).")
  flags.DEFINE_float("eta", None, "Diffusion runs, ddim: 0 deterministic, 1 DDPM's variance.")
  flags.DEFINE_float("guidance", None, "Conditional diffusion runs: the classifier-free "
                     "guidance scale w of eps_u + w (eps_c - eps_u); 0 ignores the label.")
  flags.DEFINE_bool("clip_denoised", None, "Diffusion runs: clip the estimate of x_0 to [-1, 1] "
                    "at every step (Ho et al.'s code); default: the run's config.sampling.")
  flags.DEFINE_bool("raw_weights", False, "Runs with config.ema_decay: draw from the trained "
                    "weights instead of their moving average.")


def given(flag_values: flags.FlagValues = flags.FLAGS) -> dict:
  """{name: value} of the `SAMPLING` flags (None where not given)."""
  return {k: flag_values[k].value for k in SAMPLING}
