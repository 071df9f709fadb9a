"""Fault suite, concurrency: two processes saving and one loading the same checkpoint.

Several Binder kernels (or a notebook and a script) can save the same cached baseline at once.
Each writer saves weights filled with its own id, again and again; the reader loads in a loop
and checks that every load is whole and comes from one writer. Bounded in count and time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAVES = 40

WRITER = textwrap.dedent("""
    import os, sys, time, torch
    from mint_teach import train
    path, ident, saves, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    model = torch.nn.Linear(512, 512)
    with torch.no_grad():
        model.weight.fill_(ident)
        model.bias.fill_(ident)
    while not os.path.exists(go):  # both writers start together
        time.sleep(0.001)
    for _ in range(saves):
        train.save_checkpoint(model, path, meta={"writer": ident})
""")

READER = textwrap.dedent("""
    import json, os, sys, time, torch
    from mint_teach import train
    path, stop_file, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    model = torch.nn.Linear(512, 512)
    counts = {"whole": 0, "mixed": 0, "failed": 0}
    stop = time.monotonic() + seconds
    while time.monotonic() < stop and not os.path.exists(stop_file):
        if not os.path.exists(path):
            time.sleep(0.001)
            continue
        try:
            meta = train.load_checkpoint(model, path)
        except Exception as exc:
            counts["failed"] += 1
            counts["last_error"] = repr(exc)[:200]
            continue
        values = set(model.weight.unique().tolist()) | set(model.bias.unique().tolist())
        whole = values == {float(meta["writer"])}
        counts["whole" if whole else "mixed"] += 1
    print(json.dumps(counts))
""")


def test_wrong_concurrent_saves_never_tear_a_checkpoint(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    target = str(tmp_path / "shared.pt")
    scripts = {}
    for name, text in (("writer", WRITER), ("reader", READER)):
        scripts[name] = tmp_path / f"{name}.py"
        scripts[name].write_text(text)
    stop_file = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, str(scripts["reader"]), target, str(stop_file),
                               "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    go = tmp_path / "go"
    writers = [subprocess.Popen([sys.executable, str(scripts["writer"]), target, str(k),
                                 str(SAVES), str(go)], stderr=subprocess.PIPE, text=True, env=env)
               for k in (1, 2)]
    time.sleep(3)  # let both import torch; a late one just starts late
    go.write_text("")
    errors = [w.communicate(timeout=120)[1] for w in writers]
    stop_file.write_text("")  # the reader stops now, or after 60 s at the latest
    out, err = reader.communicate(timeout=120)
    assert [w.returncode for w in writers] == [0, 0], errors
    assert reader.returncode == 0, err
    counts = json.loads(out)
    assert counts["whole"] > 0
    assert counts["mixed"] == 0 and counts["failed"] == 0, counts
    leftovers = sorted(p.name for p in tmp_path.iterdir()
                       if p.suffix != ".py" and p.name not in ("go", "stop"))
    assert leftovers == ["shared.pt"]
