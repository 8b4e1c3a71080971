#!/usr/bin/env python3
"""Nexa Forge reference trainer: a causal LM from a Hugging Face config on a packed `.npy` folder.

Speaks the job contract (DESIGN.md) through the `nexa_forge` helper: metrics to
`NEXA_METRICS_FILE`, full checkpoints (model, optimizer, scheduler, RNG states, data position,
step) to `NEXA_CHECKPOINT_DIR`, resume from the newest one, SIGTERM → final checkpoint and exit 0.
The final model goes to `NEXA_OUTPUTS_DIR/model/` (`save_pretrained`, safetensors).

    python train.py --config train_config.json
    torchrun --nproc-per-node 8 train.py --config train_config.json

`train_config.json` (written by the worker's `train` handler from the job's TrainSpec)::

    {"data_dir": "packed/", "model": {"config": {"model_type": "gpt2", ...}, "weights": null,
     "lora": null, "precision": "bf16"}, "hyperparameters": {"lr": 3e-4, ...},
     "tokenizer_dir": null, "status_file": "status.json"}

The outcome is written as JSON to `status_file` (and printed as a line starting with
`NEXA_TRAIN_STATUS `): `{"status": "completed" | "stopped" | "failed", "code"?, "message"?, "step"}`.
Exit codes: 0 completed or stopped, 2 bad input (`invalid_model_config`, `invalid_dataset`),
3 out of memory (`oom`), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
# The helper ships in the repository's python/ folder; an installed `nexa-forge` wins if present.
sys.path.append(os.path.join(HERE, "..", "..", "python"))

import nexa_forge as nf  # noqa: E402

STATUS_PREFIX = "NEXA_TRAIN_STATUS "
IGNORE_INDEX = -100

_status_file: str | None = None


class TrainError(Exception):
    """A failure with a code the worker maps to a job error."""

    def __init__(self, code: str, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code


def write_status(record: dict) -> None:
    if os.environ.get("RANK", "0") != "0":
        return
    line = json.dumps(record)
    print(STATUS_PREFIX + line, flush=True)
    if _status_file:
        tmp = _status_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(line + "\n")
        os.replace(tmp, _status_file)


def log(msg: str) -> None:
    if os.environ.get("RANK", "0") == "0":
        print(msg, flush=True)


# ── data ───────────────────────────────────────────────────────────────────────────────────────


def load_packed(data_dir: str):
    import numpy as np

    arrays = {}
    for name in ("input_ids", "labels", "position_ids"):
        path = os.path.join(data_dir, f"{name}.npy")
        if not os.path.isfile(path):
            raise TrainError("invalid_dataset", f"{path} is missing: the data folder is not a packed .npy folder (nexa data pack)")
        arrays[name] = np.load(path, mmap_mode="r")
    shapes = {k: v.shape for k, v in arrays.items()}
    first = arrays["input_ids"].shape
    if len(first) != 2 or any(s != first for s in shapes.values()):
        raise TrainError("invalid_dataset", f"packed arrays must share one [sequences, seq_len] shape, got {shapes}")
    if first[0] == 0:
        raise TrainError("invalid_dataset", f"{data_dir} holds no sequences")
    return arrays


class PackedBatches:
    """Deterministic, resumable order over packed sequences: a seeded permutation per epoch.

    The position is `(epoch, cursor)`: `cursor` sequences of this epoch's permutation are used.
    Under DDP every rank walks the same permutation and takes its own slice of each global batch.
    """

    def __init__(self, indices, seed: int, rank: int, world: int) -> None:
        self.indices = list(indices)
        self.seed = seed
        self.rank = rank
        self.world = world
        self.epoch = 0
        self.cursor = 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int):
        rng = random.Random(self.seed * 1_000_003 + epoch)
        perm = list(self.indices)
        rng.shuffle(perm)
        return perm

    def state(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self.cursor = int(state["cursor"])
        self._perm = self._permutation(self.epoch)

    def next(self, micro_batch: int):
        """Indices of this rank's next micro-batch (the global batch is `micro_batch * world`)."""
        need = micro_batch * self.world
        out = []
        while len(out) < need:
            if self.cursor >= len(self._perm):
                self.epoch += 1
                self.cursor = 0
                self._perm = self._permutation(self.epoch)
            take = min(need - len(out), len(self._perm) - self.cursor)
            out.extend(self._perm[self.cursor : self.cursor + take])
            self.cursor += take
        return out[self.rank * micro_batch : (self.rank + 1) * micro_batch]


