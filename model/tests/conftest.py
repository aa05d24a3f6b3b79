import sys
from pathlib import Path

import pytest
import torch

MODEL_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(MODEL_DIR))
torch.set_num_threads(1)

GOLDEN = MODEL_DIR.parent / "tests" / "fixtures" / "golden"
KEYS_TSV = Path("/work/shared/data/official-checkpoint-keys.tsv")


@pytest.fixture(scope="session")
def ort_available():
    from mambast import ort
    if ort.runner() is None:
        pytest.skip("ONNX Runtime runner unavailable (needs the restored Microsoft.ML.OnnxRuntime NuGet package and g++)")
    return ort


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory):
    """tiny config (seed 7) exported with both scan variants: {variant: folder}."""
    from mambast import build_model, get_config
    from mambast.export import export
    model = build_model(get_config("tiny"), seed=7, scan_variant="sequential")
    out = {}
    for v in ("sequential", "parallel"):
        folder = tmp_path_factory.mktemp(f"tiny-{v}")
        export(model, folder, v, "random-init seed 7")
        out[v] = folder
    return model, out
