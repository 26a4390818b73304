"""AcousticModel's LSTM modes on padded batches: "split" must equal "packed" (what decoding and
export use) for every utterance, outputs and gradients alike, and "padded" shows what it fixes."""
import dataclasses

import pytest
import torch

from asr.models.acoustic import AcousticModel, AcousticModelConfig


def _model(bidirectional=True, dropout=0.0):
    torch.manual_seed(0)
    cfg = AcousticModelConfig(conv_channels=8, subsampling=2, hidden=24, layers=3,
                              bidirectional=bidirectional, dropout=dropout)
    return AcousticModel(cfg, input_dim=20, vocab_size=11)


def _batch():
    g = torch.Generator().manual_seed(1)
    lens = torch.tensor([90, 61, 77, 30])
    x = torch.randn(4, 90, 20, generator=g)
    for i, n in enumerate(lens):
        x[i, n:] = 0.0  # padding, as the collate writes it
    return x, lens


def _valid(lp, ol):
    return torch.cat([lp[i, : int(n)] for i, n in enumerate(ol)])


@pytest.mark.parametrize("bidirectional", [True, False])
def test_split_mode_equals_packed_outputs_and_gradients(bidirectional):
    x, lens = _batch()
    outs, grads = {}, {}
    for mode in ("packed", "split"):
        m = _model(bidirectional)
        lp, ol = m(x, lens, mode=mode)
        outs[mode] = _valid(lp, ol)
        outs[mode].sum().backward()
        grads[mode] = torch.cat([p.grad.flatten() for p in m.parameters()])
    assert torch.allclose(outs["split"], outs["packed"], atol=1e-5)
    assert torch.allclose(grads["split"], grads["packed"], atol=1e-4, rtol=1e-4)
    # each utterance alone (no padding at all) gives the same frames as its row of the batch
    m = _model(bidirectional)
    lp, ol = m(x, lens, mode="split")
    alone, _ = m(x[1:2, : int(lens[1])], lens[1:2])
    assert torch.allclose(lp[1, : int(ol[1])], alone[0], atol=1e-5)


def test_padded_mode_differs_on_short_utterances_only():
    """The bug "split" fixes: in the padded batch the backward LSTM of a shorter utterance starts
    on padding, so its outputs change; the longest utterance (no padding) is the same."""
    x, lens = _batch()
    m = _model()
    packed, ol = m(x, lens, mode="packed")
    padded, _ = m(x, lens, mode="padded")
    n0, n1 = int(ol[0]), int(ol[1])
    assert torch.allclose(packed[0, :n0], padded[0, :n0], atol=1e-5)
    assert (packed[1, :n1] - padded[1, :n1]).abs().max() > 1e-3


def test_split_mode_keeps_the_state_dict_and_applies_dropout_between_layers():
    m = _model(dropout=0.5)
    keys = set(m.state_dict())
    x, lens = _batch()
    m.train()
    a, _ = m(x, lens, mode="split")
    b, _ = m(x, lens, mode="split")
    assert set(m.state_dict()) == keys  # no parameters of its own: packages and export unchanged
    assert not torch.allclose(a, b)  # dropout active in training
    m.eval()
    a, ol = m(x, lens, mode="split")
    p, _ = m(x, lens, mode="packed")
    assert torch.allclose(_valid(a, ol), _valid(p, ol), atol=1e-5)
    with pytest.raises(ValueError, match="unknown LSTM mode"):
        m(x, lens, mode="sideways")


