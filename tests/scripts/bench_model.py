"""
Benchmark model.py against Hugging Face transformers on the same weights, in one run on one machine:

  1. tokens/s, tiny preset (float32), ours and HF's LlamaForCausalLM, and their ratio: forward on a
     training-sized batch and on a short prompt, and forward+backward;
  2. forward tokens/s, a randomly initialised llama-3.2-1b-shaped checkpoint (bfloat16, as published), same;
  3. peak resident memory (VmHWM) of a fresh process that loads that checkpoint, ours and HF's, next to the
     checkpoint's size: once loading returns, and after one forward pass has read every weight.

    python tests/scripts/bench_model.py            # a few minutes on a 2-core CPU; writes ~2.5 GB to a temp dir
    python tests/scripts/bench_model.py --skip-1b  # only the tiny preset

The 1B checkpoint is written shard by shard (one shard per block), so writing it never holds the whole model.
Not collected by pytest (the name does not start with test_).
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import transformers  # noqa: E402
from transformers import LlamaForCausalLM  # noqa: E402

from model import Llama, ModelArgs, hf_name  # noqa: E402

transformers.logging.set_verbosity_error()
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


DEVICE = "cpu"  # --device


def sync():
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def compare(label, ours_fn, hf_fn, n_tokens, repeats, grad=False):
    """Tokens/s of ours and HF's. Calls alternate (ours, HF, ours, HF, ...) and each side keeps its fastest
    call, so that a busy spell of a shared machine hits both sides and does not decide the ratio."""
    ours_s, hf_s = [], []
    with torch.set_grad_enabled(grad):
        for i in range(repeats + 2):  # the first two calls of each pay for allocation and kernel choice
            for fn, times in ((ours_fn, ours_s), (hf_fn, hf_s)):
                sync()
                t0 = time.perf_counter()
                fn()
                sync()
                if i >= 2:
                    times.append(time.perf_counter() - t0)
    ours_tps, hf_tps = n_tokens / min(ours_s), n_tokens / min(hf_s)
    print(f"{label}: ours {ours_tps:,.0f} tok/s, HF {hf_tps:,.0f} tok/s, ratio ours/HF {ours_tps / hf_tps:.2f}")


def bench_tiny():
    torch.manual_seed(0)
    ours = Llama(ModelArgs.preset("tiny")).eval()
    with tempfile.TemporaryDirectory() as path:
        ours.save_pretrained(path)
        hf = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).eval().to(DEVICE)
    ours = ours.to(DEVICE)
    for B, T in ((8, 256), (1, 32)):  # a training-sized batch; a short prompt, where per-call overhead shows
        tokens = torch.randint(0, ours.args.vocab_size, (B, T), device=DEVICE)
        with torch.no_grad():
            assert (ours(tokens) - hf(tokens).logits).abs().max() < 1e-4  # same weights, same function
        compare(f"tiny preset fp32, forward {B}x{T} tokens", lambda: ours(tokens), lambda: hf(tokens).logits,
                tokens.numel(), repeats=30 if B > 1 else 300)
    # forward + backward of the mean logit: the shape of a training step, without the optimizer
    tokens = torch.randint(0, ours.args.vocab_size, (8, 256), device=DEVICE)
    compare("tiny preset fp32, forward+backward 8x256 tokens", lambda: ours(tokens).mean().backward(),
            lambda: hf(tokens).logits.mean().backward(), tokens.numel(), repeats=15, grad=True)


def write_random_checkpoint(path, args: ModelArgs, dtype=torch.bfloat16):
    """A HF-layout checkpoint with random weights, one safetensors shard per block plus one for the rest."""
    from safetensors.torch import save_file

    with torch.device("meta"):
        shapes = {name: p.shape for name, p in Llama(args).state_dict().items()}
    if args.tie_embeddings:
        shapes.pop("output.weight")
    groups = {}  # shard -> our parameter names
    for name in shapes:
        groups.setdefault(name.split(".")[1] if name.startswith("layers.") else "other", []).append(name)
    weight_map, g = {}, torch.Generator().manual_seed(0)
    for k, (group, names) in enumerate(groups.items()):
        file = f"model-{k + 1:05d}-of-{len(groups):05d}.safetensors"
        shard = {}
        for name in names:
            shape = shapes[name]
            if len(shape) == 1:  # norm weights
                shard[hf_name(name)] = torch.ones(shape, dtype=dtype)
            else:
                shard[hf_name(name)] = (torch.randn(shape, generator=g) * shape[1] ** -0.5).to(dtype)
            weight_map[hf_name(name)] = file
        save_file(shard, os.path.join(path, file), metadata={"format": "pt"})
        del shard
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)
    config = args.to_hf_config()
    config["torch_dtype"] = "bfloat16"
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


# Run in a fresh process, so that its peak RSS (VmHWM) is the loading's alone.
MEMORY_PROBE = r"""
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
def vmhwm_gb():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 2**20
import transformers
from transformers import LlamaForCausalLM
from model import Llama
base = vmhwm_gb()
t0 = time.perf_counter()
if sys.argv[3] == "ours":
    model = Llama.from_pretrained(sys.argv[2])
    forward = lambda x: model(x)
