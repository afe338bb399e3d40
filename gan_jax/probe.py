"""Linear probes: how much of the class a frozen network's features hold.

Radford et al. 2015 (section 5.1) reused a trained DCGAN discriminator's
features for CIFAR-10 classification (82.8%): every layer's activations
max-pooled to a 4x4 grid, concatenated, and a linear L2-SVM on top. Here,
for any family that offers `features` (the GAN's discriminator, the VAE's
encoder; gan_jax.family):

* each layer's activations [N, H, W, C] are max-pooled to a `grid` x `grid`
  map per channel, vectors [N, F] are kept as they are; "all" concatenates
  every layer's, as the paper did;
* features are standardised with the training set's mean and deviation;
* the classifier is multinomial logistic regression (softmax; the paper's
  SVM is the hinge-loss variant of the same linear model), trained
  full-batch to convergence with optax's L-BFGS, with an L2 penalty;
* the L2 weight and the layer are chosen on a held-out slice of the
  training split; the test split is only used to report.

The same protocol runs on the baselines: raw pixels, and the same
architecture at its random initialisation.

    records = probe.probe_run(workdir, probe.ProbeConfig())
"""

import dataclasses
import functools
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import data, hashing, runs
from gan_jax.errors import ConfigError

Array = jax.Array
Features = Dict[str, np.ndarray]  # Layer name -> float32 [N, F].
ALL_LAYERS = "all"


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
  """What a probe measures and how."""
  layer: str = ""  # A layer's name, "all", or "" for every layer and "all".
  split: str = "test"  # Reported on; the choices use the training split.
  num_train: int = 0  # The first N training images (0: all).
  validation_fraction: float = 1 / 6  # Of those, held out (MNIST: 10k).
  grid: int = 4  # Max-pooled map size per channel (Radford et al.: 4).
  l2_weights: Tuple[float, ...] = (1e-4, 1e-3, 1e-2)
  iterations: int = 200  # Of L-BFGS, full batch.
  batch_size: int = 500  # For computing features.
  seed: int = 0  # Of the validation split and the random-init baseline.

  def validate(self) -> None:
    if not 0 < self.validation_fraction < 1:
      raise ConfigError("--validation_fraction must be in (0, 1), got "
                        f"{self.validation_fraction}.")
    if self.grid < 1 or self.iterations < 1 or self.batch_size < 1:
      raise ConfigError("--grid, --iterations and --batch_size must be "
                        "positive.")
    if not self.l2_weights or min(self.l2_weights) < 0:
      raise ConfigError("--l2_weights must be non-negative numbers.")


