"""Extractors, the cached real reference, protocol records, experiments.evaluate."""

import dataclasses
import json
import os
import types

import jax
import numpy as np
import pytest

from conftest import make_digits, run_module, write_idx
from gan_jax import corruptions, data, evaluate, evaluator, hashing, sampling
from gan_jax.errors import ConfigError, DataError
from gan_jax.families import cyclegan, pix2pix
from gan_jax.family import DataSpec
from gan_jax.metrics import classifier, evaluation, extractors
from gan_jax.metrics.paired import paired_metrics

PROTOCOL = {"metric", "value", "num_real", "num_generated", "dataset",
            "reference_split", "reference_sha256", "extractor",
            "extractor_sha256", "resize", "seed"}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
  """An IDX folder of bars (train 96, test 64) and its trained classifier."""
  root = tmp_path_factory.mktemp("toy")
  folder = root / "idx"
  folder.mkdir()
  for prefix, n, seed in (("train", 96, 5), ("t10k", 64, 4)):
    images, labels = make_digits(n, seed=seed)
    write_idx(str(folder / f"{prefix}-images-idx3-ubyte"), images)
    write_idx(str(folder / f"{prefix}-labels-idx1-ubyte"), labels)
  classifier.train_classifier("bars", str(folder), num_epochs=8,
                              batch_size=32, root=str(root / "classifiers"))
  config = evaluate.EvalConfig(
      dataset="bars", data_dir=str(folder), num_samples=64,
      cache_dir=str(root / "reference"),
      classifier_root=str(root / "classifiers"))
  return config, str(folder)


def _test_images():
  """The toy's test split itself."""
  return make_digits(64, seed=4)[0][..., None]


def test_unknown_extractor_is_a_config_error():
  with pytest.raises(ConfigError, match="--extractor='vgg'"):
    extractors.create("vgg", dataset="mnist")


def test_inception_without_weights_names_the_flag():
  with pytest.raises(Exception, match="--inception_weights"):
    extractors.create("inception")


def test_an_extractor_without_logits_gives_what_it_can(toy):
  # A features-only extractor (the TorchScript Inception conversion): the
  # default metrics leave out those of logits; asking for one is an error.
  config, _ = toy
  evaluator = evaluate.Evaluator(config)
  featureless = dataclasses.replace(
      evaluator.extractor, num_classes=0,
      embed=lambda images: (evaluator.extractor(images)[0],
                            np.zeros((len(images), 0), np.float32)))
  records = evaluation.evaluate(_test_images(), featureless,
                                evaluator.reference,
                                metrics=("fd", "precision_recall"))
  assert {r["metric"] for r in records} == {"fd", "precision", "recall"}
  for metric in ("score", "class_coverage"):
    with pytest.raises(ConfigError, match=f"--metrics={metric} needs class "
                       "logits"):
      evaluation.evaluate(_test_images(), featureless, evaluator.reference,
                          metrics=(metric,))


def test_real_set_against_itself_scores_perfectly(toy):
  config, _ = toy
  records = evaluate.Evaluator(config)(_test_images(), step=7)
  values = evaluation.by_metric(records)
  assert set(values) == {"fd", "score", "kid", "precision", "recall",
                         "density", "coverage", "class_coverage"}
  assert abs(values["fd"]) < 1e-3  # Rank-deficient covariances: round-off.
  assert values["precision"] == values["recall"] == 1.0
  assert values["coverage"] == 1.0 and values["class_coverage"] == 1.0
  for record in records:
    assert PROTOCOL <= set(record), PROTOCOL - set(record)
    assert record["num_real"] == record["num_generated"] == 64
    assert record["reference_split"] == "test" and record["step"] == 7
    # Not a known dataset: the name carries its content hash.
    assert record["extractor"].startswith("classifier/bars-sha256-")
    assert len(record["extractor_trained_on_sha256"]) == 64
    assert record["resize"] == "none (native 28x28)"
    assert len(record["extractor_sha256"]) == 64
  json.dumps(records)  # Plain JSON types throughout.


def test_collapsed_samples_cover_one_class(toy):
  config, _ = toy
  images = _test_images()
  labels = make_digits(64, seed=4)[1]
  collapsed = np.repeat(images[labels == 3][:1], 40, axis=0)
  values = evaluation.by_metric(
      evaluate.Evaluator(dataclasses.replace(
          config, metrics=("fd", "class_coverage")))(collapsed))
  assert values["class_coverage"] == pytest.approx(0.1)
  assert values["fd"] > 1.0


def test_class_accuracy_by_hand():
  logits = np.array([[5.0, 0, 0], [0, 5, 0], [0, 5, 0], [0, 0, 5]])
  value, per_class = evaluation.class_accuracy(logits, np.array([0, 1, 2, 0]))
  assert value == 0.5  # Right on the first two only.
  assert per_class == [0.5, 1.0, 0.0]
  _, per_class = evaluation.class_accuracy(logits, np.array([0, 0, 0, 0]))
  assert per_class[0] == 0.25 and np.isnan(per_class[1])


