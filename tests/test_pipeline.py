"""Task pipeline end to end on a tiny trajectory-shaped dataset: train, predict, experiments, model card."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memgru.checkpoint import load_checkpoint, update_extra
from memgru.cli import _parser, main
from memgru.config import ExperimentConfig, ModelConfig, TrainConfig
from memgru.errors import MemgruError
from memgru.experiments import (
    choose_act_percentile,
    detection_rows,
    fit_logistic,
    magnitude_at,
    operating_rows,
    roc_auc,
    run_experiment,
    track_rows,
)
from memgru.modelcard import _ranges_text, _train_command, model_card
from memgru.pipeline import (
    CALIBRATION_SIZE,
    CALIBRATION_STEPS,
    calibration_inputs,
    deployed_model,
    flagged_windows,
    input_noise,
    noisy_user_input,
    predict_file,
    task_act_percentile,
    train_task,
)
from memgru.tasks.common import SequenceSet
from memgru.tasks.io import UserInput, task_io
from memgru.tasks.registry import REPO_ROOT
from memgru.tasks.trajectory import feature_stats, featurize_raw, read_track_file, track_to_windows
from memgru.tasks.trajectory_fakes import FAMILY_KNOBS

SAMPLE = REPO_ROOT / "assets" / "trajectory" / "false_replay.csv"


def _split(n: int, seed: int) -> SequenceSet:
    """Class 1 sequences carry a drift in feature 0; learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 32, 13)).astype(np.float32)
    x[:, :, 0] += y[:, None] * np.linspace(0, 3, 32, dtype=np.float32)
    meta = pd.DataFrame({"family": np.where(y, "ghost_cv", "real"), "magnitude": np.where(y, 0.5, 0.0)})
    return SequenceSet(x, y.astype(np.int64), meta)


def points_of(path: Path) -> np.ndarray:
    """The first window [33, 7] of a bundled track, as the featuriser takes it."""
    reports, _ = read_track_file(path)
    return track_to_windows(reports)[0][0]


@pytest.fixture(scope="module")
def task_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    data = root / "data"
    for name, n, seed in (("train", 96, 0), ("val", 48, 1), ("test", 48, 2)):
        _split(n, seed).save(data / name)
    raw = featurize_raw(np.stack([points_of(SAMPLE)] * 2)) if SAMPLE.is_file() else np.ones((1, 32, 13))
    (data / "feature_stats.json").write_text(json.dumps(feature_stats(raw)))
    exp = ExperimentConfig(task="trajectory",
                           model=ModelConfig(n_features=13, n_outputs=2, hidden=12, layers=1, dropout=0.0),
                           train=TrainConfig(epochs=4, batch_size=16, lr=1e-2, seed=0))
    summary = train_task("trajectory", exp, root / "pretrained" / "trajectory", data)
    return root, data, summary


def test_train_task_writes_both_runs_logs_and_calibration(task_folder):
    root, _, summary = task_folder
    folder = root / "pretrained" / "trajectory"
    for path in ("config.json", "model.safetensors", "calibration.npz", "float/config.json", "float/calibration.npz"):
        assert (folder / path).is_file(), path
    for run in ("float", "noise"):
        lines = (folder / f"log_{run}.jsonl").read_text().splitlines()
        assert len(lines) == 4 and {"epoch", "train_loss", "val_metric"} <= set(json.loads(lines[0]))
    assert summary["runs"]["float"]["val"] > 80 and summary["runs"]["noise"]["test"] > 70
    deployed = json.loads((folder / "config.json").read_text())
    assert deployed["extra"]["train"]["weight_noise"] == 0.1 and deployed["extra"]["stats"]["feature_stats"]


def test_predict_file_float_and_crossbar(task_folder):
    root, _, _ = task_folder
    folder = root / "pretrained" / "trajectory"
    if not SAMPLE.is_file():
        pytest.skip("bundled trajectory sample missing")
    stats = json.loads((folder / "config.json").read_text())["extra"]["stats"]
    assert "feature_stats" in stats
    result = predict_file("trajectory", SAMPLE, folder)
    assert result["label"] in ("true", "false") and result["windows"] >= 1
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    per_window = np.array(result["window_probabilities"])  # which windows drove the verdict: they average to it
    assert per_window.shape == (result["windows"], 2) and len(result["input"]["window_start_s"]) == result["windows"]
    np.testing.assert_allclose(per_window.mean(axis=0), list(result["probabilities"].values()), atol=1e-5)
    noisy = predict_file("trajectory", SAMPLE, folder, weight_bits=2, act_bits=4, sigma=0.2, seed=1)
    assert noisy["probabilities"] != result["probabilities"] and noisy["weight_bits"] == 2


def test_chips_calibrate_activation_ranges_as_their_task_says(task_folder):
    from memgru.layers import crossbar_layers
    from memgru.pipeline import deployed_model
    from memgru.quant import ActivationQuantizer
    from memgru.tasks.registry import TRAJECTORY_ACT_PERCENTILE, task_spec

    assert task_spec("trajectory").act_percentile == TRAJECTORY_ACT_PERCENTILE < 100
    assert task_spec("audio").act_percentile == task_spec("soc").act_percentile == 100
    root, _, _ = task_folder
    folder = root / "pretrained" / "trajectory"
    model, _ = load_checkpoint(folder, task="trajectory")

    def percentiles(chip) -> set[float]:
        return {q.percentile for layer in crossbar_layers(chip).values() for q in layer.modules()
                if isinstance(q, ActivationQuantizer) and q.enabled and not q.fixed}

    assert percentiles(deployed_model(model, folder, 6, 8, 0.0, 0)) == {TRAJECTORY_ACT_PERCENTILE}
    assert percentiles(deployed_model(model, folder, 6, 8, 0.0, 0, act_percentile=100.0)) == {100.0}


