"""recipes/adapt: a folder of recordings -> a fine-tuned model, WER before/after; and the folder importer."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from speech import REPO, espeak_wav, recipe_env, needs_espeak, sine

# a voice and speeds the tiny model never heard, saying its sentences
SENTENCES = ["yes", "no", "go up", "stop now"]
FOLDER = [(f"take{i:02d}", s, sp) for i, (s, sp) in enumerate((s, sp) for sp in (120, 150, 180, 210) for s in SENTENCES)]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """16 espeak-ng recordings (voice en-us+m3) with a .txt transcript beside each."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (make deps)")
    root = tmp_path_factory.mktemp("rec") / "my_recordings"
    for name, text, speed in FOLDER:
        espeak_wav(root / f"{name}.wav", text, "en-us+m3", speed)
        (root / f"{name}.txt").write_text(text.capitalize() + ".\n")
    return root


@pytest.fixture()
def recipe(tmp_path) -> Path:
    """A copy of recipes/{_common,adapt} with the repo's conf/ beside it."""
    root = tmp_path / "repo"
    (root / "recipes").mkdir(parents=True)
    shutil.copytree(REPO / "recipes" / "_common", root / "recipes" / "_common")
    shutil.copytree(REPO / "recipes" / "adapt", root / "recipes" / "adapt", symlinks=True,
                    ignore=shutil.ignore_patterns("data", "dump", "exp"))
    shutil.copytree(REPO / "conf", root / "conf")
    return root / "recipes" / "adapt"


def run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(recipe / "run.sh"), *args], capture_output=True, text=True,
                          env=recipe_env(OMP_NUM_THREADS="1"),
                          timeout=600, cwd=recipe.parent)


FAST = ["--nj", "1", "--beam", "8", "--train_args", "--train.epochs 4 --train.lr 0.002 --train.max_batch 4 --train.threads 1",
        "--lm_args", "--train.epochs 2 --train.threads 1"]


def _wer_table(out: str) -> dict[str, tuple[float, float]]:
    rows = {}
    for name in ("greedy", "beam + LM"):
        m = re.search(rf"^  {re.escape(name)}\s+([\d.]+)\s+([\d.]+)$", out, re.M)
        assert m, out[-3000:]
        rows[name] = (float(m.group(1)), float(m.group(2)))
    return rows


@needs_espeak
@pytest.mark.slow
def test_adapt_recipe_end_to_end_on_a_folder_with_txt_transcripts(recipe, recordings, tiny_model, tiny_model_lm):
    from asr.cli import main
    from asr.recognizer import Recognizer

    r = run(recipe, "--audio_dir", str(recordings), "--init_from", str(tiny_model_lm["pkg"]),
            "--mix_data", str(tiny_model["train"]), "--mix_hours", "0.002", *FAST)
    assert r.returncode == 0, r.stderr[-4000:]
    wer = _wer_table(r.stdout)
    assert "WER % on your 3 held-out recordings" in r.stdout
    # the tiny model has never heard this voice; fine-tuned on it, it does not get worse on held-out takes
    assert wer["greedy"][1] <= wer["greedy"][0], wer
    split = json.loads((recipe / "data" / "split.json").read_text())
    sets = split["sets"]
    assert [sets[s]["utterances"] for s in ("train", "dev", "test")] == [11, 2, 3]
    assert not set(sets["train"]["utts"]) & set(sets["test"]["utts"])
    train_ids = (recipe / "data" / "train" / "wav.scp").read_text().split()[::2]
    assert sum(u.startswith("mix-") for u in train_ids) == sets["train"]["mixed_utterances"] >= 1
    assert not any(u.startswith("mix-") for u in (recipe / "data" / "test" / "wav.scp").read_text().split()[::2])
    assert (recipe / "data" / "test" / "text").read_text().split("\n")[0].split(" ", 1)[1] in SENTENCES
    rec = json.loads((recipe / "exp" / "finetune" / "init.json").read_text())
    assert rec["weights"] == str((tiny_model_lm["pkg"] / "model.pt").resolve())
    assert (recipe / "exp" / "finetune" / "start_metrics.json").is_file()
    assert json.loads((recipe / "exp" / "lm_finetune" / "init.json").read_text())["weights"].endswith("lm.pt")
    assert "run: asr tune-lm-weight" in r.stderr and "run: asr export" in r.stderr
    assert "no --mix-data" not in r.stdout + r.stderr
    # the adapted packages load as any other (part 4: asr transcribe --model)
    for pkg in (recipe / "exp" / "model", recipe / "exp" / "model_onnx"):
        assert main(["transcribe", "--model", str(pkg), str(recordings / "take00.wav")]) == 0
        Recognizer(pkg)


