#!/usr/bin/env bash
# Install the project with its test extras, then run the default test suite on all three
# backends: everything on TensorFlow (the default), the backend-specific tests and a short
# end-to-end training run again on JAX and on PyTorch. Extra arguments go to the first run
# (e.g. `scripts/test.sh -m slow` for the side-by-side check against DFL's figures).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[test]"
python3 -m ruff check dfl models tests bench
KERAS_BACKEND=tensorflow python3 -m pytest -q "$@"
BACKEND_TESTS=(
  tests/test_nn.py tests/test_losses.py tests/test_optimizers.py tests/test_quick96.py
  tests/test_saehd_train.py
  tests/test_e2e_terminal.py::test_piped_input_takes_defaults_and_exits_at_target
)
for backend in jax torch; do
  echo "--- backend: $backend"
  KERAS_BACKEND=$backend python3 -m pytest -q "${BACKEND_TESTS[@]}"
done
