"""LSTM LM: incremental scoring equals the full forward, training lowers perplexity, LM fixes a word."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asr.decode.beam import beam_search
from asr.decode.config import DecodeConfig
from asr.models.lm import (LMConfig, LSTMLM, TorchLMScorer, collate_sentences, load_lm, lm_loss, perplexity,
                           save_lm)
from asr.text import CharTokenizer, normalize_text

TOK = CharTokenizer()
BEAM = DecodeConfig(method="beam")
CORPUS = [
    "the cat sat on the mat", "a cat ate the rat", "the cat is black", "my cat likes milk",
    "the dog sat on the log", "a cat and a dog", "the cat ran home", "that cat is fat",
]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is faster, and 2 OpenMP threads on a busy 2-core box crawl (~15x)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _tiny_lm(seed=0, **kw) -> LSTMLM:
    torch.manual_seed(seed)
    cfg = LMConfig(**{"embed": 16, "hidden": 48, "layers": 1, "dropout": 0.0, **kw})
    return LSTMLM(cfg, TOK.vocab_size)


def _train(model: LSTMLM, sentences, steps=150, lr=0.02) -> LSTMLM:
    x, y, lens = collate_sentences(sentences)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss, n = lm_loss(model, x, y, lens)
        opt.zero_grad()
        (loss / n).backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("kw", [dict(), dict(layers=2), dict(tie_weights=True), dict(tie_weights=True, embed=48)])
def test_step_and_scorer_match_forward(kw):
    model = _tiny_lm(**kw).eval()
    ids = TOK.encode("the cat")
    x = torch.tensor([[0, *ids]])
    with torch.no_grad():
        full = torch.log_softmax(model(x), -1)[0]
    scorer = TorchLMScorer(model)
    state = scorer.initial_state()
    state_t = None
    for t, tok in enumerate([0, *ids]):
        lp, (state,) = scorer.score_batch([state], np.array([tok]))
        with torch.no_grad():
            lp_t, state_t = model.step(torch.tensor([tok]), state_t)
        np.testing.assert_allclose(lp[0], full[t].numpy(), atol=1e-5)
        np.testing.assert_allclose(lp_t[0].numpy(), full[t].numpy(), atol=1e-5)
        assert state[0].shape == (model.cfg.layers, model.cfg.hidden)


def test_scorer_batches_independent_states():
    model = _tiny_lm(layers=2).eval()
    scorer = TorchLMScorer(model)
    s0 = scorer.initial_state()
    _, (sa, sb) = scorer.score_batch([s0, s0], np.array([0, 5]))
    lp_batch, _ = scorer.score_batch([sa, sb, sa], np.array([3, 7, 9]))
    for i, (s, t) in enumerate([(sa, 3), (sb, 7), (sa, 9)]):
        lp_one, _ = scorer.score_batch([s], np.array([t]))
        np.testing.assert_allclose(lp_batch[i], lp_one[0], atol=1e-5)


@pytest.fixture(scope="module")
def trained():
    """(perplexity before, tiny LM trained for ~1 s on CORPUS)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    sents = [TOK.encode(s) for s in CORPUS]
    model = _tiny_lm()
    before = perplexity(model, sents)
    _train(model, sents)
    torch.set_num_threads(n)
    return before, model


def test_training_reduces_perplexity(trained):
    before, model = trained
    after = perplexity(model, [TOK.encode(s) for s in CORPUS])
    assert before > 20 and after < before / 3


def test_trained_lm_fixes_ambiguous_word_and_scores_match(tmp_path, trained):
    from tests.test_beam import ambiguous

    model = trained[1]
    lp = ambiguous("the c", "o", "a", 0.6, "t")  # acoustics prefer "the cot"
    assert beam_search(lp, TOK, BEAM, beam=8)[0].text == "the cot"
    scorer = TorchLMScorer(model)
    hyps = beam_search(lp, TOK, BEAM, lm=scorer, beam=8, alpha=0.8, beta=0.5, nbest=3)
    assert hyps[0].text == "the cat"
    for h in hyps:  # fusion's incremental LM score == the full-sentence log-prob (with </s>)
        assert h.lm_score == pytest.approx(model.sentence_log_prob(h.tokens), abs=1e-3)
    # save / load round trip
    save_lm(model, tmp_path / "lm.pt")
    again = load_lm(tmp_path / "lm.pt")
    assert again.sentence_log_prob(TOK.encode("the cat")) == pytest.approx(
        model.sentence_log_prob(TOK.encode("the cat")), abs=1e-5)


def test_train_lm_cli_reduces_dev_perplexity(tmp_path):
    from asr.cli import main

    train = tmp_path / "train.txt"
    dev = tmp_path / "dev.txt"
    train.write_text("\n".join(CORPUS * 4) + "\n")
    dev.write_text("the cat sat on the log\nA cat, and the dog!\n")
    TOK.save(tmp_path / "tokens.txt")
    exp = tmp_path / "exp"
    rc = main(["train-lm", "--text", str(train), "--dev-text", str(dev), "--tokens", str(tmp_path / "tokens.txt"),
               "--exp", str(exp), "--device", "cpu", "--",
               "--model.embed", "16", "--model.hidden", "48", "--model.layers", "1",
               "--train.epochs", "6", "--train.lr", "0.02", "--train.warmup_steps", "2",
               "--train.max_frames", "400", "--train.threads", "1", "--train.patience", "0"])
    assert rc == 0
    rows = [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["dev_ppl"] < rows[0]["dev_ppl"] * 0.7
    assert rows[0]["dev_ppl"] < 29  # even after one epoch: below a uniform guess
    assert all(r["tokens_per_sec"] > 0 for r in rows)  # the LM task's throughput unit
    lm = load_lm(exp)  # the averaged checkpoint, the best of the averages of the best 1..3 epochs on dev
    assert isinstance(lm, LSTMLM) and lm.cfg.hidden == 48
    rec = json.loads((exp / "average.json").read_text())
    assert rec["metric"] == "dev_ppl" and [c["k"] for c in rec["candidates"]] == [1, 2, 3]
    assert rec["dev_ppl"] == min(c["dev_ppl"] for c in rec["candidates"])
    assert perplexity(lm, [TOK.encode(normalize_text(s)) for s in dev.read_text().splitlines()]) == pytest.approx(
        rec["dev_ppl"], rel=1e-4)
    # resume: a second run with the same epochs does nothing and succeeds
    assert main(["train-lm", "--text", str(train), "--dev-text", str(dev), "--tokens", str(tmp_path / "tokens.txt"),
                 "--exp", str(exp), "--device", "cpu", "--", "--model.embed", "16", "--model.hidden", "48",
                 "--model.layers", "1", "--train.epochs", "6", "--train.threads", "1"]) == 0


def test_onnx_lm_scorer_gives_the_same_beam_search(tmp_path):
    pytest.importorskip("onnxruntime")
    from asr.export import export_lm
    from asr.recognizer.onnx_backend import OnnxLMScorer
    from tests.test_beam import ambiguous

    model = _tiny_lm(layers=2).eval()
    export_lm(model, tmp_path / "lm.onnx")
    onnx_lm = OnnxLMScorer(tmp_path / "lm.onnx", threads=1)
    lp = ambiguous("the c", "o", "a", 0.6, "t")
    a = beam_search(lp, TOK, BEAM, lm=TorchLMScorer(model), beam=6, alpha=0.8, beta=0.5, nbest=4)
    b = beam_search(lp, TOK, BEAM, lm=onnx_lm, beam=6, alpha=0.8, beta=0.5, nbest=4)
    assert [h.tokens for h in a] == [h.tokens for h in b]
    assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-3)
