"""Numbers for generated images. This module: the digit metrics, from a classifier's
predictions and features; `jaxgan.metrics.standard`: Inception FID, KID and
precision/recall under the clean-fid protocol (`jaxgan.metrics.inception`: the network).

- `frechet_distance`: the FID formula of Heusel et al. (2017), ||mu_a - mu_b||^2 +
  Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), on any feature space; `jaxgan.evaluate` uses the
  MNIST classifier's 128-d features (the digit analogue of Inception features).
  Tr((S_a S_b)^(1/2)) is computed as the sum of square roots of the eigenvalues of the
  symmetric PSD matrix S_a^(1/2) S_b S_a^(1/2), which has the same spectrum and needs no
  complex matrix square root.
- `confusion_matrix`, `pair_confusion`: requested class against predicted class.
- `class_histogram`, `entropy_bits`: how a generator spreads over the classes.
"""

import numpy as np


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean and (unbiased) covariance of features [N, F], in float64."""
  features = np.asarray(features, np.float64)
  return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
  values, vectors = np.linalg.eigh(matrix)
  return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu_a, cov_a, mu_b, cov_b) -> float:
  """The Frechet distance between N(mu_a, cov_a) and N(mu_b, cov_b)."""
  root_a = _psd_sqrt(cov_a)
  middle = root_a @ cov_b @ root_a
  trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
  diff = np.asarray(mu_a) - np.asarray(mu_b)
  return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
  """FID between two sets of features [N, F]."""
  return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def confusion_matrix(requested: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
  """counts [K, K]: row = the class asked for, column = the class predicted."""
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (np.asarray(requested), np.asarray(predicted)), 1)
  return matrix


def pair_confusion(matrix: np.ndarray, a: int, b: int) -> dict[str, float]:
  """Share of class-a requests predicted b, of b predicted a, and of both together."""
  rows = matrix.sum(axis=1)
  return {f"{a}->{b}": float(matrix[a, b] / max(rows[a], 1)),
          f"{b}->{a}": float(matrix[b, a] / max(rows[b], 1)),
          "both": float((matrix[a, b] + matrix[b, a]) / max(rows[a] + rows[b], 1))}


def class_histogram(predicted: np.ndarray, num_classes: int) -> np.ndarray:
  return np.bincount(np.asarray(predicted), minlength=num_classes)


def entropy_bits(counts: np.ndarray) -> float:
  """Entropy of the distribution `counts` describes, in bits (10 equal classes: 3.32)."""
  p = np.asarray(counts, np.float64) / max(np.sum(counts), 1)
  p = p[p > 0]
  return float(-(p * np.log2(p)).sum())
