"""recipes/torch/train.py pieces: the packed-document mask, the resumable data order, and a LoRA run."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="recipe tests need torch (pip install -r python/requirements-test.txt)")
transformers = pytest.importorskip("transformers")
np = pytest.importorskip("numpy")

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRAIN = os.path.join(REPO, "recipes", "torch", "train.py")
spec = importlib.util.spec_from_file_location("nexa_train", TRAIN)
train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train)


@pytest.mark.parametrize("model_type,kw", [
    ("gpt2", dict(n_layer=2, n_embd=32, n_head=2, vocab_size=256, n_positions=32)),
    ("llama", dict(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=2, num_key_value_heads=1, vocab_size=256, max_position_embeddings=32)),
])
def test_packed_documents_do_not_see_each_other(model_type, kw):
    torch.manual_seed(0)
    config = transformers.AutoConfig.for_model(model_type, bos_token_id=0, eos_token_id=0, **kw)
    config._attn_implementation = "sdpa"
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    a, b = torch.randint(0, 256, (1, 5)), torch.randint(0, 256, (1, 7))
    ids = torch.cat([a, b, torch.zeros(1, 4, dtype=torch.long)], 1)  # two documents, then padding
    pos = torch.cat([torch.arange(5), torch.arange(7), torch.arange(4)])[None]
    with torch.no_grad():
        packed = model(input_ids=ids, attention_mask=train.document_mask(pos, torch.float32), position_ids=pos).logits
        alone_a = model(input_ids=a).logits
        alone_b = model(input_ids=b).logits
    assert torch.allclose(packed[:, :5], alone_a, atol=1e-5)
    assert torch.allclose(packed[:, 5:12], alone_b, atol=1e-5)


def test_data_order_resumes_exactly():
    full = train.PackedBatches(range(10), seed=3, rank=0, world=1)
    seq = [full.next(3) for _ in range(6)]  # crosses two epoch boundaries
    part = train.PackedBatches(range(10), seed=3, rank=0, world=1)
    first = [part.next(3) for _ in range(2)]
    resumed = train.PackedBatches(range(10), seed=3, rank=0, world=1)
    resumed.load_state(part.state())
    assert first + [resumed.next(3) for _ in range(4)] == seq
    # Ranks split each global batch.
    r0 = train.PackedBatches(range(10), seed=3, rank=0, world=2).next(2)
    r1 = train.PackedBatches(range(10), seed=3, rank=1, world=2).next(2)
    assert r0 + r1 == train.PackedBatches(range(10), seed=3, rank=0, world=1).next(4)


def test_lora_run_saves_a_merged_model_and_reports(tmp_path):
    n, length = 24, 16
    rng = np.random.default_rng(0)
    data = tmp_path / "packed"
    data.mkdir()
    ids = rng.integers(1, 64, size=(n, length)).astype(np.int32)
    np.save(data / "input_ids.npy", ids)
    labels = ids.copy()
    labels[:, 0] = -100
    np.save(data / "labels.npy", labels)
    np.save(data / "position_ids.npy", np.tile(np.arange(length, dtype=np.int32), (n, 1)))
    cfg = {
        "data_dir": str(data),
        "model": {"config": {"model_type": "gpt2", "n_layer": 1, "n_embd": 16, "n_head": 2, "vocab_size": 64, "n_positions": 16, "bos_token_id": 0, "eos_token_id": 0},
                  "lora": {"r": 2, "alpha": 4}, "precision": "fp32"},
        "hyperparameters": {"lr": 1e-2, "max_steps": 3, "micro_batch_size": 2, "grad_accum": 2, "eval_every": 3, "gradient_checkpointing": True},
        "status_file": str(tmp_path / "status.json"),
    }
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    env = dict(os.environ, NEXA_OUTPUTS_DIR=str(tmp_path / "out"), NEXA_CHECKPOINT_DIR=str(tmp_path / "ck"), NEXA_METRICS_FILE=str(tmp_path / "m.jsonl"), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, TRAIN, "--config", str(tmp_path / "cfg.json")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "completed" and status["step"] == 3
    metrics = [json.loads(l) for l in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert "eval_loss" in metrics[-1]
    meta = json.loads((tmp_path / "out" / "model" / "nexa_model.json").read_text())
    # 1 layer × r=2 × (16+48 + 16+16 + 16+64 + 64+16) adapter parameters; the saved model has them merged.
    assert meta["trainable_parameters"] == 2 * (64 + 32 + 80 + 80)
    merged = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "model")
    assert not any("lora" in k for k in merged.state_dict())


def test_bad_model_config_exits_2_with_a_code(tmp_path):
    data = tmp_path / "packed"
    data.mkdir()
    for name in ("input_ids", "labels", "position_ids"):
        np.save(data / f"{name}.npy", np.zeros((2, 8), dtype=np.int32))
    cfg = {"data_dir": str(data), "model": {"config": {"model_type": "no-such-model"}}, "status_file": str(tmp_path / "s.json")}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    r = subprocess.run([sys.executable, TRAIN, "--config", str(tmp_path / "cfg.json")], capture_output=True, text=True, timeout=300, env=dict(os.environ, NEXA_OUTPUTS_DIR=str(tmp_path / "o"), NEXA_CHECKPOINT_DIR=str(tmp_path / "c")))
    assert r.returncode == 2
    status = json.loads((tmp_path / "s.json").read_text())
    assert status["status"] == "failed" and status["code"] == "invalid_model_config"
    assert "no-such-model" in status["message"]


def _tiny_run(tmp_path, name, ck, steps, ckpt_every=None):
    data = tmp_path / "packed"
    if not data.exists():
        data.mkdir()
        rng = np.random.default_rng(1)
        ids = rng.integers(1, 64, size=(40, 16)).astype(np.int32)
        np.save(data / "input_ids.npy", ids)
        np.save(data / "labels.npy", ids)
        # Two documents per sequence.
        np.save(data / "position_ids.npy", np.tile(np.concatenate([np.arange(6), np.arange(10)]).astype(np.int32), (40, 1)))
    hp = {"lr": 1e-2, "warmup_steps": 2, "max_steps": steps, "micro_batch_size": 2, "grad_accum": 2, "seed": 5}
    if ckpt_every:
        hp["checkpoint_every"] = ckpt_every
    cfg = {
        "data_dir": str(data),
        "model": {"config": {"model_type": "gpt2", "n_layer": 1, "n_embd": 16, "n_head": 2, "vocab_size": 64, "n_positions": 16, "bos_token_id": 0, "eos_token_id": 0, "resid_pdrop": 0.1}, "precision": "fp32"},
        "hyperparameters": hp,
        "status_file": str(tmp_path / f"{name}.json"),
    }
    (tmp_path / f"{name}.cfg").write_text(json.dumps(cfg))
    env = dict(os.environ, NEXA_OUTPUTS_DIR=str(tmp_path / f"{name}-out"), NEXA_CHECKPOINT_DIR=str(ck), NEXA_METRICS_FILE=str(tmp_path / f"{name}.jsonl"), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, TRAIN, "--config", str(tmp_path / f"{name}.cfg")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout, [json.loads(l) for l in (tmp_path / f"{name}.jsonl").read_text().splitlines()]


def test_resume_from_a_checkpoint_reproduces_the_uninterrupted_run(tmp_path):
    import shutil

    # Dropout on: the RNG state must be restored too, not only weights, optimizer, scheduler and data position.
    _out, full = _tiny_run(tmp_path, "full", tmp_path / "ck-full", 6, ckpt_every=3)
    assert (tmp_path / "ck-full" / "step-3" / "COMPLETE").exists()
    ck = tmp_path / "ck-resume"
    ck.mkdir()
    shutil.copytree(tmp_path / "ck-full" / "step-3", ck / "step-3")
    out, resumed = _tiny_run(tmp_path, "resumed", ck, 6)
    assert "resumed from step-3 at step 3" in out
    assert [m["step"] for m in resumed] == [4, 5, 6]
    for a, b in zip(full[3:], resumed):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-6, abs=1e-7)
        assert b["lr"] == pytest.approx(a["lr"], rel=1e-9)
        assert b["tokens"] == a["tokens"]


def test_torchrun_two_cpu_processes_match_one_process_with_the_same_global_batch(tmp_path):
    # DDP over gloo: 2 ranks × micro-batch 2 × 2 accumulation steps = 1 rank × 2 × 4 (same sequences per
    # step, gradient = token-mean of the global batch), so the losses agree up to float reduction order.
    data = tmp_path / "packed"
    data.mkdir()
    rng = np.random.default_rng(2)
    ids = rng.integers(1, 64, size=(32, 16)).astype(np.int32)
    np.save(data / "input_ids.npy", ids)
    np.save(data / "labels.npy", ids)
    np.save(data / "position_ids.npy", np.tile(np.arange(16, dtype=np.int32), (32, 1)))
    model = {"config": {"model_type": "gpt2", "n_layer": 1, "n_embd": 16, "n_head": 2, "vocab_size": 64, "n_positions": 16, "bos_token_id": 0, "eos_token_id": 0,
                        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}, "precision": "fp32"}
    runs = {}
    for name, accum, launcher in (("one", 4, []), ("two", 2, ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"])):
        cfg = {"data_dir": str(data), "model": model, "hyperparameters": {"lr": 1e-2, "max_steps": 3, "micro_batch_size": 2, "grad_accum": accum, "seed": 9}, "status_file": str(tmp_path / f"{name}.json")}
        (tmp_path / f"{name}.cfg").write_text(json.dumps(cfg))
        env = dict(os.environ, NEXA_OUTPUTS_DIR=str(tmp_path / f"{name}-out"), NEXA_CHECKPOINT_DIR=str(tmp_path / f"{name}-ck"), NEXA_METRICS_FILE=str(tmp_path / f"{name}.jsonl"), OMP_NUM_THREADS="1")
        r = subprocess.run([sys.executable, *launcher, TRAIN, "--config", str(tmp_path / f"{name}.cfg")], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        runs[name] = [json.loads(l) for l in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
    assert "world 2" not in json.dumps(runs["one"])
    assert [m["step"] for m in runs["two"]] == [1, 2, 3]
    for a, b in zip(runs["one"], runs["two"]):
        assert b["tokens"] == a["tokens"]
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
