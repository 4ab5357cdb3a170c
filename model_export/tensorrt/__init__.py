"""TensorRT engines: build (TensorRT 10 Python API), keying, INT8 by explicit Q/DQ."""
