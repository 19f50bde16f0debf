"""`python -m jaxgan.main` over TFDS's mock data: the training process that the fault tests
start, kill and restart (tests/faults_test.py).

  python tests/fault_launcher.py --config configs/X.py --workdir DIR [--config.a=b ...]

The command line is the real one (`jaxgan.main`'s flags, parsing and one-line errors); only
the data are TFDS's deterministic mock examples, so every process sees the same stream.
"""

import os
import sys

# This checkout's jaxgan, whichever copy the interpreter has installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jaxgan  # noqa: E402,F401  (XLA flags before JAX starts)
import tensorflow_datasets as tfds  # noqa: E402
from absl import app  # noqa: E402

from jaxgan import main  # noqa: E402
from jaxgan.datasets import base as datasets_base  # noqa: E402

if __name__ == "__main__":
  datasets_base.network_available = lambda url: True  # the mocked download stands in
  with tfds.testing.mock_data(num_examples=12):
    app.run(main.main, flags_parser=main.parse_flags)