def _chip_percentiles(chip) -> set[float]:
    """The calibration percentiles of a chip's calibrated activation quantizers."""
    from memgru.layers import crossbar_layers
    from memgru.quant import ActivationQuantizer

    return {q.percentile for layer in crossbar_layers(chip).values() for q in layer.modules()
            if isinstance(q, ActivationQuantizer) and q.enabled and not q.fixed}


def test_calibrate_stores_the_validation_choice_and_every_command_uses_it(task_folder, tmp_path, capsys):
    """`calibrate` sweeps calibrations on validation, applies the rule and stores the choice in the checkpoint's
    config (weights untouched); chips, `evaluate` and the experiments then calibrate each model at its own."""
    root, data, _ = task_folder
    folder = tmp_path / "trajectory"
    shutil.copytree(root / "pretrained" / "trajectory", folder)
    weights = (folder / "float" / "model.safetensors").read_bytes()
    sweep = ["--task", "trajectory", "--data-dir", str(data), "--bits", "4,6", "--percentiles", "100,99.9"]
    csv = tmp_path / "sweep.csv"
    assert main(["calibrate", *sweep, "--checkpoint", str(folder / "float"), "--out", str(csv)]) == 0
    rows = pd.read_csv(csv)
    assert set(rows["act_percentile"]) == {100.0, 99.99, 99.9} and sorted(set(rows["weight_bits"])) == [4, 6]
    means = rows.groupby("act_percentile")["accuracy"].mean()  # the default (99.99) is always swept
    gains = rows.groupby("act_percentile")["paired_gain"].first()
    assert np.allclose(gains, means - means[99.99]) and gains[99.99] == 0.0  # the paired mean is the difference
    chosen, _ = choose_act_percentile(rows, 99.99)
    extra = json.loads((folder / "float" / "config.json").read_text())["extra"]
    assert extra["act_percentile"] == chosen
    assert set(extra["act_percentile_sweep"]["z_vs_default"]) == {"100", "99.99", "99.9"}
    assert task_act_percentile(folder / "float") == chosen
    assert f"chosen: {chosen:g} (stored in its config.json)" in capsys.readouterr().out
    assert (folder / "float" / "model.safetensors").read_bytes() == weights
    load_checkpoint(folder / "float", task="trajectory")  # the sha256 still matches
    before = (folder / "config.json").read_text()
    assert main(["calibrate", *sweep, "--checkpoint", str(folder), "--dry-run"]) == 0
    assert (folder / "config.json").read_text() == before and "not stored (--dry-run)" in capsys.readouterr().out

    update_extra(folder / "float", {"act_percentile": 99.5})  # each model at its own calibration
    update_extra(folder, {"act_percentile": 100.0})
    model, _ = load_checkpoint(folder / "float", task="trajectory")
    assert _chip_percentiles(deployed_model(model, folder / "float", 6, 8, 0.0, 0)) == {99.5}
    bits = run_experiment("trajectory", "bits", folder, data, bits=[4, 32], qat_epochs=1)
    assert set(bits.loc[bits["weight_bits"] < 32, "act_percentile"]) == {99.5}  # PTQ and QAT of the float model
    sigma = run_experiment("trajectory", "sigma", folder, data, sigmas=[0.0], seeds=1, limit=10)
    assert dict(zip(sigma["training"], sigma["act_percentile"].fillna(100.0), strict=True)) == {"float": 99.5,
                                                                                               "noise": 100.0}
    families = run_experiment("trajectory", "families", folder, data).query("family == 'real' and "
                                                                            "magnitude_bin == 'all'")
    assert {(t, b, 100.0 if np.isnan(p) else p) for t, b, p in
            zip(families["training"], families["weight_bits"], families["act_percentile"], strict=True)} == {
        ("float", 32, 100.0), ("float", 6, 99.5), ("noise", 32, 100.0), ("noise", 6, 100.0)}
    assert _ranges_text(families[families["weight_bits"] < 32]) == \
        " (ranges: float-trained 99.5th percentile, noise-trained min/max)"
    assert main(["evaluate", "--task", "trajectory", "--checkpoint", str(folder / "float"), "--data-dir", str(data),
                 "--bits", "6", "--json"]) == 0
    assert [r["act_percentile"] for r in json.loads(capsys.readouterr().out)["rows"]] == [99.5]
    assert predict_file("trajectory", SAMPLE, folder, 6, 8)["act_percentile"] == 100.0  # predict says which

    update_extra(folder, {"act_percentile": 120})  # a hand-edited config: one clear error
    with pytest.raises(MemgruError, match=r"invalid activation calibration extra\.act_percentile=120"):
        task_act_percentile(folder)
    assert main(["calibrate", *sweep, "--checkpoint", str(folder), "--bits", "2,3"]) == 2
    assert "needs weight bits from 4 to 16" in capsys.readouterr().err
    assert main(["calibrate", *sweep, "--checkpoint", str(folder), "--act-bits", "32"]) == 2
    assert "there are none to calibrate" in capsys.readouterr().err
    assert main(["calibrate", "--task", "soc", "--checkpoint", str(folder)]) == 2
    assert "soc's metric is rmse" in capsys.readouterr().err


