"""The FID Inception network: a Flax port of pytorch-fid's InceptionV3 with its FID blocks,
and its weights.

The network is the TensorFlow graph `inception-2015-12-05` that FID was defined with
(Heusel et al. 2017), as pytorch-fid rebuilt it: torchvision's Inception v3 with the blocks
`FIDInceptionA/C/E_1` (average pools that leave the zero padding out of the mean, as
TensorFlow's do) and `FIDInceptionE_2` (a max pool where the paper has an average pool,
as that graph has). It returns the 2048-d pool3 features. Layer names and the parameter
tree follow the PyTorch module names (`Mixed_6b/branch7x7_2/kernel` ==
`Mixed_6b.branch7x7_2.conv.weight`), so `params_from_state_dict` is a renaming and a
transposition. Convolutions run at precision HIGHEST on every backend: a measurement does
not follow the training's `config.precision`.

The weights are pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (`weights_path`: a
given path, else $JAXGAN_INCEPTION_WEIGHTS, else the cache folder, else downloaded there
with its SHA256 checked). Reading the file needs PyTorch (`torch.load`): torch is a
run-time need of these metrics only.
"""

import hashlib
import os
import shutil
import tempfile
import urllib.request
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgan.conv_arith import DIMS
from jaxgan.errors import DataNotFoundError

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               + WEIGHTS_FILE)
# The file's SHA256; its first 8 digits are the name's suffix, torch.hub's check_hash
# convention.
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
WEIGHTS_ENV = "JAXGAN_INCEPTION_WEIGHTS"
CACHE_ENV = "JAXGAN_CACHE"
# torchvision's BasicConv2d: BatchNorm2d(eps=0.001).
BN_EPSILON = 1e-3
FEATURES = 2048
INPUT_SIZE = 299


class WeightsNotFoundError(DataNotFoundError):
  """The Inception weights are neither given, nor cached, nor downloadable."""


def cache_dir() -> str:
  """$JAXGAN_CACHE, else ~/.cache/jaxgan: the weights and the reference features."""
  return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "jaxgan")


def sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _download(path: str) -> None:
  """WEIGHTS_URL to `path`, kept only when its SHA256 is WEIGHTS_SHA256."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fd, partial = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".partial")
  try:
    with os.fdopen(fd, "wb") as f, urllib.request.urlopen(WEIGHTS_URL, timeout=60) as response:
      shutil.copyfileobj(response, f)
    found = sha256(partial)
    if found != WEIGHTS_SHA256:
      raise DataNotFoundError(f"{WEIGHTS_URL} downloaded with SHA256 {found}, not "
                              f"{WEIGHTS_SHA256}: not used")
    os.replace(partial, path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)


def missing_message() -> str:
  return (f"no Inception weights: download {WEIGHTS_URL} (SHA256 {WEIGHTS_SHA256}) and put it "
          f"at {os.path.join(cache_dir(), WEIGHTS_FILE)}, or pass --inception_weights PATH or "
          f"set ${WEIGHTS_ENV}")


def _local(path: str | None) -> tuple[str | None, str]:
  """(`path`, else $JAXGAN_INCEPTION_WEIGHTS, else None; the cache folder's file)."""
  return path or os.environ.get(WEIGHTS_ENV) or None, os.path.join(cache_dir(), WEIGHTS_FILE)


def weights_at_hand(path: str | None = None) -> bool:
  """Whether `weights_path` finds a file without downloading one."""
  given, cached = _local(path)
  return os.path.isfile(given or cached)


def weights_path(path: str | None = None) -> str:
  """The weights file: `path`, else $JAXGAN_INCEPTION_WEIGHTS, else the cache folder's,
  downloaded there first when the network answers. Given files are taken as they are
  (their SHA256 goes into the results); a download must match WEIGHTS_SHA256."""
  from jaxgan.datasets import base  # pylint: disable=import-outside-toplevel
  given, cached = _local(path)
  if given:
    if not os.path.isfile(given):
      raise WeightsNotFoundError(f"no Inception weights file {given}")
    return given
  if os.path.isfile(cached):
    return cached
  if not base.network_available(WEIGHTS_URL):
    raise WeightsNotFoundError(missing_message())
  print(f"downloading the Inception weights to {cached}", flush=True)
  _download(cached)
  return cached


def _pair(x) -> tuple[int, int]:
  return (x, x) if isinstance(x, int) else tuple(x)


def params_from_state_dict(state_dict: dict[str, Any]) -> dict[str, Any]:
  """pytorch-fid's state dict (names -> arrays) -> the Flax parameter tree: each
  `<path>.conv.weight` [O, I, H, W] -> `<path>/kernel` [H, W, I, O], each `<path>.bn.*` ->
  `<path>/{scale, bias, mean, var}`; the classifier (`fc`) and the counters are dropped."""
  renames = {"conv.weight": "kernel", "bn.weight": "scale", "bn.bias": "bias",
             "bn.running_mean": "mean", "bn.running_var": "var"}
  params: dict[str, Any] = {}
  for key, value in state_dict.items():
    parts = key.split(".")
    leaf = renames.get(".".join(parts[-2:]))
    if leaf is None:
      continue
    array = np.asarray(value, np.float32)
    if leaf == "kernel":
      array = array.transpose(2, 3, 1, 0)
    node = params
    for name in parts[:-2]:
      node = node.setdefault(name, {})
    node[leaf] = jnp.asarray(array)
  return params


def load_params(path: str) -> dict[str, Any]:
  """The Flax parameters in the PyTorch weights file `path` (needs torch)."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise DataNotFoundError("reading the Inception weights needs PyTorch, a need of the "
                            "standard metrics only: pip install torch==2.13.0 (the CPU "
                            "wheel suffices), or leave fid, kid and pr out of --metrics") from None
  state_dict = torch.load(path, map_location="cpu", weights_only=True)
  params = params_from_state_dict({k: v.numpy() for k, v in state_dict.items()})
  if "Mixed_7c" not in params:
    raise DataNotFoundError(f"{path} holds no FID Inception weights")
  return params


class BasicConv(nn.Module):
  """torchvision's BasicConv2d: convolution without bias, BatchNorm2d(eps=1e-3) with its
  running statistics (inference), ReLU."""
  features: int
  kernel_size: Any
  strides: int = 1
  padding: Any = 0

  @nn.compact
  def __call__(self, x):
    kh, kw = _pair(self.kernel_size)
    ph, pw = _pair(self.padding)
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (kh, kw, x.shape[-1], self.features))
    y = lax.conv_general_dilated(x, kernel, (self.strides, self.strides), [(ph, ph), (pw, pw)],
                                 dimension_numbers=DIMS, precision=lax.Precision.HIGHEST)
    c = self.features
    scale = self.param("scale", nn.initializers.ones, (c,))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    mean = self.param("mean", nn.initializers.zeros, (c,))
    var = self.param("var", nn.initializers.ones, (c,))
    return nn.relu((y - mean) * (lax.rsqrt(var + BN_EPSILON) * scale) + bias)


def max_pool(x, stride: int, padding: int = 0):
  """F.max_pool2d(kernel 3, stride, padding): padding never wins the max."""
  pad = ((0, 0), (padding, padding), (padding, padding), (0, 0))
  return lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, stride, stride, 1), pad)


def avg_pool_same(x):
  """F.avg_pool2d(kernel 3, stride 1, padding 1, count_include_pad=False): the mean of the
  window's pixels inside the image, as TensorFlow's average pool."""
  pad = ((0, 0), (1, 1), (1, 1), (0, 0))
  window, strides = (1, 3, 3, 1), (1, 1, 1, 1)
  total = lax.reduce_window(x, 0.0, lax.add, window, strides, pad)
  count = lax.reduce_window(jnp.ones(x.shape[1:3] + (1,), x.dtype)[None], 0.0, lax.add,
                            window, strides, pad)
  return total / count


class InceptionA(nn.Module):
  """FIDInceptionA."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(64, 1, name="branch1x1")(x)
    b5 = BasicConv(48, 1, name="branch5x5_1")(x)
    b5 = BasicConv(64, 5, padding=2, name="branch5x5_2")(b5)
    b3 = BasicConv(64, 1, name="branch3x3dbl_1")(x)
    b3 = BasicConv(96, 3, padding=1, name="branch3x3dbl_2")(b3)
    b3 = BasicConv(96, 3, padding=1, name="branch3x3dbl_3")(b3)
    bp = BasicConv(self.pool_features, 1, name="branch_pool")(avg_pool_same(x))
    return jnp.concatenate([b1, b5, b3, bp], -1)


class InceptionB(nn.Module):
  """torchvision's InceptionB (Mixed_6a)."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(384, 3, strides=2, name="branch3x3")(x)
    bd = BasicConv(64, 1, name="branch3x3dbl_1")(x)
    bd = BasicConv(96, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = BasicConv(96, 3, strides=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, max_pool(x, 2)], -1)


class InceptionC(nn.Module):
  """FIDInceptionC."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv(192, 1, name="branch1x1")(x)
    b7 = BasicConv(c7, 1, name="branch7x7_1")(x)
    b7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv(c7, 1, name="branch7x7dbl_1")(x)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv(192, 1, name="branch_pool")(avg_pool_same(x))
    return jnp.concatenate([b1, b7, bd, bp], -1)


class InceptionD(nn.Module):
  """torchvision's InceptionD (Mixed_7a)."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(192, 1, name="branch3x3_1")(x)
    b3 = BasicConv(320, 3, strides=2, name="branch3x3_2")(b3)
    b7 = BasicConv(192, 1, name="branch7x7x3_1")(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv(192, 3, strides=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, max_pool(x, 2)], -1)


class InceptionE(nn.Module):
  """FIDInceptionE_1 (`pool='avg'`, Mixed_7b) and FIDInceptionE_2 (`pool='max'`, Mixed_7c)."""
  pool: str

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(320, 1, name="branch1x1")(x)
    b3 = BasicConv(384, 1, name="branch3x3_1")(x)
    b3 = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                          BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], -1)
    bd = BasicConv(448, 1, name="branch3x3dbl_1")(x)
    bd = BasicConv(384, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                          BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)],
                         -1)
    pooled = avg_pool_same(x) if self.pool == "avg" else max_pool(x, 1, 1)
    bp = BasicConv(192, 1, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], -1)


class FIDInceptionV3(nn.Module):
  """pytorch-fid's `InceptionV3(output_blocks=[3], resize_input=False)`: float images
  [N, H, W, 3] with values in [0, 255] (already resized to 299 x 299 by the clean-fid
  protocol) -> pool3 features [N, 2048]. The input is scaled to [-1, 1] as pytorch-fid's
  normalize_input does with the x / 255 that clean-fid feeds it."""

  @nn.compact
  def __call__(self, x):
    x = 2 * (x / 255.0) - 1
    x = BasicConv(32, 3, strides=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, 3, name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
    x = max_pool(x, 2)
    x = BasicConv(80, 1, name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, 3, name="Conv2d_4a_3x3")(x)
    x = max_pool(x, 2)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(c7, name=name)(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE("avg", name="Mixed_7b")(x)
    x = InceptionE("max", name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))
