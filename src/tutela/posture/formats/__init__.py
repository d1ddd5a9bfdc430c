"""Scanners for model formats that are not pickles: Keras, TensorFlow, ONNX, GGUF, safetensors, TorchScript."""
