"""The GPU training code paths, exercised on CPU: bf16 autocast through the real trainer (finite losses
that track fp32, CTC computed in fp32), the fp16 GradScaler path (torch.amp.GradScaler("cpu")), the
packed-sequence LSTM that cuDNN runs, and the DDP backend choice. Tests that need CUDA are marked
``gpu`` and skipped without it."""
from __future__ import annotations

import copy
import math
import sys

import pytest
import torch

from speech import REPO

sys.path.insert(0, str(REPO / "tools" / "bench"))
from train_throughput import make_data  # noqa: E402  (the benches' synthetic-feature corpus)

from asr.data.dataset import FeatureDataset  # noqa: E402
from asr.models.acoustic import AcousticModel, AcousticModelConfig  # noqa: E402
from asr.text import CharTokenizer  # noqa: E402
from asr import train as T  # noqa: E402

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# The summed CTC loss of a batch under autocast stays within this relative distance of fp32 over the
# first optimiser steps (bf16: measured <= 6e-5 on this small model, whose near-uniform outputs make
# the loss insensitive to rounding; 2e-3 leaves room for other CPUs' kernels; fp16: the first batch)
BF16_REL_TOL = 2e-3
FP16_REL_TOL = 1e-3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("amp")
    return make_data(root / "train", 12, dim=40, seed=3)


def _run(corpus, tmp_path, amp: str, device: str = "cpu", **over):
    """A Run built by the trainer's own ``setup`` on a small BiLSTM (same initial weights every call)."""
    tok = CharTokenizer()
    torch.manual_seed(0)
    mcfg = AcousticModelConfig(conv_channels=8, subsampling=2, hidden=32, layers=2, bidirectional=True, dropout=0.0)
    model = AcousticModel(mcfg, 40, tok.vocab_size)
    ds = FeatureDataset(corpus, tok, None, cache=True, subsampling=model.subsampling,
                        receptive_field=model.min_input_frames())
    cfg = T.TrainConfig(**{"epochs": 1, "max_frames": 3000, "max_batch": 4, "lr": 2e-3, "warmup_steps": 1,
                           "schedule": "constant", "specaugment": False, "threads": 1, "amp": amp,
                           "early_stop_metric": "dev_loss", "pack_sequences": "always", "sortagrad": 0, **over})
    task = T.CTCTask(model, ds, ds, cfg, tok, {})
    return T.setup(task, cfg, tmp_path / f"exp_{amp}_{len(list(tmp_path.iterdir()))}", device)


class _CTCSpy:
    """Records the dtype and value of what reaches ``torch.nn.functional.ctc_loss``."""

    def __init__(self, monkeypatch):
        self.dtypes, self.losses = [], []
        real = torch.nn.functional.ctc_loss

        def spy(log_probs, *a, **k):
            self.dtypes.append(log_probs.dtype)
            out = real(log_probs, *a, **k)
            self.losses.append(float(out.detach()))
            return out

        monkeypatch.setattr(torch.nn.functional, "ctc_loss", spy)


def _head_dtypes(run):
    seen = []
    run.model.head.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    return seen


def _train_losses(run, monkeypatch):
    spy = _CTCSpy(monkeypatch)
    heads = _head_dtypes(run)
    row = T.train_epoch(run, 1)
    monkeypatch.undo()
    return spy, heads, row


def test_bf16_autocast_step_tracks_fp32_with_ctc_in_fp32(corpus, tmp_path, monkeypatch):
    ref = _run(corpus, tmp_path, "off")
    bf = _run(corpus, tmp_path, "bf16")
    assert ref.amp_dtype is None and bf.amp_dtype == torch.bfloat16
    assert not bf.scaler.is_enabled()  # bf16 has fp32's range: no loss scaling
    assert all(torch.equal(a, b) for a, b in zip(ref.model.state_dict().values(), bf.model.state_dict().values()))
    s32, h32, r32 = _train_losses(ref, monkeypatch)
    s16, h16, r16 = _train_losses(bf, monkeypatch)
    n = len(s32.losses)
    assert n >= 3 and len(s16.losses) == n
    # the model really ran in bf16 under autocast, and the CTC loss saw float32 log-probs
    assert set(h16) == {torch.bfloat16} and set(h32) == {torch.float32}
    assert set(s16.dtypes) == {torch.float32}
    assert all(torch.isfinite(torch.tensor(s16.losses)))
    rel = [abs(a - b) / abs(a) for a, b in zip(s32.losses, s16.losses)]
    assert max(rel) < BF16_REL_TOL, rel
    assert abs(r16["train_loss"] - r32["train_loss"]) / r32["train_loss"] < BF16_REL_TOL
    assert all(torch.isfinite(v).all() for v in bf.model.state_dict().values())  # the updates stayed finite


