"""Checkpoints: round trip, tampering, wrong task, pickle payloads refused (never executed), missing files."""

import json
import pickle

import pytest
import torch

from memgru.checkpoint import load_checkpoint, read_config, save_checkpoint
from memgru.config import DeviceConfig, ModelConfig, QuantConfig
from memgru.errors import MemgruError
from memgru.layers import CrossbarGRU, calibrate, convert
from memgru.models import build_model

CFG = ModelConfig(kind="gru_classifier", n_features=5, n_outputs=3, hidden=8, layers=2)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model(CFG).eval()
    save_checkpoint(tmp_path / "ck", model, CFG, task="audio", extra={"labels": ["a", "b", "c"]})
    return tmp_path / "ck", model


def test_round_trip_rebuilds_the_same_model(saved):
    folder, model = saved
    loaded, info = load_checkpoint(folder, task="audio")
    x = torch.randn(2, 6, 5)
    assert torch.equal(model(x), loaded(x))
    assert info["extra"]["labels"] == ["a", "b", "c"]


def test_converted_model_keeps_mapping_and_activation_ranges(tmp_path):
    torch.manual_seed(0)
    # Chip state (read-noise stream, ADC ranges) belongs to a programming, not to the checkpoint:
    # compare without them so the activation ranges and the device mapping are what is tested.
    device = DeviceConfig.rram_1t1r(read_sigma=0.0, adc_bits=32)
    mem = convert(build_model(CFG), QuantConfig(weight_bits=5, act_bits=8), device, seed=7)
    calibrate(mem, [torch.randn(4, 6, 5)])
    save_checkpoint(tmp_path, mem, CFG, task="soc")
    loaded, info = load_checkpoint(tmp_path, task="soc")
    assert isinstance(loaded.gru, CrossbarGRU) and info["crossbar"]["seed"] == 7
    assert not loaded.gru.needs_calibration()
    x = torch.randn(2, 6, 5)
    with torch.no_grad():
        assert torch.equal(mem.eval()(x), loaded(x))


def test_tampered_weights_are_refused(saved):
    folder, _ = saved
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(MemgruError, match="sha256"):
        load_checkpoint(folder)


def test_checkpoint_for_another_task_is_refused(saved):
    with pytest.raises(MemgruError, match="is for task 'audio', not 'soc'"):
        load_checkpoint(saved[0], task="soc")


class _Boom:
    def __reduce__(self):
        return (exec, ("open('/tmp/memgru_pwned', 'w').write('x')",))


def test_pickle_payload_is_refused_not_executed(saved, tmp_path):
    folder, _ = saved
    marker = tmp_path / "marker"
    payload = pickle.dumps({"state": _Boom()}).replace(b"/tmp/memgru_pwned", str(marker).encode())
    (folder / "model.safetensors").write_bytes(payload)
    config = json.loads((folder / "config.json").read_text())
    import hashlib

    config["sha256"] = hashlib.sha256(payload).hexdigest()  # even with a matching hash
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(MemgruError, match="not a valid safetensors file"):
        load_checkpoint(folder)
    assert not marker.exists()


def test_missing_and_malformed_files(saved, tmp_path):
    folder, _ = saved
    with pytest.raises(MemgruError, match="not found"):
        load_checkpoint(tmp_path / "nowhere")
    (folder / "model.safetensors").unlink()
    with pytest.raises(MemgruError, match=r"has no model\.safetensors"):
        load_checkpoint(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(MemgruError, match="not valid JSON"):
        read_config(folder)
    (folder / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(MemgruError, match="not a memgru checkpoint"):
        read_config(folder)


def test_weights_that_do_not_fit_the_config(saved):
    folder, _ = saved
    config = json.loads((folder / "config.json").read_text())
    config["model"]["hidden"] = 16
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(MemgruError, match="do not fit the model"):
        load_checkpoint(folder)
