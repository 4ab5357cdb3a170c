# syntax=docker/dockerfile:1
# facerec: two targets from one file.
#   docker build --target cpu -t facerec:cpu .
#   docker build --target gpu -t facerec:gpu .     (NVIDIA TensorRT base: CUDA 12, TensorRT 10)
# No model weights are baked in: packs, the gallery and TensorRT engines live on volumes.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG TENSORRT_IMAGE=nvcr.io/nvidia/tensorrt:24.08-py3

# ---------- the project's wheel ----------
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service/ service/
COPY model_export/ model_export/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---------- CPU: ONNX Runtime, faiss-cpu ----------
FROM ${PYTHON_IMAGE} AS cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FACEREC_HOST=0.0.0.0 \
    FACEREC_PORT=8000 \
    FACEREC_PACKS_DIR=/packs \
    FACEREC_DATA_DIR=/data \
    FACEREC_ENGINE_CACHE_DIR=/engines \
    FACEREC_DEVICE=cpu
COPY --from=wheel /wheels /wheels
# the base install: ONNX Runtime, OpenCV's headless build, faiss-cpu; no PyTorch. A pack whose
# detector is MTCNN needs the mtcnn extra (its package pulls OpenCV's GUI build, needing libGL).
RUN pip install /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 facerec \
    && mkdir -p /packs /data /engines \
    && chown facerec:facerec /packs /data /engines
USER 10001:10001
WORKDIR /home/facerec
VOLUME ["/packs", "/data", "/engines"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4).status != 200)"]
ENTRYPOINT ["facerec"]
CMD ["serve"]

# ---------- GPU: TensorRT (from the base), onnxruntime-gpu, faiss-gpu ----------
# Versions that agree: TensorRT 24.08 container = CUDA 12.6, TensorRT 10.3, cuDNN 9, Python 3.10;
# onnxruntime-gpu 1.19.2 is built for CUDA 12 and cuDNN 9; faiss-gpu-cu12 1.8.0.2 for CUDA 12.
# PyTorch provides the CUDA buffers of the TensorRT runtime.
FROM ${TENSORRT_IMAGE} AS gpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FACEREC_HOST=0.0.0.0 \
    FACEREC_PORT=8000 \
    FACEREC_PACKS_DIR=/packs \
    FACEREC_DATA_DIR=/data \
    FACEREC_ENGINE_CACHE_DIR=/engines \
    FACEREC_DEVICE=cuda \
    FACEREC_RUNTIME=tensorrt
COPY --from=wheel /wheels /wheels
# The project depends on onnxruntime (CPU); onnxruntime-gpu provides the same module, so the
# CPU package goes first and the GPU one is installed after it, never both.
RUN pip install /wheels/*.whl "torch==2.4.1" \
    && pip uninstall -y onnxruntime faiss-cpu \
    && pip install --no-deps "onnxruntime-gpu==1.19.2" "faiss-gpu-cu12==1.8.0.2" \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 facerec \
    && mkdir -p /packs /data /engines \
    && chown facerec:facerec /packs /data /engines
USER 10001:10001
WORKDIR /home/facerec
VOLUME ["/packs", "/data", "/engines"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4).status != 200)"]
ENTRYPOINT ["facerec"]
CMD ["serve"]