def document_mask(position_ids, dtype):
    """Additive [B, 1, L, L] mask: causal within each document, nothing across documents.

    Documents are delimited by `position_ids` restarting at 0 (the packer's convention); padding
    forms its own run and only ever sees itself (its labels are ignored).
    """
    import torch

    doc = torch.cumsum((position_ids == 0).to(torch.int32), dim=-1)
    length = position_ids.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=position_ids.device).tril()
    allowed = (doc[:, :, None] == doc[:, None, :]) & causal
    mask = torch.zeros(allowed.shape, dtype=dtype, device=position_ids.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def batch_tensors(arrays, idx, device):
    import numpy as np
    import torch

    idx_sorted = np.asarray(idx)
    def take(name):
        return torch.from_numpy(np.ascontiguousarray(arrays[name][idx_sorted]).astype(np.int64)).to(device)
    return take("input_ids"), take("labels"), take("position_ids")


# ── model ──────────────────────────────────────────────────────────────────────────────────────


def build_model(model_cfg: dict, max_len: int):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config_dict = dict(model_cfg.get("config") or {})
    weights = model_cfg.get("weights")
    try:
        if weights:
            if not os.path.isdir(weights):
                raise TrainError("invalid_model_config", f"model weights {weights} is not a folder with a Hugging Face model")
            kwargs = {k: v for k, v in config_dict.items() if k != "model_type"}
            model = AutoModelForCausalLM.from_pretrained(weights, attn_implementation="sdpa", **kwargs)
        else:
            if "model_type" not in config_dict:
                raise TrainError("invalid_model_config", 'model.config needs a "model_type" (e.g. "gpt2", "llama", "qwen2")')
            model_type = config_dict.pop("model_type")
            config = AutoConfig.for_model(model_type, **config_dict)
            config._attn_implementation = "sdpa"
            model = AutoModelForCausalLM.from_config(config)
    except TrainError:
        raise
    except Exception as err:  # the config did not load: unknown model_type, inconsistent sizes, …
        raise TrainError("invalid_model_config", f"model config does not load: {type(err).__name__}: {err}") from err
    limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    if limit is not None and max_len > limit:
        raise TrainError("invalid_model_config", f"sequences of {max_len} tokens exceed the model's {limit} positions (max_position_embeddings / n_positions)")
    return model


def apply_lora(model, lora: dict):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:
        raise TrainError("invalid_model_config", "model.lora needs the `peft` package in the trainer's Python (pip install peft)") from err
    cfg = LoraConfig(
        r=int(lora["r"]),
        lora_alpha=float(lora["alpha"]),
        lora_dropout=float(lora.get("dropout", 0.0)),
        target_modules=lora.get("target_modules") or "all-linear",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg)


def lr_lambda(warmup: int, total: int, min_ratio: float):
    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return f


# ── checkpoints ────────────────────────────────────────────────────────────────────────────────


def rng_state() -> dict:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(step, model, optimizer, scheduler, data, extra, is_main, dist_on):
    import torch

    if is_main:
        with nf.mark_checkpoint(step) as path:
            torch.save(
                {
                    "step": step,
                    "model": unwrap(model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": rng_state(),
                    "data": data.state(),
                    "extra": extra,
                },
                os.path.join(path, "state.pt"),
            )
            with open(os.path.join(path, "trainer_state.json"), "w", encoding="utf-8") as f:
                json.dump({"step": step, "data": data.state(), **extra}, f)
        log(f"checkpoint step-{step} saved")
    if dist_on:
        import torch.distributed as dist

        dist.barrier()


def unwrap(model):
    return model.module if hasattr(model, "module") else model


# ── main loop ──────────────────────────────────────────────────────────────────────────────────


def train(cfg: dict) -> dict:
    import numpy as np
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dist_on = world > 1
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if dist_on:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    is_main = rank == 0
    nf.install_stop_handler()

    hp = dict(cfg.get("hyperparameters") or {})
    seed = int(hp.get("seed", 0))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    arrays = load_packed(cfg["data_dir"])
    n_seq, seq_len = arrays["input_ids"].shape
    eval_every = hp.get("eval_every")
    n_eval = 0
    if eval_every:
        n_eval = max(1, int(round(n_seq * float(hp.get("eval_fraction", 0.05)))))
        if n_seq - n_eval < 1:
            n_eval = 0
    train_idx = range(0, n_seq - n_eval)
    eval_idx = list(range(n_seq - n_eval, n_seq))

    model_cfg = cfg.get("model") or {}
    model = build_model(model_cfg, seq_len)
    vocab = model.get_input_embeddings().num_embeddings
    max_id = int(np.max(arrays["input_ids"]))
    if max_id >= vocab:
        raise TrainError("invalid_model_config", f"the dataset has token id {max_id} but the model's vocab_size is {vocab}: set vocab_size to at least {max_id + 1} (the tokenizer's vocabulary)")
    if hp.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if model_cfg.get("lora"):
        model = apply_lora(model, model_cfg["lora"])
        if hp.get("gradient_checkpointing"):
            model.enable_input_require_grads()
    model.to(device)
    precision = model_cfg.get("precision", "fp32")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if precision == "fp16" and device.type != "cuda":
        log("fp16 needs a GPU; training in bf16 on the CPU instead")
        amp_dtype = torch.bfloat16
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" and device.type == "cuda" else None

    trainable = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in unwrap(model).parameters())
    n_trainable = sum(p.numel() for p in trainable)
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": float(hp.get("weight_decay", 0.0))}, {"params": no_decay, "weight_decay": 0.0}],
        lr=float(hp.get("lr", 3e-4)),
        betas=(0.9, 0.95),
        fused=device.type == "cuda",
    )
    micro = int(hp.get("micro_batch_size", 1))
    accum = int(hp.get("grad_accum", 1))
    per_step = micro * accum * world
    if hp.get("max_steps"):
        total_steps = int(hp["max_steps"])
    else:
        total_steps = max(1, math.ceil(float(hp.get("epochs", 1)) * len(train_idx) / per_step))
    warmup = int(hp.get("warmup_steps", 0))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(warmup, total_steps, float(hp.get("min_lr_ratio", 0.1))))
    data = PackedBatches(train_idx, seed, rank, world)

    step = 0
    extra = {"tokens": 0, "first_loss": None}
    ckpt = nf.latest_checkpoint()
    if ckpt is not None:
        state = torch.load(os.path.join(ckpt, "state.pt"), map_location="cpu", weights_only=False)
        unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        data.load_state(state["data"])
        set_rng_state(state["rng"])
        step = int(state["step"])
        extra = dict(state.get("extra") or extra)
        log(f"resumed from {os.path.basename(ckpt)} at step {step} (epoch {data.epoch}, sequence {data.cursor})")

    if dist_on:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model, device_ids=[local_rank] if device.type == "cuda" else None)

    log(
        f"training {type(unwrap(model)).__name__}: {n_params:,} parameters ({n_trainable:,} trainable), "
        f"{len(train_idx)} train / {len(eval_idx)} eval sequences of {seq_len}, {total_steps} steps of "
        f"{per_step} sequences, precision {precision}, device {device}, world {world}"
    )
    ckpt_every = hp.get("checkpoint_every")
    last_saved = step if ckpt is not None else -1

    def forward_loss(ids, labels, pos):
        """Summed token loss and the number of tokens it covers (labels are unshifted)."""
        mask = document_mask(pos, torch.float32 if amp_dtype is None else amp_dtype)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        shift_logits = logits[:, :-1].float()
        shift_labels = labels[:, 1:]
        loss_sum = torch.nn.functional.cross_entropy(
            shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
        )
        return loss_sum, int((shift_labels != IGNORE_INDEX).sum())

    def stop_requested() -> bool:
        flag = nf.should_stop()
        if not dist_on:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def evaluate() -> float | None:
        if not eval_idx:
            return None
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for i in range(rank * micro, len(eval_idx), micro * world):
                ids, labels, pos = batch_tensors(arrays, eval_idx[i : i + micro], device)
                s, n = forward_loss(ids, labels, pos)
                total += float(s)
                count += n
        if dist_on:
            import torch.distributed as dist

            t = torch.tensor([total, float(count)], device=device)
            dist.all_reduce(t)
            total, count = float(t[0]), float(t[1])
        model.train()
        return total / count if count else None

    model.train()
    stopped = False
    t_last = time.time()
    tokens_since = 0
    while step < total_steps:
        if stop_requested():
            stopped = True
            break
        optimizer.zero_grad(set_to_none=True)
        batches = [batch_tensors(arrays, data.next(micro), device) for _ in range(accum)]
        n_tokens = sum(int((b[1][:, 1:] != IGNORE_INDEX).sum()) for b in batches)
        if dist_on:
            import torch.distributed as dist

            t = torch.tensor([float(n_tokens)], device=device)
            dist.all_reduce(t)
            n_global = float(t.item())
        else:
            n_global = float(n_tokens)
        loss_total = 0.0
        for k, (ids, labels, pos) in enumerate(batches):
            # Normalise by the tokens of the whole accumulated (and all-reduced) batch: the gradient is the
            # token-mean of the global batch, independent of how it is split into micro-batches.
            sync = not dist_on or k == accum - 1
            ctx = model.no_sync() if dist_on and not sync else _null()
            with ctx:
                s, _ = forward_loss(ids, labels, pos)
                loss = s * (world / max(1.0, n_global))
                (scaler.scale(loss) if scaler else loss).backward()
            loss_total += float(s.detach())
        if scaler:
            scaler.unscale_(optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable, float(hp.get("max_grad_norm", 1.0))))
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        step += 1
        if dist_on:
            import torch.distributed as dist

            t = torch.tensor([loss_total], device=device)
            dist.all_reduce(t)
            loss_total = float(t.item())
        loss_mean = loss_total / max(1.0, n_global)
        extra["tokens"] = int(extra.get("tokens", 0)) + int(n_global)
        if extra.get("first_loss") is None:
            extra["first_loss"] = loss_mean
        extra["last_loss"] = loss_mean
        tokens_since += int(n_global)
        now = time.time()
        metrics = {"loss": loss_mean, "lr": lr, "grad_norm": grad_norm, "tokens": extra["tokens"], "epoch": data.epoch}
        if now > t_last:
            metrics["tokens_per_s"] = tokens_since / (now - t_last)
        t_last, tokens_since = now, 0
        if eval_every and step % int(eval_every) == 0:
            ev = evaluate()
            if ev is not None:
                metrics["eval_loss"] = ev
                extra["eval_loss"] = ev
        nf.report(step, **metrics)
        log(f"step {step}/{total_steps} loss {loss_mean:.4f} lr {lr:.3g}")
        if ckpt_every and step % int(ckpt_every) == 0 and step < total_steps:
            save_checkpoint(step, model, optimizer, scheduler, data, extra, is_main, dist_on)
            last_saved = step

    if stopped:
        if last_saved != step:
            save_checkpoint(step, model, optimizer, scheduler, data, extra, is_main, dist_on)
        log(f"stop requested: final checkpoint at step {step}")
        return {"status": "stopped", "step": step, "tokens": extra["tokens"]}

    if eval_idx and "eval_loss" not in extra:
        extra["eval_loss"] = evaluate()
    if is_main:
        save_final(cfg, unwrap(model), extra, step, n_params, n_trainable)
    if dist_on:
        import torch.distributed as dist

        dist.barrier()
    return {"status": "completed", "step": step, "tokens": extra["tokens"], "first_loss": extra.get("first_loss"), "final_loss": extra.get("last_loss"), "eval_loss": extra.get("eval_loss")}


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def save_final(cfg, model, extra, step, n_params, n_trainable) -> None:
    out = os.path.join(nf.outputs_dir(), "model")
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if hasattr(model, "merge_and_unload"):  # LoRA: serve a plain model with the adapters merged in
        model = model.merge_and_unload()
    model.save_pretrained(tmp, safe_serialization=True)
    tok = cfg.get("tokenizer_dir")
    if tok and os.path.isdir(tok):
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            src = os.path.join(tok, name)
            if os.path.isfile(src):
                shutil.copy(src, os.path.join(tmp, name))
    with open(os.path.join(tmp, "nexa_model.json"), "w", encoding="utf-8") as f:
        json.dump({"format": "nexa.model/v1", "steps": step, "parameters": n_params, "trainable_parameters": n_trainable, "tokenizer": cfg.get("tokenizer"), **{k: extra.get(k) for k in ("tokens", "first_loss", "last_loss", "eval_loss")}}, f, indent=2)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    log(f"saved the model to {out}")


