"""asr tune-lm-weight's search: coordinate search over the alpha/beta grids, extended past an edge
that holds the best value (the tuned alpha of the default recipe sat on the old grid's top edge)."""
from asr.decode.tune import ALPHAS, BETAS, coordinate_search


def _objective(a0, b0):
    seen = []

    def f(a, b):
        seen.append((a, b))
        return ((a - a0) ** 2 + (b - b0) ** 2, 0.0)
    return f, seen


def test_interior_optimum_stays_on_the_grid():
    f, seen = _objective(0.7, 0.5)
    assert coordinate_search(f, ALPHAS, BETAS) == (0.7, 0.5)
    assert all(min(ALPHAS) <= a <= max(ALPHAS) and min(BETAS) <= b <= max(BETAS) for a, b in seen)


def test_edge_optimum_extends_the_grid():
    f, seen = _objective(2.1, -2.4)
    a, b = coordinate_search(f, ALPHAS, BETAS)
    assert abs(a - 2.1) < 1e-9  # 1.2 + 3 steps of 0.3
    assert b == -2.0            # -1 - 1 step of 1.0; -3.0 is farther from -2.4
    assert max(x for x, _ in seen) == 2.4  # one step past the optimum, then it stops


def test_extension_can_be_turned_off_and_alpha_stays_non_negative():
    f, _ = _objective(3.0, 1.0)
    assert coordinate_search(f, ALPHAS, BETAS, max_extend=0) == (1.2, 1.0)
    f, seen = _objective(-5.0, 1.0)
    assert coordinate_search(f, ALPHAS, BETAS) == (0.0, 1.0)
    assert min(x for x, _ in seen) == 0.0
    f, seen = _objective(100.0, 1.0)
    assert coordinate_search(f, ALPHAS, BETAS, max_extend=2) == (1.8, 1.0)


def test_local_search_finds_the_grid_optimum_of_a_unimodal_objective_with_fewer_decodes():
    for a0, b0 in [(0.7, 0.5), (0.0, 3.0), (0.2, -1.0), (2.1, -2.4), (1.2, 1.0), (0.5, 1.0)]:
        f, seen_grid = _objective(a0, b0)
        g = coordinate_search(f, ALPHAS, BETAS)
        f, seen_local = _objective(a0, b0)
        assert coordinate_search(f, ALPHAS, BETAS, search="local") == g
        assert len(set(seen_local)) < len(set(seen_grid))
    f, seen = _objective(0.5, 1.0)  # the start is the optimum: two neighbours per line, then it stops
    coordinate_search(f, ALPHAS, BETAS, search="local")
    assert set(seen) == {(0.35, 1.0), (0.5, 1.0), (0.7, 1.0), (0.5, 0.5), (0.5, 2.0)}


def test_local_search_stops_at_a_local_minimum_that_the_grid_search_passes():
    def f(a, b):  # two valleys in alpha: 0.35 next to the start, 1.2 the deeper one
        return ({0.35: 1.0, 1.2: 0.5}.get(a, 2.0) + abs(b - 1.0), 0.0)
    assert coordinate_search(f, ALPHAS, BETAS, max_extend=0) == (1.2, 1.0)
    assert coordinate_search(f, ALPHAS, BETAS, max_extend=0, search="local") == (0.35, 1.0)


def test_tuning_scores_the_search_the_package_decodes_with(tiny_model, tiny_model_lm, tmp_path):
    """A lexicon (or hotwords) in the package's decode.yaml is part of every decode the tuning scores:
    each tried point's WER is what the package then gives on that data with those weights."""
    import shutil

    from asr import config as config_mod
    from asr.decode.cli import load_features
    from asr.decode.config import DecodeConfig
    from asr.decode.tune import tune
    from asr.package import write_manifest
    from asr.recognizer import Recognizer
    from asr.score import error_rates

    from speech import espeak_wav

    # voices and speeds the tiny model misspells (tests/test_hotwords.py), as a data dir
    dev = tmp_path / "dev"
    clips = [("yes go", "en-us", 160), ("no go", "en-us", 200), ("go stop", "en-us", 250),
             ("up now", "en-us", 200), ("stop now", "en-us+m3", 120), ("no", "en-gb", 260)]
    utts = [f"spk1-u{i}" for i in range(len(clips))]
    wavs = [espeak_wav(dev / f"{u}.wav", t, v, s) for u, (t, v, s) in zip(utts, clips)]
    (dev / "wav.scp").write_text("".join(f"{u} {w}\n" for u, w in zip(utts, wavs)))
    (dev / "text").write_text("".join(f"{u} {t}\n" for u, (t, _, _) in zip(utts, clips)))
    (dev / "utt2spk").write_text("".join(f"{u} spk1\n" for u in utts))
    (dev / "spk2utt").write_text("spk1 " + " ".join(utts) + "\n")
    refs = [t for t, _, _ in clips]
    pkg = tmp_path / "pkg"
    shutil.copytree(tiny_model_lm["pkg"], pkg)
    lexicon = tuple(sorted({w for t in refs for w in t.split()}))  # the dev words: a lexicon that matters
    config_mod.save(DecodeConfig(method="beam", beam=8, use_lm=True, lexicon=lexicon), pkg / "decode.yaml")
    write_manifest(pkg)

    def wer(package=pkg, **kw):
        rec = Recognizer(package, **kw)
        lps = rec.emissions(load_features(rec, dev, utts))
        return error_rates(refs, [h[0].text for h in rec.decode_hypotheses(lps)])["wer"]

    res = tune(Recognizer(pkg), dev, alphas=(0.3, 0.8), betas=(0.0, 1.0), progress=False, max_extend=0)
    assert len(res["tried"]) >= 3
    free = [wer(tiny_model_lm["pkg"], method="beam", beam=8, use_lm=True, alpha=t["alpha"], beta=t["beta"])
            for t in res["tried"]]  # the same package without the lexicon
    assert [t["wer"] for t in res["tried"]] == [wer(alpha=t["alpha"], beta=t["beta"]) for t in res["tried"]]
    assert [t["wer"] for t in res["tried"]] != free  # without the lexicon the tuning would score other text