def test_auto_amp_is_off_on_cpu(corpus, tmp_path):
    run = _run(corpus, tmp_path, "auto")
    assert run.amp_dtype is None and not run.scaler.is_enabled()


def test_fp16_gradscaler_path_on_cpu(corpus, tmp_path, monkeypatch):
    ref = _run(corpus, tmp_path, "off")
    fp = _run(corpus, tmp_path, "fp16")
    assert fp.amp_dtype == torch.float16 and fp.scaler.is_enabled()
    scale0 = fp.scaler.get_scale()
    s32, _, _ = _train_losses(ref, monkeypatch)
    s16, h16, _ = _train_losses(fp, monkeypatch)
    assert set(h16) == {torch.float16} and set(s16.dtypes) == {torch.float32}
    assert all(torch.isfinite(torch.tensor(s16.losses)))
    # the same weights give the same loss; later batches part ways, as the scaler skips the updates
    # whose fp16 gradients overflowed at the initial scale of 2^16 (halving it each time), which
    # fp32 takes
    assert abs(s32.losses[0] - s16.losses[0]) / s32.losses[0] < FP16_REL_TOL
    assert fp.state.step == len(s16.losses)  # skipped updates still count as steps
    skipped = round(math.log2(scale0 / fp.scaler.get_scale()))
    assert fp.scaler.get_scale() == scale0 * 0.5 ** skipped
    # more epochs: once the scale fits, the updates go through and the weights move
    init = copy.deepcopy(fp.model.state_dict())
    for epoch in range(2, 8):
        scale = fp.scaler.get_scale()
        row = T.train_epoch(fp, epoch)
        assert math.isfinite(row["train_loss"])
        if fp.scaler.get_scale() == scale:  # no overflow in a whole epoch
            break
    assert fp.scaler.get_scale() == scale, "the loss scale never settled"
    assert any(not torch.equal(init[k], v) for k, v in fp.model.state_dict().items())
    assert all(torch.isfinite(v).all() for v in fp.model.state_dict().values())
    # the scaler's state is saved and restored with the run (resume keeps the loss scale)
    st = fp.scaler.state_dict()
    assert st["scale"] == fp.scaler.get_scale()


@pytest.mark.parametrize("grad_clip", [0.0, 5.0])
def test_fp16_overflow_skips_the_update_and_halves_the_scale(corpus, tmp_path, grad_clip):
    run = _run(corpus, tmp_path, "fp16", grad_clip=grad_clip)
    batch, _ = next(iter(run.task.train_batches(1, 0, 1)))
    with run.autocast():
        loss, n = run.task.loss(run.model, batch, run.device, True)
    run.scaler.scale(loss / n).backward()
    next(run.model.parameters()).grad.view(-1)[0] = float("inf")  # an fp16 overflow in one gradient
    before = copy.deepcopy(run.model.state_dict())
    scale = run.scaler.get_scale()
    T._optimizer_step(run)
    assert run.scaler.get_scale() == scale * run.scaler.get_backoff_factor()
    assert all(torch.equal(before[k], v) for k, v in run.model.state_dict().items())  # no update
    assert run.state.step == 1  # the step is counted (the LR schedule goes on)