def test_a_conditional_model_is_asked_for_the_references_classes():
  """FD compares like with like: an imbalanced reference (9 of class 0, 1
  of class 1) gets samples in its proportions, not every class in turn."""
  fake = types.SimpleNamespace(
      config=evaluator.EvalConfig(num_samples=20, seed=3),
      real=types.SimpleNamespace(labels=np.array([0] * 9 + [1])))
  labels = evaluator.Evaluator.requested_labels(fake, classes=2)
  assert labels.shape == (20,) and labels.dtype == np.int32
  assert np.bincount(labels).tolist() == [18, 2]  # Two copies of 9:1.
  assert evaluator.Evaluator.requested_labels(fake, classes=0) is None
  fake.real.labels = np.full(10, -1)  # Unlabelled: every class in turn.
  np.testing.assert_array_equal(
      evaluator.Evaluator.requested_labels(fake, classes=3)[:4], [0, 1, 2, 0])


def test_class_accuracy_of_samples_with_their_labels(toy, tmp_path):
  """Real test images labelled truly score the classifier's own accuracy on
  them; the same images with shifted labels score far lower."""
  config, _ = toy
  images, labels = _test_images(), make_digits(64, seed=4)[1]
  evaluator = evaluate.Evaluator(config)
  records = evaluator(images, labels=labels)
  values = evaluation.by_metric(records)
  _, logits = evaluator.extractor(images)
  assert values["class_accuracy"] == pytest.approx(
      np.mean(logits.argmax(-1) == labels)) and values["class_accuracy"] > 0.5
  record = [r for r in records if r["metric"] == "class_accuracy"][0]
  assert record["classifier_test_accuracy"] == (
      evaluator.extractor.info["test_accuracy"])
  assert len(record["per_class"]) == 10
  shifted = evaluator(images, labels=(labels + 1) % 10)
  assert evaluation.by_metric(shifted)["class_accuracy"] < 0.5
  # Without labels it is not a default metric, and asking for it says why.
  assert "class_accuracy" not in evaluation.by_metric(evaluator(images))
  with pytest.raises(ConfigError, match="needs the classes the samples"):
    evaluate.Evaluator(dataclasses.replace(
        config, metrics=("class_accuracy",)))(images)
  # An .npz with `labels` is scored the same way.
  path = str(tmp_path / "labelled.npz")
  np.savez(path, images=images, labels=labels)
  from_file = evaluate.evaluate_samples(config, path)
  assert evaluation.by_metric(from_file)["class_accuracy"] == (
      values["class_accuracy"])
  np.savez(path, images=images, labels=labels[:3])
  with pytest.raises(DataError, match="one per image"):
    evaluate.evaluate_samples(config, path)


def test_reference_is_cached_per_split_and_images(toy, monkeypatch):
  config, _ = toy
  evaluate.Evaluator(config)  # Fills the cache (if not yet).
  cache = config.cache_dir
  files = sorted(os.listdir(cache))
  # Keyed by content (image count, weights hash, images hash), not names.
  assert files and all(f.startswith("n64_") and "bars" not in f
                       for f in files)
  calls = []
  original = evaluation._compute_reference  # pylint: disable=protected-access
  monkeypatch.setattr(evaluation, "_compute_reference",
                      lambda *a: calls.append(a) or original(*a))
  evaluate.Evaluator(config)
  assert not calls  # Read from the cache.
  evaluate.Evaluator(dataclasses.replace(config, num_real=32))
  assert len(calls) == 1  # Other images: another cache entry.
  with open(os.path.join(cache, files[0]), "wb") as f:
    f.write(b"garbage")
  evaluate.Evaluator(config)  # Unreadable cache: recomputed, not an error.
  assert len(calls) == 2


def test_a_classifier_that_cannot_classify_the_reference_is_refused(
    toy, tmp_path):
  """Noise with random labels: the classifier trained on it is no better
  than chance, so its features would make meaningless metrics."""
  config, _ = toy
  folder = tmp_path / "noise"
  folder.mkdir()
  rng = np.random.default_rng(0)
  for prefix in ("train", "t10k"):
    write_idx(str(folder / f"{prefix}-images-idx3-ubyte"),
              rng.integers(0, 256, (50, 28, 28)))
    write_idx(str(folder / f"{prefix}-labels-idx1-ubyte"),
              rng.integers(0, 10, 50))
  with pytest.raises(ConfigError, match="--extractor=inception"):
    evaluate.Evaluator(dataclasses.replace(config, data_dir=str(folder)))


