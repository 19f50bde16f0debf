"""The divergence guard: finiteness flags for every family, a stop that names the step and
the quantities and saves nothing of the broken state, rollbacks at a lower learning rate
that a resumed run keeps, the limit on rollbacks, and the command line's one line."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO
from train_test import mock_data, tiny  # noqa: F401  (mock_data: a fixture)
from jaxgan import checkpoint, divergence, families, inference, train
from jaxgan.families.gan import GAN

DCGAN = str(REPO / "configs" / "dcgan_mnist.py")


class Poisoned:
  """A GAN whose step turns the generator's parameters into NaN after update `at`, when
  `when(learning rate)` holds: a divergence on demand."""

  def __init__(self, config, at, when=lambda lr: True):
    self.gan, self.at = GAN(config), at
    self.active = when(config.optimizer.learning_rate)

  def __getattr__(self, name):
    return getattr(self.gan, name)

  def train_step(self, state, batch):
    state, metrics = self.gan.train_step(state, batch)
    if not self.active:
      return state, metrics
    bad = state.step == self.at
    params = jax.tree.map(lambda x: jnp.where(bad, jnp.nan, x), state.generator.params)
    return state.replace(generator=state.generator.replace(params=params)), metrics


@pytest.fixture
def poison(monkeypatch):
  def install(at, when=lambda lr: True):
    monkeypatch.setitem(families.FAMILIES, "gan", lambda config: Poisoned(config, at, when))
  return install


def test_flags_name_each_metric_and_each_part_of_the_state():
  state = {"step": jnp.zeros((), jnp.int32), "rng": jax.random.PRNGKey(0),
           "generator": {"w": jnp.ones(3), "b": jnp.array([1.0, jnp.inf])},
           "discriminator": {"w": jnp.ones(2)}}
  flags = jax.device_get(divergence.finite_flags(state, {"d_loss": jnp.float32(1.0),
                                                         "g_loss": jnp.float32(jnp.nan)}))
  assert flags == {"d_loss": True, "g_loss": False, "generator": False, "discriminator": True}
  found = divergence.first_nonfinite([{"a": True}, {"a": True, "b": False}, {"a": False}], 11)
  assert (found.step, found.quantities) == (12, ["b"])
  assert divergence.first_nonfinite([{"a": True}], 1) is None


@pytest.mark.parametrize("config_name,parts", [
    ("dcgan_mnist.py", ["generator", "discriminator"]),
    ("mnist_classifier.py", ["params", "opt_state"]),
])
def test_the_loops_step_flags_every_family(config_name, parts):
  """The flags come out of the loop's own jitted step; a NaN in the batch makes the
  losses and the updated networks non-finite."""
  config = tiny(str(REPO / "configs" / config_name))
  family, mesh = families.create(config, "cpu"), train.make_mesh()
  step = train.compile_train_step(family, mesh)
  size, channels = config.data.image_size, config.data.channels
  batch = {"image": np.zeros((4, size, size, channels), np.float32), "label": np.zeros(4, np.int32)}
  _, metrics, flags = step(train.create_train_state(family, config, mesh), batch)
  flags = jax.device_get(flags)
  assert set(flags) == set(metrics) | set(parts) and all(flags.values())
  batch["image"][0, 0, 0, 0] = np.nan
  _, _, flags = step(train.create_train_state(family, config, mesh), batch)
  flags = jax.device_get(flags)
  assert not any(flags[name] for name in family.loss_metrics + tuple(parts[:1]))


def test_pix2pix_step_flags_its_networks():
  from pix2pix_test import init_and_step, random_pairs, tiny_config  # pylint: disable=import-outside-toplevel
  _, state, step = init_and_step(tiny_config())
  x, y = random_pairs()
  _, metrics, flags = step(state, {"input": x, "target": y, "label": np.zeros(2, np.int32)})
  flags = jax.device_get(flags)
  assert set(flags) == set(metrics) | {"generator", "discriminator"} and all(flags.values())


def test_divergence_stops_without_saving_the_broken_state(tmp_path, mock_data, poison):
  poison(at=3)
  # Checked at the save of step 4 (the log interval is 4): the first bad step is still 3.
  config = tiny(DCGAN, steps=8, log_every_steps=4, checkpoint_every_steps=2)
  with pytest.raises(divergence.DivergenceError,
                     match=r"diverged at step 3: generator became NaN or infinite .*nothing of "
                           r"it was saved, the last good checkpoint is step 2"):
    train.train_and_evaluate(config, str(tmp_path))
  ckpts = checkpoint.Checkpoints(str(tmp_path / "checkpoints"))
  assert ckpts.manager.all_steps() == [2]
  _, _, state = inference.load_run(str(tmp_path))
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(jax.device_get(state.generator)))
  assert not (tmp_path / divergence.ROLLBACKS_FILE).exists()


def test_rollback_lowers_the_rate_and_a_resumed_run_keeps_it(tmp_path, mock_data, poison,
                                                             monkeypatch):
  # The poison acts only at the config's own rate: a run back at 2e-4 would diverge again.
  poison(at=3, when=lambda lr: lr == 2e-4)
  config = tiny(DCGAN, steps=5, checkpoint_every_steps=2, **{"divergence.on_nonfinite": "rollback"})
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 5
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(jax.device_get(state)))
  record = json.loads((tmp_path / divergence.ROLLBACKS_FILE).read_text())["rollbacks"]
  assert record == [{"step": 3, "nonfinite": ["generator"], "restored_step": 2, "lr_factor": 0.5,
                     "learning_rate": 1e-4}]
  assert json.loads((tmp_path / "config.json").read_text())["optimizer"]["learning_rate"] == 1e-4
  steps = [json.loads(l)["step"] for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert steps == [1, 2, 3, 4, 5]  # the broken step's row was not kept
  # Extended later with the same command, the run trains on at the lowered rate.
  built = []
  monkeypatch.setitem(families.FAMILIES, "gan",
                      lambda c: built.append(c.optimizer.learning_rate) or GAN(c))
  train.train_and_evaluate(tiny(DCGAN, steps=6, **{"divergence.on_nonfinite": "rollback"}),
                           str(tmp_path))
  assert built[-1] == 1e-4 and 2e-4 not in built[1:]


def test_rollbacks_are_limited(tmp_path, mock_data, poison):
  poison(at=3)  # at every rate
  config = tiny(DCGAN, steps=5, checkpoint_every_steps=2,
                **{"divergence.on_nonfinite": "rollback", "divergence.max_rollbacks": 2})
  with pytest.raises(divergence.DivergenceError, match=r"step 3: generator .*after 2 rollbacks"):
    train.train_and_evaluate(config, str(tmp_path))
  record = json.loads((tmp_path / divergence.ROLLBACKS_FILE).read_text())["rollbacks"]
  assert [r["learning_rate"] for r in record] == [1e-4, 5e-5]
  assert checkpoint.Checkpoints(str(tmp_path / "checkpoints")).manager.all_steps() == [2]


def test_absurd_learning_rate_is_one_line_from_the_command_line(tmp_path):
  out = subprocess.run([sys.executable, str(REPO / "tests" / "fault_launcher.py"), "--config",
                        "configs/dcgan_mnist.py", "--workdir", str(tmp_path),
                        "--config.optimizer.learning_rate=1e30", "--config.num_train_steps=20",
                        "--config.batch_size=4", "--config.model.ngf=4", "--config.model.ndf=4",
                        "--config.num_grid_images=0", "--config.log_every_steps=5"],
                       cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert out.returncode == 1, out.stderr[-2000:]
  errors = [l for l in out.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "training diverged at step" in errors[0], out.stderr[-2000:]
  assert "Traceback" not in out.stderr
  assert not (tmp_path / "checkpoints").exists() or not list((tmp_path / "checkpoints").iterdir())