def test_operating_points_set_thresholds_on_validation_only():
    rng = np.random.default_rng(0)
    val_real = rng.uniform(0.0, 0.5, 1000)  # validation reals score at most 0.5
    test_real, test_fake = rng.uniform(0.0, 0.7, 400), rng.uniform(0.3, 1.0, 400)  # test reals are worse
    test = np.concatenate([test_real, test_fake])
    is_false = np.arange(800) >= 400
    magnitude = np.where(is_false, np.linspace(0.0, 1.0, 800), 0.0)
    rows = operating_rows(val_real, test, is_false, magnitude, unusual=np.full(10, 0.45), targets=(1.0, 10.0))
    assert list(rows["target_val_fa_pct"]) == ["argmax", "1", "10"]
    one, ten = rows.iloc[1], rows.iloc[2]
    assert abs(one["val_fa_pct"] - 1.0) < 0.2 and abs(ten["val_fa_pct"] - 10.0) < 0.2
    assert 0.49 < one["threshold"] < 0.5 and 0.44 < ten["threshold"] < 0.46
    # the test reals, scored up to 0.7, raise far more alarms than validation promised
    assert 25 < one["test_fa_pct"] < 33 and ten["test_fa_pct"] > one["test_fa_pct"]
    assert one["unusual_fa_pct"] == 0.0 and ten["unusual_fa_pct"] == 100.0  # 0.45 sits between the thresholds
    assert ten["caught_pct"] >= one["caught_pct"] and one["caught_strong_pct"] >= one["caught_pct"]
    expected = np.mean(test_fake[:, None] > test_real[None, :]) * 100
    assert abs(rows["auc_pct"].iloc[0] - expected) < 1e-6 and rows["auc_pct"].nunique() == 1
    assert roc_auc(np.array([0.1, 0.9, 0.5, 0.5]), np.array([False, True, False, True])) == 87.5
    assert "track_fa_pct" not in rows  # no track ids given
    with pytest.raises(MemgruError, match="both real and false"):
        roc_auc(np.ones(3), np.ones(3, bool))
    with pytest.raises(MemgruError, match="no validation real windows"):
        operating_rows(np.array([]), test, is_false, magnitude)


def test_operating_points_judge_whole_real_tracks_by_their_mean_score():
    # three real tracks: "a" has one alarming window among calm ones, "b" is alarming throughout, "c" calm;
    # a track is called false when its windows' mean P(false) passes the threshold, as `predict` decides
    test = np.array([0.9, 0.1, 0.1, 0.1, 0.8, 0.7, 0.2, 0.95, 0.05])
    is_false = np.array([False] * 7 + [True, True])
    track = np.array(["a", "a", "a", "a", "b", "b", "c", "x", "y"])
    rows = operating_rows(np.linspace(0.0, 0.6, 101), test, is_false, np.where(is_false, 0.5, 0.0),
                          targets=(1.0,), test_track=track)
    argmax = rows.iloc[0]
    assert argmax["n_tracks"] == 3  # the fakes' ids do not count
    assert abs(argmax["test_fa_pct"] - 300 / 7) < 1e-9  # 3 of the 7 real windows
    assert abs(argmax["track_fa_pct"] - 100 / 3) < 1e-9  # only "b": "a" averages 0.3
    one = rows.iloc[1]  # threshold near 0.6: "b" (mean 0.75) is still called false
    assert 0.59 < one["threshold"] < 0.6 and abs(one["track_fa_pct"] - 100 / 3) < 1e-9


def test_activation_calibration_leaves_the_default_only_for_a_significant_paired_gain():
    """Scores are means over 4+ weight bits (2-3 bits and float ignored); the default stays unless a calibration's
    paired gain over it is significant, one-sided at 5 % Bonferroni-corrected over the alternatives (z > 2.13 for
    three, 1.64 for one); among significant ones the best score wins."""
    def sweep(stats: dict[float, tuple[float, float, float]], n: int = 1000) -> pd.DataFrame:
        """{percentile: (mean accuracy, paired gain, its standard error)} -> calibrate's rows."""
        rows = [{"act_percentile": p, "weight_bits": b, "accuracy": m, "n": n, "paired_gain": g, "paired_se": se}
                for p, (m, g, se) in stats.items() for b in (4, 8)]
        rows += [{"act_percentile": p, "weight_bits": b, "accuracy": 99.0 if p == 100.0 else 0.0, "n": n,
                  "paired_gain": g, "paired_se": se} for p, (_, g, se) in stats.items() for b in (2, 32)]
        return pd.DataFrame(rows)
    noisy = {100.0: (90.0, -5.0, 0.5), 99.99: (95.0, 0.0, 0.0), 99.9: (95.4, 0.4, 0.25), 99.5: (94.0, -1.0, 0.3)}
    chosen, table = choose_act_percentile(sweep(noisy), 99.99)  # z = 1.6: the validation set cannot tell
    assert chosen == 99.99 and list(table["chosen"]) == [False, True, False, False]
    assert table.loc[table["act_percentile"] == 99.9, "z"].item() == pytest.approx(1.6)
    clear = {**noisy, 99.9: (96.0, 1.0, 0.2), 99.5: (96.5, 1.5, 0.25)}
    assert choose_act_percentile(sweep(clear), 99.99)[0] == 99.5  # both significant: the better one
    near = {**noisy, 99.9: (95.5, 0.5, 0.25)}  # z = 2.0: significant alone, not among three alternatives
    assert choose_act_percentile(sweep(near), 99.99)[0] == 99.99
    assert choose_act_percentile(sweep({p: near[p] for p in (99.99, 99.9)}), 99.99)[0] == 99.9
    with pytest.raises(MemgruError, match="no quantized rows"):
        choose_act_percentile(sweep(noisy).query("weight_bits < 4"), 99.99)
    with pytest.raises(MemgruError, match="no paired statistics"):
        choose_act_percentile(sweep(noisy).drop(columns="paired_se"), 99.99)
    with pytest.raises(MemgruError, match=r"does not include the default percentile 99\.99"):
        choose_act_percentile(sweep({100.0: noisy[100.0]}), 99.99)


def test_flagged_windows_trace_a_verdict_to_its_windows():
    """Count over the threshold, the worst window and the longest run (minutes from the first start); without
    matching start times no positions are given, without a window over the threshold no run."""
    starts = [0.0, 320.0, 640.0, 960.0, 1280.0]
    lines = flagged_windows([0.9, 0.2, 0.7, 0.8, 0.1], starts, 0.5)
    assert lines == ["windows with P(false) > 0.5: 3 of 5; highest 0.900 (window starting 0.0 min in)",
                     "longest run of such windows: 2 in a row, starting 10.7 to 16.0 min in"]
    assert flagged_windows([0.9, 0.2], [], 0.5) == ["windows with P(false) > 0.5: 1 of 2; highest 0.900"]
    assert len(flagged_windows([0.1, 0.2], starts[:2], 0.5)) == 1


