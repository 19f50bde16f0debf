"""Train every combination of a grid of config values, evaluate each, and tabulate them.

  python -m jaxgan.sweep --config configs/dcgan_mnist.py --workdir runs/sweep_mnist \
      --set optimizer.learning_rate=1e-3,2e-4 --set optimizer.b1=0.5,0.9 \
      --set model.latent_dim=10,100,1000 \
      --set num_train_steps=200 --set batch_size=64 --set log_every_steps=10 \
      --set data.manual_dir=../shared/data/mnist --num 2000

Each `--set name=v1,v2,...` is an axis of the grid (a single value: the same override for
every run); the runs are their Cartesian product, in the order given (the last axis varies
fastest). Each run trains in `<workdir>/<name>`, named by the values of the axes that have
more than one (`learning_rate=0.001_b1=0.5_latent_dim=10`), with `jaxgan.compare`'s
machinery: `python -m jaxgan.main` in a child process, then `jaxgan.evaluate`
(`--num` generated images). Resumable as `jaxgan.compare` is: a run whose `eval.json` is at
its `num_train_steps` with `--num` samples is not trained or evaluated again, and an
interrupted one continues from its last checkpoint.

Every value is parsed to the type of the config field it sets, and every combination's
config is validated (`jaxgan.config.validate`) before the first run starts: an unknown
field, an empty value, a value of the wrong type or out of range is one line on stderr.

Writes `<workdir>/results.md` and `results.csv` (a row per combination; results.md adds
the mean of each metric over the runs that share an axis value) and `<workdir>/grids.png`
(each run's last sample grid over its loss curves), after every run that trains (the
runs so far) and at the end.
"""

import itertools
import math
import os
import re

from absl import app, flags

import jaxgan  # noqa: F401  (sets CPU XLA flags before JAX starts its backend)
from jaxgan import compare, config as config_lib, errors

FLAGS = flags.FLAGS

# The metrics of an unconditional digit GAN (`jaxgan.evaluate.evaluate_digits`) the table
# shows after the swept values: (header, key of the results row, format).
METRICS = (
    ("steps", "steps", "{}"),
    ("batch", "batch_size", "{}"),
    ("train wall time (s)", "wall_seconds", "{:.0f}"),
    ("FID", "fid", "{:.2f}"),
    ("FID of real train images", "fid_train_reference", "{:.2f}"),
    ("class entropy (bits)", "class_entropy_bits", "{:.3f}"),
    ("confident share", "confident_share", "{:.3f}"),
)
# The last logging interval's losses (`compare`'s row holds metrics.jsonl's last row).
FINAL_LOSSES = (("final d_loss", "d_loss"), ("final g_loss", "g_loss"))
# Metrics averaged per axis value in results.md.
MARGINALS = ("fid", "class_entropy_bits", "confident_share")


def define_flags() -> None:
  """The command line's flags (only when run as a command)."""
  flags.DEFINE_string("config", None, "Experiment config file (configs/*.py).")
  flags.DEFINE_string("workdir", None, "Folder of the runs and the results.")
  flags.DEFINE_multi_string("set", [], "name=v1,v2,...: an axis of the grid (config field "
                            "and its values); one value: an override of every run.")
  flags.DEFINE_integer("num", 10_000, "Generated images per evaluation.")
  flags.DEFINE_string("classifier_dir", None, "Workdir of the MNIST classifier.")
  flags.DEFINE_integer("columns", 4, "Runs per row of grids.png.")
  flags.mark_flags_as_required(["config", "workdir"])


class SweepError(errors.ConfigError):
  """A --set that names no field, has no value, or a value the field cannot take."""


_KIND_NAMES = {int: "an integer", float: "a number", bool: "a boolean (true or false)",
               str: "a string"}


def _parse_value(name: str, text: str, kind: type):
  """`text` as a value of the config field `name` of type `kind`."""
  text = text.strip()
  if not text:
    raise SweepError(f"--set {name}: empty value")
  try:
    if kind is bool:
      if text.lower() not in ("true", "false", "1", "0"):
        raise ValueError
      return text.lower() in ("true", "1")
    if kind is int:
      return int(text)
    if kind is float:
      value = float(text)
      if not math.isfinite(value):
        raise ValueError
      return value
    if kind is str:
      return text
  except ValueError:
    raise SweepError(f"--set {name}: {text!r} is not {_KIND_NAMES[kind]} (the type of "
                     f"config.{name})") from None
  raise SweepError(f"--set {name}: config.{name} is of type {kind.__name__}; only int, float, "
                   "bool and str fields can be swept")