def max_pool_to_grid(x: Array, grid: int) -> Array:
  """[N, H, W, C] -> [N, h * w * C], each of h x w <= grid x grid cells the
  maximum over its ceil(H / grid) x ceil(W / grid) window (the last ones
  smaller); [N, F] is returned as it is."""
  if x.ndim == 2:
    return x
  n, height, width, channels = x.shape
  window_h, window_w = -(-height // grid), -(-width // grid)
  cells_h, cells_w = -(-height // window_h), -(-width // window_w)
  x = jnp.pad(x, ((0, 0), (0, cells_h * window_h - height),
                  (0, cells_w * window_w - width), (0, 0)),
              constant_values=-jnp.inf)
  x = x.reshape(n, cells_h, window_h, cells_w, window_w, channels)
  return jnp.max(x, axis=(2, 4)).reshape(n, -1)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _pooled(features_fn, state, images: Array, grid: int) -> Features:
  """One batch's pooled features; compiled once per (features_fn, shapes),
  so every split and source of a probe shares the compilation."""
  return {name: max_pool_to_grid(value.astype(jnp.float32), grid)
          for name, value in features_fn(state, images).items()}


def extract(features_fn: Callable[[Any, Array], Mapping[str, Array]],
            state: Any, images: np.ndarray, grid: int = 4,
            batch_size: int = 500) -> Features:
  """features_fn(state, images in [-1, 1]) pooled by `max_pool_to_grid`,
  for uint8 images [N, H, W, C], in batches: {layer: float32 [N, F]}."""

  chunks: Dict[str, List[np.ndarray]] = {}
  for start in range(0, len(images), batch_size):
    batch = images[start:start + batch_size]
    padded = np.zeros((batch_size,) + images.shape[1:], images.dtype)
    padded[:len(batch)] = batch  # One shape: one compilation.
    for name, value in _pooled(features_fn, state,
                               data.to_model_range(padded), grid).items():
      chunks.setdefault(name, []).append(np.asarray(value)[:len(batch)])
  return {name: np.concatenate(parts) for name, parts in chunks.items()}


def pixels(images: np.ndarray) -> Features:
  """The raw-pixel baseline: {"pixels": images in [-1, 1], flattened}."""
  return {"pixels": data.to_model_range(images).reshape(len(images), -1)}


def with_all_layers(features: Features) -> Features:
  """`features` and, if there are several layers, "all": them concatenated."""
  if len(features) < 2:
    return dict(features)
  return {**features,
          ALL_LAYERS: np.concatenate(list(features.values()), axis=1)}


@functools.partial(jax.jit, static_argnames=("num_classes", "iterations"))
def fit_softmax(x: Array, labels: Array, l2_weight: Array, *,
                num_classes: int, iterations: int) -> Dict[str, Array]:
  """Multinomial logistic regression on x [N, F], labels int [N]: minimises
  mean cross-entropy + l2_weight / 2 * ||W||^2 (bias unpenalised) with
  `iterations` of L-BFGS. Returns {"w": [F, K], "b": [K]}."""
  params = {"w": jnp.zeros((x.shape[1], num_classes), jnp.float32),
            "b": jnp.zeros((num_classes,), jnp.float32)}

  def loss(params):
    logits = x @ params["w"] + params["b"]
    return (jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
        logits, labels)) + 0.5 * l2_weight * jnp.sum(params["w"] ** 2))

  solver = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(loss)

  def iteration(_, carry):
    params, opt_state = carry
    value, grad = value_and_grad(params, state=opt_state)
    updates, opt_state = solver.update(grad, opt_state, params, value=value,
                                       grad=grad, value_fn=loss)
    return optax.apply_updates(params, updates), opt_state

  params, _ = jax.lax.fori_loop(0, iterations, iteration,
                                (params, solver.init(params)))
  return params


def accuracy(params: Mapping[str, Array], x: np.ndarray,
             labels: np.ndarray) -> float:
  predictions = np.argmax(np.asarray(x @ params["w"] + params["b"]), axis=1)
  return float(np.mean(predictions == labels))


def probe_features(train: Features, train_labels: np.ndarray, test: Features,
                   test_labels: np.ndarray, config: ProbeConfig,
                   num_classes: int) -> List[Dict[str, Any]]:
  """One record per layer: the L2 weight chosen on the validation slice of
  `train`, its validation and test accuracy; the layer with the best
  validation accuracy is marked "chosen"."""
  order = np.random.default_rng(config.seed).permutation(len(train_labels))
  num_val = max(1, int(round(len(order) * config.validation_fraction)))
  fit_rows, val_rows = order[num_val:], order[:num_val]
  records = []
  for layer, train_x in train.items():
    mean = train_x[fit_rows].mean(axis=0)
    std = train_x[fit_rows].std(axis=0) + 1e-6
    standard = lambda x: (x - mean) / std  # pylint: disable=cell-var-from-loop
    fit_x, val_x = standard(train_x[fit_rows]), standard(train_x[val_rows])
    tried = []
    for l2_weight in config.l2_weights:
      params = fit_softmax(fit_x, train_labels[fit_rows], l2_weight,
                           num_classes=num_classes,
                           iterations=config.iterations)
      tried.append((accuracy(params, val_x, train_labels[val_rows]),
                    l2_weight, params))
    val_accuracy, l2_weight, params = max(tried, key=lambda t: t[0])
    records.append({
        "layer": layer, "feature_dim": int(train_x.shape[1]),
        "l2_weight": l2_weight, "val_accuracy": val_accuracy,
        "test_accuracy": accuracy(params, standard(test[layer]),
                                  test_labels),
        "num_fit": len(fit_rows), "num_val": num_val,
        "num_test": len(test_labels)})
  best = max(records, key=lambda r: r["val_accuracy"])
  for record in records:
    record["chosen"] = record is best
  return records