def test_whole_track_rows_count_tracks_by_their_mean_score():
    """Real tracks called false and false tracks caught by the mean P(false) of their windows; the two AUCs rank
    tracks by that mean and by the worst window (here the worst window separates perfectly, the mean does not)."""
    real = pd.DataFrame({"mean": [0.1, 0.6, 0.2, 0.3], "max": [0.2, 0.7, 0.3, 0.4]})
    false = pd.DataFrame({"mean": [0.9, 0.4], "max": [0.95, 0.8]})
    rows = track_rows(np.linspace(0.0, 0.5, 11), real, false, np.array([0.5, 0.1]), targets=(10.0,))
    argmax = rows.iloc[0]
    assert argmax["track_fa_pct"] == 25.0 and argmax["tracks_caught_pct"] == 50.0
    assert argmax["tracks_caught_strong_pct"] == 100.0 and argmax["track_accuracy"] == pytest.approx(100 * 4 / 6)
    assert argmax["track_auc_max_pct"] == 100.0 and argmax["track_auc_pct"] == 87.5  # 0.4 is below the real 0.6
    assert 0.44 < rows.iloc[1]["threshold"] < 0.46 and rows.iloc[1]["track_fa_pct"] == 25.0
    by_family = track_rows(np.linspace(0.0, 0.5, 11), real, false, np.array([0.5, 0.1]), targets=(10.0,),
                           family=np.array(["splice", "replay"]))
    assert list(by_family["family"]) == ["all", "all", "replay", "splice", "replay", "splice"]
    assert list(by_family["tracks_caught_pct"][2:4]) == [0.0, 100.0]  # replay's 0.4 is under 0.5, splice's 0.9 over
    assert list(by_family["n_false_tracks"][2:4]) == [1, 1]


def test_detection_limits_read_a_known_detection_curve():
    """The logistic fit behind `experiment --name detection` recovers where a known curve crosses 50 and 90 %,
    stays finite on separable outcomes and says when a level lies outside the magnitudes tested."""
    rng = np.random.default_rng(0)
    m = rng.uniform(0.0, 1.0, 4000)
    caught = rng.uniform(size=m.size) < 1.0 / (1.0 + np.exp(-(20.0 * m - 5.0)))
    a, b = fit_logistic(m, caught)
    assert magnitude_at(a, b, 50.0) == pytest.approx(0.25, abs=0.015)
    assert magnitude_at(a, b, 90.0) == pytest.approx((np.log(9.0) + 5.0) / 20.0, abs=0.02)
    assert magnitude_at(*fit_logistic(m, m > 0.3), 50.0) == pytest.approx(0.3, abs=0.01)  # a step: separable
    assert magnitude_at(*fit_logistic(m, np.ones(m.size, bool)), 50.0) < 0  # caught even at magnitude 0
    assert not magnitude_at(*fit_logistic(m, np.zeros(m.size, bool)), 50.0) <= 1  # never caught in 0-1
    assert magnitude_at(1.0, -2.0, 90.0) == np.inf  # a curve that falls never reaches the level


