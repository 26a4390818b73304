"""Batch transcription (issue 18, part 5): many files, --list and --scp, length-sorted batches through
the model, --nj worker processes, outputs in input order, a bad file among good ones."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from asr.audio import read_audio_with_rate, resample
from asr.cli import main
from asr.errors import DataDirError
from asr.recognizer.batch import Item, plan, read_list, read_scp, transcribe_files


@pytest.fixture(scope="module")
def files(tiny_model, tmp_path_factory):
    """Files of mixed lengths, rates and channel counts, and one longer than a piece (30 s)."""
    from speech import espeak_wav

    root = tmp_path_factory.mktemp("batch")
    spoken = [("stop now", "en-us", 160), ("go up", "en-gb", 150), ("yes", "en-us+f3", 140), ("no", "en-us", 170),
              ("go up stop now yes", "en-us", 150), ("stop now", "en-us", 160)]
    out = []
    for i, (text, voice, speed) in enumerate(spoken):
        x, sr = read_audio_with_rate(espeak_wav(root / f"raw{i}.wav", text, voice, speed))
        rate = (8000, 16000, 44100, 22050, 16000, 16000)[i]  # the last: the first at another rate
        y = resample(x, sr, rate)
        if i == 2:
            y = np.stack([y, 0.5 * y], axis=1)  # stereo
        if i == 3:
            y = np.concatenate([np.zeros(rate // 2, np.float32), y, np.zeros(rate, np.float32)])
        path = root / f"f{i}_{rate}.{'flac' if i == 1 else 'wav'}"
        sf.write(path, y, rate)
        out.append(str(path))
    x, sr = read_audio_with_rate(out[4])
    gap = np.zeros(sr, np.float32)
    long = np.concatenate([np.concatenate([x, gap])] * int(np.ceil(36 * sr / (len(x) + sr))))
    sf.write(root / "long.wav", long, sr)
    assert len(long) / sr > 30
    out.insert(2, str(root / "long.wav"))
    return out


@pytest.fixture(scope="module")
def rec(tiny_model):
    from asr.recognizer import Recognizer

    return Recognizer(tiny_model["package"])


@pytest.fixture(scope="module")
def alone(rec, files):
    """Each file transcribed on its own."""
    return [rec.transcribe(f) for f in files]


def test_batched_equals_one_at_a_time(rec, files, alone, tiny_model):
    from asr.recognizer import Recognizer

    tasks, durations, errors = plan([Item(f, f) for f in files], rec.frame_shift, rec.decode_config.batch_frames)
    assert not errors and sorted(durations) == list(range(len(files)))
    short = [[files.index(p) for _, p in t] for t, long in tasks if not long]
    assert sorted(i for t in short for i in t) == [0, 1, 3, 4, 5, 6]
    assert any({0, 6} <= set(t) for t in short), short  # files of one length share a batch (others: padding)
    assert [t[0][1] for t, long in tasks if long] == [files[2]]  # the long one goes alone
    results = list(transcribe_files(rec, [Item(f, f) for f in files]))
    assert [r.key for r in results] == files
    assert [r.text for r in results] == alone
    assert sum(bool(t) for t in alone) >= 4, alone
    # batches of two, and the beam search: still the texts of each file alone
    small = Recognizer(tiny_model["package"], method="beam", batch_frames=400)
    assert [r.text for r in transcribe_files(small, [Item(f, f) for f in files])] == \
        [small.transcribe(f) for f in files]


def test_list_and_scp(files, tmp_path):
    lst = tmp_path / "files.txt"
    lst.write_text("# audio\n\n" + "\n".join(files) + "\n", encoding="utf-8")
    assert read_list(lst) == [Item(f, f) for f in files]
    scp = tmp_path / "wav.scp"
    scp.write_text(f"b {files[1]}\na {files[0]}\n\nrel {files[0].rsplit('/', 1)[1]}\n", encoding="utf-8")
    import shutil

    shutil.copy(files[0], tmp_path)  # a relative path: the current directory, then the scp's folder
    assert read_scp(scp) == [Item("b", files[1]), Item("a", files[0]), Item("rel", str(tmp_path / files[0].rsplit('/', 1)[1]))]
    for text, words in [(f"a {files[0]}\nb sph2pipe -f wav x.sph |\n", f"{scp}:2: 'b'.*pipe command"),
                        (f"a {files[0]}\na {files[1]}\n", f"{scp}:2: duplicate id 'a'"),
                        (f"a {files[0]}\nlonely\n", f"{scp}:2: id 'lonely' has no value")]:
        scp.write_text(text, encoding="utf-8")
        with pytest.raises(DataDirError, match=words):
            read_scp(scp)
    scp.write_text("\n", encoding="utf-8")
    with pytest.raises(DataDirError, match="lists no file"):
        read_scp(scp)
    with pytest.raises(DataDirError, match="does not exist"):
        read_list(tmp_path / "nowhere.txt")
    lst.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(DataDirError, match="lists no file"):
        read_list(lst)


def _lines(out: str) -> list[tuple[str, str]]:
    return [tuple(ln.split("\t", 1)) for ln in out.splitlines()]


def test_cli_outputs_in_input_order_with_one_or_two_workers(tiny_model, files, alone, tmp_path, capsys):
    pkg = str(tiny_model["package"])
    capsys.readouterr()
    assert main(["transcribe", "--model", pkg, *files]) == 0
    got = capsys.readouterr()
    assert _lines(got.out) == list(zip(files, alone))
    assert got.err == ""  # no progress bar when stderr is not a terminal
    lst = tmp_path / "files.txt"
    lst.write_text("\n".join(files[::-1]) + "\n", encoding="utf-8")
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"utt{i} {f}\n" for i, f in enumerate(files)), encoding="utf-8")
    assert main(["transcribe", "--model", pkg, "--nj", "2", "--list", str(lst), "--scp", str(scp)]) == 0
    got = capsys.readouterr()
    assert _lines(got.out) == list(zip(files[::-1], alone[::-1])) + [(f"utt{i}", t) for i, t in enumerate(alone)]
    # JSON lines
    assert main(["transcribe", "--model", pkg, "--jsonl", "--scp", str(scp)]) == 0
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [(r["file"], r["path"], r["text"]) for r in rows] == [(f"utt{i}", f, t) for i, (f, t) in
                                                                 enumerate(zip(files, alone))]
    assert rows[2]["duration"] > 30
    # one file per input
    out = tmp_path / "out"
    assert main(["transcribe", "--model", pkg, "--output-dir", str(out), *files]) == 0
    for f, t in zip(files, alone):
        stem = f.rsplit("/", 1)[1].rsplit(".", 1)[0]
        assert (out / f"{stem}.txt").read_text(encoding="utf-8") == t + "\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(f.rsplit("/", 1)[1].rsplit(".", 1)[0] + ".txt"
                                                           for f in files)  # no temporary files left
    assert main(["transcribe", "--model", pkg, "--output-dir", str(tmp_path / "clash"), files[0],
                 str(tmp_path / "x" / files[0].rsplit("/", 1)[1])]) == 1
    assert "same name" in capsys.readouterr().err and not (tmp_path / "clash").exists()


def test_a_bad_file_among_good_ones(tiny_model, files, alone, tmp_path, capsys):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 4)
    missing = tmp_path / "missing.wav"
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    given = [files[0], str(bad), files[1], str(missing), files[2], str(empty), files[3]]
    for nj in ("1", "2"):
        capsys.readouterr()
        assert main(["transcribe", "--model", str(tiny_model["package"]), "--nj", nj, *given]) == 1
        got = capsys.readouterr()
        assert _lines(got.out) == list(zip(files[:4], alone[:4]))
        errors = got.err.splitlines()
        assert len(errors) == 4 and errors[-1] == "asr transcribe: 3 of 7 file(s) failed", got.err
        for path, line in zip((bad, missing, empty), errors):
            assert line.startswith("asr transcribe: ") and str(path) in line, got.err
        assert "Traceback" not in got.err
    assert main(["transcribe", "--model", str(tiny_model["package"])]) == 1
    assert "no audio given" in capsys.readouterr().err


def test_batched_word_times_and_nbest_equal_one_at_a_time(tiny_model, files):
    """transcribe_batch(word_timestamps=True, nbest=N) gives each file the Transcript that
    transcribe gives it alone (words, segments, N-best with scores), in batches and in workers."""
    from asr.recognizer import Recognizer, Transcript

    rec = Recognizer(tiny_model["package"], method="beam", beam=6)
    short = [f for i, f in enumerate(files) if i != 2]  # not the long file (it goes through transcribe)
    batched = rec.transcribe_batch(short, word_timestamps=True, nbest=3)
    assert all(isinstance(t, Transcript) for t in batched)
    for f, t in zip(short, batched):
        alone = rec.transcribe(f, word_timestamps=True, nbest=3)
        assert (t.text, t.duration, len(t.segments)) == (alone.text, alone.duration, 1)
        assert [(w.word, w.start, w.end) for w in t.words] == [(w.word, w.start, w.end) for w in alone.words]
        assert np.allclose([w.confidence for w in t.words], [w.confidence for w in alone.words], atol=1e-4)
        assert [h.text for h in t.nbest] == [h.text for h in alone.nbest] and 1 <= len(t.nbest) <= 3
        assert np.allclose([h.score for h in t.nbest], [h.score for h in alone.nbest], atol=1e-3)
        assert " ".join(w.word for w in t.words) == t.text
    assert rec.transcribe_batch(short) == [t.text for t in batched]  # plain texts stay plain
    opts = {"word_timestamps": True, "nbest": 3}
    for nj in (1, 2):
        got = list(transcribe_files(rec, [Item(f, f) for f in files], nj=nj, options={"method": "beam", "beam": 6},
                                    transcribe_options=opts))
        assert all(isinstance(r.result, Transcript) for r in got)
        assert [r.text for r in got] == [rec.transcribe(f) for f in files]
        got_short = [r.result.words for r in got if r.path != files[2]]
        assert [[(w.word, w.start, w.end) for w in ws] for ws in got_short] == \
            [[(w.word, w.start, w.end) for w in t.words] for t in batched]
        assert np.allclose([w.confidence for ws in got_short for w in ws],
                           [w.confidence for t in batched for w in t.words], atol=1e-4)
        assert got[2].result.duration > 30 and len(got[2].result.segments) >= 2  # the long file's pieces


def test_cli_formats_batched(tiny_model, files, alone, tmp_path, capsys):
    pkg = str(tiny_model["package"])
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"utt{i} {f}\n" for i, f in enumerate(files)), encoding="utf-8")
    capsys.readouterr()
    assert main(["transcribe", "--model", pkg, "--format", "json", "--nj", "2", *files]) == 0
    docs = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [(d["file"], d["text"]) for d in docs] == list(zip(files, alone))
    assert all(" ".join(w["word"] for w in d["words"]) == d["text"] for d in docs)
    assert docs[2]["duration"] > 30 and len(docs[2]["segments"]) >= 2
    assert main(["transcribe", "--model", pkg, "--format", "ctm", "--scp", str(scp)]) == 0
    rows = [r.split() for r in capsys.readouterr().out.splitlines()]
    assert [r[4] for r in rows] == " ".join(t for t in alone if t).split()
    assert {r[0] for r in rows} <= {f"utt{i}" for i in range(len(files))}  # CTM: named by utterance id
    # N-best in text: FILE rank total am lm text per hypothesis, rank 1 the plain text
    assert main(["transcribe", "--model", pkg, "--nbest", "3", "--scp", str(scp)]) == 0
    lines = [ln.split("\t") for ln in capsys.readouterr().out.splitlines()]
    best = {ln[0]: ln[-1] for ln in lines if len(ln) == 2 or ln[1] == "1"}
    assert set(best) == {f"utt{i}" for i in range(len(files))} and any(len(ln) == 6 for ln in lines)
    # one subtitle file per input
    out = tmp_path / "subs"
    assert main(["transcribe", "--model", pkg, "--format", "vtt", "--output-dir", str(out), *files]) == 0
    stems = [f.rsplit("/", 1)[1].rsplit(".", 1)[0] for f in files]
    assert sorted(p.name for p in out.iterdir()) == sorted(s + ".vtt" for s in stems)
    for s, t in zip(stems, alone):
        vtt = (out / f"{s}.vtt").read_text(encoding="utf-8")
        assert vtt.startswith("WEBVTT\n") and (" -->" in vtt) == bool(t)
    assert main(["transcribe", "--model", pkg, "--format", "srt", "--jsonl", files[0]]) == 1
    assert "--jsonl" in capsys.readouterr().err