def main(argv=None) -> int:
    global _status_file
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="train_config.json")
    args = p.parse_args(argv)
    # SIGTERM may come while torch is still importing: catch it from the start.
    nf.install_stop_handler()
    try:
        with open(args.config, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as err:
        print(f"cannot read {args.config}: {err}", file=sys.stderr)
        return 2
    _status_file = cfg.get("status_file")
    try:
        return _run(cfg)
    finally:
        _shutdown_distributed()


def _shutdown_distributed() -> None:
    """Tears the process group down before exit: with gloo's threads still alive the C++ runtime
    aborts the process at exit ("terminate called without an active exception")."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _run(cfg) -> int:
    try:
        result = train(cfg)
    except TrainError as err:
        print(f"error [{err.code}]: {err}", file=sys.stderr, flush=True)
        write_status({"status": "failed", "code": err.code, "message": str(err)})
        return err.exit_code
    except Exception as err:  # noqa: BLE001
        oom = isinstance(err, MemoryError) or "out of memory" in str(err).lower() or type(err).__name__ == "OutOfMemoryError"
        traceback.print_exc()
        if oom:
            write_status({"status": "failed", "code": "oom", "message": f"{type(err).__name__}: {str(err)[:500]}"})
            return 3
        write_status({"status": "failed", "code": "trainer_failed", "message": f"{type(err).__name__}: {str(err)[:500]}"})
        return 1
    write_status(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