def test_experiments_and_model_card(task_folder, monkeypatch):
    root, data, _ = task_folder
    folder = root / "pretrained" / "trajectory"
    bits = run_experiment("trajectory", "bits", folder, data, bits=[4, 32], qat_epochs=1)
    assert set(bits["method"]) == {"ptq", "qat"} and len(bits) == 3
    assert list(bits.loc[bits["method"] == "qat", "qat_epochs"]) == [1]  # the card's command needs it
    quantized = bits[bits["weight_bits"] < 32]  # trajectory chips calibrate on percentiles, and say so
    assert set(quantized["act_percentile"]) == {99.99}
    assert bits.loc[bits["weight_bits"] >= 32, "act_percentile"].isna().all()
    sigma = run_experiment("trajectory", "sigma", folder, data, sigmas=[0.0, 0.2], seeds=2, limit=20)
    assert set(sigma["training"]) == {"float", "noise"} and len(sigma) == 8 and set(sigma["n"]) == {20}
    operating = run_experiment("trajectory", "operating", folder, data)
    assert len(operating) == 4 * 5 and set(operating["n"]) == {48}  # 4 models x (argmax + 4 targets)
    assert operating["auc_pct"].between(0, 100).all() and operating["unusual_fa_pct"].isna().all()
    families = run_experiment("trajectory", "families", folder, data)
    real = families.query("family == 'real' and magnitude_bin == 'all'")
    assert len(real) == 4 and set(real["n"]) == {24}  # 2 models x 2 precisions, half of 48 test windows
    assert families.query("family == 'ghost_cv' and magnitude_bin != 'all'")["n"].sum() == 4 * 24
    detection = run_experiment("trajectory", "detection", folder, data)
    fakes = families.query("family != 'real' and magnitude_bin == 'all'")
    assert set(detection["family"]) == set(fakes["family"])
    for (family, training, w_bits), rows in detection.groupby(["family", "training", "weight_bits"]):
        assert len(rows) == 2 * len(FAMILY_KNOBS[family]) and set(rows["level_pct"]) == {50.0, 90.0}
        caught = fakes[(fakes["family"] == family) & (fakes["training"] == training) & (fakes["weight_bits"] == w_bits)]
        assert rows["caught_pct"].iloc[0] == pytest.approx(caught["accuracy"].iloc[0])  # same argmax verdict
        assert rows["n"].iloc[0] == caught["n"].iloc[0]
    test = task_io("trajectory").load_split(data, "test")
    with pytest.raises(MemgruError, match="no false-track family of the data has a magnitude knob"):
        detection_rows(load_checkpoint(folder / "float", task="trajectory")[0], test, {})
    with pytest.raises(MemgruError, match="needs false windows with families and magnitudes"):
        detection_rows(load_checkpoint(folder / "float", task="trajectory")[0],
                       SequenceSet(test.x, test.y, test.meta.drop(columns="magnitude")), FAMILY_KNOBS)
    inside = detection["magnitude"].between(0, 1)
    assert detection.loc[~inside, "value"].isna().all() and detection.loc[inside, "value"].notna().all()
    assert (detection["magnitude_low"] <= detection["magnitude_high"]).all()
    with pytest.raises(MemgruError, match="no incident split"):
        run_experiment("trajectory", "incident", folder, data)
    with pytest.raises(MemgruError, match="needs real tracks cut into windows"):
        run_experiment("trajectory", "tracks", folder, data)
    narrow = run_experiment("trajectory", "bits", folder, data, bits=[4], qat_epochs=1, act_percentile=99.9)
    assert set(narrow["act_percentile"]) == {99.9}  # `experiment --act-percentile`: PTQ and QAT rows alike
    clean, drifting = _split(6, 3), _split(6, 4)  # stretch 0 real-looking, stretch 1 with the false drift
    x = np.concatenate([clean.x[clean.y == 0], drifting.x[drifting.y == 1]])
    kinds = ["reported"] * 3 + ["interfered"] * 3
    meta = pd.DataFrame({"stretch": [0] * 3 + [1] * 3, "kind": kinds, "stretch_start_s": [0.0] * 3 + [990.0] * 3,
                         "stretch_end_s": [980.0] * 3 + [2000.0] * 3, "family": kinds, "magnitude": 0.0,
                         "flight": "noisy/x"})
    SequenceSet(x, np.array([0] * 3 + [1] * 3), meta).save(data / "incident")
    incident = run_experiment("trajectory", "incident", folder, data)
    assert len(incident) == 4 * 2 and set(incident["n"]) == {3} and list(incident["kind"][:2]) == kinds[2:4]
    for _, chip in incident.groupby(["training", "weight_bits"]):
        reported, interfered = chip.set_index("kind").loc[["reported", "interfered"], "mean_p_false"]
        assert interfered > 0.5 > reported  # the drift the models learnt marks the interfered stretch
    assert set(incident["called_false_pct"]) <= {0.0, 100 / 3, 200 / 3, 100.0}
    results = root / "results"
    results.mkdir()
    incident.to_csv(results / "trajectory_incident.csv", index=False)
    detection.to_csv(results / "trajectory_detection.csv", index=False)
    bits.to_csv(results / "trajectory_bits.csv", index=False)
    sigma.to_csv(results / "trajectory_sigma.csv", index=False)
    operating.to_csv(results / "trajectory_operating.csv", index=False)
    scores = pd.DataFrame({"mean": [0.1, 0.7], "max": [0.3, 0.9]})
    pd.concat([track_rows(np.linspace(0, 1, 11), scores, scores[::-1], np.array([0.5, 0.5])).assign(
        training=t, weight_bits=b, act_bits=a) for t, b, a in (("float", 32, 32), ("noise", 6, 8))]).to_csv(
        results / "trajectory_tracks.csv", index=False)
    monkeypatch.setenv("MEMGRU_PRETRAINED_DIR", str(root / "pretrained"))
    monkeypatch.setenv("MEMGRU_RESULTS_DIR", str(results))
    card = model_card("trajectory")
    assert "PTQ vs QAT" in card and "| method | 4 | float |" in card
    assert "--name bits --qat-epochs 1`" in card
    assert "8-bit activations (ranges: 99.99th percentile)" in card
    assert "python -m memgru experiment --task trajectory --name sigma" in card and "± " in card
    assert "python -m memgru train --task trajectory --runs noise" in card
    assert "vs weight bits, 8-bit activations" in card and "--act-bits" not in card
    assert "--name operating` → `results/trajectory_operating.csv` (evaluated on 48 sequences" in card
    assert "| noise-trained, 6-bit | 1 % on val |" in card
    assert "--name incident` → `results/trajectory_incident.csv` (evaluated on 6 sequences" in card
    assert "| `noisy/x` | 1 | interfered | 16 – 33 | 3 |" in card
    assert "--name tracks` → `results/trajectory_tracks.csv` (evaluated on 4 whole tracks)" in card
    assert (f"--name detection` → `results/trajectory_detection.csv` (evaluated on the {int(fakes['n'].sum()) // 4} "
            "false test windows)") in card
    assert "| ghost_cv | isotropic position noise (std) 0 → 150 m |" in card
    assert "| noise-trained, 6-bit | argmax (0.5) | 0.500 | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 |" in card

    wide = run_experiment("trajectory", "sigma", folder, data, sigmas=[0.0], seeds=1, limit=20, act_bits=10)
    assert set(wide.loc[wide["weight_bits"] < 32, "act_bits"]) == {10} and "gate_bits" not in wide
    wide.to_csv(results / "trajectory_sigma.csv", index=False)
    gated = run_experiment("trajectory", "snr", folder, data, snrs=[0.0], limit=20, gate_bits=12)
    assert set(gated.loc[gated["weight_bits"] < 32, "gate_bits"]) == {12}
    gated.to_csv(results / "trajectory_snr.csv", index=False)
    with pytest.raises(MemgruError, match="gate-bits applies"):
        run_experiment("trajectory", "families", folder, data, gate_bits=12)
    bits.query("method == 'ptq'").drop(columns="method").assign(act_bits=12).to_csv(
        results / "trajectory_bits_a12.csv", index=False)
    card = model_card("trajectory")
    assert "(6-bit weights, 10-bit activations (ranges: 99.99th percentile))" in card
    assert "--name sigma --act-bits 10 --seeds 1 --limit 20`" in card
    assert "--name snr --gate-bits 12 --limit 20`" in card
    assert ("## Metric (accuracy, %) vs weight bits, 12-bit activations (ranges: 99.99th percentile), ideal device: "
            "PTQ") in card
    assert "--bits 4,32 --act-bits 12 --out results/trajectory_bits_a12.csv" in card
    ptq = bits.query("method == 'ptq'").drop(columns="method")
    ptq.assign(gate_bits=ptq["weight_bits"].map(lambda b: 32 if b >= 32 else 10)).to_csv(
        results / "trajectory_bits_a8_g10.csv", index=False)
    card = model_card("trajectory")
    assert "8-bit activations, 10-bit gate outputs (ranges: 99.99th percentile), ideal device: PTQ" in card
    assert "--act-bits 8 --gate-bits 10 --out results/trajectory_bits_a8_g10.csv" in card
    bits.assign(act_bits=bits["weight_bits"].map(lambda b: 32 if b >= 32 else 10)).to_csv(
        results / "trajectory_bits_a10.csv", index=False)  # PTQ and QAT, as `experiment --name bits --out` writes
    card = model_card("trajectory")
    assert "10-bit activations (ranges: 99.99th percentile), ideal device: PTQ vs QAT" in card
    assert ("`python -m memgru experiment --task trajectory --name bits --bits 4,32 --act-bits 10 --qat-epochs 1 "
            "--out results/trajectory_bits_a10.csv`") in card

    pd.concat([sigma.assign(candidate=name, command=f"python -m memgru train ... # {name}")
               for name in ("η = 0.1, matrix scale", "η = 0.2, row scale")]).to_csv(
        results / "trajectory_noise_selection.csv", index=False)
    card = model_card("trajectory")
    assert "## Choice of the training weight noise (validation accuracy, %, 6-bit weights, mean over 2 device seeds)" \
        in card and "| candidate | σ = 0 | σ = 0.2 |" in card and "| η = 0.2, row scale |" in card

    baselines = root / "baselines"  # Table 2: the GRU, the dilated CNN and the paper-size GRU side by side
    for name in ("trajectory_dcnn", "trajectory_paper"):
        shutil.copytree(folder / "float", baselines / name / "float")
    ptq = bits.query("method == 'ptq'").drop(columns="method")
    ptq.to_csv(results / "trajectory_dcnn_bits.csv", index=False)
    ptq.query("weight_bits >= 32").to_csv(results / "trajectory_paper_bits.csv", index=False)  # float only
    monkeypatch.setenv("MEMGRU_BASELINES_DIR", str(baselines))
    card = model_card("trajectory")
    assert "| model | parameters | 4 | float |" in card and "| Dilated CNN |" in card
    assert "| GRU, paper size (1 x 12) |" in card and "| – |" in card  # no 4-bit figure for it: a dash
    assert "--config configs/trajectory_paper.json --out baselines/trajectory_paper --runs float --epochs 4`" in card
    assert "--checkpoint baselines/trajectory_dcnn/float --bits 2,3,4,5,6,7,8,16,32 --out" in card  # evaluate's PTQ

    # the baseline measured like the GRU (PTQ and QAT) at its own calibration, chosen on validation
    narrow.to_csv(results / "trajectory_dcnn_bits.csv", index=False)
    sweeps = {"float": (95.0, 95.02, 0.1), "noise": (90.4, 90.3, 0.1), "dcnn": (92.0, 94.0, 0.3)}  # means, se
    for key, (wide, tight, se) in sweeps.items():
        pd.DataFrame({"weight_bits": [4, 6, 32, 4, 6, 32, 2], "act_bits": [8, 8, 32, 8, 8, 32, 8],
                      "accuracy": [wide, wide, 96.0, tight, tight, 96.0, 10.0], "n": 1234,
                      "act_percentile": [99.99] * 3 + [99.9] * 4, "paired_gain": [0.0] * 3 + [tight - wide] * 4,
                      "paired_se": [0.0] * 3 + [se] * 4}).to_csv(
            results / f"trajectory_act_percentile_{key}.csv", index=False)
    card = model_card("trajectory")
    assert "post-training quantization and QAT, 8-bit activations, activation ranges at each model's percentile: " \
           "GRU 99.99, Dilated CNN 99.9)" in card
    assert "| GRU (1 x 12, the bundled model), QAT |" in card and "| Dilated CNN, QAT |" in card
    assert ("`python -m memgru experiment --task trajectory --name bits --checkpoint baselines/trajectory_dcnn "
            "--act-percentile 99.9 --qat-epochs 1 --out results/trajectory_dcnn_bits.csv`") in card
    assert "## Activation range calibration, chosen on validation" in card
    assert ("`python -m memgru calibrate --task trajectory --checkpoint baselines/trajectory_dcnn/float --bits "
            "2,4,6,32 --percentiles 99.99,99.9 --out results/trajectory_act_percentile_dcnn.csv`") in card
    assert "| GRU, float-trained | 95.00 | 95.02 (z +0.2) | 99.99 | 99.99 |" in card  # noise: the default stays
    assert "| Dilated CNN baseline | 92.00 | 94.00 (z +6.7) | 99.9 | 99.99 |" in card  # chosen, not stored here
    assert "Bonferroni correction over the alternatives compared (z > 1.64 here)" in card