def test_split_mode_leaves_the_global_rng_alone():
    """Building the per-direction stand-ins on the first forward must not draw from the global RNG
    (a resumed training restores the RNG and must draw the same dropout/SpecAugment as before)."""
    m = _model(dropout=0.0)
    x, lens = _batch()
    torch.manual_seed(5)
    before = torch.get_rng_state()
    m(x, lens, mode="split")
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("subsampling", [1, 2, 3, 4])
def test_front_end_receptive_field_and_lengths(subsampling):
    """Output frame j of the front end reads exactly input frames s*j .. s*j + R - 1 (what the
    streaming ConvFrameBuffer assumes), and output_lengths is the number of frames it produces."""
    torch.manual_seed(0)
    m = AcousticModel(AcousticModelConfig(conv_channels=4, subsampling=subsampling, hidden=8, layers=1,
                                          dropout=0.0), input_dim=16, vocab_size=5).eval()
    s, r = m.subsampling, m.min_input_frames()
    assert s == subsampling
    for t in (r, r + 1, 37, 40):
        x = torch.randn(1, t, 16)
        with torch.no_grad():
            y = m.encode(x)
            assert y.shape[1] == int(m.output_lengths(torch.tensor([t]))[0])
            for k in (0, t // 2, t - 1):
                x2 = x.clone()
                x2[0, k] += 10.0
                changed = {j for j in range(y.shape[1])
                           if (m.encode(x2)[0, j] - y[0, j]).abs().max() > 1e-6}
                # ReLU may hide a change, never create one outside the receptive field
                assert changed <= {j for j in range(y.shape[1]) if s * j <= k <= s * j + r - 1}
                assert changed or not any(s * j <= k <= s * j + r - 1 for j in range(y.shape[1]))


def test_utterance_mean_norm_golden_offset_invariant_and_onnx_parity(tmp_path):
    """utt_mean_norm: each utterance of a padded batch minus its own mean (numpy golden) through the
    plain model; a constant offset of one utterance's features (a channel gain in log-mel) changes
    nothing; the exported ONNX graph does the same on padded batches."""
    import dataclasses

    from asr.errors import ConfigError
    from asr.export import export_offline, parity_offline

    x, lens = _batch()
    torch.manual_seed(0)
    cfg = AcousticModelConfig(conv_channels=8, subsampling=2, hidden=24, layers=2, dropout=0.0, utt_mean_norm=True)
    m = AcousticModel(cfg, input_dim=20, vocab_size=11).eval()
    plain = AcousticModel(dataclasses.replace(cfg, utt_mean_norm=False), input_dim=20, vocab_size=11).eval()
    plain.load_state_dict(m.state_dict())
    with torch.no_grad():
        lp, ol = m(x, lens)
        for i, n in enumerate(lens.tolist()):
            xi = x[i, :n].numpy()
            ref, _ = plain(torch.from_numpy(xi - xi.mean(0))[None], lens[i:i + 1])
            assert torch.allclose(lp[i, : int(ol[i])], ref[0], atol=1e-5)
        assert not torch.allclose(lp[1, : int(ol[1])], plain(x[1:2, : int(lens[1])], lens[1:2])[0][0], atol=1e-3)
        x2 = x.clone()
        x2[1, : int(lens[1])] += 3.0
        lp2, _ = m(x2, lens)
        assert torch.allclose(lp2, lp, atol=1e-5)
    export_offline(m, tmp_path / "m.onnx")
    rep = parity_offline(m, tmp_path / "m.onnx")
    assert rep["max_abs_diff"] < 1e-4 and rep["greedy_agree"]
    with pytest.raises(ConfigError, match="utt_mean_norm"):
        AcousticModelConfig(bidirectional=False, utt_mean_norm=True)


def _ln_model(bidirectional=True, dropout=0.0, layers=3):
    torch.manual_seed(0)
    cfg = AcousticModelConfig(conv_channels=8, subsampling=2, hidden=24, layers=layers, bidirectional=bidirectional,
                              dropout=dropout, layer_norm=True)
    return AcousticModel(cfg, input_dim=20, vocab_size=11)


def _ln_reference(m, x):
    """The stack written out with torch.nn.LSTM layers of its own and torch.nn.functional.layer_norm:
    one utterance, no padding."""
    import torch.nn.functional as F

    lstm, y = m.lstm, m.encode(x)
    for k in range(lstm.num_layers):
        one = torch.nn.LSTM(y.shape[-1], lstm.hidden_size, batch_first=True, bidirectional=lstm.bidirectional)
        sfx = ["", "_reverse"] if lstm.bidirectional else [""]
        one.load_state_dict({f"{w}_l0{s}": getattr(lstm, f"{w}_l{k}{s}")
                             for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for s in sfx})
        y, _ = one(y)
        if k + 1 < lstm.num_layers:
            y = F.layer_norm(y, y.shape[-1:], m.norms[k].weight, m.norms[k].bias)
    return torch.log_softmax(m.head(y), -1)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_layer_norm_between_layers_golden_and_every_mode_alike(bidirectional):
    """layer_norm: a LayerNorm over each layer's output before the next one (the golden written out
    with separate nn.LSTM layers), the same frames for an utterance alone and in a padded batch in
    "packed" and "split" mode (outputs and gradients), the weights' layout of the plain model plus
    one LayerNorm per gap between layers."""
    x, lens = _batch()
    m = _ln_model(bidirectional).eval()
    with torch.no_grad():
        norms = m.norms
        for k in range(len(norms)):  # gains and biases away from 1 / 0, so that a missing norm shows
            norms[k].weight.uniform_(0.5, 2.0)
            norms[k].bias.uniform_(-0.5, 0.5)
        alone, _ = m(x[1:2, : int(lens[1])], lens[1:2])
        golden = _ln_reference(m, x[1:2, : int(lens[1])])
        assert torch.allclose(alone, golden, atol=1e-5)
        plain = AcousticModel(dataclasses.replace(m.cfg, layer_norm=False), input_dim=20, vocab_size=11).eval()
        plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("norms.")})
        assert not torch.allclose(plain(x[1:2, : int(lens[1])], lens[1:2])[0], alone, atol=1e-3)
    assert set(m.state_dict()) - set(plain.state_dict()) == {f"norms.{k}.{w}" for k in range(2) for w in ("weight", "bias")}
    outs, grads = {}, {}
    for mode in ("packed", "split"):
        m.zero_grad()
        lp, ol = m(x, lens, mode=mode)
        assert torch.allclose(lp[1, : int(ol[1])], alone[0], atol=1e-5), mode
        outs[mode] = _valid(lp, ol)
        outs[mode].sum().backward()
        grads[mode] = torch.cat([p.grad.flatten() for p in m.parameters()])
    assert torch.allclose(outs["split"], outs["packed"], atol=1e-5)
    assert torch.allclose(grads["split"], grads["packed"], atol=1e-4, rtol=1e-4)
    if bidirectional:  # the padded batch: the backward direction of a short utterance starts on padding
        lp, ol = m(x, lens, mode="padded")
        assert (lp[1, : int(ol[1])] - alone[0]).abs().max() > 1e-3


def test_layer_norm_model_exports_and_streams_like_pytorch(tmp_path):
    """The LayerNorm stack through the ONNX exporter: the offline graph on padded batches and the
    streaming graph fed in chunks with its state, both against PyTorch (onnxruntime)."""
    from asr.export import export_offline, export_stream, parity_offline, parity_stream

    m = _ln_model().eval()
    export_offline(m, tmp_path / "m.onnx")
    rep = parity_offline(m, tmp_path / "m.onnx")
    assert rep["max_abs_diff"] < 1e-4 and rep["greedy_agree"], rep
    s = _ln_model(bidirectional=False).eval()
    export_stream(s, tmp_path / "s.onnx")
    rep = parity_stream(s, tmp_path / "s.onnx")
    assert rep["max_abs_diff"] < 1e-4, rep
    # dropout between layers is still there in training, with or without the norms
    d = _ln_model(dropout=0.5).train()
    x, lens = _batch()
    assert not torch.allclose(d(x, lens, mode="split")[0], d(x, lens, mode="split")[0])
