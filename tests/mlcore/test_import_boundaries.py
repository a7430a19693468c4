"""mlcore never imports Django, and its upload-validation side never imports torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

MLCORE = Path(__file__).resolve().parents[2] / "mlcore"


def test_importing_the_web_facing_modules_does_not_import_torch_or_transformers():
    code = (
        "import sys, mlcore, mlcore.data, mlcore.config, mlcore.catalogue, mlcore.callbacks, mlcore.testing\n"
        "import mlcore.preview, mlcore.modelcheck, mlcore.quality\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=MLCORE.parent, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == ""


def test_no_mlcore_module_imports_django():
    for path in MLCORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "django" or n.startswith(("django.", "rest_framework")) for n in names), path.name