def test_fine_tuning_in_place_keeps_the_recipe_of_its_starting_point(task_folder, tmp_path, monkeypatch):
    """A float model fine-tuned from itself overwrites its starting checkpoint: the new config must still
    say how that start was trained, and the card must print both commands."""
    root, data, _ = task_folder
    folder = tmp_path / "pretrained" / "trajectory"
    shutil.copytree(root / "pretrained" / "trajectory", folder)
    start = json.loads((folder / "float" / "config.json").read_text())["extra"]
    exp = ExperimentConfig(task="trajectory",
                           model=ModelConfig(n_features=13, n_outputs=2, hidden=12, layers=1, dropout=0.0),
                           train=TrainConfig(epochs=1, batch_size=16, lr=1e-3, seed=0))
    train_task("trajectory", exp, folder, data, runs=("float",), init_from=folder / "float")
    recipe = json.loads((folder / "float" / "config.json").read_text())["extra"]["initialised_from_recipe"]
    assert recipe["train"] == start["train"] and recipe["metrics"] == start["metrics"]
    assert recipe["initialised_from"] is None and recipe["initialised_from_recipe"] is None
    monkeypatch.setenv("MEMGRU_PRETRAINED_DIR", str(tmp_path / "pretrained"))
    monkeypatch.setenv("MEMGRU_RESULTS_DIR", str(tmp_path / "results"))
    card = model_card("trajectory")
    assert ("--epochs 1 --lr 0.001 --weight-noise 0.0 --init-from pretrained/trajectory/float`, run after "
            "`python -m memgru train --task trajectory --runs float --epochs 4 --lr 0.01 --weight-noise 0.0` "
            "(accuracy, %: val ") in card


