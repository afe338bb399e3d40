"""Command lines generated from the config dataclasses.

An experiment script is three lines (experiments/mnist_vae.py):

    cli.define_training_flags(vae.FAMILY, workdir="/tmp/gan_jax/mnist_vae")
    if __name__ == "__main__":
      cli.run(cli.training_main(vae.FAMILY))

Every field of RunConfig and of the family's model config that has a flag
(gan_jax.config.setting) becomes one: its name, type, default, help and
choices come from the field, so they cannot drift apart. `--preset=NAME`
starts from a named configuration of the family; flags given on the command
line override it. `--help` lists the flags by topic.
"""

import dataclasses
import signal
import sys
import textwrap
from typing import Any, Callable, Dict, Mapping, Optional

from absl import app, flags

from gan_jax import compilation_cache, console, parallel, train
from gan_jax.config import GROUPS, RunConfig, field_types
from gan_jax.errors import Preempted, UserError
from gan_jax.family import Family

FLAGS = flags.FLAGS
_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer,
           float: flags.DEFINE_float, str: flags.DEFINE_string}
# The flags this module defined, by topic, for `--help`.
_FLAGS_BY_GROUP: Dict[str, list] = {group: [] for group in GROUPS}


def define_config_flags(config_class: type,
                        defaults: Optional[Mapping[str, Any]] = None,
                        flag_values: flags.FlagValues = FLAGS) -> None:
  """One absl flag per flagged field of `config_class`; `defaults` override
  the fields' defaults on the command line."""
  defaults = dict(defaults or {})
  types = field_types(config_class)
  for field in dataclasses.fields(config_class):
    if field.name not in types:
      continue
    default = defaults.pop(field.name, field.default)
    help_text = field.metadata["help"]
    choices = field.metadata["choices"]
    if choices:
      flags.DEFINE_enum(field.name, default, list(choices), help_text,
                        flag_values=flag_values)
    else:
      _DEFINE[types[field.name]](field.name, default, help_text,
                                 flag_values=flag_values)
    if flag_values is FLAGS:
      _FLAGS_BY_GROUP[field.metadata["group"]].append(field.name)
  if defaults:
    raise ValueError(f"{config_class.__name__} has no flags {sorted(defaults)}")


def config_from_flags(config_class: type,
                      preset: Optional[Mapping[str, Any]] = None) -> Any:
  """The config of the parsed flags: a flag given on the command line wins,
  then the preset's value, then the flag's default."""
  preset = dict(preset or {})
  values = {}
  for name in field_types(config_class):
    from_preset = preset.pop(name, None)
    given = FLAGS[name].present or from_preset is None
    values[name] = FLAGS[name].value if given else from_preset
  # Preset values of fields without flags (e.g. tuples) pass through.
  values.update({k: v for k, v in preset.items()
                 if k in {f.name for f in dataclasses.fields(config_class)}})
  return config_class(**values)


def _define_extra(group: str, define: Callable, name: str, *args, **kwargs):
  define(name, *args, **kwargs)
  _FLAGS_BY_GROUP[group].append(name)


def define_training_flags(family: Family, workdir: str) -> None:
  """The flags of a training command for `family`: the run's, the model's,
  --workdir, --preset and the multi-host ones."""
  _define_extra("bookkeeping", flags.DEFINE_string, "workdir", workdir,
                "Checkpoints, grids and TensorBoard events go here; rerun "
                "to resume.")
  _define_extra("model", flags.DEFINE_enum, "preset", None,
                sorted(family.presets) or ["none"],
                "A named configuration, which flags given on the command "
                "line override; README.md lists them with their results.")
  define_config_flags(RunConfig, family.run_defaults)
  define_config_flags(family.config)
  define_multihost_flags()


def define_multihost_flags() -> None:
  _define_extra("multi-host", flags.DEFINE_bool, "multihost", False,
                "Call jax.distributed.initialize() first (one process per "
                "host; auto-detected on TPU pods and SLURM).")
  _define_extra("multi-host", flags.DEFINE_string, "coordinator_address",
                None, "With --multihost off TPU/SLURM: host:port of process "
                "0.")
  _define_extra("multi-host", flags.DEFINE_integer, "num_processes", None,
                "With --multihost off TPU/SLURM: number of processes.")
  _define_extra("multi-host", flags.DEFINE_integer, "process_id", None,
                "With --multihost off TPU/SLURM: this process's index.")


def grouped_help() -> str:
  """The flags defined here, by topic, with their defaults and help."""
  lines = []
  for group, names in _FLAGS_BY_GROUP.items():
    if not names:
      continue
    lines.append(f"\n{group}:")
    for name in names:
      flag = FLAGS[name]
      default = "" if flag.default is None else f" (default: {flag.default})"
      lines.append(f"  --{name}{default}")
      lines.extend(textwrap.wrap(flag.help, 76, initial_indent="      ",
                                 subsequent_indent="      "))
  return "\n".join(lines)


def run(main: Callable) -> None:
  """absl's app.run, with the libraries' log chatter filtered, the
  persistent compilation cache on (gan_jax.compilation_cache), and `--help`
  listing the flags defined here by topic."""

  def main_with_quiet_logs(argv):
    console.quiet_library_logs()
    compilation_cache.enable()
    return main(argv)

  def parse(argv):
    grouped = any(_FLAGS_BY_GROUP.values())  # Else absl's own --help.
    if grouped and any(a in ("--help", "-h", "-?", "--helpshort")
                       for a in argv[1:]):
      doc = sys.modules["__main__"].__doc__ or ""
      print(doc.strip() + "\n" + grouped_help()
            + "\n\nAll flags, absl's and JAX's included: --helpfull")
      sys.exit(0)
    return app.parse_flags_with_usage(argv)

  app.run(main_with_quiet_logs, flags_parser=parse)


def training_main(family: Family) -> Callable:
  """The main function of a training command for `family`."""

  def main(argv):
    if len(argv) > 1:
      sys.exit(f"error: unexpected arguments {argv[1:]}; flags look like "
               "--lr=1e-4")
    if FLAGS.multihost:
      parallel.initialize_multihost(FLAGS.coordinator_address,
                                    FLAGS.num_processes, FLAGS.process_id)
    try:
      preset = family.preset(FLAGS.preset)
      run_config = config_from_flags(RunConfig, preset.run)
      model = config_from_flags(family.config, preset.model)
      train.train_and_evaluate(family, model, run_config, FLAGS.workdir)
    except UserError as e:
      sys.exit(f"error: {e}")
    except Preempted as e:
      print(e, file=sys.stderr)
      sys.exit(128 + e.signum)  # The conventional "killed by <signal>".
    except KeyboardInterrupt:
      print(f"Interrupted by a second Ctrl-C; the checkpoints saved in "
            f"{FLAGS.workdir} are kept. Rerun the same command to resume.",
            file=sys.stderr)
      sys.exit(128 + signal.SIGINT)

  return main