def _check_layer(features_fn, state, image_shape, layer: str) -> None:
  """ConfigError unless `layer` is "" or one of the network's layers (found
  from shapes alone, before any feature is computed)."""
  names = list(jax.eval_shape(features_fn, state,
                              jnp.zeros((1,) + tuple(image_shape))))
  names += [ALL_LAYERS] if len(names) > 1 else []
  if layer and layer not in names:
    raise ConfigError(f"--layer={layer!r} is not a layer of this network; "
                      f"its layers: {', '.join(names)}.")


def probe_run(workdir: str, config: ProbeConfig = ProbeConfig(), *,
              checkpoint: runs.Which = "latest",
              data_dir: Optional[str] = None) -> List[Dict[str, Any]]:
  """Probes the run in `workdir` (its discriminator or encoder, frozen),
  the same network at its random initialisation, and the raw pixels, on the
  run's dataset (`data_dir` overrides its folder): records as
  `probe_features`'s, with "source" and the protocol."""
  config.validate()
  run = runs.load(workdir, checkpoint)
  features_fn = run.family.get("features")
  settings = run.run
  load = functools.partial(data.load, settings.dataset,
                           data_dir=data_dir or settings.data_dir,
                           tfds_data_dir=settings.tfds_data_dir,
                           image=settings.image_options())
  train_set, test_set = load(split="train"), load(split=config.split)
  if config.num_train:
    train_set = data.Dataset(train_set.images[:config.num_train],
                             train_set.labels[:config.num_train])
  num_classes = int(max(train_set.labels.max(), test_set.labels.max())) + 1
  if train_set.labels.min() < 0 or num_classes < 2:
    raise ConfigError("A probe needs labelled data of at least two classes; "
                      f"{settings.dataset} has none.")
  train_sha256 = hashing.dataset_sha256(train_set.images, train_set.labels)
  if train_sha256 == hashing.dataset_sha256(test_set.images, test_set.labels):
    raise ConfigError(
        f"The {config.split} split of {settings.dataset} is its training "
        "split (an image folder without train/ and test/ sub-folders?): a "
        "probe must be tested on images it was not fitted on.")
  _check_layer(features_fn, run.state, run.record.data_spec.image_shape,
               config.layer)
  random_state = run.family.init(run.model, run.record.data_spec,
                                 jax.random.key(config.seed + 1))
  sources = {"trained": run.state, "random_init": random_state}
  protocol = {
      "workdir": workdir, "family": run.family.name, "step": run.step,
      "dataset": settings.dataset, "split": config.split,
      "train_sha256": train_sha256[:20],
      **{k: v for k, v in dataclasses.asdict(config).items()
         if k not in ("layer", "split", "batch_size")}}
  records = []
  for source, state in sources.items():
    train, test = (with_all_layers(extract(features_fn, state, split.images,
                                           config.grid, config.batch_size))
                   for split in (train_set, test_set))
    if config.layer:
      train, test = ({config.layer: f[config.layer]} for f in (train, test))
    records += [{"source": source, **r, **protocol} for r in probe_features(
        train, train_set.labels, test, test_set.labels, config, num_classes)]
  records += [{"source": "pixels", **r, **protocol} for r in probe_features(
      pixels(train_set.images), train_set.labels, pixels(test_set.images),
      test_set.labels, config, num_classes)]
  return records


def table(records: List[Dict[str, Any]]) -> str:
  """A Markdown table of probe records, the chosen layer of each source
  marked with *."""
  lines = ["| source | layer | features | L2 | val acc | test acc |",
           "| --- | --- | ---: | ---: | ---: | ---: |"]
  lines += [f"| {r.get('source', '')} | {r['layer']}{' *' if r['chosen'] else ''} | "
            f"{r['feature_dim']} | {r['l2_weight']:g} | "
            f"{r['val_accuracy']:.4f} | {r['test_accuracy']:.4f} |"
            for r in records]
  return "\n".join(lines)