def test_a_non_default_truncation_length_is_part_of_the_training_command():
    """A SOC run trained with longer truncated back-propagation must be reproducible from the card's command,
    and the CLI must accept that command."""
    extra = {"run": "float", "initialised_from": "pretrained/soc/float",
             "train": TrainConfig(epochs=3, batch_size=16, lr=5e-4, tbptt_steps=2000).to_dict()}
    command = _train_command("soc", extra)
    assert command == ("python -m memgru train --task soc --runs float --epochs 3 --lr 0.0005 --weight-noise 0.0 "
                       "--tbptt-steps 2000 --init-from pretrained/soc/float")
    args = _parser().parse_args(command.split()[3:])
    assert args.tbptt_steps == 2000 and args.init_from == "pretrained/soc/float"
    default = {"run": "float", "train": TrainConfig(epochs=3, batch_size=16, lr=5e-4, tbptt_steps=500).to_dict()}
    assert "--tbptt-steps" not in _train_command("soc", default)


def test_training_refuses_data_of_the_wrong_shape(task_folder, tmp_path):
    _, data, _ = task_folder
    exp = ExperimentConfig(task="trajectory", model=ModelConfig(n_features=7, n_outputs=2, hidden=4, layers=1))

    with pytest.raises(MemgruError, match="13 features per step but the model config expects 7"):
        train_task("trajectory", exp, Path(tmp_path), data)


