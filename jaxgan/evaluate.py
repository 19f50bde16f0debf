"""Evaluate a trained run: `python -m jaxgan.evaluate --workdir W [--num 10000]`.

Writes `W/eval.json` (or `--out`) and prints it. What is measured depends on the run's
family, each family's evaluator in `EVALUATORS` (one signature: family, state, config,
`EvalArgs`):

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
  `--guidance`), recorded in `sampling`.
- Both: `generation`, the seconds the generator took (`seconds`, and
  `seconds_per_1000` images) apart from its compilation (`compile_seconds`), on which
  device, and from which weights: runs that keep a moving average of them
  (`config.ema_decay`; every diffusion run) are judged by it unless `--raw_weights`.
- `classifier`: test-set accuracy.
- `pix2pix`: mean L1, PSNR and SSIM of the translated eval split against the real
  targets, and triplet grids (`jaxgan.families.pix2pix.evaluate`).
- `cyclegan`: for each direction, the share of translations a domain classifier assigns
  to the target domain and the cycle reconstruction L1, and triplet grids
  (`jaxgan.families.cyclegan.evaluate`).

Samples of any generator, this repo's or not (a PyTorch run's, say), are judged by the
same digit metrics with `--npz FILE` (`images` uint8 [N, 28, 28, 1], optional `labels`
of the class each image was asked for): `python -m jaxgan.evaluate --npz samples.npz
--manual_dir ../shared/data/mnist` writes `samples.eval.json` (or `--out`), and the
confusion matrix of labelled samples beside it.

Every family that makes images also gets the standard metrics (docs/standard_metrics.md):
Inception FID, KID and precision/recall under the clean-fid protocol
(`jaxgan.metrics.standard`), under `inception` in the results: GANs and DDPM against the
training split, pix2pix against the eval split's photos, CycleGAN each direction against
the target domain's images of its eval split. `--metrics` chooses: `own` (the family's
measures above) and any of `fid`, `kid`, `pr`; by default `own`, and the other three when
the Inception weights are at hand (--inception_weights, $JAXGAN_INCEPTION_WEIGHTS or the
cache: `jaxgan.metrics.inception.weights_path`), or needed (a GAN not on MNIST has no
measure of its own).

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
from jaxgan import errors, sampling_flags
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
  sampling_flags.define()
  flags.adopt_module_key_flags(sampling_flags)  # --help lists them
  flags.DEFINE_string("out", None, "Where the results go (default: <workdir>/eval.json; with "
                      "--npz, <file>.eval.json).")
  flags.DEFINE_string("npz", None, "Judge the digits in this .npz (`images` uint8 [N, 28, 28, "
                      "1], optional `labels`) instead of a run: samples of any generator.")
  flags.DEFINE_string("data_dir", None, "With --npz: the TFDS data dir of MNIST.")
  flags.DEFINE_string("manual_dir", None, "With --npz: MNIST's pre-downloaded files.")
  flags.DEFINE_list("metrics", None, f"What to report, of {', '.join(METRICS)} (own: the "
                    "family's measures; the rest: docs/standard_metrics.md). Default: own, and "
                    "fid,kid,pr when the Inception weights are at hand.")
  flags.DEFINE_string("inception_weights", None, "The FID Inception weights file "
                      "(pt_inception-2015-12-05-6726825d.pth); default: "
                      "$JAXGAN_INCEPTION_WEIGHTS, else the cache's, else downloaded there.")

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"
CLASSIFIER_CONFIG = CONFIGS / "mnist_classifier.py"
DOMAIN_CLASSIFIER_CONFIG = CONFIGS / "domain_classifier.py"
# Share of samples counted as "confidently classified".
CONFIDENT = 0.9
# Pairs of digits that are easy to confuse, reported for conditional models.
PAIRS = ((3, 7), (4, 9))
# The words of --metrics: the family's own measures, then the standard metrics
# (`jaxgan.metrics.standard.compare`'s names).
STANDARD_METRICS = ("fid", "kid", "pr")
METRICS = ("own",) + STANDARD_METRICS


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
  metrics: tuple[str, ...] | None = None  # of METRICS; None: the default (module docstring)
  inception_weights: str | None = None


def parse_metrics(words) -> tuple[str, ...] | None:
  """--metrics' words (a list or a comma-separated string; None: the default), checked."""
  if words is None:
    return None
  if isinstance(words, str):
    words = words.split(",")
  words = tuple(w.strip() for w in words if w.strip())
  unknown = [w for w in words if w not in METRICS]
  if unknown or not words:
    raise ConfigError(f"--metrics takes a comma-separated list of {', '.join(METRICS)}; got "
                      f"{','.join(words) or 'nothing'}")
  return words


