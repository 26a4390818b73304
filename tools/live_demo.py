#!/usr/bin/env python3
"""Live microphone demo: same as `asr live --model DIR` (see asr/runtime/live.py).

    python tools/live_demo.py --model exp/onnx [--device N] [--int8] [--list-devices]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.runtime.live import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
