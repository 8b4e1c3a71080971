import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import nexa_forge as nf

PYTHON_DIR = os.path.join(os.path.dirname(__file__), "..")


@pytest.fixture
def job_env(tmp_path, monkeypatch):
    monkeypatch.setenv("NEXA_METRICS_FILE", str(tmp_path / "metrics.jsonl"))
    monkeypatch.setenv("NEXA_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    monkeypatch.setenv("NEXA_OUTPUTS_DIR", str(tmp_path / "out"))
    monkeypatch.delenv("NEXA_RESUME", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    return tmp_path


def test_report_appends_json_lines(job_env):
    nf.report(0, loss=2.5, lr=1e-3)
    nf.report(1, loss=float("nan"), tokens=128)
    lines = (job_env / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l) for l in lines] == [
        {"step": 0, "loss": 2.5, "lr": 0.001},
        {"step": 1, "loss": None, "tokens": 128},
    ]


def test_report_rejects_bad_steps(job_env):
    with pytest.raises(ValueError):
        nf.report(-1, loss=1.0)
    with pytest.raises(TypeError):
        nf.report(1, step=2)


def test_report_only_on_rank_zero(job_env, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    nf.report(3, loss=1.0)
    assert not (job_env / "metrics.jsonl").exists()


def test_report_without_metrics_file_prints(monkeypatch, capsys):
    monkeypatch.delenv("NEXA_METRICS_FILE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    nf.report(7, loss=0.5)
    assert json.loads(capsys.readouterr().out) == {"step": 7, "loss": 0.5}


def test_checkpoint_complete_written_last(job_env):
    assert nf.latest_checkpoint() is None
    with nf.mark_checkpoint(10) as path:
        assert os.path.isdir(path)
        assert not os.path.exists(os.path.join(path, "COMPLETE"))
        with open(os.path.join(path, "state.txt"), "w") as f:
            f.write("10")
    assert os.path.exists(os.path.join(path, "COMPLETE"))
    assert os.path.getsize(os.path.join(path, "COMPLETE")) == 0
    assert nf.latest_checkpoint() == path
    assert os.path.basename(path) == "step-10"


def test_latest_checkpoint_orders_by_step_and_skips_incomplete(job_env):
    for step in (9, 100, 20):
        nf.mark_checkpoint(step).complete()
    nf.mark_checkpoint(500)  # never completed (the process died while writing)
    with pytest.raises(RuntimeError):
        with nf.mark_checkpoint(600):
            raise RuntimeError("disk full")
    names = [os.path.basename(p) for p in nf.list_checkpoints()]
    assert names == ["step-9", "step-20", "step-100"]
    assert os.path.basename(nf.latest_checkpoint()) == "step-100"


def test_mark_checkpoint_replaces_an_interrupted_folder(job_env):
    ck = nf.mark_checkpoint(5)
    with open(os.path.join(ck.path, "partial"), "w") as f:
        f.write("x")
    ck2 = nf.mark_checkpoint(5)
    assert os.listdir(ck2.path) == []


def test_resumed(monkeypatch):
    monkeypatch.setenv("NEXA_RESUME", "1")
    assert nf.resumed()
    monkeypatch.setenv("NEXA_RESUME", "0")
    assert not nf.resumed()


def test_should_stop_after_sigterm(tmp_path):
    # A real process: SIGTERM sets the flag instead of killing it; it checkpoints and exits 0.
    script = textwrap.dedent(
        """
        import sys, time
        sys.path.insert(0, sys.argv[1])
        import nexa_forge as nf
        assert not nf.should_stop()
        print("ready", flush=True)
        deadline = time.time() + 20
        while not nf.should_stop() and time.time() < deadline:
            time.sleep(0.01)
        nf.mark_checkpoint(3).complete()
        print("stopped" if nf.should_stop() else "timeout", flush=True)
        """
    )
    env = dict(os.environ, NEXA_CHECKPOINT_DIR=str(tmp_path / "ck"))
    p = subprocess.Popen([sys.executable, "-c", script, PYTHON_DIR], stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0
    assert out.strip() == "stopped"
    assert (tmp_path / "ck" / "step-3" / "COMPLETE").exists()


def test_sigterm_kills_a_script_that_never_asks(tmp_path):
    script = "import sys, time; sys.path.insert(0, sys.argv[1]); import nexa_forge; print('ready', flush=True); time.sleep(20)"
    p = subprocess.Popen([sys.executable, "-c", script, PYTHON_DIR], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)
    assert p.returncode == -signal.SIGTERM
