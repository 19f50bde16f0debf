"""Evaluate a trained run: `python -m jaxgan.evaluate --workdir W [--num 10000]`.

Writes `W/eval.json` and prints it. What is measured depends on the run's family, each
family's evaluator in `EVALUATORS` (one signature: family, state, config, `EvalArgs`):

- `gan` on MNIST (the digit metrics): `num` images are generated (conditional models:
  an equal share of each class, labels 0..9 in turn) and judged by the repo's MNIST
  classifier (configs/mnist_classifier.py):
  - `fid`: the Frechet distance between the classifier's 128-d features of the
    generated images and of the MNIST test set; `fid_train_reference` is the same for
    `num` real training images, the floor a perfect generator would reach;
  - every model: the histogram of predicted classes, its entropy (bits; 3.32 is
    uniform) and the share of samples the classifier labels with probability >= 0.9;
  - conditional models: per-class and overall accuracy (prediction == requested
    label), the confusion matrix (also `W/confusion.png`) and the 3-vs-7 and 4-vs-9
    confusion rates.
- `ddpm` (diffusion) on MNIST: the same digit metrics, the images drawn with the run's
  `config.sampling` or the sampler flags (`--sampler`, `--steps`, `--eta`,
  `--guidance`), recorded in `sampling` with the seconds the generation took.
- `classifier`: test-set accuracy.
- `pix2pix`: mean L1, PSNR and SSIM of the translated eval split against the real
  targets, and triplet grids (`jaxgan.families.pix2pix.evaluate`).
- `cyclegan`: for each direction, the share of translations a domain classifier assigns
  to the target domain and the cycle reconstruction L1, and triplet grids
  (`jaxgan.families.cyclegan.evaluate`).

The MNIST classifier lives in --classifier_dir, else $JAXGAN_CLASSIFIER_DIR, else
~/.cache/jaxgan/mnist_classifier; when it has no checkpoint, it is trained there first
with configs/mnist_classifier.py (2812 steps, minutes on a 2-core CPU), using the run's
data settings (data_dir, manual_dir). The domain classifier of a CycleGAN run lives in
--classifier_dir, else ~/.cache/jaxgan/domain_classifier/<data set>, and is trained there
first in the same way with configs/domain_classifier.py on the run's data set.
"""

import dataclasses
import json
import os
import pathlib
import time
from typing import Any, Callable

from absl import app, flags

import jaxgan  # noqa: F401  (sets CPU XLA flags before JAX starts its backend)
from jaxgan import errors
from jaxgan.errors import ConfigError

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags (defined only when run as a command, so that importing
  this module as a library defines none)."""
  flags.DEFINE_string("workdir", None, "The run's --workdir.")
  flags.DEFINE_integer("num", 10_000, "Number of generated images to judge.")
  flags.DEFINE_integer("seed", 0, "Seed of the noise.")
  flags.DEFINE_integer("batch_size", 500, "Images per call.")
  flags.DEFINE_string("classifier_dir", None, "Workdir of the judging classifier: MNIST's for "
                      "digit metrics, the domain classifier for CycleGAN (see above).")
  flags.DEFINE_enum("sampler", None, ["ddpm", "ddim"], "Diffusion runs: the sampler (default: "
                    "the run's config.sampling).")
  flags.DEFINE_integer("steps", None, "Diffusion runs: sampling steps.")
  flags.DEFINE_float("eta", None, "Diffusion runs, ddim: 0 deterministic, 1 DDPM's variance.")
  flags.DEFINE_float("guidance", None, "Conditional diffusion runs: the guidance scale w.")
  flags.mark_flags_as_required(["workdir"])

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"
CLASSIFIER_CONFIG = CONFIGS / "mnist_classifier.py"
DOMAIN_CLASSIFIER_CONFIG = CONFIGS / "domain_classifier.py"
# Share of samples counted as "confidently classified".
CONFIDENT = 0.9
# Pairs of digits that are easy to confuse, reported for conditional models.
PAIRS = ((3, 7), (4, 9))


def default_classifier_dir() -> str:
  return os.environ.get("JAXGAN_CLASSIFIER_DIR") or os.path.join(
      os.path.expanduser("~"), ".cache", "jaxgan", "mnist_classifier")


def default_domain_classifier_dir(data_name: str) -> str:
  return os.path.join(os.path.expanduser("~"), ".cache", "jaxgan", "domain_classifier",
                      data_name.replace("/", "_"))


def _batched(fn, arrays, batch_size):
  """Concatenated fn(chunk) over chunks of `arrays` along the first axis."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  outputs = [jax.device_get(fn(arrays[i:i + batch_size])) for i in range(0, len(arrays), batch_size)]
  return jax.tree.map(lambda *xs: np.concatenate(xs), *outputs)


