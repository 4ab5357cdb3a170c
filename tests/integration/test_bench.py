"""The benchmarks run and write their figures with the machine (speed is not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from service.cli import cli


def test_bench_pipeline_reports_ours_and_insightfaces_path(
    test_pack: Path, tmp_path: Path, insightface_images: Path
) -> None:
    out = tmp_path / "pipeline.json"
    args = [
        "bench",
        "pipeline",
        "--pack",
        str(test_pack),
        "--repeat",
        "1",
        "--concurrency",
        "2",
        "--json-out",
        str(out),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "end_to_end ratio" in result.output
    data = json.loads(out.read_text())
    assert data["machine"]["cpu_count"] >= 1
    for stage in ("end_to_end", "recognition_only"):
        assert data[stage]["ours"]["faces"] == data[stage]["insightface"]["faces"] == 6
        assert data[stage]["ratio"] > 0


def test_bench_search_reports_latency_and_memory(tmp_path: Path) -> None:
    out = tmp_path / "search.json"
    args = [
        "bench",
        "search",
        "--gallery",
        "5000",
        "--queries",
        "16",
        "--batch-sizes",
        "1,8",
        "--json-out",
        str(out),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [r["batch"] for r in data["latency"]] == [1, 8]
    assert all(r["p99_ms"] >= r["p50_ms"] > 0 for r in data["latency"])
    assert data["rss_after_build_mb"] > 0 and data["machine"]["cpu"]