@needs_espeak
def test_audio_only_is_transcribed_for_checking_and_nothing_trains_before(recipe, recordings, tiny_model, tmp_path):
    audio = tmp_path / "audio_only" / "bob"
    audio.mkdir(parents=True)
    for p in sorted(recordings.glob("*.wav"))[:8]:
        shutil.copy(p, audio / p.name)
    args = ["--audio_dir", str(audio.parent), "--init_from", str(tiny_model["package"]), "--nj", "1"]
    r = run(recipe, *args)
    assert r.returncode == 2, r.stderr[-3000:]
    assert "--transcripts_checked true" in r.stderr and "run: asr train" not in r.stderr
    tsv = recipe / "data" / "transcripts.tsv"
    rows = [ln.split("\t") for ln in tsv.read_text().splitlines() if not ln.startswith("#")]
    assert rows[0] == ["path", "text"] and sorted(p for p, _ in rows[1:]) == [f"bob/take0{i}.wav" for i in range(8)]
    r = run(recipe, *args)  # unchecked: still stopped, the user's edits are not overwritten
    assert r.returncode == 2 and "transcribed by" not in r.stderr
    # the user corrects the file, and says so
    lines = ["path\ttext"] + [f"bob/take0{i}.wav\t{SENTENCES[i % 4]}" for i in range(8)]
    tsv.write_text("\n".join(lines) + "\n")
    r = run(recipe, *args, "--transcripts_checked", "true", "--stop_stage", "0")
    assert r.returncode == 0, r.stderr[-3000:]
    texts = {}
    for s in ("train", "dev", "test"):
        texts.update(dict(ln.split(" ", 1) for ln in (recipe / "data" / s / "text").read_text().splitlines()))
    assert texts == {f"bob-take0{i}": SENTENCES[i % 4] for i in range(8)}


# ----------------------------------------------------------------------------- the importer alone


def _folder(root: Path, names: list[str]) -> Path:
    from asr.audio import write_wav

    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        write_wav(root / n, sine(300, 0.5, 16000), 16000)
    return root


def test_split_is_deterministic_and_holds_out_whole_speakers_on_request(tmp_path):
    from asr.importers.audio_folder import scan, split

    root = _folder(tmp_path / "a", [f"{s}/u{i}.wav" for s in ("ann", "ben", "cat", "dan") for i in range(5)])
    recs = scan(root, "user")
    a = split(recs, 0.1, 0.2, "file")
    b = split(list(reversed(recs)), 0.1, 0.2, "file")
    assert {k: sorted(r.utt for r in v) for k, v in a.items()} == {k: sorted(r.utt for r in v) for k, v in b.items()}
    assert [len(a[s]) for s in ("train", "dev", "test")] == [14, 2, 4]
    by_spk = split(recs, 0.2, 0.2, "speaker")
    spk = {s: {r.speaker for r in v} for s, v in by_spk.items()}
    assert len(spk["dev"]) == len(spk["test"]) == 1 and len(spk["train"]) == 2
    assert len(set().union(*spk.values())) == 4  # no speaker in two sets


def test_transcripts_from_a_text_file_and_clear_errors(tmp_path):
    from asr.errors import ASRError
    from asr.importers.audio_folder import import_folder

    root = _folder(tmp_path / "rec", ["one.wav", "two.flac", "sub/three.wav", "sub/four.wav", "five.wav"])
    text = tmp_path / "text"
    text.write_text("one Hello there\ntwo.flac good morning\nsub-three third one\nsub/four fourth\n")
    with pytest.raises(ASRError, match=r"1 of 5 audio files have no transcript in .*text: five.wav"):
        import_folder(root, tmp_path / "d1", text=text, log=lambda m: None)
    text.write_text(text.read_text() + "five the fifth\nsix nobody\n")
    with pytest.raises(ASRError, match=r"1 line\(s\) name no audio file of the folder \(line 6: 'six'\)"):
        import_folder(root, tmp_path / "d1", text=text, log=lambda m: None)
    text.write_text(text.read_text().replace("six nobody\n", ""))
    s = import_folder(root, tmp_path / "d1", text=text, dev_share=0.2, test_share=0.2, log=lambda m: None)
    got = {}
    for name in ("train", "dev", "test"):
        got.update(dict(ln.split(" ", 1) for ln in (tmp_path / "d1" / name / "text").read_text().splitlines()))
    assert got == {"user-one": "hello there", "user-two": "good morning", "sub-three": "third one",
                   "sub-four": "fourth", "user-five": "the fifth"}
    assert sum(v["utterances"] for v in s["sets"].values()) == 5
    with pytest.raises(ASRError, match="no transcripts"):
        import_folder(_folder(tmp_path / "bare", ["x.wav", "y.wav", "z.wav"]), tmp_path / "d2", log=lambda m: None)
