"""DeepFaceLive `.dfm` export (decision 21): our Keras networks -> ONNX without tf2onnx.

`dfl.models.loading.load_saved_model(folder)` then `dfm.export_saved_model(model, output,
quantize)`; or `dfm.write_dfm` for networks already in memory. Headless: errors are ExportError
subclasses (`errors.py`) with a message.

This package file imports nothing: `verify.py` needs only numpy and onnxruntime, and
tests/ort115_check.py loads it in an interpreter that has no Keras (DeepFaceLive's onnxruntime).
"""
