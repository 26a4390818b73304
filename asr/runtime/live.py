"""``asr live --model DIR``: transcribe the microphone in real time (torch-free).

Audio is captured with sounddevice at the input device's native rate in ``--block-ms`` blocks; the
PortAudio callback only copies the block into a bounded queue (``--max-queue-seconds``). If the
decoder falls behind and the queue is full, blocks are dropped and the amount of dropped audio is
reported on stderr. The main thread resamples (stateful, :class:`asr.audio.Resampler` inside
:class:`Stream`) to the model rate and feeds a :class:`asr.runtime.stream.Stream`: partial results
are rewritten in place on the current line (``\\r``), finals end the line. Ctrl-C stops cleanly
(the last partial is finalised). A missing PortAudio library or input device gives a message
with the fix instead of a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import queue
import signal
import sys
import threading
import time
from pathlib import Path


PORTAUDIO_HINT = ("PortAudio is missing: install it with `sudo apt-get install libportaudio2` "
                  "(Debian/Ubuntu; `brew install portaudio` on macOS), then `pip install sounddevice`")
SOUNDDEVICE_HINT = "the sounddevice package is missing: `pip install sounddevice` (or `pip install 'asr[live]'`)"


class LiveError(Exception):
    pass


def import_sounddevice():
    try:
        import sounddevice as sd
    except OSError as e:  # the wheel imports, but libportaudio is not on the system
        raise LiveError(f"{PORTAUDIO_HINT} ({e})") from None
    except ImportError:
        raise LiveError(SOUNDDEVICE_HINT) from None
    return sd


def pick_input_device(sd, device=None) -> tuple[object, int, str]:
    """(device id/name for InputStream, native sample rate, name); LiveError if there is none."""
    try:
        devices = sd.query_devices()
    except Exception as e:  # noqa: BLE001 - PortAudio errors
        raise LiveError(f"cannot list audio devices ({e}); {PORTAUDIO_HINT}") from None
    if not any(d.get("max_input_channels", 0) > 0 for d in devices):
        raise LiveError("no audio input device found (no microphone, or PortAudio cannot see it). "
                        "Plug in a microphone and check `python -m sounddevice`; on a machine without a sound "
                        "card, a PulseAudio pipe source works as a microphone: `pulseaudio --start`, "
                        "`pactl load-module module-pipe-source source_name=mic file=/tmp/mic format=s16le "
                        "rate=16000 channels=1`, `pactl set-default-source mic`, then write 16-bit PCM into /tmp/mic")
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    try:
        info = sd.query_devices(device, "input")
    except Exception as e:  # noqa: BLE001
        raise LiveError(f"input device {device!r} not usable ({e}); list devices with `asr live --list-devices`") \
            from None
    return (device if device is not None else info["index"]), int(round(info["default_samplerate"])), info["name"]


class LineDisplay:
    """Partials rewrite the current line in place; finals end it."""

    def __init__(self, out=None, timestamps: bool = True, words: bool = False):
        self.out = out or sys.stdout
        self.width = 0
        self.timestamps = timestamps
        self.words = words  # finals also list their words: word(start-end confidence)

    def _write(self, s: str, end: str) -> None:
        pad = max(0, self.width - len(s))
        self.out.write("\r" + s + " " * pad + end)
        self.out.flush()
        self.width = 0 if end else len(s)

    def partial(self, ev) -> None:
        self._write(ev.text, "")

    def final(self, ev) -> None:
        text = f"[{ev.start:7.2f} - {ev.end:7.2f}] {ev.text}" if self.timestamps else ev.text
        if self.words and ev.words:
            text += "\n    " + " ".join(f"{w.word}({w.start:.2f}-{w.end:.2f} {w.confidence:.2f})" for w in ev.words)
        self._write(text, "\n")

    def show(self, events) -> None:
        for ev in events:
            (self.final if ev.kind == "final" else self.partial)(ev)

    def clear(self) -> None:
        if self.width:
            self._write("", "")


@contextlib.contextmanager
def _ctrl_c_sets(event: threading.Event):
    """Within the block, Ctrl-C (SIGINT) sets ``event`` instead of raising KeyboardInterrupt.

    A KeyboardInterrupt raised at an arbitrary point can leave a lock held (e.g. inside a queue) that
    the audio thread then waits on forever; a flag the loop polls cannot. A second Ctrl-C while the
    first is being handled raises KeyboardInterrupt as usual. Only the main thread can install it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        event.set()

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, old)