def test_bad_sample_files(tmp_path):
  with pytest.raises(DataError, match="no such file"):
    evaluate.load_samples(str(tmp_path / "missing.npz"))
  text = tmp_path / "text.npz"
  text.write_text("hello")
  with pytest.raises(DataError, match="is not an .npz file.*b'hello'"):
    evaluate.load_samples(str(text))
  path = str(tmp_path / "few.npz")
  np.savez(path, images=np.zeros((1, 8, 8, 1), np.uint8))
  with pytest.raises(DataError, match="holds 1 image"):
    evaluate.load_samples(path)
  np.savez(path, images=np.full((3, 8, 8, 1), 200, np.int64))
  loaded = evaluate.load_samples(path)  # Integers in [0, 255]: fine.
  assert loaded.dtype == np.uint8 and loaded.max() == 200
  np.savez(path, images=np.full((3, 8, 8, 1), 300, np.int64))
  with pytest.raises(DataError, match=r"int64 images must lie in \[0, 255\]"):
    evaluate.load_samples(path)
  path = str(tmp_path / "wide.npz")
  np.savez(path, images=np.full((4, 8, 8, 1), 3.0, np.float32))
  with pytest.raises(DataError, match=r"\[-1, 1\]"):
    evaluate.load_samples(path)
  np.savez(path, a=np.zeros(3), b=np.zeros(3))
  with pytest.raises(DataError, match="name the image array `images`"):
    evaluate.load_samples(path)


def _run_evaluate(*flags, env=None):
  return run_module("experiments.evaluate", *flags, timeout=600,
                    env=dict(JAX_PLATFORMS="cpu", **(env or {})))


def test_command_line_scores_an_npz(toy, tmp_path):
  config, folder = toy
  samples = str(tmp_path / "samples.npz")
  np.savez(samples, images=_test_images())
  # The classifier and reference cache live in GAN_JAX_CACHE/{classifiers,..}.
  cache = os.path.dirname(config.classifier_root)
  result = _run_evaluate(f"--samples={samples}", "--dataset=bars",
                         f"--data_dir={folder}", "--metrics=fd,score",
                         env={"GAN_JAX_CACHE": cache})
  assert result.returncode == 0, result.stderr[-2000:]
  printed = [json.loads(line) for line in result.stdout.splitlines()]
  assert [r["metric"] for r in printed] == ["fd", "score"]
  with open(str(tmp_path / "samples.eval.json")) as f:
    assert json.load(f) == printed
  assert abs(printed[0]["value"]) < 1e-3


@pytest.mark.parametrize("flags, message", [
    ([], "exactly one of --workdir"),
    (["--samples=x.npz"], "needs --dataset"),
    (["--samples=x.npz", "--dataset=bars", "--metrics=fd,iq"],
     "unknown iq"),
    (["--workdir=w", "--checkpoint=first"], "--checkpoint='first'"),
])
def test_command_line_errors(flags, message):
  result = _run_evaluate(*flags)
  assert result.returncode == 1 and message in result.stderr, result.stderr
  assert "Traceback" not in result.stderr


@pytest.mark.parametrize("family_name", ["gan", "vae"])
def test_training_with_eval_every_keeps_the_best_checkpoint(
    idx_dir, tmp_path, monkeypatch, family_name):
  """One protocol for every family that can generate."""
  from gan_jax import checkpoint, families  # pylint: disable=g-import-not-at-top
  from conftest import tiny_run_config  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv("GAN_JAX_CACHE", str(tmp_path / "cache"))
  # A classifier that knows the fixture's bars; training it with the
  # defaults on 96 images would be too weak to pass the reference check.
  classifier.train_classifier("bars", idx_dir, num_epochs=8, batch_size=32)
  workdir = str(tmp_path / "run")
  family = families.get(family_name)
  tiny_run_config(idx_dir, family=family, dataset="bars", num_steps=6,
                  log_every=3, sample_every=6, checkpoint_every=6,
                  eval_every=2, eval_num_samples=32).train(workdir)
  mngr = checkpoint.best_manager(workdir, read_only=True)
  best_step = mngr.latest_step()
  saved = checkpoint.best_records(mngr)
  mngr.close()
  assert best_step in (2, 4, 6) and saved[0]["step"] == best_step
  assert [r["metric"] for r in saved] == list(family.eval_metrics)
  # Re-scoring the kept checkpoint gives the same FD: same seed, same samples.
  records, step = evaluate.evaluate_checkpoint(
      evaluate.EvalConfig(num_samples=32, metrics=("fd",)), workdir, "best")
  assert step == best_step
  assert records[0]["value"] == saved[0]["value"]
  assert records[0]["family"] == family_name
  data = classifier.data.load_idx_dir(idx_dir, "train")
  assert records[0]["train_data_sha256"] == hashing.dataset_sha256(
      data.images, data.labels)
  if family.views:  # The GAN's live generator: without an EMA, the same G.
    viewed, _ = evaluate.evaluate_checkpoint(
        evaluate.EvalConfig(num_samples=32, metrics=("fd",)), workdir, "best",
        view="live")
    assert viewed[0]["view"] == "live"
    assert viewed[0]["value"] == records[0]["value"]
  else:
    with pytest.raises(ConfigError, match="family's views are: none"):
      evaluate.evaluate_checkpoint(evaluate.EvalConfig(), workdir, view="live")