def test_packed_lstm_equals_unpacked_on_equal_lengths():
    """The cuDNN path (packed sequences) against the plain LSTM on a batch of equal lengths: same
    outputs and same gradients; on a ragged batch each packed utterance equals itself alone."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    model = AcousticModel(AcousticModelConfig(conv_channels=8, subsampling=2, hidden=24, layers=2,
                                              bidirectional=True, dropout=0.0), 40, 29)
    x = torch.randn(3, 50, 40)
    h = model.encode(x)
    lens = torch.full((3,), h.shape[1])
    h1 = h.detach().clone().requires_grad_(True)
    h2 = h.detach().clone().requires_grad_(True)
    y_plain, _ = model.lstm(h1)
    y_packed, _ = model.lstm(pack_padded_sequence(h2, lens, batch_first=True, enforce_sorted=False))
    y_packed, _ = pad_packed_sequence(y_packed, batch_first=True, total_length=h.shape[1])
    torch.testing.assert_close(y_packed, y_plain, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(y_plain)
    grads_plain = torch.autograd.grad((y_plain * g).sum(), [h1, *model.lstm.parameters()])
    grads_packed = torch.autograd.grad((y_packed * g).sum(), [h2, *model.lstm.parameters()])
    for a, b in zip(grads_packed, grads_plain):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    # a ragged batch: packed (the trainer's CUDA mode) == each utterance alone == split (its CPU mode)
    lengths = torch.tensor([50, 37, 21])
    lp_packed, out_lens = model(x, lengths, mode="packed")
    lp_split, _ = model(x, lengths, mode="split")
    assert len(set(out_lens.tolist())) == 3  # ragged after subsampling: the packed path is taken
    for i, n in enumerate(out_lens.tolist()):  # (frames past an utterance's end are padding)
        torch.testing.assert_close(lp_split[i, :n], lp_packed[i, :n], atol=1e-5, rtol=1e-5)
        alone, _ = model.forward_unpacked(x[i:i + 1, :int(lengths[i])])
        torch.testing.assert_close(lp_packed[i, :n], alone[0, :n], atol=1e-5, rtol=1e-5)


def test_ddp_backend_nccl_on_cuda_gloo_on_cpu(monkeypatch):
    monkeypatch.delenv(T.DDP_BACKEND_ENV, raising=False)
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)
    assert T.ddp_backend(torch.device("cpu")) == "gloo"
    assert T.ddp_backend(torch.device("cuda", 0)) == "nccl"
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: False)  # a torch built without NCCL
    assert T.ddp_backend(torch.device("cuda", 0)) == "gloo"
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)
    monkeypatch.setenv(T.DDP_BACKEND_ENV, "gloo")  # several ranks on one GPU: NCCL refuses, gloo does not
    assert T.ddp_backend(torch.device("cuda", 0)) == "gloo"
    from asr.errors import ConfigError

    monkeypatch.setenv(T.DDP_BACKEND_ENV, "nccl")
    with pytest.raises(ConfigError, match="nccl needs CUDA"):
        T.ddp_backend(torch.device("cpu"))
    monkeypatch.setenv(T.DDP_BACKEND_ENV, "mpi")
    with pytest.raises(ConfigError, match="use nccl or gloo"):
        T.ddp_backend(torch.device("cpu"))


def test_setup_joins_the_process_group_with_the_chosen_backend(corpus, tmp_path, monkeypatch):
    """The same ``setup`` code on CPU asks for gloo (the GPU gets NCCL from the same chooser)."""
    calls = []
    monkeypatch.delenv(T.DDP_BACKEND_ENV, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda backend: calls.append(backend))
    _run(corpus, tmp_path, "off")
    assert calls == ["gloo"]


def test_cuda_ranks_share_the_gpus_there_are(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert T.resolve_device("cuda", 1) == torch.device("cuda:0")  # 2 processes on one GPU
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert T.resolve_device("cuda", 5) == torch.device("cuda:1")
    assert T.resolve_device("cuda:3", 0) == torch.device("cuda:3")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_cuda_amp_step_tracks_fp32(corpus, tmp_path, monkeypatch, amp):
    """On a GPU: cuDNN packed LSTM under autocast, CTC in fp32, the CUDA GradScaler for fp16."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    ref = _run(corpus, tmp_path, "off", "cuda")
    run = _run(corpus, tmp_path, amp, "cuda")
    assert run.device.type == "cuda" and run.scaler.is_enabled() == (amp == "fp16")
    s32, _, _ = _train_losses(ref, monkeypatch)
    s, heads, _ = _train_losses(run, monkeypatch)
    assert set(s.dtypes) == {torch.float32} and set(heads) == {torch.bfloat16 if amp == "bf16" else torch.float16}
    rel = [abs(a - b) / abs(a) for a, b in zip(s32.losses, s.losses)]
    assert max(rel) < (BF16_REL_TOL if amp == "bf16" else FP16_REL_TOL), rel


def test_amp_off_override_is_not_read_as_a_boolean():
    """`--train.amp off` (and `amp: off` in YAML) mean "off", though YAML 1.1 reads off as false."""
    from asr import config as config_mod

    assert config_mod.load(T.TrainConfig, REPO / "conf/train/gpu.yaml", {"amp": "off"}).amp == "off"
    assert config_mod.load(T.TrainConfig, None, {"amp": "bf16"}).amp == "bf16"
    from asr.errors import ConfigError

    with pytest.raises(ConfigError, match="amp: True is not one of"):
        config_mod.load(T.TrainConfig, None, {"amp": "yes"})
