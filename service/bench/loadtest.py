"""Start facerec locally with a pack, fill its gallery, run locust headless, print the figures.

    python -m service.bench.loadtest --pack packs/test --scenario identify --users 8 --time 60s \
        --gallery 100000 --out bench/results/loadtest-identify

Replicas sharing one Milvus (a Milvus Lite server started here, or --milvus-uri):

    python -m service.bench.loadtest --pack packs/test --backend milvus --replicas 2 \
        --scenario replicas --users 4 --time 60s --gallery 10000 --out bench/results/lt-replicas

Prints requests/s, p50/p95/p99 and error rate; keeps locust's CSV and HTML report and a
results.json (with the machine) in --out. Speed is reported here, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent


def probe_image(out: Path, image: Path | None) -> Path:
    """A 640×480 JPEG holding one face: --image, or the largest face cut from insightface's t1."""
    import cv2

    if image is not None:
        return image
    import importlib.util

    spec = importlib.util.find_spec("insightface")
    if spec is None or spec.origin is None:
        raise SystemExit("give --image (a photo with one face); insightface's samples are absent")
    t1 = cv2.imread(str(Path(spec.origin).parent / "data" / "images" / "t1.jpg"))
    if t1 is None:
        raise SystemExit("insightface's t1.jpg could not be read; give --image")
    face = t1[40:240, 860:1060]  # the top-right person of the group photo, with margin
    canvas = np.full((480, 640, 3), 90, np.uint8)
    big = cv2.resize(face, (300, 300))
    canvas[90:390, 170:470] = big
    path = out / "probe.jpg"
    cv2.imwrite(str(path), canvas, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def fill_gallery(pack: Path, data: Path, probe: Path, size: int, milvus_uri: str = "") -> str:
    """``size`` identities: the probe's own, then random unit vectors (bulk, Python API)."""
    from service.gallery.gallery import FaissGallery
    from service.gallery.milvus import MilvusGallery
    from service.gallery.types import Gallery
    from service.models.packs import load_pack
    from service.recognition.pipeline import Pipeline
    from service.vision.detectors.base import DetectorConfig

    loaded = load_pack(pack)
    pipeline = Pipeline.from_pack(pack, device="cpu", detector=DetectorConfig(threshold=0.7))
    faces = pipeline.faces(probe.read_bytes())
    if len(faces) != 1:
        raise SystemExit(f"the probe image must hold one face, found {len(faces)}")
    size_d = pipeline.embedder.embedding_size
    gallery: Gallery = (
        MilvusGallery(milvus_uri, loaded.model_id, size_d)
        if milvus_uri
        else FaissGallery(data, loaded.model_id, size_d)
    )
    try:
        identity = gallery.create_identity("probe", "probe", {})
        face = faces[0]
        gallery.add_faces(
            identity.id, face.embedding[None], [(face.score, face.width, face.height)]
        )
        rng = np.random.default_rng(0)
        started = time.perf_counter()
        remaining = size - 1
        while remaining > 0:
            n = min(50_000, remaining)
            vectors = rng.standard_normal((n, pipeline.embedder.embedding_size)).astype(np.float32)
            gallery.bulk_enrol([f"random-{remaining - i}" for i in range(n)], vectors)
            remaining -= n
        print(f"gallery: {size} identities in {time.perf_counter() - started:.1f} s", flush=True)
        return identity.id
    finally:
        gallery.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_milvus_lite(folder: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A Milvus Lite server process that several replicas can share, as a Milvus standalone."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    code = "from milvus_lite.cmdline import main; main()"
    command = [sys.executable, "-c", code, "server", "--data-dir", str(folder)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        command,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("milvus-lite server did not start in 60 s")


def start_service(
    pack: Path, data: Path, port: int, log: Path, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {
        **(extra or {}),
        **os.environ,
        "FACEREC_PACK": str(pack),
        "FACEREC_DATA_DIR": str(data),
        "FACEREC_DEVICE": "cpu",
        "FACEREC_PORT": str(port),
        "FACEREC_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited ({process.returncode}); see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("the service did not become ready in 300 s")


def summarise(stats_csv: Path) -> dict[str, float]:
    with stats_csv.open() as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    total = rows["Aggregated"]
    requests = int(total["Request Count"])
    failures = int(total["Failure Count"])
    return {
        "requests": requests,
        "failures": failures,
        "error_rate": round(failures / requests, 4) if requests else 0.0,
        "requests_per_s": round(float(total["Requests/s"]), 2),
        "p50_ms": float(total["50%"]),
        "p95_ms": float(total["95%"]),
        "p99_ms": float(total["99%"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, required=True)
    parser.add_argument(
        "--scenario", choices=["identify", "verify", "mixed", "replicas"], default="identify"
    )
    parser.add_argument("--backend", choices=["faiss", "milvus"], default="faiss")
    parser.add_argument("--replicas", type=int, default=1, help="service processes (milvus)")
    parser.add_argument("--milvus-uri", default="", help="default: a Milvus Lite server here")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--time", default="60s", help="locust run time, e.g. 30s, 2m")
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--image", type=Path, default=None, help="probe photo with one face")
    parser.add_argument("--out", type=Path, default=Path("bench/results/loadtest"))
    args = parser.parse_args()
    if args.replicas > 1 and args.backend != "milvus":
        parser.error("--replicas > 1 needs --backend milvus: FAISS replicas do not share writes")
    if args.scenario == "replicas" and args.replicas < 2:
        parser.error("the replicas scenario needs --replicas 2 or more")

    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "data"
    if data.exists():
        import shutil

        shutil.rmtree(data)
    probe = probe_image(args.out, args.image)
    milvus: subprocess.Popen[bytes] | None = None
    uri = args.milvus_uri
    if args.backend == "milvus" and not uri:
        milvus, uri = start_milvus_lite(data / "milvus", args.out / "milvus.log")
    identity = fill_gallery(args.pack, data, probe, args.gallery, uri)
    extra = {"FACEREC_GALLERY_BACKEND": args.backend, "FACEREC_MILVUS_URI": uri} if uri else {}
    ports = [free_port() for _ in range(args.replicas)]
    replica_dirs = [data / f"r{i}" if uri else data for i in range(args.replicas)]
    services = [
        start_service(args.pack, folder, port, args.out / f"service{i}.log", extra)
        for i, (port, folder) in enumerate(zip(ports, replica_dirs, strict=True))
    ]
    port = ports[0]
    try:
        env = {
            **os.environ,
            "FACEREC_LOAD_PROBE": str(probe),
            "FACEREC_LOAD_IDENTITY": identity,
            "FACEREC_LOAD_SCENARIO": args.scenario,
            "FACEREC_LOAD_HOSTS": ",".join(f"http://127.0.0.1:{p}" for p in ports),
        }
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(HERE / "locustfile.py"),
            "--headless",
            "-u",
            str(args.users),
            "-r",
            str(args.users),
            "-t",
            args.time,
            "--host",
            f"http://127.0.0.1:{port}",
            "--csv",
            str(args.out / "locust"),
            "--html",
            str(args.out / "report.html"),
            "--only-summary",
            "--stop-timeout",
            "30",
        ]
        subprocess.run(command, env=env, check=False)
    finally:
        for service in services:
            service.terminate()
        for service in services:
            service.wait(timeout=60)
        if milvus is not None:
            milvus.terminate()
            milvus.wait(timeout=60)
    figures = summarise(args.out / "locust_stats.csv")
    from service.bench.machine import describe_machine
    from service.models.packs import load_pack

    detector = load_pack(args.pack).manifest.detector
    result = {
        "pack": args.pack.name,
        "detector": detector.kind + ("+onet" if detector.landmarks == "onet" else ""),
        "scenario": args.scenario,
        "users": args.users,
        "time": args.time,
        "gallery": args.gallery,
        "backend": args.backend,
        "replicas": args.replicas,
        **figures,
        "machine": describe_machine(),
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.scenario}: {figures['requests_per_s']} req/s, p50 {figures['p50_ms']:.0f} ms, "
        f"p95 {figures['p95_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms, error rate "
        f"{figures['error_rate']:.2%} ({figures['failures']}/{figures['requests']}), "
        f"{args.users} users, gallery {args.gallery}"
    )
    import shutil

    shutil.rmtree(data, ignore_errors=True)  # the gallery is test data; the figures stay


if __name__ == "__main__":
    main()
