#!/usr/bin/env bash
# Install the project with its test extras, then run the default test suite on all three
# backends: everything on TensorFlow (the default), the backend-specific tests and a short
# end-to-end training run again on JAX and on PyTorch. Extra arguments go to the first run
# (e.g. `scripts/test.sh -m slow` for the side-by-side check against DFL's figures).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[test]"
python3 -m ruff check dfl models tests bench
# DeepFaceLive pins onnxruntime 1.15.1 (wheels for Python <= 3.11): exported .dfm files are
# checked there too, in a separate environment (tests/test_export_ort115.py).
if python3 -c 'import sys; sys.exit(sys.version_info >= (3, 12))'; then
  if [ ! -x .ort115/bin/python ]; then
    python3 -m venv .ort115 && .ort115/bin/pip install -q onnxruntime==1.15.1 "numpy<2"
  fi
  export DFL_ORT115_PYTHON="$PWD/.ort115/bin/python"
else
  echo "note: Python >= 3.12 has no onnxruntime 1.15.1; the DeepFaceLive-runtime check is skipped"
fi
# Two workers, each test file on one of them (module fixtures stay whole): the e2e tests spend
# much of their time waiting on a terminal, a window or a child process.
KERAS_BACKEND=tensorflow python3 -m pytest -q -n 2 --dist loadfile "$@"
# Again on JAX and torch: what each backend computes itself (layers, losses, optimizers, bf16).
# Training every model on every backend from shared weights (learning, sync, previews, a
# non-finite step skipped) is tests/test_backends.py's job (children per backend, in the run
# above), a CLI training run on JAX is tests/test_no_tensorflow.py's; torch gets one here.
BACKEND_TESTS=(
  tests/test_nn.py tests/test_losses.py tests/test_optimizers.py tests/test_precision.py
)
# The two runs at once (each mostly one busy core), their output shown in turn.
pids=()
for backend in jax torch; do
  extra=()
  if [ "$backend" = torch ]; then
    extra=(tests/test_e2e_terminal.py::test_piped_input_takes_defaults_and_exits_at_target)
  fi
  KERAS_BACKEND=$backend python3 -m pytest -q -p no:cacheprovider "${BACKEND_TESTS[@]}" \
    ${extra[@]+"${extra[@]}"} > ".backend-$backend.log" 2>&1 &
  pids+=($!)
done
status=0
for i in 0 1; do
  backend=$([ "$i" = 0 ] && echo jax || echo torch)
  wait "${pids[$i]}" || status=1
  echo "--- backend: $backend"
  cat ".backend-$backend.log"
done
exit $status