def wants_own(args: EvalArgs) -> bool:
  return args.metrics is None or "own" in args.metrics


def standard_names(args: EvalArgs, needed: bool = False) -> tuple[str, ...]:
  """The standard metrics to report: those named in --metrics; by default all of them when
  the Inception weights are at hand without a download, or when `needed` (nothing else
  measures the run)."""
  from jaxgan.metrics import inception  # pylint: disable=import-outside-toplevel
  if args.metrics is not None:
    return tuple(n for n in STANDARD_METRICS if n in args.metrics)
  if needed or inception.weights_at_hand(args.inception_weights):
    return STANDARD_METRICS
  return ()


def reference_key(data_config, split: str, num: int | None = None) -> str:
  """The name of a reference set in the feature cache: data set, split, count and size."""
  import re  # pylint: disable=import-outside-toplevel
  key = f"{data_config.name}-{split}-{num or 'all'}-{data_config.image_size}px"
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", key)


def standard_metrics(args: EvalArgs, names, comparisons) -> dict[str, Any]:
  """{'inception': {name: metrics, ..., 'weights': the file}} for `comparisons`: name ->
  (generated images, reference key, a function that loads the reference images)."""
  if not names:
    return {}
  from jaxgan.metrics import inception, standard  # pylint: disable=import-outside-toplevel
  path = inception.weights_path(args.inception_weights)
  extractor = standard.Extractor.from_file(path, batch_size=min(args.batch_size, 50))
  result: dict[str, Any] = {"weights": {"path": path, "sha256": extractor.weights_sha256,
                                        "standard": extractor.weights_sha256 ==
                                        inception.WEIGHTS_SHA256}}
  for name, (generated, key, load) in comparisons.items():
    reference = standard.reference_features(extractor, key, load)
    result[name] = {"reference": key, "num_generated": len(generated),
                    "num_reference": len(reference),
                    **standard.compare(extractor.features(generated), reference, names)}
  return {"inception": result}


def evaluate_generator(family, state, config, args: EvalArgs) -> dict[str, Any]:
  """GANs and diffusion models: `num` images from noise, judged by the digit metrics (MNIST
  runs) and the standard metrics against the training split."""
  import jax  # pylint: disable=import-outside-toplevel
  from jaxgan import inference  # pylint: disable=import-outside-toplevel
  from jaxgan.datasets import preparation  # pylint: disable=import-outside-toplevel
  digits = wants_own(args) and (args.metrics is not None or config.data.name == "mnist")
  if digits and config.data.name != "mnist":
    raise ConfigError(f"the digit metrics judge MNIST models; this run trained on "
                      f"{config.data.name} (--metrics={','.join(STANDARD_METRICS)} measures it)")
  names = standard_names(args, needed=not digits)
  timing: dict[str, float] = {}
  images, labels = inference.generate(family, state, args.num, args.seed, args.batch_size,
                                      timing=timing)
  result: dict[str, Any] = {"num_samples": int(args.num), "generation": {
      **timing, "seconds_per_1000": 1000 * timing["seconds"] / args.num,
      "batch_size": args.batch_size, "device": jax.devices()[0].device_kind,
      "weights": "ema" if getattr(family, "use_ema", False) else "trained"}}
  if "sampling" in config:  # diffusion: how the images were drawn
    result["sampling"] = config.sampling.to_dict()
  if digits:
    result.update(evaluate_digits(config, args, images, labels))
  train = lambda: preparation.load_split(config.data, "train", args.num)["image"]
  result.update(standard_metrics(args, names, {
      "vs_train": (images, reference_key(config.data, "train", args.num), train)}))
  return result


