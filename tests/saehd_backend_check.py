"""Child process of test_saehd_backends: SAEHD loss groups of saved weights and a batch on
$KERAS_BACKEND."""

# usage: KERAS_BACKEND=jax python tests/saehd_backend_check.py case.npz
# The .npz holds `options` (JSON of resolved SAEHD options), the weights of every network of
# saehd.make_training(...).models as `w_<model index>_<weight index>` in get_weights() order, and
# the batch as `b_<input name>`. Prints one JSON line: the losses of every group before the step,
# those the multi-group step returns, and those after it.

from __future__ import annotations

import json
import sys

from dfl import backend


def main(path: str) -> None:
    name = backend.select(None)
    import keras
    import numpy as np

    from dfl.backend.multistep import make_multi_step
    from dfl.models import saehd

    keras.utils.set_random_seed(0)
    with np.load(path, allow_pickle=False) as data:
        options = json.loads(str(data["options"]))
        weights = {k: data[k] for k in data.files if k.startswith("w_")}
        batch = {k[2:]: data[k] for k in data.files if k.startswith("b_")}
    model = saehd.build(options)
    training = saehd.make_training(options, model)
    for mi, net in enumerate(training.models):
        keys = sorted(k for k in weights if k.startswith(f"w_{mi:02d}_"))
        net.set_weights([weights[k] for k in keys])
    step = make_multi_step(training.groups, training.models)
    before = step.evaluate(batch)
    during = step(batch)
    after = step.evaluate(batch)
    groups = [g.name for g in training.groups]
    print(
        json.dumps(
            {"backend": name, "groups": groups, "before": before, "step": during, "after": after}
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
