"""CycleGAN: the generators against the reference's counts and the PyTorch nets, the wiring
of the cycle and identity losses and of each discriminator, the step order, test-time
translation both ways, and train -> evaluate -> translate a folder end to end on tiny
folders made here; when torch is installed, a whole step against the reference's."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, write_images
from pix2pix_models_test import abstract_init, count, numpy_init, port_conv, torch_reference
from train_test import tiny
from jaxgan import (config as config_lib, evaluate, families, inference, models,
                    train, translate, visualize)
from jaxgan.datasets import base as datasets_base
from jaxgan.families import cyclegan
from jaxgan.models.resnet_generator import reflect_pad

PAPER_CONFIG = str(REPO / "configs" / "cyclegan_apple2orange.py")
CPU_CONFIG = str(REPO / "configs" / "cyclegan_apple2orange64.py")
CATS_CONFIG = str(REPO / "configs" / "cyclegan_grumpycat.py")


# ---------------------------------------------------------------------------------------
# Networks.


@pytest.mark.parametrize("name,size,kwargs,params", [
    ("resnet_9blocks", 256, {}, 11_378_179),   # the reference's count (torch, ngf 64, instance)
    ("resnet_6blocks", 256, {}, 7_837_699),
    ("cycle_generator_64", 64, {"ngf": 32}, 511_875),  # the course's widths (32, 64)
])
def test_generator_parameter_counts(name, size, kwargs, params):
  assert count(abstract_init(models.create(name, **kwargs), (1, size, size, 3))) == params


@pytest.mark.parametrize("path,g,d", [(PAPER_CONFIG, 11_378_179, 2_764_737),
                                      (CPU_CONFIG, 511_875, 662_977),
                                      (CATS_CONFIG, 511_875, 662_977)])
def test_config_parameter_counts(path, g, d):
  family = families.create(config_lib.load(path), "cpu")
  state = jax.eval_shape(family.init_state, jax.random.PRNGKey(0))
  assert family.param_counts(state) == {"G_A": g, "G_B": g, "D_A": d, "D_B": d}


def test_reflect_pad_is_torch_reflection_pad():
  x = jnp.arange(4.0).reshape(1, 1, 4, 1)
  np.testing.assert_array_equal(reflect_pad(x, 2)[0, 2, :, 0], [2, 1, 0, 1, 2, 3, 2, 1])


@pytest.mark.parametrize("name", ["resnet_6blocks", "cycle_generator_64"])
def test_generators_keep_the_size_and_range(name):
  g = models.create(name, ngf=4)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 32, 32, 3)) * 3
  y = jax.jit(g.apply)(numpy_init(g, x.shape), x)
  assert y.shape == x.shape and float(jnp.abs(y).max()) <= 1.0
  with pytest.raises(config_lib.ConfigError, match="multiples of 4, got shape"):
    abstract_init(g, (1, 30, 30, 3))


def port_convs(net, first, n_blocks, last):
  """A reference generator's convolutions, in order, onto the Flax names `first`, the
  residual blocks' R_i/conv_1, R_i/conv_2, then `last`."""
  convs = [m for m in net.modules() if type(m).__name__ in ("Conv2d", "ConvTranspose2d")]
  names = first + [(f"R_{i}", f"conv_{j}") for i in range(n_blocks) for j in (1, 2)] + last
  params = {}
  for name, conv in zip(names, convs, strict=True):
    if isinstance(name, tuple):
      params.setdefault(name[0], {})[name[1]] = port_conv(conv)
    else:
      params[name] = port_conv(conv)
  return params


def port_resnet_generator(net, n_blocks):
  """The reference's Sequential onto ResnetGenerator's names."""
  return port_convs(net, ["c7s1_in", "d_1", "d_2"], n_blocks, ["u_1", "u_2", "c7s1_out"])


def port_patch_discriminator(net):
  return {f"Conv_{i}": port_conv(c) for i, c in enumerate(m for m in net if type(m).__name__ == "Conv2d")}


def test_resnet_generator_equals_the_torch_reference():
  torch, ref = torch_reference("torch_cyclegan")
  torch.manual_seed(0)
  net = ref.resnet_generator(6, ngf=4)
  x = torch.rand(2, 3, 32, 32) * 2 - 1
  with torch.no_grad():
    want = net(x).numpy().transpose(0, 2, 3, 1)
  g = models.create("resnet_6blocks", ngf=4)
  params = port_resnet_generator(net, 6)
  assert jax.tree.structure(params) == jax.tree.structure(abstract_init(g, (1, 32, 32, 3))["params"])
  got = g.apply({"params": params}, jnp.asarray(x.numpy().transpose(0, 2, 3, 1)))
  np.testing.assert_allclose(got, want, atol=2e-5)


