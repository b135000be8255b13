"""The deployment's policy file, validated at synth with the functions' own model and bundled as JSON.

The model lives in the Lambda package (``approvals.models.policy``), so synth and cold start check the
same rules. lambdas/ goes on sys.path (appended, so nothing of the CDK app is shadowed) to import it.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.append(_LAMBDAS)

from approvals.models.policy import (  # noqa: E402
    BUNDLED_POLICY_NAME,
    EXAMPLE_POLICY_FILE,
    Policy,
    PolicyError,
    dump_policy,
    load_policy_file,
)

__all__ = [
    "BUNDLED_POLICY_NAME",
    "DEFAULT_POLICY_FILE",
    "Policy",
    "PolicyFileError",
    "dump_policy",
    "policy_digest",
    "read_policy",
]

# The context setting's default: the annotated example at the repo root.
DEFAULT_POLICY_FILE = EXAMPLE_POLICY_FILE


class PolicyFileError(ValueError):
    """The policy file is missing or malformed; ``problems`` holds one line each (rule and field named)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_policy(root: Path, file: str) -> Policy:
    """Load and validate ``file`` (relative to ``root`` unless absolute). Raises PolicyFileError."""
    path = Path(file) if Path(file).is_absolute() else root / file
    try:
        return load_policy_file(path)
    except FileNotFoundError:
        raise PolicyFileError([f"no such file: {path}"]) from None
    except OSError as exc:
        raise PolicyFileError([f"cannot read {path}: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise PolicyFileError([f"{path} is not UTF-8 text"]) from None
    except PolicyError as exc:
        raise PolicyFileError(exc.problems) from None


def policy_digest(document: str) -> str:
    """A short digest of the bundled JSON, for the asset hash."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()[:16]
