"""The environment a model is trained in: Python, torch, CUDA and cuDNN, the lockfile, the OS, the
device. Recorded as ``env.*`` tags on every run and version, compared by ``platform-kit
reproduce``.

The lockfile's hash comes from the install: ``make venv`` and the runners' install-kit action
write ``<venv>/platform-kit-lock.txt`` (``sha256:<hex> <file>``) after installing from it;
$PLATFORM_KIT_LOCK_HASH overrides it. A kit installed otherwise records ``unlocked``.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

from platform_kit import env
from platform_kit.tracking import tags

LOCK_RECORD = "platform-kit-lock.txt"  # in the virtualenv (sys.prefix)
UNLOCKED = "unlocked"


def lock_hash() -> str:
    """``sha256:<hex>`` of the lockfile this environment was installed from, or ``unlocked``."""
    override = env.get(env.PLATFORM_KIT_LOCK_HASH)
    if override:
        return override
    try:
        text = (Path(sys.prefix) / LOCK_RECORD).read_text(encoding="utf-8").split()
    except OSError:
        return UNLOCKED
    return text[0] if text else UNLOCKED


def describe() -> dict[str, str]:
    """The ``env.*`` tags of this process.

    Imports no torch of its own: CUDA, cuDNN and the device are known only where the trainer
    imported torch (a Python trainer); elsewhere the installed torch's version alone is recorded.
    """
    out = {
        tags.ENV_PYTHON: platform.python_version(),
        tags.ENV_TORCH: _torch_version(),
        tags.ENV_LOCK: lock_hash(),
        tags.ENV_OS: f"{platform.system()} {platform.release()} {platform.machine()}",
    }
    torch = sys.modules.get("torch")
    if torch is None:
        return out
    if torch.cuda.is_available():
        out[tags.ENV_CUDA] = str(torch.version.cuda)
        cudnn = torch.backends.cudnn.version()
        if cudnn:
            out[tags.ENV_CUDNN] = str(cudnn)
        out[tags.ENV_DEVICE] = f"cuda: {torch.cuda.get_device_name(0)}"
    else:
        out[tags.ENV_DEVICE] = "cpu"
    return out


def _torch_version() -> str:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "none"
