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

Storage that lies: each save records a CRC-32 of every array's bytes in the step's own
metadata (`custom_metadata`, written into the temporary folder before the rename, so a
checkpoint and its checksums appear together), and restoring recomputes them. A mismatch
(a flipped bit that TensorStore decodes without complaint) is a `CheckpointError` naming
the checkpoint and the array. The run then refuses to start rather than fall back to an
older step: a silent fallback would hide failing storage and, once the run reached the
damaged step's number again, collide with it; the message names the newest earlier step
to move back to. Checkpoints saved before checksums were recorded restore unverified.

A save that cannot be written (disk full, quota, read-only or failing storage) raises
`WriteError` naming the step, the cause and the file; the steps saved before it
are intact, and the partial save is removed by the next run's start.
"""

import os
import zlib
from typing import Any, Optional

import jax
from absl import logging
import numpy as np
import orbax.checkpoint as ocp


from jaxgan import workdir as workdir_lib
from jaxgan.errors import CheckpointError

# Where a checkpoint's step metadata keeps its arrays' checksums.
CHECKSUMS = "jaxgan_crc32"


def _crc32(leaf) -> str:
  """CRC-32 of one array's bytes, read from this process's copy of it."""
  if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
    leaf = jax.random.key_data(leaf)
  if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
    leaf = leaf.addressable_data(0)  # replicated: every process holds the whole array
  return f"{zlib.crc32(np.ascontiguousarray(jax.device_get(leaf)).tobytes()):08x}"


def checksums(tree) -> dict[str, str]:
  """{'generator/params/...': crc32} for every array of a state, keyed as `_describe`."""
  tree = ocp.tree.serialize_tree(tree, keep_empty_nodes=True)
  return {"/".join(map(str, path)): _crc32(leaf)
          for path, leaf in ocp.tree.to_flat_dict(tree).items() if hasattr(leaf, "shape")}


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
    self._step = None  # the latest save started

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, force: bool = False) -> None:
    """Starts writing `step` (Orbax finishes it in the background); the arrays' checksums
    are taken now, from the very values written."""
    sums = checksums(state)  # before Orbax starts: the next step donates these buffers
    self.wait()  # (Orbax waits for it anyway) so that a failure names the step that failed
    self._step = step
    with self._write_errors():
      self.manager.save(step, args=ocp.args.StandardSave(state), force=force,
                        custom_metadata={CHECKSUMS: sums})

  def wait(self) -> None:
    with self._write_errors():
      self.manager.wait_until_finished()

  def _write_errors(self):
    """Turns a failed write of a save into `WriteError` (module docstring)."""
    return workdir_lib.write_errors(lambda: f"checkpoint {self._step} into {self.directory}",
                                    lambda: self.intact(but=self._step))

  def intact(self, but: Optional[int] = None) -> str:
    """Which steps are saved (`but` a save that failed), for a failed write's message."""
    try:
      steps = [s for s in self.manager.all_steps() if s != but]
    except Exception:  # pylint: disable=broad-except  (the storage may fail this too)
      return ""
    return f"checkpoints up to step {max(steps)} are intact" if steps else "no checkpoint was saved"

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
                            f"untouched: {self._earlier(step)}") from e
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
      state = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
      recorded = (self.manager.metadata(step).custom_metadata or {}).get(CHECKSUMS)
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(f"checkpoint {where} could not be restored ({_first_line(e)}); it "
                            f"was left untouched: {self._earlier(step)}") from e
    if recorded is None:
      logging.warning("checkpoint %s has no checksums (saved by an older jaxgan): restored "
                      "unverified", where)
      return state
    found = checksums(state)
    damaged = sorted(k for k in found if recorded.get(k) != found[k])
    if damaged:
      raise CheckpointError(f"checkpoint {where} is damaged: array {damaged[0]} does not match "
                            f"the checksum recorded when it was saved"
                            f"{f' (and {len(damaged) - 1} more)' if len(damaged) > 1 else ''}; "
                            f"the storage changed it. It was left untouched: {self._earlier(step)}")
    return state

  def _earlier(self, step: int) -> str:
    """How to go on without checkpoint `step`: the newest step before it, if any."""
    earlier = [s for s in self.manager.all_steps() if s < step]
    where = os.path.join(self.directory, str(step))
    if earlier:
      aside = os.path.join(os.path.dirname(self.directory), f"damaged-checkpoint-{step}")
      return (f"move it out of the way (mv {where} {aside}) to resume from step "
              f"{max(earlier)}, or use a new --workdir")
    return "move it aside to start afresh, or use a new --workdir"