def test_plan_task_reports_plan_cost_and_metrics(task_folder, tmp_path, capsys, monkeypatch):
    from memgru.cli import main
    from memgru.fusion import PlanConstraints, plan_task

    root, data, _ = task_folder
    checkpoint = root / "pretrained" / "trajectory" / "float"
    constraints = PlanConstraints(max_states=16, max_slices=1)
    report = plan_task("trajectory", checkpoint, data, tolerance=5.0, constraints=constraints, qat_epochs=1, limit=32)
    assert report["val_sequences"] == 32 and report["plan_within_tolerance"]
    assert set(report["plan"]) == {s["name"] for s in report["slots"]}
    assert all(report["plan"][s["name"]] in s["ladder"] for s in report["slots"])
    assert max(b for n, b in report["plan"].items() if n in ("gru.ih_l0", "gru.hh_l0", "head.weight")) <= 5
    assert report["results"]["plan_ptq"]["val"] >= report["results"]["float"]["val"] - 5.0
    assert set(report["results"]) == {"float", "plan_ptq", "plan_qat", "uniform_w6a8_ptq", "uniform_w6a8_qat"}
    assert report["cost"]["uniform_w6a8"]["mean_weight_bits"] == 5.0  # 16 states: 6-bit capped at 5
    again = plan_task("trajectory", checkpoint, data, tolerance=5.0, constraints=constraints, qat_epochs=0, limit=32)
    assert again["plan"] == report["plan"] and again["sensitivity"] == report["sensitivity"]
    n_val = len(task_io("trajectory").load_split(data, "val"))
    assert report["holdout"] == {"sequences": 0, "skipped": f"only {n_val - 32} validation sequences outside the "
                                 "planning subset (at least 200 needed)"}
    monkeypatch.setattr("memgru.fusion.MIN_HOLDOUT", 8)  # the fixture's validation split is small
    checked = plan_task("trajectory", checkpoint, data, tolerance=0.0, constraints=constraints, qat_epochs=0,
                        limit=24, holdout=100)
    held = checked["holdout"]
    assert held["sequences"] == n_val - 24 and held["tolerance"] == 0.0
    undone, kept = held["steps_undone"], held["checks"][-1]
    assert kept["steps_undone"] == undone and len(held["checks"]) == undone + 1
    assert undone >= 1 and checked["plan"] != held["plan_before"]  # at tolerance 0 the descent overfits 24 sequences
    assert kept["within"] == held["within_tolerance"]
    assert kept["within"] == (kept["holdout_metric"] >= held["float"])  # tolerance 0: no worse than float there
    assert all(not row["within"] for row in held["checks"][:-1])  # cheaper plans of the chain missed it
    off = plan_task("trajectory", checkpoint, data, tolerance=0.0, constraints=constraints, qat_epochs=0, limit=24,
                    holdout=0)
    assert off["holdout"]["skipped"] == "switched off (--holdout 0)" and off["plan"] == held["plan_before"]

    out = tmp_path / "plan_trajectory.json"
    args = ["plan", "--task", "trajectory", "--checkpoint", str(checkpoint), "--data-dir", str(data),
            "--tolerance", "w6a8", "--limit", "32", "--qat-epochs", "0", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "fusion quantization plan" in printed and "total_weight_bits" in printed
    doc = json.loads(out.read_text())
    assert doc["tolerance"] == pytest.approx(max(0.0, doc["results"]["float"]["val"] - doc["uniform_w6a8_val"]))
    assert main([*args[:-2], "--out", str(tmp_path)]) == 2  # a folder is not a JSON path
    monkeypatch.setenv("MEMGRU_PRETRAINED_DIR", str(root / "pretrained"))
    monkeypatch.setenv("MEMGRU_RESULTS_DIR", str(tmp_path))
    card = model_card("trajectory")
    assert "## Fusion quantization plan" in card and "| gru.hh_l0 | weight |" in card
    assert "| total_weight_bits |" in card and "| uniform_w6a8_ptq |" in card and "Stale" not in card
    assert f"`{doc['command']}` → `results/plan_trajectory.json`" in card and "All plans" not in card
    weights_only = tmp_path / "plan_trajectory_weights.json"  # a second plan: the card lists both
    assert main([*args[:-2], "--act-bits", "8", "--out", str(weights_only)]) == 0
    held = json.loads(weights_only.read_text())
    assert held["constraints"]["act_bits"] == 8 and "--act-bits 8" in held["command"]
    assert {held["plan"][s["name"]] for s in held["slots"] if s["kind"] == "act"} == {8}
    card = model_card("trajectory")
    assert "All plans of this task" in card and "| `plan_trajectory_weights.json` |" in card
    doc["checkpoint_sha256"] = "0" * 64  # a plan made for other weights is flagged
    out.write_text(json.dumps(doc))
    assert "**Stale:**" in model_card("trajectory")
    assert main([*args, "--max-states", "1"]) == 2
    assert "max states per device" in capsys.readouterr().err


def test_false_alarm_rows_per_category_and_flight():
    import torch

    from memgru.experiments import false_alarm_rows

    class Sign(torch.nn.Module):
        """Calls a window false (class 1) when its first feature's mean is positive."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m = x[:, :, 0].mean(dim=1)
            return torch.stack([-m, m], dim=1)

    x = np.zeros((6, 4, 2), np.float32)
    x[[0, 1, 4], :, 0] = 1.0  # three of six windows look false
    meta = pd.DataFrame({"category": ["gliders"] * 2 + ["surveys"] * 4,
                         "flight": ["g/a", "g/b", "s/c", "s/c", "s/d", "s/d"]})
    rows = false_alarm_rows(Sign(), SequenceSet(x, np.zeros(6, np.int64), meta)).set_index(["level", "name"])
    assert rows.loc[("all", "all"), "false_alarm_pct"] == 50.0 and rows.loc[("all", "all"), "n"] == 6
    assert rows.loc[("category", "gliders"), "false_alarm_pct"] == 100.0
    assert rows.loc[("category", "surveys"), "false_alarm_pct"] == 25.0
    assert rows.loc[("flight", "s/d"), "false_alarm_pct"] == 50.0 and rows.loc[("flight", "s/c"), "n"] == 2
    # whole flights, as `predict` judges a file: mean P(false) over the windows (s/d: 0.88 and 0.5 -> 0.69)
    assert rows.loc[("all", "all"), "flights"] == 4 and rows.loc[("all", "all"), "flights_called_false_pct"] == 75.0
    assert rows.loc[("category", "surveys"), "flights_called_false_pct"] == 50.0
    assert rows.loc[("flight", "s/d"), "flights_called_false_pct"] == 100.0
    assert rows.loc[("flight", "s/c"), "flights_called_false_pct"] == 0.0  # P(false) exactly 0.5: not passed


def test_calibration_set_cuts_long_sequences_into_pieces():
    steps = 2 * CALIBRATION_STEPS + 7
    x = np.arange(3 * steps * 2, dtype=np.float32).reshape(3, steps, 2)
    pieces = calibration_inputs(x, seed=0)
    assert pieces.shape == (6, CALIBRATION_STEPS, 2)  # 2 whole pieces per sequence, the remainder dropped
    np.testing.assert_array_equal(pieces[1], x[0, CALIBRATION_STEPS : 2 * CALIBRATION_STEPS])
    short = np.zeros((CALIBRATION_SIZE + 10, 5, 2), np.float32)
    short[:, 0, 0] = np.arange(len(short))
    chosen = calibration_inputs(short, seed=1)
    assert chosen.shape == (CALIBRATION_SIZE, 5, 2)
    assert np.all(np.diff(chosen[:, 0, 0]) > 0)  # distinct sequences, in their original order
    np.testing.assert_array_equal(chosen, calibration_inputs(short, seed=1))


def test_audio_input_noise_goes_onto_the_waveform_other_tasks_onto_the_inputs() -> None:
    from memgru.tasks.audio import SAMPLE_RATE, FeatureConfig, NormStats, clip_windows, compute_features

    t = np.arange(int(4.0 * SAMPLE_RATE)) / SAMPLE_RATE
    wave = (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)
    cfg = FeatureConfig()
    stats = NormStats(np.full(64, -40.0, np.float32), np.full(64, 20.0, np.float32), cfg)
    x = stats.apply(compute_features(clip_windows(wave), cfg))
    audio = UserInput(x=x, waveform=wave, stats=stats.to_dict())
    assert np.allclose(noisy_user_input(audio, 200.0, 0), x, atol=1e-3)
    noisy = noisy_user_input(audio, 0.0, 0)
    # white noise at 0 dB on the sound lifts every empty mel band; on the features it would be N(0, power)
    assert noisy.shape == x.shape and (noisy - x).min() > -0.5 and (noisy - x).mean() > 1.0
    track = UserInput(x=x)
    assert np.array_equal(noisy_user_input(track, 0.0, 0), input_noise(x, 0.0, 0))
    assert task_io("audio").signal_noise is not None and task_io("trajectory").signal_noise is None
    assert task_io("trajectory").input_noise(Path("unused"))[1] == "features"


def test_regression_bits_table_shows_rmse_and_mae():
    from memgru.modelcard import _bits_table

    rows = pd.DataFrame({"weight_bits": [6, 32, 6, 32], "act_bits": [8, 32, 8, 32],
                         "temperature_c": [0.0, 0.0, 25.0, 25.0], "method": "ptq",
                         "rmse": [0.9, 0.8, 0.7, 0.6], "mae": [0.5, 0.4, 0.3, 0.2]})
    text = _bits_table(rows, "rmse")
    rmse, mae = text.split("MAE (same unit):")
    assert rmse.startswith("RMSE:") and "0.90" in rmse and "0.50" not in rmse
    assert "0.50" in mae and "0.20" in mae and "0.90" not in mae
    # classification tables (and regression tables written before the mae column) are one table
    assert "MAE" not in _bits_table(rows.drop(columns="mae"), "rmse")
