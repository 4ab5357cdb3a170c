"""PyTorch behind the runtime interface: the export stage's backbone served directly.

The GPU path where TensorRT cannot be installed. On CUDA it runs the backbone in fp16 (or
fp32), channels-last, and replays one CUDA graph per batch bucket (powers of two up to
``max_batch``): a batch of ``n`` crops runs in the smallest bucket that holds it, padded.

Each *lane* owns a CUDA stream, pinned host buffers, device buffers and its own graphs,
allocated once; concurrent callers (the batcher's workers) take different lanes, so one
lane's copies overlap another's compute. :meth:`run_crops` takes RGB ``uint8`` crops as they
come from alignment: the upload is a quarter of float32's bytes, and normalisation,
HWC→CHW and the fp16 cast happen on the GPU, inside the graph.

On CPU it runs eagerly in fp32 (for parity checks; ONNX Runtime is the CPU runtime).
PyTorch is imported here only, never by the service's other modules.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from service.inference.runtime import FloatArray

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["TorchRuntime", "batch_buckets"]


def batch_buckets(max_batch: int, step: int = 2) -> list[int]:
    """Powers of ``step`` below ``max_batch``, and ``max_batch`` itself: the graphs captured."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be ≥ 1, got {max_batch}")
    sizes = []
    b = 1
    while b < max_batch:
        sizes.append(b)
        b *= step
    sizes.append(max_batch)
    return sizes


@dataclass
class _Lane:
    """One stream's worth of buffers and graphs."""

    stream: Any  # torch.cuda.Stream
    host_in: torch.Tensor  # pinned uint8 (max_batch, H, W, 3)
    host_out: torch.Tensor  # pinned float32 (max_batch, E)
    device_in: torch.Tensor  # uint8 on the GPU, (max_batch, H, W, 3)
    graphs: dict[int, Any]  # bucket → torch.cuda.CUDAGraph
    outputs: dict[int, torch.Tensor]  # bucket → the graph's static output


