"""The edge runtime: onnxruntime + tokenizers + numpy, never torch."""
