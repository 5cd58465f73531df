"""Child process of test_backends: losses of saved weights and a batch on $KERAS_BACKEND."""

# usage: KERAS_BACKEND=jax python tests/backend_check.py case.npz
# The .npz holds `arch` (JSON of a quick96.Architecture), weights `w_000`... in model.get_weights()
# order and the batch as `b_<input name>`. Prints one JSON line: the losses before a step, those
# the step returns, and those after one RMSprop step without learning-rate dropout.

from __future__ import annotations

import json
import sys

from dfl import backend


def main(path: str) -> None:
    name = backend.select(None)
    import keras
    import numpy as np

    from dfl.models.quick96 import model as quick96
    from dfl.nn.optimizers import RMSprop

    keras.utils.set_random_seed(0)
    with np.load(path, allow_pickle=False) as data:
        arch = quick96.Architecture(**json.loads(str(data["arch"])))
        weights = [data[k] for k in sorted(k for k in data.files if k.startswith("w_"))]
        batch = {k[2:]: data[k] for k in data.files if k.startswith("b_")}
    model = quick96.build({}, arch)
    model.set_weights(weights)
    optimizer = RMSprop(learning_rate=quick96.LR, lr_dropout=1.0)
    step = backend.make_model_step(model, quick96.compute_losses, optimizer)
    before = step.evaluate(batch)
    during = step(batch)
    after = step.evaluate(batch)
    print(json.dumps({"backend": name, "before": before, "step": during, "after": after}))


if __name__ == "__main__":
    main(sys.argv[1])