def evaluate_digits(config, args: EvalArgs, images, labels) -> dict[str, Any]:
  """The digit metrics of generated MNIST images (the module docstring)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jaxgan import metrics, visualize  # pylint: disable=import-outside-toplevel
  from jaxgan.datasets import preparation  # pylint: disable=import-outside-toplevel
  judge, judge_state = load_classifier(args.classifier_dir or default_classifier_dir(),
                                       config.data)
  probs, features = classifier_predictions(judge, judge_state, images)
  test = preparation.load_split(config.data, "test")
  _, test_features = classifier_predictions(judge, judge_state, test["image"])
  reference = preparation.load_split(config.data, "train", args.num)["image"]
  _, reference_features = classifier_predictions(judge, judge_state, reference)
  predicted = np.argmax(probs, -1)
  k = probs.shape[-1]
  histogram = metrics.class_histogram(predicted, k)
  result = {
      "fid": metrics.fid(features, test_features),
      "fid_train_reference": metrics.fid(reference_features, test_features),
      "class_histogram": histogram.tolist(),
      "class_entropy_bits": metrics.entropy_bits(histogram),
      "confident_share": float(np.mean(probs.max(-1) >= CONFIDENT)),
  }
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
  if args.metrics is not None and standard_names(args):
    raise ConfigError("a classifier makes no images: --metrics=own is all it has")
  return {"test_accuracy": test_accuracy(family, state, config.data)}


def evaluate_pix2pix(family, state, config, args: EvalArgs) -> dict[str, Any]:
  """`jaxgan.families.pix2pix.evaluate`, and the standard metrics of its translations of
  the eval split against that split's photos."""
  del family
  from jaxgan.families import pix2pix  # pylint: disable=import-outside-toplevel
  names, split = standard_names(args), config.data.eval_split
  images = {} if names else None
  result = pix2pix.evaluate(config, state, args.workdir, images)
  comparisons = {f"vs_{split}": (images["outputs"], reference_key(config.data, split),
                                 lambda: images["targets"])} if names else {}
  return {**(result if wants_own(args) else {}), **standard_metrics(args, names, comparisons)}


def evaluate_cyclegan(family, state, config, args: EvalArgs) -> dict[str, Any]:
  """`jaxgan.families.cyclegan.evaluate` (`own`), and the standard metrics of each
  direction's translations against the target domain's images of the eval split."""
  from jaxgan.datasets import preparation  # pylint: disable=import-outside-toplevel
  from jaxgan.families import cyclegan  # pylint: disable=import-outside-toplevel
  names = standard_names(args)
  images = {} if names else None
  if wants_own(args):
    result = judged_cyclegan(family, state, config, args, images)
  else:
    cyclegan.evaluate(config, family, state, args.workdir, None, None, 0, images)
    result = {}
  splits = preparation.domain_splits(config.data.eval_split)
  comparisons = {direction: (images[direction], reference_key(config.data, splits[target]),
                             lambda target=target: images[target])
                 for direction, target in (("AtoB", "B"), ("BtoA", "A"))} if names else {}
  return {**result, **standard_metrics(args, names, comparisons)}


def judged_cyclegan(family, state, config, args: EvalArgs, images) -> dict[str, Any]:
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
                             judge_config.data.image_size, images)
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
    "gan": evaluate_generator,
    "ddpm": evaluate_generator,
    "classifier": evaluate_classifier,
    "pix2pix": evaluate_pix2pix,
    "cyclegan": evaluate_cyclegan,
}


# What an evaluation measures of the machine rather than of the model: the same model
# judged twice gives the same result without these.
TIMINGS = ("evaluate_seconds", "generation")


def judged(result: dict[str, Any]) -> dict[str, Any]:
  """`result` without its `TIMINGS`."""
  return {k: v for k, v in result.items() if k not in TIMINGS}


def write_json(path: str, obj) -> None:
  with open(path, "w") as f:
    json.dump(obj, f, indent=2)
    f.write("\n")


def evaluate(workdir: str, num: int = 10_000, seed: int = 0, batch_size: int = 500,
             classifier_dir: str | None = None, metrics=None, inception_weights=None,
             out: str | None = None, raw_weights: bool = False, **sampling) -> dict[str, Any]:
  """Evaluates the latest checkpoint of `workdir` and writes `out` (default
  `workdir/eval.json`); `metrics`: --metrics' words (None: the default); `raw_weights` and
  `sampling` (a diffusion run's sampler settings): as `inference.load_run`."""
  from jaxgan.inference import load_run  # pylint: disable=import-outside-toplevel
  if num <= 0:
    raise ConfigError(f"--num must be positive, got {num}")
  start = time.perf_counter()
  config, family, state = load_run(workdir, raw_weights, **sampling)
  if config.family not in EVALUATORS:
    raise ConfigError(f"no evaluation for family {config.family!r}; there is one for "
                      f"{', '.join(sorted(EVALUATORS))}")
  args = EvalArgs(workdir, num=num, seed=seed, batch_size=batch_size,
                  classifier_dir=classifier_dir, metrics=parse_metrics(metrics),
                  inception_weights=inception_weights)
  result = EVALUATORS[config.family](family, state, config, args)
  # The whole evaluation's wall time: restoring, generating, judging (a judge trained
  # first on its first use included).
  result = {"step": int(state.step), **result, "evaluate_seconds": time.perf_counter() - start}
  write_json(out or os.path.join(workdir, "eval.json"), result)
  return result


