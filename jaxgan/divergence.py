"""The divergence guard: a run whose losses or parameters turn NaN or infinite never saves
that state; it stops with the step and the quantities named, or rolls back and goes on
with a lower learning rate (`config.divergence`).

The jitted step also returns `finite_flags`: for each metric and each top-level part of
the state (a GAN's `generator` and `discriminator`, each with its parameters, batch
statistics and optimizer state; a classifier's `params` and `opt_state`), whether all of
it is finite. They are computed on the device inside the step and fetched by the loop
only where it waits for the device anyway (each log interval) and before every
checkpoint save, so no state with a NaN or an infinity is ever saved, and the last
checkpoint is always good.

A rollback is what a restart would do: restore the last checkpoint (or the initial state
when there is none yet), with `config.optimizer.learning_rate` (every family's rate)
multiplied by `config.divergence.lr_factor`. Each rollback is recorded in
`<workdir>/rollbacks.json` before training goes on, so a run killed and resumed later
trains at the lowered rate too: the rate is always the config's times the factors
recorded in its workdir.
"""

import os
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp

from jaxgan import implementation
from jaxgan import layers_cpu
from jaxgan import workdir as workdir_lib
from jaxgan.errors import DivergenceError

ROLLBACKS_FILE = "rollbacks.json"


class Diverged(Exception):
  """Raised inside the loop at the first step whose flags say NaN or infinite."""

  def __init__(self, step: int, quantities: Sequence[str]):
    super().__init__(f"step {step}: {', '.join(quantities)}")
    self.step, self.quantities = step, list(quantities)


def _all_finite(tree) -> Optional[jax.Array]:
  """Whether every floating-point value in `tree` is finite (None: it holds none)."""
  leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
  if not leaves:
    return None
  return implementation.choose(
      lambda *xs: layers_cpu.all_finite(xs),
      lambda *xs: jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in xs])), *leaves)


def finite_flags(state: Any, metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """{metric or top-level part of the state: all finite}, for any family's state."""
  flags = {name: jnp.all(jnp.isfinite(value)) for name, value in metrics.items()}
  parts, _ = jax.tree_util.tree_flatten_with_path(state, is_leaf=lambda x: x is not state)
  for path, part in parts:
    finite = _all_finite(part)
    if finite is not None:
      flags[jax.tree_util.keystr(path, simple=True, separator=".") or "state"] = finite
  return flags


def first_nonfinite(flags: Sequence[dict[str, Any]], first_step: int) -> Optional[Diverged]:
  """The first of consecutive steps' fetched flags (`flags[0]` is `first_step`'s) that has
  a False, as a Diverged naming the step and its non-finite quantities; else None."""
  for i, step_flags in enumerate(flags):
    bad = [name for name, ok in step_flags.items() if not bool(ok)]
    if bad:
      return Diverged(first_step + i, bad)
  return None


def rollbacks(workdir: str) -> list[dict[str, Any]]:
  """The rollbacks recorded in `workdir`, oldest first."""
  path = os.path.join(workdir, ROLLBACKS_FILE)
  return workdir_lib.read_json(path)["rollbacks"] if os.path.exists(path) else []


def with_rollbacks(config, workdir: str):
  """`config` with the learning rate lowered by every rollback recorded in `workdir`."""
  factor = 1.0
  for event in rollbacks(workdir):
    factor *= event["lr_factor"]
  if factor == 1.0:
    return config
  config = config.copy_and_resolve_references()
  config.optimizer.learning_rate *= factor
  return config


def roll_back_or_stop(diverged: Diverged, config, workdir: str, last_good: Optional[int],
                      lead: bool) -> None:
  """Records a rollback in `workdir` (so that the caller restarts from `last_good`), or
  raises DivergenceError when config.divergence says stop or no rollback is left."""
  d = config.divergence
  done = rollbacks(workdir)
  rate = with_rollbacks(config, workdir).optimizer.learning_rate
  where = (f"the last good checkpoint is step {last_good}" if last_good is not None
           else "no checkpoint had been saved yet")
  head = (f"training diverged at step {diverged.step}: {', '.join(diverged.quantities)} "
          f"became NaN or infinite (learning rate {rate:g}); nothing of it was saved, {where}")
  if d.on_nonfinite != "rollback":
    raise DivergenceError(f"{head}. Run again with a lower --config.optimizer.learning_rate, or "
                          "let the run lower it itself: --config.divergence.on_nonfinite=rollback")
  if len(done) >= d.max_rollbacks:
    raise DivergenceError(f"{head}, after {len(done)} rollbacks (config.divergence."
                          "max_rollbacks); lower the learning rate or look for the cause")
  event = {"step": diverged.step, "nonfinite": diverged.quantities, "restored_step": last_good,
           "lr_factor": d.lr_factor, "learning_rate": rate * d.lr_factor}
  if lead:
    workdir_lib.write_json(os.path.join(workdir, ROLLBACKS_FILE), {"rollbacks": done + [event]})
  workdir_lib.sync_processes("jaxgan_rollback")
  print(f"{head}; rolling back to it with learning rate {event['learning_rate']:g} "
        f"(rollback {len(done) + 1} of at most {d.max_rollbacks})", flush=True)