class TorchRuntime:
    """A backbone on PyTorch; see the module's docstring."""

    name = "torch"

    def __init__(
        self,
        model: nn.Module,
        device: str = "cuda:0",
        precision: str = "fp16",
        max_batch: int = 256,
        *,
        input_mean: float = 127.5,
        input_std: float = 127.5,
        bgr: bool = False,
        input_size: tuple[int, int] = (112, 112),
        cuda_graphs: bool = True,
        lanes: int = 2,
        fold_bn: bool = True,
        compile_model: bool = False,
    ) -> None:
        import torch

        if precision not in ("fp32", "fp16"):
            raise ValueError(f"the PyTorch runtime runs fp32 or fp16, not {precision!r}")
        self._torch = torch
        self._device = torch.device("cuda:0" if device == "cuda" else device)
        self._cuda = self._device.type == "cuda"
        if self._cuda and not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} asked for, but PyTorch sees no CUDA GPU")
        if not self._cuda and precision == "fp16":
            precision = "fp32"  # fp16 convolutions on CPU are slow and not what runs in production
        self.device = str(self._device)
        self.precision = precision
        self.max_batch = max_batch
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        self._mean = float(input_mean)
        self._scale = 1.0 / float(input_std)
        self._bgr = bgr
        self._size = input_size  # (width, height)
        memory_format = torch.channels_last if self._cuda else torch.contiguous_format
        self._memory_format = memory_format
        model = model.eval()
        if fold_bn:
            model = fold_batchnorm(model)
        self._model = model.to(self._device, dtype=self._dtype)
        if self._cuda:
            self._model.to(memory_format=memory_format)  # type: ignore[call-overload]
        if compile_model and self._cuda:
            # TorchInductor fuses the elementwise work (BN, PReLU, residual adds) into the
            # convolutions' neighbours: about 1.5× on R100 fp16 on an H100. It compiles once
            # per batch shape (≈ 20 s each for R100), so the buckets are coarser: 1, 4, 16, …
            self._model = torch.compile(self._model, dynamic=False)  # type: ignore[assignment]
        self.buckets = batch_buckets(max_batch, 4 if compile_model and self._cuda else 2)
        self._lock = threading.Lock()
        self._lanes: queue.SimpleQueue[_Lane] = queue.SimpleQueue()
        self._use_graphs = self._cuda and cuda_graphs
        if self._cuda:
            with torch.inference_mode():
                probe = self._model(
                    torch.zeros(1, 3, input_size[1], input_size[0], device=self._device)
                    .to(self._dtype)
                    .contiguous(memory_format=memory_format)
                )
            self._embedding_size = int(probe.shape[1])
            pool = torch.cuda.graph_pool_handle() if self._use_graphs else None
            for _ in range(max(1, lanes)):
                self._lanes.put(self._make_lane(pool))

    # -- the runtime interface ------------------------------------------------------------

    def run(self, batch: FloatArray) -> FloatArray:
        """``(N, 3, H, W)`` float32, already normalised → ``(N, E)`` float32 (eager)."""
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            x = x.to(self._device, non_blocking=False).to(self._dtype)
            out = self._model(x.contiguous(memory_format=self._memory_format))
            result: FloatArray = out.float().cpu().numpy()
        return result

    def run_crops(self, crops: npt.NDArray[np.uint8]) -> FloatArray:
        """RGB ``(N, H, W, 3)`` uint8 crops → ``(N, E)`` float32 raw embeddings (not normalised).

        ``N`` may exceed ``max_batch``: it is run in chunks.
        """
        if crops.ndim != 4 or crops.shape[1:] != (self._size[1], self._size[0], 3):
            raise ValueError(
                f"crops must be (N, {self._size[1]}, {self._size[0]}, 3), got {crops.shape}"
            )
        if not self._cuda:
            return self.run(self._preprocess_numpy(crops))
        parts = [
            self._run_chunk(crops[i : i + self.max_batch])
            for i in range(0, len(crops), self.max_batch)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    # -- the CUDA path --------------------------------------------------------------------

    def _preprocess(self, u8: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC on the GPU → normalised NCHW, channels-last, in the model's dtype."""
        x = u8.permute(0, 3, 1, 2)
        if self._bgr:
            x = x.flip(1)
        x = (x.to(self._dtype) - self._mean) * self._scale
        return x.contiguous(memory_format=self._memory_format)

    def _forward(self, u8: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self._model(self._preprocess(u8)).float()
        return out

    def _make_lane(self, pool: Any) -> _Lane:
        torch = self._torch
        w, h = self._size
        n = self.max_batch
        lane = _Lane(
            stream=torch.cuda.Stream(device=self._device),
            host_in=torch.empty((n, h, w, 3), dtype=torch.uint8).pin_memory(),
            host_out=torch.empty((n, self._embedding_size), dtype=torch.float32).pin_memory(),
            device_in=torch.zeros((n, h, w, 3), dtype=torch.uint8, device=self._device),
            graphs={},
            outputs={},
        )
        if not self._use_graphs:
            return lane
        with torch.inference_mode():
            for bucket in sorted(self.buckets, reverse=True):  # largest first: the pool fits all
                x = lane.device_in[:bucket]
                with torch.cuda.stream(lane.stream):
                    for _ in range(2):  # warm-up outside the graph (cuDNN picks its kernels)
                        self._forward(x)
                lane.stream.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=pool, stream=lane.stream):
                    lane.outputs[bucket] = self._forward(x)
                lane.graphs[bucket] = graph
        torch.cuda.synchronize(self._device)
        return lane

    def _bucket(self, n: int) -> int:
        for b in self.buckets:
            if b >= n:
                return b
        return self.max_batch

    def _run_chunk(self, crops: npt.NDArray[np.uint8]) -> FloatArray:
        torch = self._torch
        n = len(crops)
        lane = self._lanes.get()
        try:
            with torch.inference_mode(), torch.cuda.stream(lane.stream):
                lane.host_in[:n].numpy()[...] = crops
                lane.device_in[:n].copy_(lane.host_in[:n], non_blocking=True)
                bucket = self._bucket(n)
                if self._use_graphs:
                    lane.graphs[bucket].replay()
                    out = lane.outputs[bucket]
                else:
                    out = self._forward(lane.device_in[:bucket])
                lane.host_out[:n].copy_(out[:n], non_blocking=True)
                lane.stream.synchronize()
                result: FloatArray = lane.host_out[:n].numpy().copy()
        finally:
            self._lanes.put(lane)
        return result

    # -- the CPU path ---------------------------------------------------------------------

    def _preprocess_numpy(self, crops: npt.NDArray[np.uint8]) -> FloatArray:
        x = crops[..., ::-1] if self._bgr else crops
        out = (x.transpose(0, 3, 1, 2).astype(np.float32) - self._mean) * self._scale
        return np.ascontiguousarray(out, dtype=np.float32)

    def memory(self) -> dict[str, float]:
        """GPU memory held by PyTorch in MiB (empty on CPU)."""
        if not self._cuda:
            return {}
        torch = self._torch
        return {
            "allocated_mb": round(torch.cuda.memory_allocated(self._device) / 2**20, 1),
            "reserved_mb": round(torch.cuda.memory_reserved(self._device) / 2**20, 1),
            "peak_mb": round(torch.cuda.max_memory_allocated(self._device) / 2**20, 1),
        }


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An IResNet with every BatchNorm that follows a convolution or the FC folded into it.

    Exact in eval mode (the BN is an affine map per channel after a linear layer): conv→BN
    pairs become one biased conv, and the final BN→FC→BN of the embedding head one linear
    layer. The BN *before* each unit's first conv stays: folding it forward would be wrong at
    the zero-padded borders. Other architectures are returned unchanged.
    """
    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    from model_export.backbones.iresnet import IBasicBlock, IResNet

    if not isinstance(model, IResNet) or model.training:
        return model
    model.conv1 = fuse_conv_bn_eval(model.conv1, model.bn1)
    model.bn1 = nn.Identity()  # type: ignore[assignment]
    for unit in model.modules():
        if isinstance(unit, IBasicBlock):
            unit.conv1 = fuse_conv_bn_eval(unit.conv1, unit.bn2)
            unit.bn2 = nn.Identity()  # type: ignore[assignment]
            unit.conv2 = fuse_conv_bn_eval(unit.conv2, unit.bn3)
            unit.bn3 = nn.Identity()  # type: ignore[assignment]
            if isinstance(unit.downsample, nn.Sequential) and len(unit.downsample) == 2:
                conv, norm = unit.downsample[0], unit.downsample[1]
                assert isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
                unit.downsample = nn.Sequential(fuse_conv_bn_eval(conv, norm))
    # head: BN2d → flatten → FC → BN1d; the BN2d scales each channel's 7×7 block of inputs
    with torch.no_grad():
        bn = model.bn2
        assert bn.running_var is not None and bn.running_mean is not None
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        per_input = scale.repeat_interleave(model.fc_scale)
        fc = model.fc
        bias = fc.bias + fc.weight @ shift.repeat_interleave(model.fc_scale)
        fc.weight.mul_(per_input)
        fc.bias.copy_(bias)
    model.bn2 = nn.Identity()  # type: ignore[assignment]
    model.fc = fuse_linear_bn_eval(model.fc, model.features)
    model.features = nn.Identity()  # type: ignore[assignment]
    return model


def model_for(
    arch: str,
    embedding_size: int,
    *,
    checkpoint: str | None = None,
    seed: int | None = None,
    expected_sha256: str = "",
) -> nn.Module:
    """The backbone a recognizer was exported from: its checkpoint, or its seed if untrained.

    A checkpoint whose sha256 differs from the one recorded in the ONNX file's metadata is
    refused: the PyTorch runtime must serve the network the pack declares.
    """
    from model_export.onnx_export import random_backbone

    if checkpoint is None:
        if seed is None:
            raise ValueError(
                "the PyTorch runtime needs the recognizer's backbone.pth "
                "(FACEREC_TORCH_CHECKPOINT); the pack holds only its ONNX file"
            )
        return random_backbone(arch, seed, embedding_size)
    from model_export.checkpoint import load_backbone
    from model_export.files import sha256_file

    if expected_sha256 and sha256_file(checkpoint) != expected_sha256:
        raise ValueError(
            f"{checkpoint} is not the checkpoint the recognizer was exported from "
            f"(its metadata records sha256 {expected_sha256[:12]}…)"
        )
    model: nn.Module = load_backbone(arch, checkpoint, embedding_size)
    return model
