"""--eval_every: scoring the state during training, and the best checkpoint.

    hook = EvalHook(family, run, workdir)   # opens <workdir>/best/
    hook(state, record, writer)             # every --eval_every steps
    checkpoint.close(hook.mngr)
"""

import math
import time
from typing import Any

from absl import logging

from gan_jax import checkpoint, parallel
from gan_jax.config import RunConfig
from gan_jax.evaluator import EvalConfig, Evaluator
from gan_jax.family import Family
from gan_jax.metrics import evaluation

State = Any  # A family's state pytree.


def _fd_protocol(records) -> tuple:
  """What must match for two FDs to be comparable."""
  fd = next(r for r in records if r["metric"] == "fd")
  return tuple(fd[k] for k in ("extractor_sha256", "reference_sha256",
                               "num_generated", "seed"))


class EvalHook:
  """--eval_every: the family's evaluation metrics, and the best checkpoint.

  The checkpoint with the lowest FD so far is kept in <workdir>/best/ (with
  its evaluation records), beside the latest ones in checkpoints/. Samples use
  the evaluation seed, so `experiments.evaluate --checkpoint=best` reproduces
  the logged FD.
  """

  def __init__(self, family: Family, run: RunConfig, workdir: str):
    self.family = family
    self.evaluator = Evaluator(
        EvalConfig.for_run(run, metrics=family.eval_metrics), family)
    self.mngr = checkpoint.best_manager(workdir)
    saved = checkpoint.best_records(self.mngr)
    self.best_fd = evaluation.by_metric(saved)["fd"] if saved else math.inf
    self.best_protocol = _fd_protocol(saved) if saved else None

  def __call__(self, state: State, record: checkpoint.RunRecord,
               writer) -> None:
    start = time.perf_counter()
    # A process-local copy: every process scores the same samples by itself.
    local = parallel.local_copy(state)
    step = int(parallel.host_value(state.step))
    records = self.evaluator.generated(local, step=step)
    scores = evaluation.by_metric(records)
    improved = False
    if "fd" in scores:
      if self.best_protocol not in (None, _fd_protocol(records)):
        logging.warning("The evaluation protocol changed since best/ was "
                        "kept; its FD is not comparable and will be "
                        "replaced.")
        self.best_fd = math.inf
      improved = scores["fd"] < self.best_fd
      if improved:
        self.best_fd, self.best_protocol = scores["fd"], _fd_protocol(records)
        checkpoint.save(self.mngr, state, record, extra={"eval": records})
    seconds = time.perf_counter() - start
    writer.write_scalars(step, {**{f"eval/{k}": v for k, v in scores.items()},
                                "eval/seconds": seconds})
    described = "  ".join(
        f"{k} {v:.3f}{' (best)' if k == 'fd' and improved else ''}"
        for k, v in scores.items())
    logging.info("step %d eval: %s  (%d samples, %.1f s)", step, described,
                 self.evaluator.config.num_samples, seconds)