def classifier_predictions(family, state, images, batch_size: int = 1000):
  """(probabilities [N, K], features [N, F]) of float images in [-1, 1] or uint8."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  if images.dtype == np.uint8:
    images = images.astype(np.float32) / 127.5 - 1.0
  predict = jax.jit(family.predict)
  return _batched(lambda chunk: predict(state, chunk), images, batch_size)


def test_accuracy(family, state, data_config) -> float:
  """Accuracy on `data_config.eval_split` (default: test)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jaxgan.datasets import preparation  # pylint: disable=import-outside-toplevel
  test = preparation.load_split(data_config, data_config.get("eval_split") or "test")
  probs, _ = classifier_predictions(family, state, test["image"])
  return float(np.mean(np.argmax(probs, -1) == test["label"]))


def load_classifier(classifier_dir: str, data_config, config_file=None, **data_overrides):
  """(family, state) of the classifier in `classifier_dir`; when there is none, it is first
  trained there with `config_file` (default: the MNIST classifier's), the run's data_dir and
  manual_dir and `data_overrides` (config.data fields)."""
  from jaxgan import checkpoint, config as config_lib, train  # pylint: disable=import-outside-toplevel
  from jaxgan.inference import load_run  # pylint: disable=import-outside-toplevel
  config_file = config_file or CLASSIFIER_CONFIG  # read at call time (tests replace it)
  if checkpoint.Checkpoints(os.path.join(classifier_dir, "checkpoints")).latest_step() is None:
    if not config_file.exists():
      raise FileNotFoundError(f"no classifier in {classifier_dir} and no {config_file} "
                              "to train one with")
    config = config_lib.load(str(config_file))
    config.data.data_dir = data_config.get("data_dir")
    config.data.manual_dir = data_config.get("manual_dir")
    config.data.update(data_overrides)
    print(f"no classifier in {classifier_dir}: training it there first "
          f"({config.num_train_steps} steps of {config_file.name})", flush=True)
    train.train_and_evaluate(config, classifier_dir)
    _, family, state = load_run(classifier_dir)
    write_json(os.path.join(classifier_dir, "eval.json"),
               {"test_accuracy": test_accuracy(family, state, config.data)})
  _, family, state = load_run(classifier_dir)
  return family, state


@dataclasses.dataclass(frozen=True)
class EvalArgs:
  """What the command line asks of an evaluation, the same for every family; each
  evaluator reads the fields it uses."""
  workdir: str
  num: int = 10_000
  seed: int = 0
  batch_size: int = 500
  classifier_dir: str | None = None


