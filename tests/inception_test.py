"""The standard metrics: the Flax FID Inception against pytorch-fid's network with the same
random weights (block by block, and whole from a .pth file), the clean-fid preprocessing
against PIL, FID, KID and precision/recall against direct NumPy/SciPy formulas, and the
weights' look-up. torch is in the test extra: nothing here is skipped without it."""

import hashlib
import io
import os
import sys
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from scipy.spatial.distance import cdist

from jaxgan import metrics
from jaxgan.datasets import base
from jaxgan.metrics import inception, standard
from pix2pix_models_test import torch_reference


@pytest.fixture(scope="module")
def torch_net():
  return torch_reference("torch_fid_inception")[1].random_fid_inception()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, torch_net):
  path = tmp_path_factory.mktemp("inception") / "random_inception.pth"
  torch.save(torch_net.state_dict(), path)
  return str(path)


def relative_error(got, expected) -> float:
  return float(np.abs(np.asarray(got) - expected).max() / np.abs(expected).max())


def test_every_block_equals_pytorch_fid(torch_net, weights_file):
  """Each layer's output (stem convolutions, every Mixed block) and the features, from the
  same input and weights, at the smallest size the network takes (75 x 75)."""
  outputs = {}
  hooks = [module.register_forward_hook(
      lambda _m, _i, out, name=name: outputs.__setitem__(name, out.numpy().transpose(0, 2, 3, 1)))
           for name, module in torch_net.named_children() if "pool" not in name and name != "fc"]
  x = np.random.default_rng(0).uniform(0, 255, (2, 75, 75, 3)).astype(np.float32)
  with torch.no_grad():
    expected = torch_net(torch.from_numpy(x / 255).permute(0, 3, 1, 2)).numpy()
  for hook in hooks:
    hook.remove()
  apply = jax.jit(lambda params, x: inception.FIDInceptionV3().apply(
      {"params": params}, x, capture_intermediates=True, mutable=["intermediates"]))
  got, state = apply(inception.load_params(weights_file), jnp.asarray(x))
  blocks = state["intermediates"]
  names = list(outputs)
  assert len(names) == 16 and set(names) <= set(blocks)
  for name in names:
    assert relative_error(blocks[name]["__call__"][0], outputs[name]) < 1e-5, name
  assert got.shape == (2, inception.FEATURES)
  assert relative_error(got, expected) < 1e-5


def test_features_of_images_equal_pytorch_fid(torch_net, weights_file):
  """Images through the whole protocol (quantised, resized to 299, the jitted batched
  network read from a .pth file) against pytorch-fid's network on the same resized input."""
  images = np.random.default_rng(1).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
  got = standard.Extractor.from_file(weights_file, batch_size=2).features(images)
  resized = standard.preprocess(images)
  with torch.no_grad():
    expected = torch_net(torch.from_numpy(resized / 255).permute(0, 3, 1, 2)).numpy()
  assert got.shape == (3, inception.FEATURES)
  assert relative_error(got, expected) < 1e-5


def test_preprocess_is_quantisation_then_pil_bicubic_per_channel():
  rng = np.random.default_rng(2)
  floats = rng.uniform(-1, 1, (2, 20, 24, 3)).astype(np.float32)
  uint8 = np.clip(np.rint((floats + 1) * 127.5), 0, 255).astype(np.uint8)
  got = standard.preprocess(floats)
  assert got.shape == (2, 299, 299, 3) and got.dtype == np.float32
  np.testing.assert_array_equal(got, standard.preprocess(uint8))
  for i in range(2):
    for c in range(3):
      channel = Image.fromarray(uint8[i, :, :, c].astype(np.float32), mode="F")
      expected = np.asarray(channel.resize((299, 299), Image.Resampling.BICUBIC))
      np.testing.assert_array_equal(got[i, :, :, c], np.clip(expected, 0, 255))
  # Bicubic overshoots at edges: clipped to [0, 255], not re-quantised.
  edges = np.zeros((1, 8, 8, 1), np.uint8)
  edges[:, :, 4:] = 255
  gray = standard.preprocess(edges)
  assert gray.min() == 0 and gray.max() == 255 and (gray[..., 0] == gray[..., 2]).all()
  assert not np.allclose(gray, np.round(gray))


def test_fid_equals_the_closed_form_and_scipy():
  rng = np.random.default_rng(3)
  a = rng.normal(size=(4000, 4))
  b = rng.normal(size=(4000, 4)) * np.array([1.0, 2.0, 0.5, 1.0]) + np.array([1.0, 0, 0, -1.0])
  got = standard.compare(a, b, ["fid"])["fid"]
  mu_a, mu_b, cov_a, cov_b = a.mean(0), b.mean(0), np.cov(a.T), np.cov(b.T)
  expected = (np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b)
              - 2 * np.trace(scipy.linalg.sqrtm(cov_a @ cov_b).real))
  assert got == pytest.approx(expected, rel=1e-6)
  # The populations' closed form: |mu_a - mu_b|^2 + sum (s_a - s_b)^2 for diagonal covariances.
  assert got == pytest.approx(2 + (2 - 1) ** 2 + (0.5 - 1) ** 2, abs=0.1)