def parse_axes(config, settings: list[str]) -> list[tuple[str, list]]:
  """`name=v1,v2,...` strings -> [(name, [values parsed to the field's type])]."""
  axes = []
  for setting in settings:
    name, sep, values = setting.partition("=")
    name = name.strip()
    if not sep or not name:
      raise SweepError(f"--set {setting!r}: expected name=value[,value...]")
    if name in [n for n, _ in axes]:
      raise SweepError(f"--set {name} is given twice; list all its values in one --set")
    *parents, leaf = name.split(".")
    node = config
    for part in parents:
      node = node.get(part) if hasattr(node, "get_ref") else None
    if not hasattr(node, "get_ref") or leaf not in node:
      raise SweepError(f"unknown config field {name} (check the spelling; fields are in the "
                       "config file)")
    if hasattr(node[leaf], "get_ref"):
      raise SweepError(f"--set {name}: config.{name} is a section; set one of its fields "
                       f"({', '.join(sorted(node[leaf]))})")
    kind = node.get_ref(leaf).get_type()
    parsed = [_parse_value(name, v, kind) for v in values.split(",")]
    if len(set(parsed)) != len(parsed):
      raise SweepError(f"--set {name}: a value is repeated")
    axes.append((name, parsed))
  return axes


def _text(value) -> str:
  """A value as `--config.name=` takes it back."""
  return str(value).lower() if isinstance(value, bool) else str(value)


def run_name(values: dict) -> str:
  """The folder of one combination: `leaf=value` of each swept field, joined by `_` (the
  whole dotted name where two swept fields share a leaf)."""
  if not values:
    return "run"
  leaves = [name.rsplit(".", 1)[-1] for name in values]
  parts = []
  for (name, value), leaf in zip(values.items(), leaves):
    key = leaf if leaves.count(leaf) == 1 else name
    parts.append(f"{key}={re.sub(r'[^A-Za-z0-9.+-]', '-', _text(value))}")
  return "_".join(parts)


def expand(config_path: str, settings: list[str]) -> list[dict]:
  """The grid's runs: {"name", "values" (swept fields), "overrides" (`name=value` for
  `jaxgan.main`), "config" (validated)}, in order (the last axis varies fastest)."""
  base = config_lib.load(config_path)
  axes = parse_axes(base, settings)
  swept = [name for name, values in axes if len(values) > 1]
  runs = []
  for combination in itertools.product(*[values for _, values in axes]):
    config = base.copy_and_resolve_references()
    overrides = []
    for (name, _), value in zip(axes, combination):
      *parents, leaf = name.split(".")
      node = config
      for part in parents:
        node = node[part]
      setattr(node, leaf, value)
      overrides.append(f"{name}={_text(value)}")
    config_lib.validate(config)
    values = {name: value for (name, _), value in zip(axes, combination) if name in swept}
    runs.append({"name": run_name(values), "values": values, "overrides": overrides,
                 "config": config})
  return runs


def columns(runs: list[dict]):
  """The table's columns: the swept fields, then `METRICS`."""
  swept = list(runs[0]["values"]) if runs else []
  return ([(name, lambda r, name=name: r["values"][name], "{}") for name in swept]
          + [(header, lambda r, key=key: r.get(key), fmt) for header, key, fmt in METRICS]
          + [(header, lambda r, key=key: r["last_metrics"].get(key), "{:.3f}")
             for header, key in FINAL_LOSSES])


def marginals(rows: list[dict]) -> str:
  """For each swept field and value, the mean of `MARGINALS` over the runs with it."""
  if not rows or not rows[0]["values"]:
    return ""
  lines = ["", "Mean over the runs that share a value (the other fields vary):", "",
           "| field | value | runs | " + " | ".join(f"mean {m}" for m in MARGINALS) + " |",
           "|" + "---|" * (3 + len(MARGINALS))]
  for name in rows[0]["values"]:
    for value in dict.fromkeys(r["values"][name] for r in rows):
      group = [r for r in rows if r["values"][name] == value]
      values = [[r[m] for r in group if r.get(m) is not None] for m in MARGINALS]
      lines.append(f"| {name} | {value} | {len(group)} | "
                   + " | ".join(f"{sum(v) / len(v):.3f}" if v else "-" for v in values) + " |")
  return "\n".join(lines) + "\n"