def test_best_checkpoint_missing_is_a_clear_error(idx_dir, tmp_path):
  result = _run_evaluate(f"--workdir={tmp_path}", "--checkpoint=best",
                         "--dataset=bars")
  assert result.returncode == 1, result.stderr
  assert "train with --eval_every" in result.stderr.splitlines()[-1]


def test_known_data_named_otherwise_is_refused_before_any_training(
    idx_dir, tmp_path, monkeypatch):
  """`--dataset=mnist --data_dir=<Fashion-MNIST>` used to train and cache a
  Fashion classifier as MNIST's; now nothing is trained or written."""
  from gan_jax import data_identity  # pylint: disable=g-import-not-at-top
  for split in ("train", "test"):
    real = classifier.data.load_idx_dir(idx_dir, split)
    monkeypatch.setitem(data_identity.KNOWN_SPLITS, hashing.dataset_sha256(
        real.images, real.labels), ("fashion_mnist", split))
  root = tmp_path / "classifiers"
  config = evaluate.EvalConfig(dataset="mnist", data_dir=idx_dir,
                               classifier_root=str(root),
                               cache_dir=str(tmp_path / "reference"))
  with pytest.raises(DataError, match="pass --dataset=fashion_mnist"):
    evaluate.Evaluator(config)
  assert not root.exists() and not (tmp_path / "reference").exists()


def test_a_translation_family_is_scored_with_its_identity_baseline(toy):
  config, _ = toy
  model = pix2pix.Pix2PixConfig(features=4, num_downs=2).validate()
  state = pix2pix.init(model, DataSpec((28, 28, 1)), jax.random.key(0))
  records = evaluate.Evaluator(config, pix2pix.FAMILY).generated(state,
                                                                 step=5)
  by_output = {}
  for record in records:
    by_output.setdefault(record["output"], {})[record["metric"]] = record
    assert record["step"] == 5 and record["dataset"] == "bars"
  assert set(by_output) == {"model", "identity"}
  for output in by_output.values():
    assert set(output) == {"fd", "score", "kid", "precision", "recall",
                           "density", "coverage", "class_coverage", "l1",
                           "psnr", "ssim"}
  # The held-out pairs: test image i corrupted with fold_in(key(0), i).
  truth = _test_images()
  sources = corruptions.corrupt_split("denoise", data.to_model_range(truth),
                                      seed=0)
  translated = sampling.translate(pix2pix.FAMILY, state, sources)
  for output, images in (("model", translated),
                         ("identity", sampling.to_uint8(sources))):
    direct = paired_metrics(images, truth)
    for metric in ("l1", "psnr", "ssim"):
      np.testing.assert_allclose(by_output[output][metric]["value"],
                                 direct[metric]["value"], rtol=1e-6)
    assert by_output[output]["fd"]["num_generated"] == 64
  # The noise is far from the bars: FD and L1 say so.
  assert by_output["identity"]["l1"]["value"] > 0.1
  assert by_output["identity"]["fd"]["value"] > 1.0


def test_cyclegan_is_scored_against_the_other_half(toy):
  config, _ = toy
  model = cyclegan.CycleGANConfig(**cyclegan.PRESETS["tiny"].model).validate()
  state = cyclegan.init(model, DataSpec((28, 28, 1)), jax.random.key(0))
  config = dataclasses.replace(config, metrics=("fd", "l1", "cycle_l1"))
  records = evaluate.Evaluator(config, cyclegan.FAMILY).generated(state)
  got = {(r["metric"], r["output"]): r for r in records}
  assert set(got) == {("fd", "model"), ("fd", "identity"), ("l1", "model"),
                      ("l1", "identity"), ("cycle_l1", "model")}
  # FD's reference is domain B: half of the 64 test images.
  assert got["fd", "model"]["num_real"] == 32
  sources, _, _, _ = cyclegan.domains("denoise", 0, _test_images(),
                                      np.zeros(64, np.int32))
  back = sampling.translate(cyclegan.FAMILY, state, sources,
                            prediction="reconstruct")
  np.testing.assert_allclose(
      got["cycle_l1", "model"]["value"],
      paired_metrics(back, sampling.to_uint8(sources))["l1"]["value"],
      rtol=1e-6)