def read_npz(path: str):
  """(uint8 images [N, 28, 28, 1], int32 labels [N] or None) of an .npz of digits, as
  `jaxgan.sample` writes it (`images`, optional `labels`); ConfigError naming what else
  it holds."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  try:
    arrays = np.load(path)
  except (OSError, ValueError) as e:
    raise ConfigError(f"--npz={path} is not a readable .npz file ({e})") from e
  if "images" not in arrays.files:
    raise ConfigError(f"--npz={path} has no array named 'images' (it has "
                      f"{', '.join(arrays.files) or 'none'}): save the samples as "
                      "np.savez(path, images=uint8 [N, 28, 28, 1], labels=int [N])")
  images = arrays["images"]
  if images.ndim == 3:
    images = images[..., None]
  if images.dtype != np.uint8 or images.shape[1:] != (28, 28, 1) or not len(images):
    raise ConfigError(f"--npz={path}: images must be uint8 digits [N, 28, 28(, 1)] in 0..255, "
                      f"got {images.dtype} {images.shape}")
  labels = arrays["labels"].astype(np.int32) if "labels" in arrays.files else None
  if labels is not None and labels.shape != (len(images),):
    raise ConfigError(f"--npz={path}: labels must be one per image, got {labels.shape} for "
                      f"{len(images)} images")
  return images, labels


def evaluate_npz(path: str, classifier_dir: str | None = None, out: str | None = None,
                 data_dir: str | None = None, manual_dir: str | None = None) -> dict[str, Any]:
  """The digit metrics of the samples in `path` (any generator's: `read_npz`), judged as a
  run's are, and written to `out` (default: beside `path`, `<name>.eval.json`);
  `data_dir`/`manual_dir`: where MNIST is, for the reference images and the judge."""
  from jaxgan import config as config_lib  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  images, labels = read_npz(path)
  config = config_lib.load(str(CLASSIFIER_CONFIG))  # MNIST's data settings
  config.data.data_dir, config.data.manual_dir = data_dir, manual_dir
  out = out or os.path.splitext(path)[0] + ".eval.json"
  args = EvalArgs(os.path.dirname(os.path.abspath(out)), num=len(images),
                  classifier_dir=classifier_dir, metrics=("own",))
  result = {"npz": os.path.abspath(path), "num_samples": len(images),
            **evaluate_digits(config, args, images, labels),
            "evaluate_seconds": time.perf_counter() - start}
  write_json(out, result)
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from jaxgan import compilation_cache  # pylint: disable=import-outside-toplevel
  compilation_cache.enable()
  if FLAGS.npz:
    npz_main()
    return
  if not FLAGS.workdir:
    errors.exit_on_argument_problems(["--workdir is required (or --npz to judge a file of "
                                      "samples)"])
  errors.exit_on_argument_problems(errors.argument_problems(  # before anything is loaded
      positive={"num": FLAGS.num, "batch_size": FLAGS.batch_size, "steps": FLAGS.steps},
      nonnegative={"eta": FLAGS.eta, "guidance": FLAGS.guidance},
      output_files={"out": FLAGS.out},
      output_dirs={"workdir": FLAGS.workdir, "classifier_dir": FLAGS.classifier_dir}))
  try:
    parse_metrics(FLAGS.metrics)  # before anything is loaded
    result = evaluate(FLAGS.workdir, FLAGS.num, FLAGS.seed, FLAGS.batch_size, FLAGS.classifier_dir,
                      FLAGS.metrics, FLAGS.inception_weights, FLAGS.out, FLAGS.raw_weights,
                      **sampling_flags.given())
  except (*errors.USER_ERRORS, FileNotFoundError) as e:
    errors.exit_with(e)
  print(json.dumps(result, indent=2))


def npz_main() -> None:
  """`--npz`: the samples of a file judged; the flags of a run's sampling do not apply."""
  given = [f"--{k}" for k in ("workdir", *sampling_flags.SAMPLING, "metrics")
           if FLAGS[k].present] + (["--raw_weights"] if FLAGS.raw_weights else [])
  if given:
    errors.exit_on_argument_problems([f"--npz judges the samples of a file: leave out "
                                      f"{', '.join(given)}"])
  if not os.path.isfile(FLAGS.npz):
    errors.exit_on_argument_problems([f"--npz={FLAGS.npz}: no such file"])
  errors.exit_on_argument_problems(errors.argument_problems(
      output_files={"out": FLAGS.out}, output_dirs={"classifier_dir": FLAGS.classifier_dir}))
  try:
    result = evaluate_npz(FLAGS.npz, FLAGS.classifier_dir, FLAGS.out, FLAGS.data_dir,
                          FLAGS.manual_dir)
  except (*errors.USER_ERRORS, FileNotFoundError) as e:
    errors.exit_with(e)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  define_flags()
  app.run(main)