# ---------------------------------------------------------------------------------------
# The step.


def tiny_config(data_root=None, data_dir=None, steps=2, **overrides):
  """The CPU experiment at 32x32 (cycle_generator_64 at ngf 4, a 2-layer PatchGAN at ndf 4),
  batch 2, on the folder `data_root` (3 A and 5 B images of 40x40, cropped from 36).

  lambda_A != lambda_B, so that a cycle or identity term weighted by the other domain's
  lambda shows; pools of 3, which two steps fill, so that runs meet full pools. Tests
  share this one config where they can: the persistent compilation cache then compiles
  its init and step once per session.
  """
  return tiny(CPU_CONFIG, steps, **{
      "data.manual_dir": str(data_root) if data_root else None,
      "data.data_dir": str(data_dir) if data_dir else None,
      "data.image_size": 32, "data.load_size": 36, "data.num_train_examples": 5,
      "batch_size": 2, "loss.lambda_a": 10.0, "loss.lambda_b": 3.0, "loss.pool_size": 3,
      **overrides})


def random_images(n=2, size=32, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype(np.float32)


def l1(a, b):
  return float(np.mean(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def mse(x, target):
  return float(np.mean(np.square(np.asarray(x, np.float64) - target)))


@pytest.fixture(scope="module")
def tiny_family():
  config = tiny_config()
  family, mesh = families.create(config, "cpu"), train.make_mesh()
  return family, jax.device_get(train.create_train_state(family, config, mesh)), \
      train.compile_train_step(family, mesh)


def test_identity_and_cycle_wiring(tiny_family):
  family, state, _ = tiny_family
  real_a, real_b = random_images(seed=1), random_images(seed=2)
  # Kernels 15x their initial N(0, 0.02): outputs far from 0 and far apart for the two
  # generators (at initialisation every G(x) is close to 0, and every |G(x) - x| alike).
  g = jax.tree.map(lambda p: 15 * p, state.generators.params)
  d = state.discriminators.params
  total, (terms, fake_a, fake_b) = jax.jit(family.generator_loss)(g, d, real_a, real_b)
  apply_g, apply_d = jax.jit(family.g.apply), jax.jit(family.d.apply)
  G = lambda name, x: np.asarray(apply_g({"params": g[name]}, x))  # one call per use
  D = lambda name, x: np.asarray(apply_d({"params": d[name]}, x))
  np.testing.assert_allclose(fake_b, G("G_A", real_a), atol=1e-5)  # G_A: A -> B
  np.testing.assert_allclose(fake_a, G("G_B", real_b), atol=1e-5)  # G_B: B -> A
  want = {
      "cycle_a": 10.0 * l1(G("G_B", G("G_A", real_a)), real_a),  # lambda_A |G_B(G_A(A)) - A|
      "cycle_b": 3.0 * l1(G("G_A", G("G_B", real_b)), real_b),   # lambda_B |G_A(G_B(B)) - B|
      "idt_a": 0.5 * 3.0 * l1(G("G_A", real_b), real_b),         # G_A(B) ~ B, lambda_B
      "idt_b": 0.5 * 10.0 * l1(G("G_B", real_a), real_a),        # G_B(A) ~ A, lambda_A
      "g_a": mse(D("D_A", G("G_A", real_a)), 1.0),               # D_A judges domain B
      "g_b": mse(D("D_B", G("G_B", real_b)), 1.0),               # D_B judges domain A
  }
  for name, value in want.items():
    assert float(terms[name]) == pytest.approx(value, rel=1e-4), name
  assert float(total) == pytest.approx(sum(want.values()), rel=1e-4)
  # The usual miswirings give other numbers: identity through the wrong generator, or
  # with the other domain's weight.
  assert not np.isclose(0.5 * 3.0 * l1(G("G_B", real_b), real_b), want["idt_a"], rtol=1e-2)
  assert not np.isclose(0.5 * 10.0 * l1(G("G_A", real_b), real_b), want["idt_a"], rtol=1e-2)


def test_step_is_g_then_d_on_pooled_fakes(tiny_family):
  family, state, step = tiny_family
  real_a, real_b = random_images(seed=3), random_images(seed=4)
  new, metrics, _ = step(jax.device_put(state), {"A": real_a, "B": real_b})
  g, d = state.generators.params, state.discriminators.params
  apply_g, apply_d = jax.jit(family.g.apply), jax.jit(family.d.apply)
  G = lambda name, x: np.asarray(apply_g({"params": g[name]}, x))
  D = lambda params, name, x: np.asarray(apply_d({"params": params[name]}, x))
  fake_b, fake_a = G("G_A", real_a), G("G_B", real_b)  # by the generators before their update
  # The pools are empty: D sees this step's fakes. Halved LSGAN, each D on its own domain.
  assert float(metrics["d_a"]) == pytest.approx(
      0.5 * (mse(D(d, "D_A", real_b), 1.0) + mse(D(d, "D_A", fake_b), 0.0)), rel=1e-4)
  assert float(metrics["d_b"]) == pytest.approx(
      0.5 * (mse(D(d, "D_B", real_a), 1.0) + mse(D(d, "D_B", fake_a), 0.0)), rel=1e-4)
  # G's adversarial terms were measured by the discriminators before their update.
  assert float(metrics["g_a"]) == pytest.approx(mse(D(d, "D_A", fake_b), 1.0), rel=1e-4)
  new = jax.device_get(new)
  assert int(new.step) == 1 and float(metrics["learning_rate"]) == pytest.approx(2e-4)
  for pool, fakes in ((new.fake_a_pool, fake_a), (new.fake_b_pool, fake_b)):
    assert int(pool.count) == 2  # of 3
    np.testing.assert_allclose(pool.images[:2], fakes, atol=1e-5)
  for before, after in ((state.generators.params, new.generators.params),
                        (state.discriminators.params, new.discriminators.params)):
    for name in before:  # all four networks moved
      assert any(not np.array_equal(a, b) for a, b in
                 zip(jax.tree.leaves(before[name]), jax.tree.leaves(after[name])))


def test_step_flags_networks_and_pools_for_the_divergence_guard(tiny_family):
  """The loop's step names every loss and every part of the state (both generators, both
  discriminators, both pools) in its finiteness flags; a NaN image poisons them."""
  family, state, step = tiny_family
  batch = {"A": random_images(seed=5), "B": random_images(seed=6)}
  _, metrics, flags = step(jax.device_put(state), batch)
  flags = jax.device_get(flags)
  parts = {"generators", "discriminators", "fake_a_pool", "fake_b_pool"}
  assert set(flags) == set(metrics) | parts and all(flags.values())
  batch["A"][0, 0, 0, 0] = np.nan
  _, _, flags = step(jax.device_put(state), batch)
  flags = jax.device_get(flags)
  assert not flags["generators"] and not flags["cycle_a"] and not flags["fake_b_pool"]


def test_translate_both_ways_image_by_image(tiny_family):
  family, state, _ = tiny_family
  x = random_images(3, seed=5)
  g = state.generators.params
  run = jax.jit(family.translate, static_argnames="direction")
  for direction, name in (("AtoB", "G_A"), ("BtoA", "G_B")):
    out = np.asarray(run(state, x, None, direction=direction))
    np.testing.assert_allclose(out, jax.jit(family.g.apply)({"params": g[name]}, x), atol=1e-6)
    np.testing.assert_allclose(run(state, x[1:2], None, direction=direction)[0], out[1], atol=1e-5)
  with pytest.raises(config_lib.ConfigError, match="direction must be one of AtoB, BtoA"):
    family.translate(state, x, direction="AtoA")


def port_cycle_generator_64(net, n_blocks=6):
  return port_convs(net, ["conv_1", "conv_2"], n_blocks, ["deconv_1", "deconv_2"])


def test_two_steps_equal_the_torch_reference(tiny_family):
  """The reference's optimize_parameters (tests/torch_reference/torch_cyclegan.py) and the step, from
  the same weights: every loss of the first step, and the generators' losses of the second
  (measured after both updates; its D losses meet a full pool, whose draws differ)."""
  torch, ref = torch_reference("torch_cyclegan")
  family, state, step = tiny_family
  torch.manual_seed(0)
  nets = {"G_A": ref.cycle_generator_64(ngf=4), "G_B": ref.cycle_generator_64(ngf=4),
          "D_A": ref.patch_discriminator(3, ndf=4, n_layers=2, norm="instance"),
          "D_B": ref.patch_discriminator(3, ndf=4, n_layers=2, norm="instance")}
  model = ref.CycleGAN(*nets.values(), pool_size=3, lambda_a=10.0, lambda_b=3.0)
  # Copies: torch's optimizer updates the weights in place, under views of them.
  g = jax.tree.map(np.array, {n: port_cycle_generator_64(nets[n]) for n in ("G_A", "G_B")})
  d = jax.tree.map(np.array, {n: port_patch_discriminator(nets[n]) for n in ("D_A", "D_B")})
  assert jax.tree.structure(g) == jax.tree.structure(state.generators.params)
  state = jax.device_put(state.replace(
      generators=cyclegan.Network(g, {}, family.g_tx.init(g)),
      discriminators=cyclegan.Network(d, {}, family.d_tx.init(d))))
  for seed, names in ((0, family.loss_metrics), (1, ("g_a", "g_b", "cycle_a", "cycle_b",
                                                     "idt_a", "idt_b"))):
    a, b = random_images(seed=10 + seed), random_images(seed=20 + seed)
    state, metrics, _ = step(state, {"A": a, "B": b})
    want = model.optimize_parameters(torch.from_numpy(a.transpose(0, 3, 1, 2)),
                                     torch.from_numpy(b.transpose(0, 3, 1, 2)))
    for name in names:
      assert float(metrics[name]) == pytest.approx(want[name], rel=5e-4, abs=1e-6), (seed, name)


def test_cyclegan_needs_unpaired_data_and_instance_norm():
  with pytest.raises(config_lib.ConfigError, match="CycleGAN trains on unpaired images"):
    families.create(tiny_config(**{"data.unpaired": False}), "cpu")
  with pytest.raises(config_lib.ConfigError, match="trains with InstanceNorm"):
    families.create(tiny_config(**{"model.norm": "batch"}), "cpu")


# ---------------------------------------------------------------------------------------
# Tiny runs.


def no_network(*args, **kwargs):
  raise AssertionError(f"the network was used: {args}")


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
  """(manual_dir, TFDS data_dir, domain classifier dir): 3 A and 5 B 40x40 images prepared
  once, offline, and a domain classifier trained on them for two steps."""
  root = tmp_path_factory.mktemp("apple2orange64")
  write_images(root / "trainA", 3, side=40, seed=1)
  write_images(root / "trainB", 5, side=40, seed=2)
  data_dir = tmp_path_factory.mktemp("tfds")
  judge = tmp_path_factory.mktemp("judge")
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(datasets_base, "network_available", no_network)
    train.train_and_evaluate(tiny(str(REPO / "configs" / "domain_classifier.py"), steps=1, **{
        "data.name": "unpaired/apple2orange64", "data.manual_dir": str(root),
        "data.data_dir": str(data_dir), "data.image_size": 32}), str(judge))
    yield root, data_dir, judge


def test_train_evaluate_and_translate_a_folder(tiny_folders, tmp_path, monkeypatch):
  monkeypatch.setattr(datasets_base, "network_available", no_network)
  root, data_dir, judge = tiny_folders
  workdir = tmp_path / "run"
  state = train.train_and_evaluate(tiny_config(root, data_dir, steps=2), str(workdir))
  assert int(state.step) == 2
  for name in ("losses.png", "real_vs_fake.png", "samples/step_000002.png", "checkpoints/2"):
    assert (workdir / name).exists(), name
  # x | G(x) | F(G(x)), two triplets a row: 2 A images, then 2 B images.
  assert Image.open(workdir / "samples" / "step_000002.png").size == (6 * 34 + 2, 2 * 34 + 2)
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert set(cyclegan.CycleGAN.loss_metrics) | {"g_loss", "learning_rate"} <= set(rows[-1])

  result = evaluate.evaluate(str(workdir), classifier_dir=str(judge))
  assert json.loads((workdir / "eval.json").read_text()) == result
  assert result["step"] == 2 and result["eval_split"] == "train"
  for direction, split, n in (("AtoB", "trainA", 3), ("BtoA", "trainB", 5)):
    scores = result[direction]
    assert scores["split"] == split and scores["num_images"] == n
    assert 0 <= scores["in_target_domain"] <= 1 and 0 < scores["cycle_l1"] < 2
    assert 0 <= scores["classifier_accuracy_on_real"] <= 1
    assert (workdir / f"triplets_{direction}.png").exists()
  assert 0 <= result["classifier"]["accuracy"] <= 1
  assert evaluate.judged(evaluate.evaluate(str(workdir), classifier_dir=str(judge))) == \
      evaluate.judged(result)

  photos, out = tmp_path / "photos", tmp_path / "out"
  write_images(photos, 2, side=50, seed=9)
  (photos / "notes.txt").write_text("not an image")
  cli = subprocess.run([sys.executable, "-m", "jaxgan.sample", "--workdir", str(workdir),
                        "--input_dir", str(photos), "--output_dir", str(out / "BtoA"),
                        "--direction", "BtoA"],
                       cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert cli.returncode == 0, cli.stderr[-2000:]
  _, family, state = inference.load_run(str(workdir))
  translate.translate_folder(family, state, str(photos), str(out / "AtoB"))  # the default
  for direction, g in (("AtoB", "G_A"), ("BtoA", "G_B")):
    assert sorted(p.name for p in (out / direction).iterdir()) == ["0.png", "1.png"]
    image = np.asarray(Image.open(out / direction / "0.png"))
    x = translate.load_image(str(photos / "0.png"), 32)[None]
    want = visualize.to_uint8(jax.jit(family.g.apply)({"params": state.generators.params[g]}, x))[0]
    assert image.shape == (32, 32, 3) and np.abs(image.astype(int) - want).max() <= 1
  with pytest.raises(ValueError, match="this model translates AtoB or BtoA"):
    translate.translate_folder(family, state, str(photos), str(out / "x"), direction="AtoA")


def test_a_classifier_of_another_data_set_is_refused(tiny_folders, tmp_path, monkeypatch):
  monkeypatch.setattr(datasets_base, "network_available", no_network)
  root, data_dir, judge = tiny_folders
  workdir = tmp_path / "run"
  train.train_and_evaluate(tiny_config(root, data_dir, steps=1, num_grid_images=0), str(workdir))
  config = json.loads((judge / "config.json").read_text())
  config["data"]["name"] = "cycle_gan/horse2zebra"
  other = tmp_path / "judge"
  other.mkdir()
  (other / "config.json").write_text(json.dumps(config))
  (other / "checkpoints").symlink_to(judge / "checkpoints")
  with pytest.raises(config_lib.ConfigError, match="judges cycle_gan/horse2zebra"):
    evaluate.evaluate(str(workdir), classifier_dir=str(other))


def test_resume_equals_uninterrupted(tiny_folders, tmp_path, monkeypatch):
  monkeypatch.setattr(datasets_base, "network_available", no_network)
  root, data_dir, _ = tiny_folders
  # Pools of 3 fill within two steps of 2 images: the resumed run meets full pools, whose
  # draws must continue as they would have.
  config = lambda steps: tiny_config(root, data_dir, steps=steps, num_grid_images=0,
                                     checkpoint_every_steps=100)
  straight = train.train_and_evaluate(config(4), str(tmp_path / "straight"))
  train.train_and_evaluate(config(2), str(tmp_path / "resumed"))
  resumed = train.train_and_evaluate(config(4), str(tmp_path / "resumed"))
  assert int(resumed.fake_a_pool.count) == 3
  for a, b in zip(jax.tree.leaves(jax.device_get(straight)), jax.tree.leaves(jax.device_get(resumed))):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("args,message", [
    (["--config.data.unpaired=False"], "CycleGAN trains on unpaired images"),
    (["--config.data.image_size=30", "--config.data.load_size=30"],
     "multiples of 4, got shape (1, 30, 30, 3)"),
    (["--config.data.name=unpaired/grumpifycat", "--config.data.manual_dir=/nonexistent/cats"],
     "It is prepared from local folders only"),
])
def test_command_line_mistakes_are_one_line(tiny_folders, tmp_path, args, message):
  root, data_dir, _ = tiny_folders
  out = subprocess.run([sys.executable, "-m", "jaxgan.main", "--config", CPU_CONFIG,
                        "--workdir", str(tmp_path), f"--config.data.manual_dir={root}",
                        f"--config.data.data_dir={data_dir}", *args],
                       cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert out.returncode != 0
  assert message in out.stderr and "Traceback" not in out.stderr


def test_domain_classifier_accuracy_is_measured_on_images_it_did_not_learn():
  # With a test phase: train on train, measure on test.
  assert evaluate.classifier_splits("train", "test") == ("trainA+trainB", "testA+testB")
  # The 64x64 sets have none: a fifth of each domain is held out.
  assert evaluate.classifier_splits("train", "train") == ("trainA[:80%]+trainB[:80%]",
                                                          "trainA[80%:]+trainB[80%:]")
