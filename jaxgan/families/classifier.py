"""The `classifier` family: a supervised image classifier trained by the same loop.

It exists to judge generative models: `configs/mnist_classifier.py` trains the MNIST
classifier whose predictions and 128-d features give the digit metrics of
`jaxgan.evaluate` (per-class accuracy of conditional samples, the digit FID). The
step is plain supervised learning: softmax cross-entropy, dropout, Adam.
"""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgan import config_fields as fields, losses, models
from jaxgan.errors import ConfigError
from jaxgan.families.gan import count_params

Array = jax.Array


def config_sections(config: ml_collections.ConfigDict) -> None:
  """The classifier family's sections: the network (`jaxgan.models`) and its classes."""
  config.model = ml_collections.ConfigDict()
  config.model.classifier = "mnist_classifier"
  config.model.num_classes = 10
  config.num_grid_images = 0  # a classifier draws no samples


def validate(config: ml_collections.ConfigDict) -> None:
  fields.nonnegative(config, "model.num_classes")


def upgrade(config: dict) -> None:
  """Every field a classifier reads has been there from its start."""
  del config


@flax.struct.dataclass
class ClassifierState:
  step: Array
  rng: Array
  params: Any
  opt_state: Any


class Classifier:
  """Trains `config.model.classifier` on (image, label) batches. It has the core and
  `families.Prediction`; it draws no images, so it has no sampling methods."""

  loss_metrics = ("loss",)

  def __init__(self, config):
    if config.num_grid_images:
      raise ConfigError("a classifier draws no sample grids: set config.num_grid_images=0")
    self.image_shape = (config.data.image_size, config.data.image_size, config.data.channels)
    self.net = models.create(config.model.classifier, "classifier",
                             image_size=config.data.image_size,
                             num_classes=config.model.num_classes,
                             dtype=config.dtype)  # float32 only
    o = config.optimizer
    self.tx = optax.adam(o.learning_rate, b1=o.b1, b2=o.b2)

  def init_state(self, rng: Array) -> ClassifierState:
    rng, init_rng = jax.random.split(rng)
    params = self.net.init(init_rng, jnp.zeros((1, *self.image_shape)))["params"]
    return ClassifierState(jnp.zeros((), jnp.int32), rng, params, self.tx.init(params))

  def train_step(self, state: ClassifierState, batch: dict[str, Array]):
    rng, dropout_rng = jax.random.split(state.rng)

    def loss_fn(params):
      logits = self.net.apply({"params": params}, batch["image"], train=True,
                              rngs={"dropout": dropout_rng})
      return losses.classification_loss(logits, batch["label"]), logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    metrics = {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"])}
    return ClassifierState(state.step + 1, rng, optax.apply_updates(state.params, updates),
                           opt_state), metrics

  def predict(self, state: ClassifierState, images: Array) -> tuple[Array, Array]:
    """(class probabilities [N, K], features [N, F]) in inference mode."""
    logits, features = self.net.apply({"params": state.params}, images, return_features=True)
    return jax.nn.softmax(logits, -1), features

  def param_counts(self, state: ClassifierState) -> dict[str, int]:
    return {"classifier": count_params(state.params)}
