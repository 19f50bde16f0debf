"""Learning-rate schedules of junyanz/pytorch-CycleGAN-and-pix2pix (`models/networks.py`,
`get_scheduler` with `--lr_policy linear`), shared by pix2pix and CycleGAN: the rate is
constant for `n_epochs` epochs, then falls linearly over `n_epochs_decay` more, stepped
once per epoch (pix2pix: 100 + 100 epochs; CycleGAN: the same).
"""

import jax.numpy as jnp
import ml_collections
import optax

from jaxgan import config_fields as fields


def config_section(config: ml_collections.ConfigDict) -> None:
  """`config.schedule` with the reference's 100 + 100 epochs, of `config.data.
  num_train_examples` examples each (an experiment sets its data set's)."""
  config.schedule = ml_collections.ConfigDict()
  config.schedule.n_epochs = 100        # at the initial learning rate
  config.schedule.n_epochs_decay = 100  # then linearly to 0


def validate(config: ml_collections.ConfigDict) -> None:
  fields.nonnegative(config, "schedule.n_epochs", "schedule.n_epochs_decay")


def lr_multiplier(epoch, n_epochs: int, n_epochs_decay: int):
  """junyanz's `lambda_rule` (networks.get_scheduler, --lr_policy linear, epoch_count 1).

  For the 0-based epoch e: 1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1). That is 1
  for epochs 0 .. n_epochs - 1, then 1 - k / (n_epochs_decay + 1) in the k-th decaying
  epoch, so the last epoch (n_epochs + n_epochs_decay - 1) trains at 1 / (n_epochs_decay
  + 1) of the rate: the reference's scheduler stepped at the end of every epoch (its
  train.py of the paper's time; versions that step at the start of an epoch run one epoch
  ahead). Clipped at 0 for runs longer than the schedule.
  """
  return jnp.clip(1.0 - jnp.maximum(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1), 0.0, 1.0)


def learning_rate_schedule(config) -> optax.Schedule:
  """The rate of the update after `count` updates: epochs are `num_train_examples` examples
  (CycleGAN: the larger domain, the reference's len(UnalignedDataset))."""
  lr, batch = config.optimizer.learning_rate, config.batch_size
  n_epochs, n_epochs_decay = config.schedule.n_epochs, config.schedule.n_epochs_decay
  per_epoch = config.data.num_train_examples

  def schedule(count):
    return lr * lr_multiplier(count * batch // per_epoch, n_epochs, n_epochs_decay)

  return schedule


def adam_pair(config) -> tuple[optax.Schedule, optax.GradientTransformation,
                               optax.GradientTransformation]:
  """(schedule, optimizer_G, optimizer_D): the reference's two Adams (lr, beta1, beta2 of
  config.optimizer) on the linear policy, as pix2pix and CycleGAN both build them."""
  schedule, opt = learning_rate_schedule(config), config.optimizer
  return (schedule, optax.adam(schedule, b1=opt.b1, b2=opt.b2),
          optax.adam(schedule, b1=opt.b1, b2=opt.b2))
