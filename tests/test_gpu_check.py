"""tools/bench/gpu_check.py --dry-run: the GPU check's whole path (synthetic corpus, asr train under
fp32/bf16/fp16 against the bare model, 2-process torchrun) at tiny sizes on CPU."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

from speech import REPO


def test_gpu_check_dry_run(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # (wall-clock timeout generous for a shared CI machine; the CPU time it may use is asserted below)
    r = subprocess.run([sys.executable, str(REPO / "tools/bench/gpu_check.py"), "--dry-run", "--json", str(out)],
                       capture_output=True, text=True, timeout=600, env=env)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    res = json.loads(out.read_text())
    assert res["dry_run"] and set(res["modes"]) == {"fp32", "bf16", "fp16"}
    for m, fig in res["modes"].items():
        assert fig["loss_fell"] and fig["trainer_audio_sec_per_sec"] > 0 and fig["bare_audio_sec_per_sec"] > 0, m
        assert fig["epochs"] == 3 and fig["batches_per_epoch"] >= 2, m
    assert res["ddp"]["ok"] and res["ddp"]["backend"] == "gloo"
    verdicts = r.stdout.strip().splitlines()[-5:]
    assert verdicts == res["verdicts"] and all(v.startswith("PASS") for v in verdicts), verdicts
    assert [v.split()[1].rstrip(":") for v in verdicts] == ["fp32", "bf16", "fp16", "ddp", "time"]
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    assert cpu < 60, f"the dry run took {cpu:.0f} s of CPU time"
