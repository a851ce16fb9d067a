"""Stand-in for ``accelerate launch`` (accelerate/commands/launch.py ``simple_launcher``): one
process, ``[sys.executable, script, *args]`` with OMP_NUM_THREADS from
``--num_cpu_threads_per_process``; a child that fails raises ``subprocess.CalledProcessError`` in
the launcher, as accelerate does (its traceback comes after the child's)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys


def launch_command_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("Accelerate launch command", usage="accelerate launch [<args>] {training_script} "
                                     "[--{training_script-argument-1} …]")
    parser.add_argument("--num_cpu_threads_per_process", type=int, default=None)
    parser.add_argument("--num_processes", type=int, default=None)
    parser.add_argument("--num_machines", type=int, default=None)
    parser.add_argument("--mixed_precision", type=str, choices=["no", "fp16", "bf16", "fp8"])
    parser.add_argument("--dynamo_backend", type=str, default=None)
    parser.add_argument("--gpu_ids", default=None)
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("training_script", type=str)
    parser.add_argument("training_script_args", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = launch_command_parser().parse_args(argv)
    defaulted = []
    for name, value in (("num_processes", 1), ("num_machines", 1), ("mixed_precision", "'no'"), ("dynamo_backend", "'no'")):
        if getattr(args, name) is None:
            defaulted.append(f"\t`--{name}` was set to a value of `{value}`")
    if defaulted:
        print("The following values were not passed to `accelerate launch` and had defaults used instead:\n"
              + "\n".join(defaulted)
              + "\nTo avoid this warning pass in values for each of the problematic parameters or run `accelerate config`.",
              file=sys.stderr, flush=True)
    env = dict(os.environ)
    if args.num_cpu_threads_per_process is not None:
        env["OMP_NUM_THREADS"] = str(args.num_cpu_threads_per_process)
    cmd = [sys.executable, args.training_script, *args.training_script_args]
    process = subprocess.Popen(cmd, env=env)
    process.wait()
    if process.returncode != 0:
        if not args.quiet:
            raise subprocess.CalledProcessError(returncode=process.returncode, cmd=cmd)
        sys.exit(1)


if __name__ == "__main__":
    # `accelerate` is a console script: argv[1] is the sub-command
    argv = sys.argv[1:]
    if argv[:1] == ["launch"]:
        argv = argv[1:]
    main(argv)