def live(model: str, *, device=None, threads: int = 1, int8: bool = False, block_ms: int = 100,
         max_queue_seconds: float = 5.0, duration: float | None = None, out=None, err=None,
         decoder: str | None = None, words: bool = False, search: dict | None = None) -> int:
    from ..recognizer import Recognizer
    from .stream import Stream

    err = err or sys.stderr
    sd = import_sounddevice()
    dev, rate, name = pick_input_device(sd, device)
    rec = Recognizer(model, threads=threads, int8=int8, **({"method": decoder} if decoder else {}), **(search or {}))
    stream = Stream(rec)  # finals carry their words; shown with --words
    display = LineDisplay(out, words=words)
    block = max(1, rate * block_ms // 1000)
    # The PortAudio callback must never block: SimpleQueue.put never waits for a lock (a full
    # queue.Queue, or one whose lock a KeyboardInterrupt left held, can stall the audio thread, and
    # then abort() waits for that thread forever).
    q: queue.SimpleQueue = queue.SimpleQueue()
    max_blocks = max(2, int(max_queue_seconds * 1000 / block_ms))
    stats = {"dropped": 0, "overflows": 0}

    def callback(indata, frames, time_info, status):  # PortAudio thread: copy and return
        if status and status.input_overflow:
            stats["overflows"] += 1
        if q.qsize() >= max_blocks:
            stats["dropped"] += frames
            return
        q.put(indata.mean(axis=1) if indata.shape[1] > 1 else indata[:, 0].copy())

    print(f"listening on {name!r} at {rate} Hz ({'stream state' if stream.mode == 'state' else 'VAD segments'}; "
          "Ctrl-C to stop)", file=err, flush=True)
    reported = 0
    last_audio = time.monotonic()
    received = 0
    # Not a `with` block: leaving one calls stop(), which waits for pending buffers and can hang when
    # the source stalls; abort() drops them and returns at once.
    mic = sd.InputStream(samplerate=rate, channels=1, dtype="float32", blocksize=block, device=dev,
                         callback=callback)
    with _ctrl_c_sets(threading.Event()) as stop:
        try:
            mic.start()
            while not stop.is_set() and (duration is None or received / rate < duration):
                try:
                    x = q.get(timeout=0.1)
                except queue.Empty:
                    if time.monotonic() - last_audio > 5:
                        raise LiveError(f"no audio {'arrives' if not received else 'arrived for 5 s'} from "
                                        f"{name!r}; is the microphone unplugged, muted or busy?") from None
                    continue
                last_audio = time.monotonic()
                received += len(x)
                display.show(stream.accept(x, rate))
                if stats["dropped"] > reported:
                    display.clear()
                    print(f"warning: dropped {(stats['dropped'] - reported) / rate:.2f} s of audio "
                          f"(decoding fell behind; total {stats['dropped'] / rate:.2f} s)", file=err, flush=True)
                    reported = stats["dropped"]
        except KeyboardInterrupt:  # Ctrl-C when the handler could not be installed (not the main thread)
            pass
        finally:
            mic.abort(ignore_errors=True)
            mic.close(ignore_errors=True)
            display.show(stream.finish())
            display.clear()
    if stats["dropped"]:
        print(f"dropped {stats['dropped'] / rate:.2f} s of audio in total", file=err)
    print("stopped", file=err, flush=True)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..decode.hotwords import add_search_arguments

    p.add_argument("--model", help="ONNX runtime package folder (from `asr export`); default: $ASR_MODEL, else "
                   "the model shipped in the package (asr/pretrained)")
    p.add_argument("--device", default=None, help="input device index or name (default: the system default)")
    p.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument("--int8", action="store_true", help="use model.int8.onnx")
    p.add_argument("--decoder", choices=["greedy", "beam"], default=None, help="default: the package's decode.yaml")
    p.add_argument("--block-ms", type=int, default=100, help="capture block in milliseconds")
    p.add_argument("--max-queue-seconds", type=float, default=5.0,
                   help="audio buffered before blocks are dropped (reported)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds of audio")
    p.add_argument("--words", action="store_true", help="under each final, its words with times and confidences")
    add_search_arguments(p)


def run(args: argparse.Namespace) -> int:
    try:
        if args.list_devices:
            sd = import_sounddevice()
            print(sd.query_devices())
            return 0
        from ..api import default_model_dir
        from ..decode.hotwords import search_options

        model = args.model or default_model_dir("onnx")
        search = search_options(args, Path(model))  # read before the microphone opens
        return live(model, device=args.device, threads=args.threads, int8=args.int8, block_ms=args.block_ms,
                    max_queue_seconds=args.max_queue_seconds, duration=args.duration, decoder=args.decoder,
                    words=args.words, search=search)
    except LiveError as e:
        print(f"asr live: error: {e}", file=sys.stderr)
        return 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="asr live", description="transcribe the microphone in real time")
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