else:
    model = LlamaForCausalLM.from_pretrained(sys.argv[2], dtype=torch.bfloat16).eval()
    forward = lambda x: model(x).logits
load_s = time.perf_counter() - t0
loaded = vmhwm_gb()
with torch.no_grad():
    forward(torch.zeros(1, 8, dtype=torch.long))
print(json.dumps(dict(base=base, loaded=loaded, forward=vmhwm_gb(), load_s=load_s)))
"""


def peak_memory(path, which):
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, REPO, path, which], capture_output=True,
                         text=True, check=True, env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_1b(workdir):
    args = ModelArgs.preset("llama-3.2-1b")
    path = os.path.join(workdir, "llama-3.2-1b-random")
    os.makedirs(path)
    t0 = time.perf_counter()
    write_random_checkpoint(path, args)
    files = [f for f in os.listdir(path) if f.endswith(".safetensors")]
    size_gb = sum(os.path.getsize(os.path.join(path, f)) for f in files) / 2**30
    print(f"llama-3.2-1b-shaped random checkpoint: {size_gb:.2f} GiB bf16 in {len(files)} shards, "
          f"written in {time.perf_counter() - t0:.0f} s")

    for which in ("ours", "HF"):
        m = peak_memory(path, "ours" if which == "ours" else "hf")
        print(f"load 1B ({which}): {m['load_s']:.1f} s; peak RSS {m['loaded']:.2f} GiB after loading, "
              f"{m['forward']:.2f} GiB after a forward pass; {m['base']:.2f} GiB before loading "
              f"(python + torch + transformers), on CPU; checkpoint {size_gb:.2f} GiB; "
              f"growth/checkpoint {(m['forward'] - m['base']) / size_gb:.2f}")

    ours = Llama.from_pretrained(path, device=DEVICE)
    hf = LlamaForCausalLM.from_pretrained(path, dtype=torch.bfloat16).eval().to(DEVICE)
    B, T = (1, 128) if DEVICE == "cpu" else (8, 512)
    tokens = torch.randint(0, args.vocab_size, (B, T), generator=torch.Generator().manual_seed(0)).to(DEVICE)
    with torch.no_grad():
        diff = (ours(tokens).float() - hf(tokens).logits.float()).abs().max().item()
    print(f"llama-3.2-1b shape: max |logits ours - HF| in bf16 = {diff:.3g}")
    compare(f"llama-3.2-1b shape bf16, forward {B}x{T} tokens", lambda: ours(tokens), lambda: hf(tokens).logits,
            tokens.numel(), repeats=4)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-1b", action="store_true", help="only the tiny preset")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: where the forward passes run")
    parser.add_argument("--workdir", default=None, help="where to write the 1B checkpoint (default: a temp dir)")
    opts = parser.parse_args()
    global DEVICE
    DEVICE = opts.device
    gpu = f", {torch.cuda.get_device_name()}" if DEVICE.startswith("cuda") else ""
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs{gpu}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), transformers {transformers.__version__}, device {DEVICE}")
    bench_tiny()
    if not opts.skip_1b:
        workdir = tempfile.mkdtemp(dir=opts.workdir)
        try:
            bench_1b(workdir)
        finally:
            shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