def evaluate_digits(family, state, config, args: EvalArgs) -> dict[str, Any]:
  """The digit metrics of a GAN or a diffusion model trained on MNIST (the module docstring)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jaxgan import inference, metrics, visualize  # pylint: disable=import-outside-toplevel
  from jaxgan.datasets import preparation  # pylint: disable=import-outside-toplevel
  if config.data.name != "mnist":
    raise ConfigError(f"the digit metrics judge MNIST models; this run trained on "
                      f"{config.data.name}")
  judge, judge_state = load_classifier(args.classifier_dir or default_classifier_dir(),
                                       config.data)
  start = time.perf_counter()
  images, labels = inference.generate(family, state, args.num, args.seed, args.batch_size)
  generate_seconds = time.perf_counter() - start
  probs, features = classifier_predictions(judge, judge_state, images)
  test = preparation.load_split(config.data, "test")
  _, test_features = classifier_predictions(judge, judge_state, test["image"])
  reference = preparation.load_split(config.data, "train", args.num)["image"]
  _, reference_features = classifier_predictions(judge, judge_state, reference)
  predicted = np.argmax(probs, -1)
  k = probs.shape[-1]
  histogram = metrics.class_histogram(predicted, k)
  result = {
      "num_samples": int(args.num),
      "fid": metrics.fid(features, test_features),
      "fid_train_reference": metrics.fid(reference_features, test_features),
      "class_histogram": histogram.tolist(),
      "class_entropy_bits": metrics.entropy_bits(histogram),
      "confident_share": float(np.mean(probs.max(-1) >= CONFIDENT)),
  }
  if "sampling" in config:  # diffusion: how the images were drawn, and how long it took
    result["sampling"] = {**config.sampling.to_dict(), "generate_seconds": generate_seconds}
  if labels is not None:
    matrix = metrics.confusion_matrix(labels, predicted, k)
    per_class = np.diag(matrix) / np.maximum(matrix.sum(1), 1)
    result.update({
        "accuracy": float(np.mean(predicted == labels)),
        "per_class_accuracy": per_class.tolist(),
        "confusion_matrix": matrix.tolist(),
        "pair_confusion": {f"{a}_vs_{b}": metrics.pair_confusion(matrix, a, b) for a, b in PAIRS},
    })
    visualize.plot_confusion(matrix, os.path.join(args.workdir, "confusion.png"))
  return result


def evaluate_classifier(family, state, config, args: EvalArgs) -> dict[str, Any]:
  del args
  return {"test_accuracy": test_accuracy(family, state, config.data)}


def evaluate_pix2pix(family, state, config, args: EvalArgs) -> dict[str, Any]:
  del family
  from jaxgan.families import pix2pix  # pylint: disable=import-outside-toplevel
  return pix2pix.evaluate(config, state, args.workdir)


def evaluate_cyclegan(family, state, config, args: EvalArgs) -> dict[str, Any]:
  """`jaxgan.families.cyclegan.evaluate`, judged by the domain classifier of the run's data
  set (trained first on its real images when there is none; `classifier_splits`)."""
  from jaxgan import config as config_lib  # pylint: disable=import-outside-toplevel
  from jaxgan.families import cyclegan  # pylint: disable=import-outside-toplevel
  data = config.data
  classifier_dir = args.classifier_dir or default_domain_classifier_dir(data.name)
  fit, held_out = classifier_splits(data.split, data.eval_split)
  judge, judge_state = load_classifier(classifier_dir, data, DOMAIN_CLASSIFIER_CONFIG,
                                       name=data.name, split=fit, eval_split=held_out)
  judge_config = config_lib.load_json(classifier_dir)
  if judge_config.data.name != data.name:
    raise ConfigError(f"the classifier in {classifier_dir} judges "
                      f"{judge_config.data.name}, this run translates {data.name}")
  result = cyclegan.evaluate(config, family, state, args.workdir, judge, judge_state,
                             judge_config.data.image_size)
  accuracy_file = os.path.join(classifier_dir, "eval.json")
  if not os.path.exists(accuracy_file):  # a classifier trained by hand with jaxgan.main
    write_json(accuracy_file, {"test_accuracy": test_accuracy(judge, judge_state, judge_config.data)})
  with open(accuracy_file) as f:
    accuracy = json.load(f)["test_accuracy"]
  return {**result, "classifier": {"dir": classifier_dir, "trained_on": judge_config.data.split,
                                   "steps": judge_config.num_train_steps,
                                   "accuracy": accuracy,
                                   "accuracy_on": judge_config.data.eval_split}}


def classifier_splits(phase: str, eval_phase: str) -> tuple[str, str]:
  """(the domain classifier's training split, the split its accuracy is measured on), both
  domains each. With a test phase: train on the training images, measure on the test
  images. Without one (the 64x64 sets: the translations are judged on the training
  images), a fifth of each domain is held out, so that the accuracy is not measured on
  images the classifier has learnt."""
  from jaxgan.datasets import preparation  # pylint: disable=import-outside-toplevel
  train, test = (preparation.domain_splits(p).values() for p in (phase, eval_phase))
  if eval_phase != phase:
    return "+".join(train), "+".join(test)
  return "+".join(f"{s}[:80%]" for s in train), "+".join(f"{s}[80%:]" for s in train)


# config.family -> fn(family, state, config, args) -> results: the one registry of what
# `evaluate` measures, every evaluator with the same signature.
Evaluator = Callable[[Any, Any, Any, EvalArgs], dict[str, Any]]
EVALUATORS: dict[str, Evaluator] = {
    "gan": evaluate_digits,
    "ddpm": evaluate_digits,
    "classifier": evaluate_classifier,
    "pix2pix": evaluate_pix2pix,
    "cyclegan": evaluate_cyclegan,
}


def write_json(path: str, obj) -> None:
  with open(path, "w") as f:
    json.dump(obj, f, indent=2)
    f.write("\n")


def evaluate(workdir: str, num: int = 10_000, seed: int = 0, batch_size: int = 500,
             classifier_dir: str | None = None, **sampling) -> dict[str, Any]:
  """Evaluates the latest checkpoint of `workdir` and writes `workdir/eval.json`;
  `sampling`: a diffusion run's sampler settings (`inference.load_run`)."""
  from jaxgan.inference import load_run  # pylint: disable=import-outside-toplevel
  if num <= 0:
    raise ConfigError(f"--num must be positive, got {num}")
  config, family, state = load_run(workdir, **sampling)
  if config.family not in EVALUATORS:
    raise ConfigError(f"no evaluation for family {config.family!r}; there is one for "
                      f"{', '.join(sorted(EVALUATORS))}")
  args = EvalArgs(workdir, num=num, seed=seed, batch_size=batch_size,
                  classifier_dir=classifier_dir)
  result = EVALUATORS[config.family](family, state, config, args)
  result = {"step": int(state.step), **result}
  write_json(os.path.join(workdir, "eval.json"), result)
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  errors.exit_on_argument_problems(errors.argument_problems(  # before anything is loaded
      positive={"num": FLAGS.num, "batch_size": FLAGS.batch_size, "steps": FLAGS.steps},
      nonnegative={"eta": FLAGS.eta, "guidance": FLAGS.guidance},
      output_dirs={"workdir": FLAGS.workdir, "classifier_dir": FLAGS.classifier_dir}))
  try:
    result = evaluate(FLAGS.workdir, FLAGS.num, FLAGS.seed, FLAGS.batch_size, FLAGS.classifier_dir,
                      **{k: FLAGS[k].value for k in ("sampler", "steps", "eta", "guidance")})
  except (*errors.USER_ERRORS, FileNotFoundError) as e:
    errors.exit_with(e)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  define_flags()
  app.run(main)
