"""Export stage: arcface_torch backbones → ONNX → TensorRT, each step checked for parity.

Nothing heavy is imported here; PyTorch is needed only by the modules that build networks.
"""
