"""The smoke run of `make bench`: every case runs, against wget and warcio, and reports ratios."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not shutil.which("wget"), reason="GNU wget is installed by make test")
def test_bench_quick_run(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env={"BENCH_TMP": str(tmp_path),
                                                                            "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())["results"]
    catalogue = [r for r in results if r["case"].startswith("catalogue")]
    assert len(catalogue) == 1 and catalogue[0]["snapshots"] == 100 and "catalogue, 100 snapshots" in proc.stdout
    startup = [r for r in results if r["case"] == "command start-up"]
    assert len(startup) == 1 and startup[0]["startup_s"]["list_empty"] > startup[0]["startup_s"]["python"] > 0
    results = [r for r in results if r not in catalogue + startup]
    assert [r["case"].split(",")[0].split(" ")[0] for r in results] == ["small", "small", "one", "verify", "verify",
                                                                        "cluster", "browser", "crawl", "verify", "verify",
                                                                        "verify"]
    assert set(results[5]["captures_per_min"]) == {"1", "2", "3"} and "captures/min" in proc.stdout
    small = results[0]
    assert small["urls"] >= 51 and small["wget_urls"] >= 51   # 1 + 10 pages x (page + 4 requisites)
    browser = results[6]["pages_per_min"]
    assert {"static capture", "qa"} <= set(browser) and browser["qa"]["pages"] >= 1
    assert browser["qa"]["peak_pss_mb"] > 50    # Chromium's tree was measured, not only Python
    assert "pages/min vs static capture" in proc.stdout
    assert "ratio" in proc.stdout and "URLs/s" in proc.stdout and "peak RSS" in proc.stdout