def sweep(config_path: str, workdir: str, settings: list[str], num: int,
          classifier_dir: str | None = None, grid_columns: int = 4) -> list[dict]:
  """Trains and evaluates every combination not yet done; writes the results. Returns
  the rows."""
  runs = expand(config_path, settings)  # every mistake stops here, before any run
  if num <= 0:
    raise SweepError(f"--num must be positive, got {num}")
  os.makedirs(workdir, exist_ok=True)
  rows = []
  for i, run in enumerate(runs):
    print(f"[{i + 1}/{len(runs)}] {run['name']}", flush=True)
    run_dir = os.path.join(workdir, run["name"])
    was_done = compare.finished(run_dir, num, run["config"].num_train_steps) is not None
    row = compare.train_and_evaluate(config_path, run_dir, run["name"], run["overrides"], num,
                                     classifier_dir, run["config"].num_train_steps)
    rows.append({**row, "values": run["values"]})
    # The results so far after every run that trained (a long sweep shows where it stands),
    # and at the end.
    if not was_done or i == len(runs) - 1:
      write_results(rows, workdir, columns(runs), grid_columns)
  return rows


def write_results(rows: list[dict], workdir: str, table_columns, grid_columns: int) -> None:
  """results.md, results.csv and grids.png of `rows` in `workdir`."""
  compare.write_results(rows, workdir, table_columns, marginals(rows))
  write_grids(rows, os.path.join(workdir, "grids.png"), grid_columns)


def write_grids(rows: list[dict], out_path: str, ncols: int,
                loss_names: tuple[str, ...] = ("d_loss", "g_loss"), colors: int = 64) -> None:
  """Each run's last sample grid over its loss curves (metrics.jsonl), titled by run name,
  `ncols` runs a row; a PNG with a palette of `colors` colours (a third of the file)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from jaxgan import visualize  # pylint: disable=import-outside-toplevel

  ncols = max(1, min(ncols, len(rows)))
  nrows = -(-len(rows) // ncols)
  fig, axes = plt.subplots(2 * nrows, ncols, squeeze=False, figsize=(3.3 * ncols, 5.4 * nrows),
                           gridspec_kw={"height_ratios": [4, 2] * nrows})
  for ax in axes.flat:
    ax.axis("off")
  for i, row in enumerate(rows):
    r, c = divmod(i, ncols)
    folder = os.path.join(row["run_dir"], "samples")
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    if names:  # at the grid's own resolution
      axes[2 * r, c].imshow(Image.open(os.path.join(folder, names[-1])), cmap="gray",
                            interpolation="nearest")
    axes[2 * r, c].set_title(row["name"], fontsize=8)
    path = os.path.join(row["run_dir"], "metrics.jsonl")
    metrics = visualize.read_metrics(path) if os.path.exists(path) else []
    ax = axes[2 * r + 1, c]
    ax.axis("on")
    for name in loss_names:
      points = [(m["step"], m[name]) for m in metrics if name in m]
      if points:
        ax.plot(*zip(*points), label=name)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(out_path, dpi=80)
  plt.close(fig)
  with Image.open(out_path) as image:
    image = image.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
  image.save(out_path, optimize=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  errors.exit_on_argument_problems(
      [p for p in [config_lib.file_problem(FLAGS.config)] if p]
      + errors.argument_problems(positive={"num": FLAGS.num, "columns": FLAGS.columns},
                                 output_dirs={"workdir": FLAGS.workdir,
                                              "classifier_dir": FLAGS.classifier_dir}))
  try:
    sweep(FLAGS.config, FLAGS.workdir, FLAGS.set, FLAGS.num, FLAGS.classifier_dir, FLAGS.columns)
  except (*errors.USER_ERRORS, FileNotFoundError) as e:
    errors.exit_with(e)
  print(open(os.path.join(FLAGS.workdir, "results.md")).read())


if __name__ == "__main__":
  define_flags()
  app.run(main)
