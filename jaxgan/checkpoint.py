"""Checkpoints of the whole train state with Orbax, restored exactly or not at all.

A train state (parameters, batch statistics, optimizer states, step, RNG key) is one
pytree saved with `ocp.args.StandardSave`: arrays in TensorStore's OCDBT format and
metadata in JSON, no pickle anywhere, so restoring runs no code from the workdir.
`CheckpointManager` writes each step into `<step>.orbax-checkpoint-tmp` and renames it to
`<step>` only when every file is written (on a local or POSIX file system the rename is
atomic), so a save killed at any moment leaves a temporary folder that is never listed as
a checkpoint; the training run that owns the workdir removes such left-overs when it
starts (`remove_partial_saves`). Old steps beyond `max_to_keep` are deleted oldest first,
so a kill during a deletion can only leave part of an older step, never of the latest. Restoring checks the saved tree against
the state the config builds (names, shapes, dtypes) first: a checkpoint from another
architecture, or one whose files are damaged, raises `CheckpointError` naming the
folder, and the training loop stops before writing anything, so no checkpoint is ever
overwritten by a fresh start.
"""

import os
from typing import Any, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(Exception):
  """A checkpoint exists but cannot be restored into this run's state."""


def _first_line(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  return f"{type(e).__name__}: {text[0] if text else ''}"


def _describe(tree, saved: bool = False) -> dict[str, tuple]:
  """{'generator/params/...': (shape, dtype)} for every leaf of a state or of metadata."""
  if not saved:  # metadata comes serialized (dicts of names); bring the state to that form
    # Empty nodes kept (and skipped below): dropping them fails in orbax when one comes
    # before a sibling in a tuple, as optax.chain(clip_by_global_norm, adam)'s state does.
    tree = ocp.tree.serialize_tree(tree, keep_empty_nodes=True)
  return {"/".join(map(str, path)): (tuple(leaf.shape), np.dtype(leaf.dtype).name)
          for path, leaf in ocp.tree.to_flat_dict(tree).items() if hasattr(leaf, "shape")}


class Checkpoints:
  """The run's checkpoints: `<workdir>/checkpoints/<step>`."""

  def __init__(self, directory: str, max_to_keep: int = 3, remove_partial_saves: bool = False):
    """`remove_partial_saves`: delete the temporary folders of saves that a killed run left.
    Only the run that holds the workdir's lock may ask for it: anyone else could delete
    a save in progress."""
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           cleanup_tmp_directories=remove_partial_saves)
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_handlers=ocp.StandardCheckpointHandler())

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, force: bool = False) -> None:
    self.manager.save(step, args=ocp.args.StandardSave(state), force=force)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def restore(self, target: Any, step: Optional[int] = None) -> Optional[Any]:
    """Restores `step` (default: the latest) into the structure and shardings of `target`.

    Returns None when there is no checkpoint. `target` may hold arrays or
    `jax.ShapeDtypeStruct`s.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      return None
    where = os.path.join(self.directory, str(step))
    try:
      saved = _describe(self.manager.item_metadata(step), saved=True)
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(f"checkpoint {where} is unreadable ({_first_line(e)}); it was left "
                            "untouched: move it aside to resume from an earlier one, or use "
                            "a new --workdir") from e
    expected = _describe(target)
    if saved != expected:
      missing = sorted(set(expected) - set(saved))
      extra = sorted(set(saved) - set(expected))
      changed = sorted(k for k in set(saved) & set(expected) if saved[k] != expected[k])
      detail = (f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra
                else f"{changed[0]} is {saved[changed[0]]}, this config makes "
                     f"{expected[changed[0]]}")
      raise CheckpointError(f"checkpoint {where} does not match this config's model ({detail}); "
                            "it was left untouched: use a new --workdir for a different model")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    try:
      return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(f"checkpoint {where} could not be restored ({_first_line(e)}); it "
                            "was left untouched: move it aside to resume from an earlier one, "
                            "or use a new --workdir") from e
