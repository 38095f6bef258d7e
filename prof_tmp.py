import subprocess, sys, tempfile
from pathlib import Path
from bench.worker import worker_env
from gallery_operator.workerconfig import PvcStorage
from tests.fixtures.site import serve
with serve() as site, tempfile.TemporaryDirectory() as tmp:
    folder = Path(tmp)
    spec = {"urls": [f"{site}/gallery/?n=1000&size=20480"], "engine": "gallery-dl", "target": {"pvc": {"claimName": "x"}}, "options": {"retries": 0}}
    storage = PvcStorage(root=str(folder / "claim"), location="pvc://x/dl")
    p = subprocess.run([sys.executable, "-m", "cProfile", "-o", "/tmp/g.prof", "-m", "gallery_operator.worker"], env=worker_env(folder, spec, storage), capture_output=True, text=True)
    print(p.returncode, p.stderr[-300:])