def mmd2_direct(x, y):
  """Unbiased MMD^2 with the cubic polynomial kernel, written out in float64."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  m, d = x.shape
  k = lambda a, b: (a @ b.T / d + 1) ** 3
  kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
  return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
          - 2 * kxy.mean())


def test_kid_equals_a_direct_mmd():
  rng = np.random.default_rng(4)
  a = rng.normal(size=(120, 8)).astype(np.float32)
  b = (rng.normal(size=(150, 8)) * 1.2 + 0.2).astype(np.float32)
  # Subsets as large as the smaller side: each of a's is all of a, in some order.
  whole = standard.kid(a, b[:120], num_subsets=3, subset_size=1000)
  assert whole["kid"] == pytest.approx(mmd2_direct(a, b[:120]), rel=1e-4)
  assert whole["kid_std"] < 1e-4 * abs(whole["kid"])
  # Subsets: the same draws as kid's.
  got = standard.kid(a, b, num_subsets=10, subset_size=50, seed=7)
  draws = np.random.default_rng(7)
  values = [mmd2_direct(a[draws.choice(120, 50, replace=False)],
                        b[draws.choice(150, 50, replace=False)]) for _ in range(10)]
  assert got["kid"] == pytest.approx(np.mean(values), rel=1e-4)
  assert got["kid_std"] == pytest.approx(np.std(values), rel=1e-3)


def test_precision_and_recall_of_known_point_sets():
  line = lambda xs: np.pad(np.asarray(xs, np.float32)[:, None], ((0, 0), (0, 3)))
  real = line(range(10))  # k = 3: radius 3 at the ends, 2 inside
  # The fakes' radii: 3, 2, 2, 3: their manifold covers [-2.5, 6.5], 7 of the 10 reals.
  assert standard.precision_recall(real, line([0.5, 1.5, 2.5, 3.5])) == {
      "precision": 1.0, "recall": 0.7}
  # 4.5 inside, 11.5 and -2.5 within the ends' radius 3, 12.5 and -3.5 outside.
  assert standard.manifold_share(line([4.5, 11.5, 12.5, -2.5, -3.5]), real) == pytest.approx(0.6)


def test_precision_and_recall_equal_a_direct_computation():
  rng = np.random.default_rng(5)
  real = rng.normal(size=(230, 6)).astype(np.float32)
  fake = (rng.normal(size=(170, 6)) + 0.7).astype(np.float32)

  def share(queries, points, k=3):
    radii = np.sort(cdist(points, points), 1)[:, k]
    return np.mean((cdist(queries, points) <= radii[None]).any(1))

  got = {"precision": standard.manifold_share(fake, real, block=64),
         "recall": standard.manifold_share(real, fake, block=64)}
  assert got == pytest.approx({"precision": share(fake, real), "recall": share(real, fake)})
  assert got == pytest.approx(standard.precision_recall(real, fake))


def test_reference_features_are_computed_once(tmp_path, monkeypatch):
  monkeypatch.setenv(inception.CACHE_ENV, str(tmp_path))

  class Fake:
    weights_sha256 = "0123456789abcdef"
    features = staticmethod(lambda images: np.asarray(images, np.float32).reshape(len(images), -1))

  calls = []
  load = lambda: calls.append(1) or np.ones((3, 2, 2, 1), np.uint8)
  first = standard.reference_features(Fake(), "mnist-train-3-28px", load)
  second = standard.reference_features(Fake(), "mnist-train-3-28px", load)
  assert len(calls) == 1 and np.array_equal(first, second) and first.shape == (3, 4)
  assert os.listdir(tmp_path / "reference") == ["mnist-train-3-28px-0123456789ab.npy"]


def test_missing_weights_are_one_line_saying_where_to_get_and_put_them(tmp_path, monkeypatch):
  monkeypatch.setenv(inception.CACHE_ENV, str(tmp_path))
  monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
  monkeypatch.setattr(base, "network_available", lambda *a, **k: False)
  with pytest.raises(inception.WeightsNotFoundError) as e:
    inception.weights_path()
  message = str(e.value)
  assert "\n" not in message and inception.WEIGHTS_URL in message
  assert str(tmp_path / inception.WEIGHTS_FILE) in message and "--inception_weights" in message
  assert inception.WEIGHTS_ENV in message
  with pytest.raises(inception.WeightsNotFoundError, match="no Inception weights file"):
    inception.weights_path(str(tmp_path / "absent.pth"))
  given = tmp_path / "given.pth"
  given.write_bytes(b"x")
  monkeypatch.setenv(inception.WEIGHTS_ENV, str(given))
  assert inception.weights_path() == str(given)


def test_a_download_is_kept_only_with_the_expected_sha256(tmp_path, monkeypatch):
  monkeypatch.setenv(inception.CACHE_ENV, str(tmp_path))
  monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
  monkeypatch.setattr(base, "network_available", lambda *a, **k: True)
  monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: io.BytesIO(b"not weights"))
  with pytest.raises(inception.DataNotFoundError, match="SHA256"):
    inception.weights_path()
  assert os.listdir(tmp_path) == []
  monkeypatch.setattr(inception, "WEIGHTS_SHA256", hashlib.sha256(b"not weights").hexdigest())
  assert inception.weights_path() == str(tmp_path / inception.WEIGHTS_FILE)


def test_reading_weights_without_torch_says_torch_is_needed(monkeypatch, weights_file):
  monkeypatch.setitem(sys.modules, "torch", None)
  with pytest.raises(inception.DataNotFoundError, match="needs PyTorch.*pip install torch"):
    inception.load_params(weights_file)


def test_digit_metrics_still_import_from_the_package():
  assert metrics.fid is not None and metrics.confusion_matrix is not None
