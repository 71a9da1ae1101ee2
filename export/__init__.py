"""Export a trained model to an edge bundle (ONNX, int8, manifest). Needs the `export` extra."""
