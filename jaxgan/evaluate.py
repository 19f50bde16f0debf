"""Evaluate a trained run: `python -m jaxgan.evaluate --workdir W` writes `W/eval.json`.

Rebuilds the run from `W/config.json` and its latest checkpoint, calls the evaluation of
its family (`EVALUATORS`, keyed by `config.family`; each is `evaluate(config, state,
workdir) -> dict` and may write figures into the workdir), writes the result to
`W/eval.json` and prints it.

- `pix2pix`: mean L1, PSNR and SSIM of the translated eval split against the real
  targets, and triplet grids (`jaxgan.families.pix2pix.evaluate`).
"""

import json
import os
import sys

from absl import app, flags

import jaxgan  # noqa: F401  (sets CPU XLA flags before JAX starts its backend)

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags (defined only when run as a command, so that importing this
  module as a library, next to jaxgan.sample, defines none)."""
  flags.DEFINE_string("workdir", None, "The run's --workdir.")
  flags.mark_flags_as_required(["workdir"])


def _pix2pix(config, state, workdir):
  from jaxgan.families import pix2pix  # pylint: disable=import-outside-toplevel
  return pix2pix.evaluate(config, state, workdir)


EVALUATORS = {
    "pix2pix": _pix2pix,
}


def evaluate(workdir: str) -> dict:
  """The evaluation of `workdir`'s latest checkpoint; also written to `workdir/eval.json`."""
  from jaxgan import config as config_lib, inference  # pylint: disable=import-outside-toplevel
  config = config_lib.load_json(workdir)
  if config.family not in EVALUATORS:
    raise config_lib.ConfigError(f"no evaluation for family {config.family!r}; there is one "
                                 f"for {', '.join(sorted(EVALUATORS))}")
  _, _, state = inference.load_run(workdir)
  result = EVALUATORS[config.family](config, state, workdir)
  with open(os.path.join(workdir, "eval.json"), "w") as f:
    json.dump(result, f, indent=2, sort_keys=True)
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from jaxgan import checkpoint, config as config_lib, input_pipeline  # pylint: disable=import-outside-toplevel
  try:
    result = evaluate(FLAGS.workdir)
  except (checkpoint.CheckpointError, config_lib.ConfigError, input_pipeline.DataNotFoundError,
          FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
  define_flags()
  app.run(main)
