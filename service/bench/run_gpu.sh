#!/usr/bin/env bash
# The GPU benchmarks in one command, on a machine with a CUDA GPU and the project installed:
#   service/bench/run_gpu.sh OUT_DIR [tests] [embed] [search] [detect] [pipeline] [yunet]   (default: all)
#   (and `profile`: where the PyTorch runtime's time goes; not in the default)
# The packs: YuNet (vendored) + R100, the default test pack, and MTCNN + the same R100.
# `yunet` needs onnxruntime-gpu (ONNX Runtime's CUDA provider) for the detector.
# Writes one JSON per benchmark (with the machine described) and a plot into OUT_DIR.
# The recognizer is an UNTRAINED R100 (same shapes and cost as a trained one): speed only.
set -euo pipefail
out=${1:?usage: service/bench/run_gpu.sh OUT_DIR [phase...]}
shift
phases=${*:-tests embed search detect pipeline yunet}
py=${PYTHON:-python3}
mkdir -p "$out"
work=${WORK_DIR:-/tmp/facerec-bench}
mkdir -p "$work"
pack="$work/pack-yunet-r100"
mtcnn_pack="$work/pack-mtcnn-r100"
has() { [[ " $phases " == *" $1 "* ]]; }

if [ ! -f "$pack/manifest.json" ]; then
    $py -m service models build-test-pack "$pack" --detector yunet --arch r100 --seed 0
fi
if [ ! -f "$mtcnn_pack/manifest.json" ]; then
    $py -m service models build-test-pack "$mtcnn_pack" --detector mtcnn --arch r100 --seed 0
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.txt"

if has tests; then
    $py -m pytest -q -p no:cacheprovider tests/gpu 2>&1 | tee "$out/gpu-tests.txt"
fi
if has embed; then
    $py -m service bench embed --pack "$pack" --runtimes onnxruntime-cuda,torch-cuda,tensorrt \
        --precisions fp32,fp16,int8 --batch-sizes 1,8,32,64,128,256,512 --seconds 1 \
        --json-out "$out/embed-gpu.json" --plot "$out/embed-gpu.png"
    $py -m service bench embed --pack "$pack" --runtimes torch-cuda --precisions fp16 \
        --batch-sizes 64,256 --seconds 1 --streams 2 --json-out "$out/embed-gpu-2streams.json"
    $py -m service bench embed --pack "$pack" --runtimes torch-cuda --precisions fp16 \
        --batch-sizes 1,8,64,256 --seconds 1 --no-cuda-graphs --json-out "$out/embed-gpu-eager.json"
    $py -m service bench embed --pack "$pack" --runtimes onnxruntime-cpu --precisions fp32 \
        --batch-sizes 1,8,32 --seconds 2 --json-out "$out/embed-cpu.json"
fi
if has search; then
    $py -m service bench search --gallery 1000000 --queries 1024 --batch-sizes 1,8,64,256 \
        --backends faiss-flat,torch-fp32,torch-fp16,faiss-ivf --json-out "$out/search-1m.json"
    $py -m service bench search --gallery 10000000 --queries 512 --batch-sizes 1,8,64,256 \
        --backends torch-fp32,torch-fp16 --json-out "$out/search-10m.json"
fi
if has detect; then
    $py -m service bench detect --pack "$mtcnn_pack" --device cuda \
        --sizes 640x480,1280x720,1920x1080 --batch-sizes 1,8 --json-out "$out/detect-gpu.json"
fi
if has pipeline; then
    $py -m service bench pipeline --pack "$mtcnn_pack" --device cuda --runtime torch \
        --precision fp16 --repeat 50 --concurrency 64 --workers 8 --max-batch 128 \
        --json-out "$out/pipeline-gpu.json"
fi
if has yunet; then
    # YuNet (+ O-Net landmarks) on ONNX Runtime CUDA against MTCNN, batch 1 and batched
    $py -m service bench detect --pack "$pack" --pack "$mtcnn_pack" --device cuda \
        --sizes 640x480,1280x720,1920x1080 --batch-sizes 1,8,32 \
        --json-out "$out/detect-yunet-gpu.json"
    # end to end on the YuNet pack: the R100 on ONNX Runtime CUDA (fp32), then PyTorch fp16
    $py -m service bench pipeline --pack "$pack" --device cuda --runtime onnxruntime \
        --precision fp32 --repeat 50 --concurrency 64 --workers 4 --max-batch 128 --rounds 3 \
        --json-out "$out/pipeline-yunet-ort-cuda.json"
    $py -m service bench pipeline --pack "$pack" --device cuda --runtime torch --precision fp16 \
        --repeat 50 --concurrency 64 --workers 4 --max-batch 128 --rounds 3 \
        --json-out "$out/pipeline-yunet-torch-gpu.json"
fi
if has profile; then
    $py -m service bench embed --pack "$pack" --precisions fp16 --batch-sizes 256 \
        --profile "$out/profile-torch-fp16-b256.txt" --json-out "$out/profile-torch-fp16-b256.json"
fi
